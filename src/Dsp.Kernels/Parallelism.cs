namespace Hybrid.Dsp;

/// <summary>
/// The process-wide thread setting (the <c>--threads</c> option of the command line): how many threads one parallel
/// step may use. Every parallel loop of the managed engine (through <see cref="Managed.ManagedEngine"/>, whose default
/// <c>maxThreads</c> is read from here when the engine is created), of feature extraction and of training honours it;
/// <see cref="Options"/> carries it to Parallel.For and <see cref="Map{T, TResult}"/> replaces Array.Parallel.map.
/// Default: <see cref="Environment.ProcessorCount"/>.
/// </summary>
public static class Parallelism
{
    private static int _maxThreads = Environment.ProcessorCount;
    private static ParallelOptions _options = new() { MaxDegreeOfParallelism = Environment.ProcessorCount };

    /// <summary>The largest accepted setting: four times the logical processors (more threads than that only queue).</summary>
    public static int Limit => Environment.ProcessorCount * 4;

    /// <summary>
    /// Threads one parallel step may use, 1..<see cref="Limit"/> (default: all logical processors). Engines created
    /// after a change use the new value; an engine keeps the value it was created with.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1..<see cref="Limit"/>.</exception>
    public static int MaxThreads
    {
        get => _maxThreads;
        set
        {
            Validate(value, nameof(MaxThreads));
            _maxThreads = value;
            _options = new ParallelOptions { MaxDegreeOfParallelism = value };
        }
    }

    /// <summary>ParallelOptions whose MaxDegreeOfParallelism is <see cref="MaxThreads"/> (a fresh object after each change).</summary>
    public static ParallelOptions Options => _options;

    /// <summary>Throws ArgumentOutOfRangeException naming <paramref name="name"/> when <paramref name="threads"/> is
    /// outside 1..<see cref="Limit"/>.</summary>
    public static void Validate(int threads, string name = "threads")
    {
        if (threads < 1 || threads > Limit)
            throw new ArgumentOutOfRangeException(name, threads,
                $"{name} must be an integer in 1..{Limit} (4 x the {Environment.ProcessorCount} logical processors), was {threads}.");
    }

