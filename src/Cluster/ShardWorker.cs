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

    // The work runs on the thread pool, not on the grain's scheduler: the extraction pipeline starts tasks of its
    // own and waits for them, which would deadlock on the activation's single-threaded scheduler.
    public Task<ShardReport> Extract(ShardOrder order) => Task.Run(() => ExtractOnPool(order));

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
        var schema = Schemas.ByName(order.Schema);
        var extractor = Extraction.extractor(engine, schema);
        var sources = order.Members.Select(m => new Shards.Source(m.Path, m.Key, m.Label, m.Size, m.Modified)).ToArray();
        var id = Shards.shardId(extractor.Fingerprint, Extraction.WholeRecordings, sources);
        if (id != order.ShardId)
            throw new ClusterException($"{order.CacheFolder}: shard {order.Index} was planned as {order.ShardId} but its members give {id} (a recording changed since planning; plan again).");
        var plan = new Shards.ShardPlan(order.Index, id, extractor.Fingerprint, Extraction.WholeRecordings, sources);
        // Each member's clip, as features --cache shapes it; a member that cannot be read is skipped and reported.
        var clips = new List<float[]>();
        var members = new List<int>();
        var skippedPaths = new List<string>();
        var skippedReasons = new List<string>();
        for (var i = 0; i < sources.Length; i++)
        {
            try
            {
                clips.Add(Extraction.fit(schema, AudioFile.load(extractor.SampleRate, sources[i].Path)));
                members.Add(i);
            }
            catch (AudioFormatException e)
            {
                skippedPaths.Add(sources[i].Path);
                skippedReasons.Add(e.Problem);
            }
        }
        var values = clips.Count == 0
            ? []
            : Pipeline.extractAll(extractor, FuncConvert.FromFunc<int, float[]>(k => clips[k]), clips.Count, 256, 2, Progress.silent);
        var file = Shards.write(order.CacheFolder, plan, extractor.Name, extractor.Shape,
            new Shards.ShardRows(members.ToArray(), new int[members.Count], values));
        return new ShardReport(order.Index, file, members.Count, skippedPaths.ToArray(), skippedReasons.ToArray(), silo.SiloAddress.ToString());
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        engine?.Dispose();
        engine = null;
        return base.OnDeactivateAsync(reason, cancellationToken);
    }
}
