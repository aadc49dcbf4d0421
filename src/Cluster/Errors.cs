namespace Hybrid.Cluster;

/// <summary>
/// Raised when scale-out work cannot go on: a worker whose silo was lost, a run that lost every worker, a silo that
/// refuses its configuration (a non-loopback address without TLS). The message names the run folder, worker or
/// option and what was expected.
/// </summary>
[GenerateSerializer]
public class ClusterException : Exception
{
    /// <summary>Creates the exception with its message.</summary>
    public ClusterException(string message) : base(message) { }

    /// <summary>Creates the exception with its message and cause.</summary>
    public ClusterException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Raised by a worker grain that holds no replica: its silo was lost and the grain was activated anew
/// elsewhere, so its model and optimizer state are gone. The coordinator resumes from the last checkpoint.</summary>
[GenerateSerializer]
public sealed class WorkerLostException : ClusterException
{
    /// <summary>Creates the exception naming the worker's key.</summary>
    public WorkerLostException(string worker)
        : base($"worker {worker}: this activation holds no replica (its silo was lost); resume from the last checkpoint.") { }
}
