using Hybrid.Dsp;
using Hybrid.Features;
using Hybrid.Features.Schemas;
using Microsoft.FSharp.Core;
using Orleans.Runtime;

namespace Hybrid.Cluster;

/// <summary>The feature-extraction worker grain (see <see cref="IShardWorker"/>): worker K on silo K mod S.</summary>
[SpreadPlacement]
internal sealed class ShardWorker(ILocalSiloDetails silo) : Grain, IShardWorker
{
    private Engine? engine;
    private string engineName = "";

    /// <summary>Test seam, null outside tests: awaited at the start of every Extract call with the order and the address
    /// of the silo running it (all silos of an in-process test cluster share it), so a test can hold a chosen shard on
    /// a chosen silo while it kills that silo.</summary>
    internal static Func<ShardOrder, string, Task>? BeforeExtract { get; set; }

    // The work runs on the thread pool, not on the grain's scheduler: the extraction pipeline starts tasks of its
    // own and waits for them, which would deadlock on the activation's single-threaded scheduler.
    public async Task<ShardReport> Extract(ShardOrder order)
    {
        if (BeforeExtract is { } hook) await hook(order, silo.SiloAddress.ToString());
        return await Task.Run(() => ExtractOnPool(order));
    }

    public Task<string> Silo() => Task.FromResult(silo.SiloAddress.ToString());

    private ShardReport ExtractOnPool(ShardOrder order)
    {
        var root = Path.GetFullPath(order.DatasetRoot);
        var rootPrefix = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        foreach (var m in order.Members)
        {
            var full = Path.GetFullPath(m.Path);
            if (!full.StartsWith(rootPrefix, StringComparison.Ordinal))
                throw new ClusterException($"{m.Path}: shard {order.Index} names a file outside the dataset root {root}; refused.");
        }
        if (engine is null || engineName != order.Engine)
        {
            engine?.Dispose();
            engine = Engines.Create(order.Engine);
            engineName = order.Engine;
        }
        var schema = DistributedExtraction.SchemaOf(order.Schema, order.Variant);
        var extractor = Extraction.extractor(engine, schema);
        var sources = order.Members.Select(m => new Shards.Source(m.Path, m.Key, m.Label, m.Size, m.Modified)).ToArray();
        var id = Shards.shardId(extractor.Fingerprint, Extraction.WholeRecordings, sources);
        if (id != order.ShardId)
            throw new ClusterException($"{order.CacheFolder}: shard {order.Index} was planned as {order.ShardId} but its members give {id} (a recording changed since planning; plan again).");
        var plan = new Shards.ShardPlan(order.Index, id, extractor.Fingerprint, Extraction.WholeRecordings, sources);
        // Each member's clip, as features --cache shapes it, built by the feature store's one shard builder
        // (Shards.buildWith). A member is checked as a local dataset scan checks it (Dataset.probe: unusable files
        // skipped with the scan's reason, truncated ones used with a warning), and one that then fails to load is
        // skipped with the loader's reason.
        var warningPaths = new List<string>();
        var warningReasons = new List<string>();
        var gate = new object();
        FSharpResult<float[][], string> TryClips(Shards.Source source)
        {
            var probe = DatasetModule.probe(false, source.Path);
            if (probe.IsError) return FSharpResult<float[][], string>.NewError(probe.ErrorValue);
            try
            {
                var clip = Extraction.fit(schema, AudioFile.read(
                    new ReadOptions(FSharpOption<int>.Some(extractor.SampleRate), mono: true, offset: 0.0, duration: FSharpOption<double>.None, strict: false),
                    source.Path).Samples[0]);
                if (probe.ResultValue.Warning is { } warning)
                    lock (gate)
                    {
                        warningPaths.Add(source.Path);
                        warningReasons.Add(warning.Value);
                    }
                return FSharpResult<float[][], string>.NewOk([clip]);
            }
            catch (Exception e) when (e is AudioFormatException or IOException or UnauthorizedAccessException)
            {
                return FSharpResult<float[][], string>.NewError(e is AudioFormatException a ? a.Problem : e.Message);
            }
        }
        var (file, left) = Shards.buildWith(order.CacheFolder, plan, extractor,
            FuncConvert.FromFunc<Shards.Source, FSharpResult<float[][], string>>(TryClips), 32, FuncConvert.FromAction<int>(_ => { }));
        var skippedPaths = left.Select(l => l.Item1.Path).ToArray();
        var skippedReasons = left.Select(l => l.Item2).ToArray();
        var written = sources.Length - skippedPaths.Length;
        // Members load in parallel: report warnings in member order, as a local scan lists them.
        var position = sources.Select((m, i) => (m.Path, i)).ToDictionary(p => p.Path, p => p.i);
        var warnings = warningPaths.Zip(warningReasons).OrderBy(w => position[w.First]).ToArray();
        return new ShardReport(order.Index, file, written, skippedPaths, skippedReasons, silo.SiloAddress.ToString(),
            warnings.Select(w => w.First).ToArray(), warnings.Select(w => w.Second).ToArray());
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        engine?.Dispose();
        engine = null;
        return base.OnDeactivateAsync(reason, cancellationToken);
    }
}
