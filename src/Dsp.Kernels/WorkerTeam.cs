using System.Diagnostics;

namespace Hybrid.Dsp;

/// <summary>
/// The threads that run <see cref="Parallelism.SelfScheduled"/>'s loops beside the calling thread, as an OpenMP
/// runtime's team does: dedicated background threads that, after a loop, keep polling for the next one for
/// <see cref="Parallelism.SpinMicroseconds"/> before they sleep. A loop published while they poll starts on every
/// helper as soon as each sees it (a read of one shared field). Parallel.For instead wakes pool threads one after
/// another (each replica queues the next), which on the 2-core VM cost 10-20 us a loop back to back and 100-160 us
/// after a serial gap of half a millisecond (docs/benchmarks.md): a loop of a millisecond on 2 threads lost about a
/// tenth of its time, and on 16 threads a loop of 100 us would end before the last helpers woke (not yet measured).
/// Sleeping helpers are woken together (Monitor.PulseAll), not in a chain.
/// <para>One caller at a time holds the team (<see cref="TryRun"/>); another thread calling meanwhile, or a loop nested
/// in a loop's body, gets false and runs on the thread pool instead, so concurrent callers never wait for each other.
/// Each loop is a fresh <see cref="Job"/>: helpers 1..workers - 1 join it with a ticket and take indices from its
/// shared counter (helpers numbered higher stay out and sleep rather than poll), and the caller, after its own share,
/// closes the ticket window and waits (polling briefly, then blocking) until every helper that joined has left, so no
/// body runs after <see cref="TryRun"/> returns. Helpers never exit: their thread-static scratch (the managed engine's
/// workspaces) stays allocated for the life of the process, as a pool thread's did while the pool kept it.</para>
/// </summary>
internal sealed class WorkerTeam
{
    private static readonly WorkerTeam Shared = new();

    /// <summary>A ticket count no loop reaches: closing a job adds it, so helpers that join later stay out.</summary>
    private const int Closed = 1 << 24;

    private readonly object _gate = new();
    private readonly List<Thread> _threads = [];
    private Job? _job;
    private int _busy;
    private int _sleepers;

    /// <summary>One loop: its body, its shared index counter, the helpers' tickets and the exceptions thrown. Also
    /// what <see cref="Parallelism.SelfScheduled"/> runs on the thread pool when the team is held.</summary>
    internal sealed class Job(Action<int> body, int count, int helpers, bool timed)
    {
        public Action<int>? Body = body;
        public readonly int Count = count;
        public readonly int Helpers = helpers;
        public readonly bool Timed = timed;
        public int Next = -1;
        public int Joined;
        public int Left;
        public int Waiting;
        public List<Exception>? Errors;

        /// <summary>Runs indices until none is left; records an exception and stops the loop's other threads.</summary>
        public void Work()
        {
            long t0 = Timed ? Stopwatch.GetTimestamp() : 0;
            var body = Body!;
            try
            {
                int i;
                while ((i = Interlocked.Increment(ref Next)) < Count) body(i);
            }
            catch (Exception e)
            {
                lock (this) (Errors ??= []).Add(e);
                Volatile.Write(ref Next, Count);
            }
            if (Timed) Parallelism.AddWork(t0);
        }

        /// <summary>After every thread has left <see cref="Work"/>: throws the exceptions the body threw, together in
        /// one AggregateException, and lets go of the body and the exceptions.</summary>
        public void ThrowIfFailed()
        {
            Body = null;
            if (Errors is { } errors)
            {
                Errors = null;
                throw new AggregateException(errors);
            }
        }
    }

    /// <summary>Runs body(i) for i in [0, count) on the calling thread and up to <paramref name="workers"/> - 1 helpers,
    /// and returns true; returns false without running anything when another loop holds the team (a concurrent caller,
    /// or a loop nested in a loop's body). Exceptions thrown by the body leave as one AggregateException, as
    /// Parallel.For's, after every thread has stopped.</summary>
    public static bool TryRun(int workers, int count, Action<int> body, bool timed)
    {
        var team = Shared;
        if (Interlocked.CompareExchange(ref team._busy, 1, 0) != 0) return false;
        try
        {
            team.Run(workers, count, body, timed);
        }
        finally
        {
            Volatile.Write(ref team._busy, 0);
        }
        return true;
    }

    private void Run(int workers, int count, Action<int> body, bool timed)
    {
        var helpers = workers - 1;
        var job = new Job(body, count, helpers, timed);
        var previous = _job;
        while (_threads.Count < helpers)
        {
            // A new helper starts from the job now published, so it joins the one published next. UnsafeStart: the
            // helper lives on, so it must not keep the first caller's execution context (culture, AsyncLocal values).
            var index = _threads.Count + 1;
            var thread = new Thread(() => Loop(index, previous)) { IsBackground = true, Name = $"Hybrid worker {index}" };
            thread.UnsafeStart();
            _threads.Add(thread);
        }
        // A full fence between publishing the job and reading _sleepers (a helper does the opposite).
        Interlocked.Exchange(ref _job, job);
        if (Volatile.Read(ref _sleepers) > 0)
            lock (_gate) Monitor.PulseAll(_gate);
        job.Work();
        var joined = Math.Min(Interlocked.Add(ref job.Joined, Closed) - Closed, helpers);
        if (Volatile.Read(ref job.Left) < joined)
        {
            var until = Stopwatch.GetTimestamp() + Parallelism.SpinTicks;
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Left) < joined && Stopwatch.GetTimestamp() < until) spin.SpinOnce(-1);
            if (Volatile.Read(ref job.Left) < joined)
            {
                Interlocked.Exchange(ref job.Waiting, 1);
                lock (job)
                    while (Volatile.Read(ref job.Left) < joined) Monitor.Wait(job);
            }
        }
        job.ThrowIfFailed();
    }

    /// <summary>A helper's life: wait for a job other than the last one seen (polling, then sleeping), join it if a
    /// ticket is left, leave, repeat. Helper <paramref name="index"/> (1-based) polls only after a job that had room
    /// for it (index &lt;= its helpers): a team grown by a 16-thread loop does not keep 14 threads polling through
    /// 2-thread loops; those sleep at once.</summary>
    private void Loop(int index, Job? last)
    {
        while (true)
        {
            var job = Volatile.Read(ref _job);
            if (ReferenceEquals(job, last))
            {
                var until = last is null || index <= last.Helpers ? Stopwatch.GetTimestamp() + Parallelism.SpinTicks : 0;
                while (ReferenceEquals(job = Volatile.Read(ref _job), last) && Stopwatch.GetTimestamp() < until)
                    Thread.SpinWait(16);
                if (ReferenceEquals(job, last))
                {
                    lock (_gate)
                    {
                        Interlocked.Increment(ref _sleepers);
                        while (ReferenceEquals(job = Volatile.Read(ref _job), last)) Monitor.Wait(_gate);
                        Interlocked.Decrement(ref _sleepers);
                    }
                }
            }
            last = job;
            // Helpers 1..job.Helpers may join; the others leave the tickets to them.
            if (index > job!.Helpers || Interlocked.Increment(ref job.Joined) > job.Helpers) continue;
            job.Work();
            Interlocked.Increment(ref job.Left);
            if (Volatile.Read(ref job.Waiting) != 0)
                lock (job) Monitor.PulseAll(job);
        }
    }
}
