using System.Diagnostics;
using Orleans.Runtime;

namespace Hybrid.Cluster;

/// <summary>Settings of a data-parallel run on a cluster.</summary>
/// <param name="Workers">Worker grains (model replicas); at least 1.</param>
/// <param name="Engine">Engine every worker creates on its silo ("managed", "auto", ...).</param>
/// <param name="ChunkFloats">Floats per gradient message: 4 bytes each, kept far below Orleans' 100 MB limit
/// (default 1,048,576 floats = 4 MiB).</param>
/// <param name="CallTimeout">Limit of every grain call (default 60 s); a call past it counts as a lost worker.</param>
/// <param name="MaxRestarts">How many times a run resumes from its checkpoint after losing workers (default 3).</param>
/// <param name="RunId">Prefix of the run's grain keys (default: the run folder and a new GUID); worker K of
/// generation G is the <see cref="ITrainingWorker"/> keyed "RunId/G/K".</param>
public sealed record ClusterTrainingOptions(
    int Workers,
    string Engine = "managed",
    int ChunkFloats = 1 << 20,
    TimeSpan? CallTimeout = null,
    int MaxRestarts = 3,
    string? RunId = null);

/// <summary>What a data-parallel run did.</summary>
/// <param name="Workers">Workers of the last generation (fewer than asked after a lost node).</param>
/// <param name="Restarts">Times the run resumed from its checkpoint after losing workers.</param>
/// <param name="EpochsDone">Epochs completed (the checkpoint's).</param>
/// <param name="Steps">Optimisation steps run by this call (a step repeated after a restart counts twice).</param>
/// <param name="Seconds">Wall-clock seconds.</param>
/// <param name="Fingerprint">SHA-256 of the replicas' tensors after the last epoch (every replica's, checked equal).</param>
public sealed record ClusterTrainingResult(int Workers, int Restarts, int EpochsDone, int Steps, double Seconds, string Fingerprint);

