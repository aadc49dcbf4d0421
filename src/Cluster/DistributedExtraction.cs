using System.Collections.Concurrent;
using System.Diagnostics;
using Hybrid.Features;
using Hybrid.Features.Schemas;
using Orleans.Runtime;

namespace Hybrid.Cluster;

/// <summary>A recording to extract: full path, path relative to the dataset root (its row key) and label.</summary>
public sealed record ExtractionItem(string Path, string Key, string Label);

/// <summary>Settings of a distributed extraction.</summary>
/// <param name="Workers">Worker grains (default 0: one per active silo).</param>
/// <param name="Engine">Engine each worker creates on its silo (default "auto": a GPU where one is found).</param>
/// <param name="ShardSize">Recordings per shard (default Extraction.shardSize, as the local cache plans them).</param>
/// <param name="CallTimeout">Limit of one shard's call (default 10 min); past it the shard is reassigned.</param>
/// <param name="Variant">Run-time variant of the schema (FeatureSchemaInfo.Variant of Extraction.variant: the parameter
/// differences from the declaration as "name=value,...", e.g. from features' --n-mels); default "": the declaration.
/// Every worker derives the same variant (Extraction.replay), and the shards are keyed by its fingerprint.</param>
public sealed record ClusterExtractionOptions(int Workers = 0, string Engine = "auto", int ShardSize = 0, TimeSpan? CallTimeout = null, string Variant = "");

/// <summary>What a distributed extraction did.</summary>
/// <param name="Shards">Shards in the plan.</param>
/// <param name="Written">Shards written by this run (the others were already in the cache).</param>
/// <param name="Reassigned">Shard assignments repeated after a lost worker or silo.</param>
/// <param name="SkippedPaths">Recordings that could not be read, over every shard (ordered by path); their rows are
/// not in the shards, as a local scan leaves skipped files out.</param>
/// <param name="SkippedReasons">The reason for each, worded as a local scan words it (Dataset.probe).</param>
/// <param name="Seconds">Wall-clock seconds.</param>
/// <param name="ReassignedShards">The shards (0-based plan index) put back in the queue, once per repeated
/// assignment, in the order it happened: Reassigned of them.</param>
/// <param name="WarningPaths">Recordings used despite a problem the reader worked around (a truncated file's whole
/// frames), ordered by path.</param>
/// <param name="WarningReasons">The warning for each, worded as a local scan words it.</param>
public sealed record ClusterExtractionResult(int Shards, int Written, int Reassigned, string[] SkippedPaths, string[] SkippedReasons, double Seconds,
    int[] ReassignedShards, string[] WarningPaths, string[] WarningReasons);

/// <summary>
/// The coordinator of distributed feature extraction: plans the shards of a dataset exactly as the local cache does
/// (Shards.plan over the recordings' relative paths, sizes and modification times), skips those already in the cache
/// folder, and hands the missing ones to <see cref="IShardWorker"/> grains spread over the silos, one shard per call.
/// A call that fails because its worker or silo was lost puts the shard back in the queue for the remaining workers;
/// shards are written atomically and named by their id, so a shard done twice is one file, and every recording's row
/// is in the folder exactly once. The cache folder must be on storage every silo sees.
/// </summary>
public static class DistributedExtraction
{
    /// <summary>The feature schema named <paramref name="schema"/> (Schemas.ByName), or its run-time variant when
    /// <paramref name="variant"/> is not empty (Extraction.replay). Raises ArgumentException for an unknown name or an
    /// invalid variant.</summary>
    internal static FeatureSchemaInfo SchemaOf(string schema, string variant) =>
        string.IsNullOrEmpty(variant) ? Schemas.ByName(schema) : Extraction.replay(schema, variant);

