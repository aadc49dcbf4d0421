using Orleans.Concurrency;

namespace Hybrid.Cluster;

/// <summary>One worker's part of a global training step, sent by the coordinator to a <see cref="ITrainingWorker"/>.</summary>
/// <param name="Step">Zero-based global step (epoch x steps per epoch + batch).</param>
/// <param name="Worker">The worker's index, 0 ≤ Worker &lt; Workers; it selects the slice of the global batch.</param>
/// <param name="Workers">Workers of this run generation.</param>
/// <param name="ReducerKey">Key of the step's <see cref="IGradientReducer"/>.</param>
/// <param name="ChunkFloats">Floats per gradient message (kept far below Orleans' 100 MB message limit).</param>
[GenerateSerializer, Immutable]
public sealed record StepOrder(
    [property: Id(0)] int Step,
    [property: Id(1)] int Worker,
    [property: Id(2)] int Workers,
    [property: Id(3)] string ReducerKey,
    [property: Id(4)] int ChunkFloats);

/// <summary>What a worker reports for its slice of a step: the summed loss, correct predictions and the slice size.</summary>
[GenerateSerializer, Immutable]
public sealed record StepShare(
    [property: Id(0)] double LossSum,
    [property: Id(1)] int Correct,
    [property: Id(2)] int Count);

/// <summary>What a worker reports after loading the run folder: the checkpoint's epoch and the run's shape.</summary>
[GenerateSerializer, Immutable]
public sealed record ReplicaInfo(
    [property: Id(0)] int EpochsDone,
    [property: Id(1)] int Epochs,
    [property: Id(2)] int StepsPerEpoch,
    [property: Id(3)] int Samples,
    [property: Id(4)] int ParameterCount,
    [property: Id(5)] int StateCount,
    [property: Id(6)] string Silo);

/// <summary>
/// A replica of the model in a data-parallel run (one activation per worker and run generation, spread over the
/// silos). Keyed by "RUN/GENERATION/WORKER". It loads the run folder (settings, examples, last checkpoint), computes
/// its slice's gradient and sends it to the step's reducer in chunks, then applies the reduced sum like every other
/// replica.
/// </summary>
public interface ITrainingWorker : IGrainWithStringKey
{
    /// <summary>Loads the replica from <paramref name="runDirectory"/> on engine <paramref name="engine"/>
    /// ("managed", "auto", ...). Raises ModelFileException (a file of the run folder unusable) or ArgumentException.</summary>
    Task<ReplicaInfo> Open(string runDirectory, string engine);

    /// <summary>Computes the worker's share of a step and adds it to the step's reducer, chunk by chunk.
    /// Raises <see cref="WorkerLostException"/> when this activation holds no replica (its silo was lost and it was
    /// activated anew), TrainingException for a NaN loss.</summary>
    Task<StepShare> Compute(StepOrder order);

    /// <summary>Fetches the reduced gradient of <paramref name="order"/>'s step chunk by chunk and applies it.</summary>
    Task Apply(StepOrder order);

    /// <summary>The replica's non-trainable state (BatchNorm running statistics), flattened.</summary>
    Task<float[]> States();

    /// <summary>Replaces the replica's non-trainable state.</summary>
    Task SetStates(float[] values);

    /// <summary>Writes the run folder's checkpoint after epoch <paramref name="epochsDone"/>.</summary>
    Task WriteCheckpoint(int epochsDone, double trainLoss, double trainAccuracy, double seconds);

    /// <summary>Every tensor of the replica (parameters and states), flattened, from <paramref name="offset"/>, at most
    /// <paramref name="count"/> floats (for comparing replicas).</summary>
    Task<float[]> Snapshot(int offset, int count);

    /// <summary>SHA-256 (hex) of every tensor of the replica: equal on every replica of a healthy run.</summary>
    Task<string> Fingerprint();