/// <summary>
/// The coordinator of data-parallel training (client side): for each global step, every worker grain computes the
/// gradient of its slice of the global batch and adds it to the step's reducer grain in chunks; then every worker
/// fetches the sum (added in worker order) and applies the same optimizer update, so the replicas stay equal. At each
/// epoch end the replicas' BatchNorm running statistics are averaged (worker order) and set on every replica, and
/// worker 0 writes the run folder's checkpoint (the format of <c>Training.fit</c>). A worker lost mid-epoch (its silo
/// died, a call timed out) stops the step; the run starts a new generation of workers with those still reachable,
/// which load the last checkpoint and go on with the same data order (the global batches do not depend on the
/// number of workers).
/// </summary>
public static class DataParallelTrainer
{
    /// <summary>
    /// Trains the run folder <paramref name="runDirectory"/> (prepared by <c>DataParallel.prepare</c>; every silo must
    /// see it) on the cluster reached through <paramref name="grains"/>. <paramref name="log"/> receives one line per
    /// epoch and per restart. Raises <see cref="ClusterException"/> naming the run folder when every worker is lost or
    /// after <see cref="ClusterTrainingOptions.MaxRestarts"/> restarts; TrainingException for a NaN loss;
    /// ModelFileException for an unusable run folder; ArgumentException for bad options.
    /// </summary>
    public static async Task<ClusterTrainingResult> RunAsync(
        IGrainFactory grains, string runDirectory, ClusterTrainingOptions options, Action<string>? log = null,
        CancellationToken cancellationToken = default)
    {
        if (options.Workers < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Workers must be at least 1, was {options.Workers}.");
        if (options.ChunkFloats < 1) throw new ArgumentOutOfRangeException(nameof(options), $"ChunkFloats must be at least 1, was {options.ChunkFloats}.");
        var directory = Path.GetFullPath(runDirectory);
        var timeout = options.CallTimeout ?? TimeSpan.FromSeconds(60);
        var runId = options.RunId ?? $"{directory}#{Guid.NewGuid():N}";
        var watch = Stopwatch.StartNew();
        var workers = options.Workers;
        var restarts = 0;
        var steps = 0;
        var fingerprint = "";
        for (var generation = 0; ; generation++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var keys = Enumerable.Range(0, workers).Select(k => $"{runId}/{generation}/{k}").ToArray();
            var replicas = keys.Select(k => grains.GetGrain<ITrainingWorker>(k)).ToArray();
            ReplicaInfo[]? infos = null;
            try
            {
                infos = await Bounded(Task.WhenAll(replicas.Select(r => r.Open(directory, options.Engine))), timeout, directory, "opening the workers");
                var info = infos[0];
                if (infos.Any(i => i.EpochsDone != info.EpochsDone))
                    throw new ClusterException($"{directory}: the workers loaded checkpoints of different epochs; was the checkpoint replaced during the start?");
                log?.Invoke($"cluster: generation {generation}: {workers} workers on {infos.Select(i => i.Silo).Distinct().Count()} silos, from epoch {info.EpochsDone} of {info.Epochs}");
                for (var epoch = info.EpochsDone; epoch < info.Epochs; epoch++)
                {
                    var epochWatch = Stopwatch.StartNew();
                    double lossSum = 0;
                    long correct = 0;
                    for (var batch = 0; batch < info.StepsPerEpoch; batch++)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var step = epoch * info.StepsPerEpoch + batch;
                        var reducerKey = $"{runId}/{generation}/step{step}";
                        var orders = Enumerable.Range(0, workers).Select(k => new StepOrder(step, k, workers, reducerKey, options.ChunkFloats)).ToArray();
                        var shares = await Bounded(Task.WhenAll(replicas.Select((r, k) => r.Compute(orders[k]))), timeout, directory, $"step {step + 1}");
                        await Bounded(Task.WhenAll(replicas.Select((r, k) => r.Apply(orders[k]))), timeout, directory, $"step {step + 1}");
                        await grains.GetGrain<IGradientReducer>(reducerKey).Release();
                        foreach (var s in shares)
                        {
                            lossSum += s.LossSum;
                            correct += s.Correct;
                        }
                        steps++;
                    }
                    if (info.StateCount > 0)
                    {
                        var states = await Bounded(Task.WhenAll(replicas.Select(r => r.States())), timeout, directory, $"epoch {epoch + 1}'s statistics");
                        var mean = new float[info.StateCount];
                        foreach (var s in states)
                            for (var i = 0; i < mean.Length; i++) mean[i] += s[i];
                        for (var i = 0; i < mean.Length; i++) mean[i] /= workers;
                        await Bounded(Task.WhenAll(replicas.Select(r => r.SetStates(mean))), timeout, directory, $"epoch {epoch + 1}'s statistics");
                    }
                    var prints = await Bounded(Task.WhenAll(replicas.Select(r => r.Fingerprint())), timeout, directory, $"epoch {epoch + 1}'s replica check");
                    if (prints.Distinct().Count() != 1)
                        throw new ClusterException($"{directory}: the replicas differ after epoch {epoch + 1} (fingerprints {string.Join(", ", prints.Select(p => p[..12]))}); nothing was saved for this epoch.");
                    fingerprint = prints[0];
                    await Bounded(replicas[0].WriteCheckpoint(epoch + 1, lossSum / info.Samples, (double)correct / info.Samples, epochWatch.Elapsed.TotalSeconds), timeout, directory, $"epoch {epoch + 1}'s checkpoint");
                    log?.Invoke($"cluster: epoch {epoch + 1}/{info.Epochs}: loss {lossSum / info.Samples:G6}, accuracy {(double)correct / info.Samples:F4}, {epochWatch.Elapsed.TotalSeconds:F2} s");
                }
                if (fingerprint.Length == 0)
                {
                    var prints = await Bounded(Task.WhenAll(replicas.Select(r => r.Fingerprint())), timeout, directory, "the replica check");
                    fingerprint = prints[0];
                }
                await Task.WhenAll(replicas.Select(r => r.Close()));
                return new ClusterTrainingResult(workers, restarts, info.Epochs, steps, watch.Elapsed.TotalSeconds, fingerprint);
            }
            catch (Exception e) when (IsLoss(e))
            {
                if (restarts >= options.MaxRestarts)
                    throw new ClusterException($"{directory}: workers were lost {restarts + 1} times (limit {options.MaxRestarts} restarts); last: {e.Message}", e);
                var alive = 0;
                var lostSilos = new List<string>();
                for (var k = 0; k < replicas.Length; k++)
                {
                    // While the cluster reconfigures after a loss, a call to a worker on a live silo can be rejected
                    // (its directory entry lived on the lost silo): a few tries before it counts as lost.
                    var loaded = false;
                    for (var attempt = 0; attempt < 3 && !loaded; attempt++)
                    {
                        try { loaded = await replicas[k].IsLoaded().WaitAsync(timeout, cancellationToken); }
                        catch (TimeoutException) { break; }
                        catch (Exception probe) when (IsLoss(probe)) { await Task.Delay(500, cancellationToken); }
                    }
                    if (loaded) alive++;
                    else if (infos is not null) lostSilos.Add(infos[k].Silo);
                }
                await AwaitMembership(grains, lostSilos, timeout, cancellationToken);
                // The next generation is placed on the silos still active, up to the workers this one had: a live
                // silo whose worker could not be reached still takes a worker.
                var active = await ActiveSilos(grains, timeout, cancellationToken);
                alive = Math.Max(alive, Math.Min(workers, active));
                foreach (var r in replicas)
                {
                    try { await r.Close().WaitAsync(timeout, cancellationToken); }
                    catch (Exception close) when (IsLoss(close)) { }
                }
                if (alive == 0)
                    throw new ClusterException($"{directory}: every worker was lost ({e.Message}); the run can resume from its checkpoint on a new cluster.", e);
                restarts++;
                log?.Invoke($"cluster: {workers - alive} of {workers} workers lost ({e.GetType().Name}: {e.Message}); resuming from the last checkpoint with {alive}");
                workers = alive;
            }
        }
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) until the cluster's membership no longer lists the silos
    /// of lost workers as active, so that the next generation is not placed on a dead silo.</summary>
    private static async Task AwaitMembership(IGrainFactory grains, List<string> lostSilos, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (lostSilos.Count == 0) return;
        var management = grains.GetGrain<IManagementGrain>(0);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            try
            {
                var hosts = await management.GetHosts(onlyActive: true).WaitAsync(timeout, cancellationToken);
                if (!hosts.Keys.Any(s => lostSilos.Contains(s.ToString()))) return;
            }
            catch (Exception e) when (IsLoss(e)) { }
            await Task.Delay(250, cancellationToken);
        }
    }

    /// <summary>The number of silos the cluster's membership lists as active (0 when it cannot be asked).</summary>
    private static async Task<int> ActiveSilos(IGrainFactory grains, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var management = grains.GetGrain<IManagementGrain>(0);
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try { return (await management.GetHosts(onlyActive: true).WaitAsync(timeout, cancellationToken)).Count; }
            catch (Exception e) when (IsLoss(e)) { await Task.Delay(250, cancellationToken); }
        }
        return 0;
    }

    private static async Task<T> Bounded<T>(Task<T> task, TimeSpan timeout, string directory, string what)
    {
        try { return await task.WaitAsync(timeout); }
        catch (TimeoutException e) { throw new ClusterException($"{directory}: {what} took longer than {timeout.TotalSeconds:F0} s (a worker's silo is lost or overloaded).", e); }
    }

    private static async Task Bounded(Task task, TimeSpan timeout, string directory, string what)
    {
        try { await task.WaitAsync(timeout); }
        catch (TimeoutException e) { throw new ClusterException($"{directory}: {what} took longer than {timeout.TotalSeconds:F0} s (a worker's silo is lost or overloaded).", e); }
    }

    /// <summary>Failures that mean a worker (or its silo, or the reducer's) is gone, as opposed to bad input.</summary>
    private static bool IsLoss(Exception e) => e switch
    {
        WorkerLostException => true,
        ClusterException c when c.InnerException is TimeoutException => true,
        SiloUnavailableException or OrleansMessageRejectionException or TimeoutException => true,
        InvalidOperationException i when i.Message.StartsWith("reducer ", StringComparison.Ordinal) => true,
        AggregateException a => a.InnerExceptions.All(IsLoss),
        OrleansException => true,
        _ => false,
    };
}