    /// <summary>
    /// result[i] = map(items[i]) computed in parallel on at most <see cref="MaxThreads"/> threads (Array.Parallel.map
    /// under the process-wide setting). An exception thrown by <paramref name="map"/> is rethrown as is (the first
    /// one when several items fail), not wrapped in an AggregateException.
    /// </summary>
    public static TResult[] Map<T, TResult>(T[] items, Func<T, TResult> map)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(map);
        var result = new TResult[items.Length];
        For(items.Length, i => result[i] = map(items[i]));
        return result;
    }

    /// <summary>
    /// Runs body(i) for i in [0, count) on at most <paramref name="options"/>' MaxDegreeOfParallelism threads, each
    /// thread taking the next index from one shared counter until none is left (self-scheduling), serially with one
    /// thread or one index. Parallel.For hands a thread growing ranges of indices, so with a few dozen work items one
    /// thread can hold several while the others wait at the loop's end; here a thread holds one at a time, and a
    /// thread woken late takes only what is left. (The managed DSP's loops, W1 log-mel on 2 threads: with Parallel.For
    /// over 16 items a loop the calling thread spent 23% of its time waiting at the loops' ends, self-scheduled over 64
    /// items 11%; dotnet-trace thread-time samples, docs/benchmarks.md.)
    /// The threads beside the caller are <see cref="WorkerTeam"/>'s, which poll for the next loop for
    /// <see cref="SpinMicroseconds"/> before sleeping, so a loop starts on all of them at once; a loop called while
    /// another holds the team (from another thread, or nested in a body), or with more threads than processors, runs
    /// on the thread pool through Parallel.For instead. Either way every index runs once and no body runs after the
    /// call returns. An exception thrown by <paramref name="body"/> stops the loop and leaves, with any others thrown
    /// meanwhile, in one AggregateException (as from Parallel.For).
    /// </summary>
    internal static void SelfScheduled(ParallelOptions options, int count, Action<int> body)
    {
        var workers = Math.Min(options.MaxDegreeOfParallelism, count);
        bool timed = _measureWork != 0;
        if (workers <= 1)
        {
            long t0 = timed ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            for (var i = 0; i < count; i++) body(i);
            if (timed) AddWork(t0);
            return;
        }
        // More threads than processors would have helpers polling while the work waits for a core: the thread pool.
        if (workers <= Environment.ProcessorCount && WorkerTeam.TryRun(workers, count, body, timed)) return;
        var job = new WorkerTeam.Job(body, count, workers - 1, timed);
        Parallel.For(0, workers, options, _ => job.Work());
        job.ThrowIfFailed();
    }

    private static long _spinTicks = MicrosecondsToTicks(
        TryParseSpinMicroseconds(Environment.GetEnvironmentVariable(SpinVariable), out var us) ? us : DefaultSpinMicroseconds);

    /// <summary>The default of <see cref="SpinMicroseconds"/>.</summary>
    public const int DefaultSpinMicroseconds = 500;

    /// <summary>The largest <see cref="SpinMicroseconds"/>: a second.</summary>
    public const int MaxSpinMicroseconds = 1_000_000;

    /// <summary>The environment variable read at start-up for <see cref="SpinMicroseconds"/>: HYBRID_SPIN_US.</summary>
    public const string SpinVariable = "HYBRID_SPIN_US";

    /// <summary>Whether <paramref name="text"/> is a whole number of microseconds in 0..<see cref="MaxSpinMicroseconds"/>
    /// (what <see cref="SpinVariable"/> must hold; the start-up reading ignores anything else and keeps the default).</summary>
    public static bool TryParseSpinMicroseconds(string? text, out int microseconds) =>
        int.TryParse(text, out microseconds) && microseconds is >= 0 and <= MaxSpinMicroseconds;

    /// <summary>
    /// How long, in microseconds, the threads of a parallel loop keep polling for the next loop before they sleep
    /// (OpenMP's KMP_BLOCKTIME / GOMP_SPINCOUNT): a loop that starts within that time of the last one starts on every
    /// thread at once, while a sleeping thread takes tens to hundreds of microseconds to wake on a virtual machine. The
    /// polling costs CPU time (bench's CPU ms counts it) and, on a machine shared with other busy processes, their
    /// time; 0 sleeps at once. Default 500 (<see cref="DefaultSpinMicroseconds"/>); the environment variable
    /// <c>HYBRID_SPIN_US</c> sets it at start-up.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or above 1,000,000 (a second).</exception>
    public static int SpinMicroseconds
    {
        get => (int)(Interlocked.Read(ref _spinTicks) * 1_000_000 / System.Diagnostics.Stopwatch.Frequency);
        set
        {
            if (value < 0 || value > MaxSpinMicroseconds)
                throw new ArgumentOutOfRangeException(nameof(SpinMicroseconds), value, $"SpinMicroseconds must be in 0..{MaxSpinMicroseconds}, was {value}.");
            Interlocked.Exchange(ref _spinTicks, MicrosecondsToTicks(value));
        }
    }

    internal static long SpinTicks => Interlocked.Read(ref _spinTicks);

    private static long MicrosecondsToTicks(int microseconds) => microseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;

    private static int _measureWork;
    private static long _workTicks;

    internal static void AddWork(long start) =>
        Interlocked.Add(ref _workTicks, System.Diagnostics.Stopwatch.GetTimestamp() - start);

    /// <summary>
    /// When true, the loops that run through <see cref="SelfScheduled"/> (the managed engine's network operations, its
    /// DSP's batched steps and the scattering transform's groups) add the time each thread
    /// spends working in them to <see cref="WorkTicks"/>: wall time from the moment a thread joins a loop until it
    /// finds no work left, so a thread that joins late or leaves early adds less, and the time the calling thread then
    /// waits for the others is not work. Work summed over threads against wall time times threads tells a parallel
    /// step's waiting (wall x threads - work) from its threads' own slowdown (work at N threads over work at 1);
    /// <c>HYBRID_BENCH_PROFILE=1 hybrid bench</c> prints both. Being wall time, work also counts any time the
    /// operating system gave a working thread's core to another process: on a loaded machine (bench's contention
    /// warning) the slowdown includes it, and work can exceed the process's CPU time. Two timestamp reads a thread a
    /// loop; default false.
    /// </summary>
    public static bool MeasureWork
    {
        get => Volatile.Read(ref _measureWork) != 0;
        set => Volatile.Write(ref _measureWork, value ? 1 : 0);
    }

    /// <summary>Stopwatch ticks (<see cref="System.Diagnostics.Stopwatch.Frequency"/> a second) of work in the managed
    /// engine's parallel loops, summed over threads, while <see cref="MeasureWork"/> was on (see there).</summary>
    public static long WorkTicks => Interlocked.Read(ref _workTicks);

    /// <summary>
    /// Runs body(i) for i in [0, count) in parallel on at most <see cref="MaxThreads"/> threads (serially with one).
    /// An exception thrown by <paramref name="body"/> is rethrown as is (the first one), not wrapped.
    /// </summary>
    public static void For(int count, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var options = _options;
        if (count <= 0) return;
        if (options.MaxDegreeOfParallelism == 1 || count == 1)
        {
            for (var i = 0; i < count; i++) body(i);
            return;
        }
        try
        {
            Parallel.For(0, count, options, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;
        }
    }
}