    /// <summary>Extracts the shards of <paramref name="items"/> (recordings under <paramref name="datasetRoot"/>) for
    /// feature schema <paramref name="schema"/> (or its variant <see cref="ClusterExtractionOptions.Variant"/>) into
    /// <paramref name="cacheFolder"/>. Recordings a worker cannot read are skipped and reported in the result, as a
    /// local scan skips them. Raises
    /// <see cref="ClusterException"/> naming the cache folder when every worker is lost, or (from a worker) when a
    /// recording lies outside the dataset root; ArgumentException for an unknown schema or bad options.</summary>
    public static async Task<ClusterExtractionResult> RunAsync(IGrainFactory grains, string datasetRoot, IReadOnlyList<ExtractionItem> items,
        string cacheFolder, string schema, ClusterExtractionOptions options, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        var info = SchemaOf(schema, options.Variant);
        var root = Path.GetFullPath(datasetRoot);
        var cache = Path.GetFullPath(cacheFolder);
        var timeout = options.CallTimeout ?? TimeSpan.FromMinutes(10);
        var shardSize = options.ShardSize > 0 ? options.ShardSize : Extraction.shardSize;
        var sources = items.Select(i => Shards.source(i.Path, i.Key, i.Label)).ToArray();
        var plans = Shards.plan(info.Fingerprint, Extraction.WholeRecordings, shardSize, sources);
        var status = Shards.check(cache, plans);
        var queue = new ConcurrentQueue<Shards.ShardPlan>(status.Missing);
        var workers = options.Workers > 0 ? options.Workers : (await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true)).Count;
        var runId = $"{cache}#{Guid.NewGuid():N}";
        var reports = new ConcurrentDictionary<int, ShardReport>();
        var reassigned = new ConcurrentQueue<int>();
        log?.Invoke($"cluster features: {plans.Length} shards of up to {shardSize} recordings, {status.Present.Length} already in {cache}, {status.Missing.Length} to extract on {workers} workers");
        var generation = 0;
        while (!queue.IsEmpty)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (workers < 1)
                throw new ClusterException($"{cache}: every worker was lost with {queue.Count} shards left; run again to extract them (finished shards are kept).");
            var lost = 0;
            var g = generation++;
            var activeBefore = await ActiveSilos(grains, cancellationToken);
            async Task Drain(int k)
            {
                var worker = grains.GetGrain<IShardWorker>($"{runId}/{g}/{k}");
                string home;
                try { home = await worker.Silo().WaitAsync(timeout, cancellationToken); }
                catch (Exception e) when (IsLoss(e))
                {
                    Interlocked.Increment(ref lost);
                    log?.Invoke($"cluster features: worker {k} could not start ({e.GetType().Name}: {e.Message})");
                    return;
                }
                while (queue.TryDequeue(out var plan))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var order = new ShardOrder(root, cache, schema, options.Engine, plan.Index, plan.Id,
                        plan.Sources.Select(s => new ShardMember(s.Path, s.Key, s.Label, s.Size, s.Modified)).ToArray(), options.Variant);
                    try
                    {
                        var report = await Watch(grains, worker.Extract(order), home, timeout, cancellationToken);
                        reports[plan.Index] = report;
                        log?.Invoke($"cluster features: shard {plan.Index + 1}/{plans.Length}: {report.Rows} rows on {report.Silo}");
                    }
                    catch (Exception e) when (IsLoss(e))
                    {
                        reassigned.Enqueue(plan.Index);
                        queue.Enqueue(plan);
                        Interlocked.Increment(ref lost);
                        log?.Invoke($"cluster features: worker {k} on {home} lost ({e.GetType().Name}: {e.Message}); shard {plan.Index + 1} goes back to the queue");
                        return;
                    }
                }
            }
            await Task.WhenAll(Enumerable.Range(0, workers).Select(Drain));
            if (lost > 0)
            {
                // Wait (bounded) for the membership to drop a dead silo, so the next workers are not placed on it;
                // then go on with one worker per active silo, or with the survivors when no silo left.
                var active = activeBefore;
                var deadline = Stopwatch.StartNew();
                while (active >= activeBefore && deadline.Elapsed < TimeSpan.FromSeconds(30))
                {
                    await Task.Delay(250, cancellationToken);
                    active = await ActiveSilos(grains, cancellationToken);
                }
                // A call past its limit on a silo that stays active was slow, not lost: go on with the others, or
                // with one worker, at most five rounds.
                workers = active < activeBefore ? Math.Min(active, workers) : Math.Max(1, workers - lost);
                if (generation >= 5)
                    throw new ClusterException($"{cache}: workers were lost or too slow in {generation} rounds with {queue.Count} shards left; run again to extract them (finished shards are kept).");
            }
        }
        var skipped = reports.Values.SelectMany(r => r.SkippedPaths.Zip(r.SkippedReasons)).OrderBy(p => p.First, StringComparer.Ordinal).ToArray();
        var warnings = reports.Values.SelectMany(r => r.WarningPaths.Zip(r.WarningReasons)).OrderBy(p => p.First, StringComparer.Ordinal).ToArray();
        var again = reassigned.ToArray();
        return new ClusterExtractionResult(plans.Length, reports.Count, again.Length,
            skipped.Select(p => p.First).ToArray(), skipped.Select(p => p.Second).ToArray(), watch.Elapsed.TotalSeconds,
            again, warnings.Select(p => p.First).ToArray(), warnings.Select(p => p.Second).ToArray());
    }

    /// <summary>Awaits a shard's call, checking every second that the silo hosting its worker is still an active member:
    /// a call to a silo declared dead is given up at once (SiloUnavailableException) rather than after the call's
    /// limit, past which it raises TimeoutException.</summary>
    private static async Task<T> Watch<T>(IGrainFactory grains, Task<T> call, string silo, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var left = timeout - watch.Elapsed;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"no answer from the worker on {silo} within {timeout.TotalSeconds:0} s.");
            var done = await Task.WhenAny(call, Task.Delay(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1), cancellationToken));
            if (done == call) return await call;
            cancellationToken.ThrowIfCancellationRequested();
            if (!await IsActive(grains, silo, cancellationToken))
                throw new SiloUnavailableException($"silo {silo}, hosting the worker, is no longer an active member of the cluster.");
        }
    }

    private static async Task<bool> IsActive(IGrainFactory grains, string silo, CancellationToken cancellationToken)
    {
        try
        {
            var hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            return hosts.Keys.Any(a => a.ToString() == silo);
        }
        catch (Exception e) when (IsLoss(e)) { return true; }
    }

    private static async Task<int> ActiveSilos(IGrainFactory grains, CancellationToken cancellationToken)
    {
        try { return (await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken)).Count; }
        catch (Exception e) when (IsLoss(e)) { return int.MaxValue; }
    }

    private static bool IsLoss(Exception e) => e switch
    {
        SiloUnavailableException or OrleansMessageRejectionException or TimeoutException => true,
        AggregateException a => a.InnerExceptions.All(IsLoss),
        ClusterException => false,
        OrleansException => true,
        _ => false,
    };
}
