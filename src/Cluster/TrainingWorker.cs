using Hybrid.Classifier;
using Hybrid.Dsp;
using Orleans.Placement;
using Orleans.Runtime;

namespace Hybrid.Cluster;

/// <summary>The worker grain of data-parallel training (see <see cref="ITrainingWorker"/>); worker K is placed on silo
/// K mod S (<see cref="SpreadPlacement"/>), so that N workers on N silos land one per silo.</summary>
[SpreadPlacement]
internal sealed class TrainingWorker(ILocalSiloDetails silo) : Grain, ITrainingWorker
{
    private Engine? engine;
    private Replica? replica;

    private Replica Loaded => replica ?? throw new WorkerLostException(this.GetPrimaryKeyString());

    public async Task<ReplicaInfo> Open(string runDirectory, string engineName)
    {
        replica = null;
        engine?.Dispose();
        engine = Engines.Create(engineName);
        var created = engine;
        var r = await Task.Run(() => new Replica(runDirectory, created));
        replica = r;
        return (new ReplicaInfo(r.EpochsDone, r.Epochs, r.StepsPerEpoch, r.Samples, r.ParameterCount, r.StateCount, silo.SiloAddress.ToString()));
    }

    public async Task<StepShare> Compute(StepOrder order)
    {
        var r = Loaded;
        // Engine work runs on the thread pool, not on the grain's single-threaded scheduler (the engines parallelise
        // with tasks of their own).
        var (gradient, loss, correct, count) = await Task.Run(() => r.Compute(order.Step, order.Worker, order.Workers));
        var reducer = GrainFactory.GetGrain<IGradientReducer>(order.ReducerKey);
        var chunks = Chunks(gradient.Length, order.ChunkFloats);
        for (var c = 0; c < chunks; c++)
        {
            var start = c * order.ChunkFloats;
            await reducer.Add(order.Worker, order.Workers, c, gradient[start..Math.Min(gradient.Length, start + order.ChunkFloats)]);
        }
        return new StepShare(loss, correct, count);
    }

    public async Task Apply(StepOrder order)
    {
        var r = Loaded;
        var summed = new float[r.ParameterCount];
        var reducer = GrainFactory.GetGrain<IGradientReducer>(order.ReducerKey);
        var chunks = Chunks(summed.Length, order.ChunkFloats);
        for (var c = 0; c < chunks; c++)
        {
            var part = await reducer.Sum(c);
            part.CopyTo(summed, c * order.ChunkFloats);
        }
        await Task.Run(() => r.Apply(order.Step, summed));
    }

    public Task<float[]> States() => Task.FromResult(Loaded.States());

    public Task SetStates(float[] values)
    {
        Loaded.SetStates(values);
        return Task.CompletedTask;
    }

    public Task WriteCheckpoint(int epochsDone, double trainLoss, double trainAccuracy, double seconds)
    {
        Loaded.WriteCheckpoint(epochsDone, trainLoss, trainAccuracy, seconds);
        return Task.CompletedTask;
    }

    public Task<float[]> Snapshot(int offset, int count)
    {
        var all = Loaded.Snapshot();
        var start = Math.Clamp(offset, 0, all.Length);
        return Task.FromResult(all[start..Math.Min(all.Length, start + Math.Max(0, count))]);
    }

    public Task<string> Fingerprint()
    {
        var all = Loaded.Snapshot();
        return Task.FromResult(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(all.AsSpan()))));
    }

    public Task<bool> IsLoaded() => Task.FromResult(replica is not null);

    public Task<string> Silo() => Task.FromResult(silo.SiloAddress.ToString());

    public Task Close()
    {
        replica = null;
        engine?.Dispose();
        engine = null;
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        replica = null;
        engine?.Dispose();
        engine = null;
        return base.OnDeactivateAsync(reason, cancellationToken);
    }

    internal static int Chunks(int length, int chunkFloats) => length == 0 ? 1 : (length + chunkFloats - 1) / chunkFloats;
}

/// <summary>The reducer grain of one training step (see <see cref="IGradientReducer"/>).</summary>
internal sealed class GradientReducer : Grain, IGradientReducer
{
    private readonly Dictionary<int, float[]?[]> chunks = new();
    private readonly Dictionary<int, float[]> sums = new();

    public Task Add(int worker, int workers, int chunk, float[] values)
    {
        if (workers < 1 || worker < 0 || worker >= workers)
            throw new ArgumentOutOfRangeException(nameof(worker), $"reducer {this.GetPrimaryKeyString()}: worker {worker} is outside 0..{workers - 1}.");
        if (!chunks.TryGetValue(chunk, out var parts))
        {
            parts = new float[workers][];
            chunks[chunk] = parts;
        }
        if (parts.Length != workers)
            throw new ArgumentException($"reducer {this.GetPrimaryKeyString()}: chunk {chunk} was started for {parts.Length} workers, worker {worker} says {workers}.", nameof(workers));
        parts[worker] = values;
        return Task.CompletedTask;
    }

    public Task<float[]> Sum(int chunk)
    {
        if (sums.TryGetValue(chunk, out var done)) return Task.FromResult(done);
        if (!chunks.TryGetValue(chunk, out var parts))
            throw new InvalidOperationException($"reducer {this.GetPrimaryKeyString()}: no worker added chunk {chunk}.");
        var first = parts[0] ?? throw new InvalidOperationException($"reducer {this.GetPrimaryKeyString()}: worker 0 has not added chunk {chunk}.");
        var sum = (float[])first.Clone();
        for (var w = 1; w < parts.Length; w++)
        {
            var part = parts[w] ?? throw new InvalidOperationException($"reducer {this.GetPrimaryKeyString()}: worker {w} has not added chunk {chunk}.");
            if (part.Length != sum.Length)
                throw new InvalidOperationException($"reducer {this.GetPrimaryKeyString()}: worker {w}'s chunk {chunk} has {part.Length} floats, worker 0's {sum.Length}.");
            for (var i = 0; i < sum.Length; i++) sum[i] += part[i];
        }
        sums[chunk] = sum;
        return Task.FromResult(sum);
    }

    public Task Release()
    {
        chunks.Clear();
        sums.Clear();
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}