    /// <summary>True when this activation holds a loaded replica (false after a reactivation on another silo).</summary>
    [AlwaysInterleave]
    Task<bool> IsLoaded();

    /// <summary>The silo hosting this activation.</summary>
    [AlwaysInterleave]
    Task<string> Silo();

    /// <summary>Drops the replica and deactivates.</summary>
    [AlwaysInterleave]
    Task Close();
}

/// <summary>
/// Sums one step's gradients (one activation per step, keyed by the step's key). Workers add their gradient in
/// chunks; once every worker's chunk i is present, chunk i of the sum is worker 0's + worker 1's + ... in worker
/// order (fixed, so every run sums alike).
/// </summary>
public interface IGradientReducer : IGrainWithStringKey
{
    /// <summary>Adds chunk <paramref name="chunk"/> of worker <paramref name="worker"/>'s gradient (of <paramref name="workers"/>).</summary>
    Task Add(int worker, int workers, int chunk, float[] values);

    /// <summary>Chunk <paramref name="chunk"/> of the sum; raises InvalidOperationException when a worker's chunk is missing.</summary>
    Task<float[]> Sum(int chunk);

    /// <summary>Drops the step's data and deactivates.</summary>
    Task Release();
}

/// <summary>A recording of a shard: full path, path relative to the dataset root (the row key), label, and the size
/// and modification time (UTC ticks) the plan saw.</summary>
[GenerateSerializer, Immutable]
public sealed record ShardMember(
    [property: Id(0)] string Path,
    [property: Id(1)] string Key,
    [property: Id(2)] string Label,
    [property: Id(3)] long Size,
    [property: Id(4)] long Modified);

/// <summary>One shard to extract: the dataset root (every member must be under it), the cache folder the shard is
/// written to, the feature schema by name and its run-time variant (FeatureSchemaInfo.Variant, the parameter
/// differences from the declaration as "name=value,..."; empty for the declaration), the engine, and the shard's plan
/// (index, id, members).</summary>
[GenerateSerializer, Immutable]
public sealed record ShardOrder(
    [property: Id(0)] string DatasetRoot,
    [property: Id(1)] string CacheFolder,
    [property: Id(2)] string Schema,
    [property: Id(3)] string Engine,
    [property: Id(4)] int Index,
    [property: Id(5)] string ShardId,
    [property: Id(6)] ShardMember[] Members,
    [property: Id(7)] string Variant);

/// <summary>What a worker did with a shard: the file written, its rows, the members skipped and the members used
/// with a warning (a truncated recording's whole frames), each with its path and reason worded as a local dataset
/// scan words them, and the silo that did it.</summary>
[GenerateSerializer, Immutable]
public sealed record ShardReport(
    [property: Id(0)] int Index,
    [property: Id(1)] string File,
    [property: Id(2)] int Rows,
    [property: Id(3)] string[] SkippedPaths,
    [property: Id(4)] string[] SkippedReasons,
    [property: Id(5)] string Silo,
    [property: Id(6)] string[] WarningPaths,
    [property: Id(7)] string[] WarningReasons);

/// <summary>A feature-extraction worker (one per silo and run, keyed "RUN/K"): extracts whole shards with its silo's
/// engine and writes each atomically into the cache folder (Hybrid.Features.Shards' format), so a shard done twice
/// (after a lost silo) is the same file.</summary>
public interface IShardWorker : IGrainWithStringKey
{
    /// <summary>Extracts and writes one shard. A member that cannot be read is left out of the shard and reported, as a
    /// local scan skips it. Raises ClusterException when a member lies outside the dataset root or the planned id does
    /// not match the members (a recording changed since planning), ShardException when the shard cannot be written,
    /// ArgumentException for an unknown schema or an invalid variant.</summary>
    Task<ShardReport> Extract(ShardOrder order);

    /// <summary>The address of the silo hosting this activation (the coordinator watches it while a shard is in
    /// flight).</summary>
    [AlwaysInterleave]
    Task<string> Silo();
}
