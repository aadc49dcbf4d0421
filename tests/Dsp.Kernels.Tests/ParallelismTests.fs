/// Parallelism: the process-wide thread setting (--threads) bounds every parallel loop, is validated, is the managed
/// engine's default, and the managed engine's log-mel path gives the same floats at 1 thread as at several (W1's many
/// clips per call, and W2's two long clips, whose mel and dB passes split each clip into frame segments).
module Hybrid.DspKernelsTests.ParallelismTests

open System
open System.Threading
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.DspKernelsTests.IlgpuFixture

/// Runs `f` with Parallelism.MaxThreads set to n, restoring the previous value after.
let private withThreads (n: int) (f: unit -> 'a) =
    let previous = Parallelism.MaxThreads
    Parallelism.MaxThreads <- n
    try f () finally Parallelism.MaxThreads <- previous

/// The most bodies of Parallelism.For seen running at once over 64 items that each hold their thread for 2 ms.
let private observedConcurrency () =
    let mutable running = 0
    let mutable most = 0
    let visited = Array.zeroCreate<int> 64
    Parallelism.For(64, fun i ->
        let now = Interlocked.Increment(&running)
        let mutable seen = Volatile.Read(&most)
        while now > seen && Interlocked.CompareExchange(&most, now, seen) <> seen do
            seen <- Volatile.Read(&most)
        Thread.Sleep 2
        visited.[i] <- visited.[i] + 1
        Interlocked.Decrement(&running) |> ignore)
    most, visited

/// STFT power -> mel -> power_to_db (top_db 80) -> MFCC of `clips` on a managed engine of `threads` threads.
let private logMel (threads: int) (stft: StftConfig) (mel: MelConfig) (clips: float32[]) (batch: int) =
    use e = new ManagedEngine(threads)
    let samples = clips.Length / batch
    let frames = stft.FrameCount samples
    use x = upload e clips [| batch; samples |]
    use spectrum = e.Allocate(batch, stft.Bins, frames)
    use bands = e.Allocate(batch, mel.NMels, frames)
    use mfcc = e.Allocate(batch, 13, frames)
    e.Dsp.Stft(stft, x, spectrum, SpectrumKind.Power)
    e.Dsp.Mel(mel, stft.NFft, spectrum, bands)
    e.Dsp.PowerToDb(DbConfig(TopDb = Nullable 80.0), bands, bands)
    e.Dsp.Mfcc(13, 0.0f, bands, mfcc)
    bands.ToArray(), mfcc.ToArray()

/// The tests that set or read the process-wide MaxThreads run sequenced: run beside each other, one's temporary
/// setting was another's "value kept" (seen once as a failure).
/// Watches the bodies of one parallel loop over `count` indices, each holding its thread for Thread.SpinWait `work`:
/// how often each index ran, the most bodies running at once, the distinct threads that ran one, and how many started
/// after `Returned` was called.
type private LoopProbe(count: int, work: int) =
    [<DefaultValue>] val mutable private active: int
    [<DefaultValue>] val mutable private most: int
    [<DefaultValue>] val mutable private returned: int
    [<DefaultValue>] val mutable private late: int
    member val Visited = Array.zeroCreate<int> count
    member val Threads = Collections.Concurrent.ConcurrentDictionary<int, bool>()
    member p.Body(i: int) =
        let now = Interlocked.Increment(&p.active)
        let mutable seen = Volatile.Read(&p.most)
        while now > seen && Interlocked.CompareExchange(&p.most, now, seen) <> seen do
            seen <- Volatile.Read(&p.most)
        if Volatile.Read(&p.returned) <> 0 then Interlocked.Increment(&p.late) |> ignore
        p.Threads.[Environment.CurrentManagedThreadId] <- true
        Thread.SpinWait work
        Interlocked.Increment(&p.Visited.[i]) |> ignore
        Interlocked.Decrement(&p.active) |> ignore
    /// Marks the loop as returned: a body starting after this counts as late.
    member p.Returned() = Volatile.Write(&p.returned, 1)
    member p.Active = Volatile.Read(&p.active)
    member p.Most = Volatile.Read(&p.most)
    member p.Late = Volatile.Read(&p.late)

/// Runs `loops` on a thread of its own, so that a lost wake-up fails the test after `limit` instead of hanging the
/// suite; rethrows what it threw, and restores Parallelism.SpinMicroseconds (which the loops may set) after.
let private onOwnThread (limit: TimeSpan) (loops: unit -> unit) =
    let before = Parallelism.SpinMicroseconds
    let failure = ref None
    try
        let t = Thread((fun () -> try loops () with e -> failure.Value <- Some e), IsBackground = true)
        t.Start()
        Expect.isTrue (t.Join limit) "the loops finished (no lost wake-up)"
        match failure.Value with
        | Some e -> raise (exn ("a loop failed", e))
        | None -> ()
    finally
        Parallelism.SpinMicroseconds <- before

[<Tests>]
let tests =
    testList "Parallelism" [
        testSequenced <| test "Parallelism.For runs every item once on at most MaxThreads threads at a time" {
            for n in [ 1; 2; 3 ] do
                let most, visited = withThreads n observedConcurrency
                Expect.isLessThanOrEqual most n (sprintf "at most %d bodies at once" n)
                Expect.isGreaterThanOrEqual most 1 "at least one"
                Expect.all visited (fun v -> v = 1) "every item once"
        }

        // Sequenced: WorkTicks is process-wide, and other tests' loops would add to it while it is on.
        testSequenced <| test "MeasureWork: SelfScheduled adds its threads' time in loop bodies to WorkTicks while on, nothing while off" {
            let spin (ms: float) =
                let sw = Diagnostics.Stopwatch.StartNew()
                while sw.Elapsed.TotalMilliseconds < ms do ()
            let ms (ticks: int64) = float ticks * 1000.0 / float Diagnostics.Stopwatch.Frequency
            let was = Parallelism.MeasureWork
            try
                Parallelism.MeasureWork <- false
                let off0 = Parallelism.WorkTicks
                Parallelism.SelfScheduled(Tasks.ParallelOptions(MaxDegreeOfParallelism = 2), 4, fun _ -> spin 2.0)
                Expect.equal Parallelism.WorkTicks off0 "off: nothing counted"
                Parallelism.MeasureWork <- true
                for threads in [ 1; 2 ] do
                    let before = Parallelism.WorkTicks
                    let sw = Diagnostics.Stopwatch.StartNew()
                    Parallelism.SelfScheduled(Tasks.ParallelOptions(MaxDegreeOfParallelism = threads), 8, fun _ -> spin 5.0)
                    let wall = sw.Elapsed.TotalMilliseconds
                    let work = ms (Parallelism.WorkTicks - before)
                    Expect.isGreaterThanOrEqual work 40.0 $"{threads} thread(s): eight 5 ms bodies are at least 40 ms of work"
                    Expect.isLessThanOrEqual work (float threads * wall + 1.0) $"{threads} thread(s): at most wall x threads"
            finally
                Parallelism.MeasureWork <- was
        }

        test "SelfScheduled runs every index once, on at most the options' threads, and on the calling thread alone with one" {
            for threads in [ 1; 2; 3 ] do
                for count in [ 0; 1; 5; 64 ] do
                    let visited = Array.zeroCreate<int> count
                    let mutable running = 0
                    let mutable most = 0
                    let caller = Environment.CurrentManagedThreadId
                    let mutable away = 0
                    Parallelism.SelfScheduled(Tasks.ParallelOptions(MaxDegreeOfParallelism = threads), count, fun i ->
                        let now = Interlocked.Increment(&running)
                        let mutable seen = Volatile.Read(&most)
                        while now > seen && Interlocked.CompareExchange(&most, now, seen) <> seen do
                            seen <- Volatile.Read(&most)
                        if Environment.CurrentManagedThreadId <> caller then Interlocked.Increment(&away) |> ignore
                        Thread.SpinWait 2000
                        Interlocked.Increment(&visited.[i]) |> ignore
                        Interlocked.Decrement(&running) |> ignore)
                    Expect.all visited (fun v -> v = 1) (sprintf "every index once (%d threads, %d indices)" threads count)
                    Expect.isLessThanOrEqual most threads (sprintf "at most %d at once" threads)
                    if threads = 1 then Expect.equal away 0 "one thread: all on the caller"
            let e = Expect.throwsC (fun () -> Parallelism.SelfScheduled(Tasks.ParallelOptions(MaxDegreeOfParallelism = 2), 10, fun i -> if i = 6 then invalidOp "six")) id
            Expect.isTrue (e :? AggregateException && (e :?> AggregateException).InnerExceptions |> Seq.exists (fun x -> x.Message = "six")) "the body's exception inside Parallel.For's AggregateException"
        }

        // Sequenced: SpinMicroseconds is process-wide.
        testSequenced <| test "SelfScheduled's worker team: thousands of loops back to back and after pauses, polling and sleeping helpers, run every index once, on at most the loop's threads, and nothing after returning" {
            onOwnThread (TimeSpan.FromMinutes 2.0) (fun () ->
                // A loop on every processor first, so that later loops of fewer threads meet a larger team.
                Parallelism.SelfScheduled(Tasks.ParallelOptions(MaxDegreeOfParallelism = Environment.ProcessorCount), 64, fun _ -> Thread.SpinWait 100)
                for spin in [ 0; 50; Parallelism.DefaultSpinMicroseconds ] do
                    Parallelism.SpinMicroseconds <- spin
                    let rng = Random spin
                    let probes = ResizeArray()
                    for loop in 0 .. 1999 do
                        let threads = 1 + loop % (min 4 Environment.ProcessorCount)
                        let count = rng.Next(0, 3 * threads + 2)
                        let probe = LoopProbe(count, 200)
                        probes.Add probe
                        Parallelism.SelfScheduled(Tasks.ParallelOptions(MaxDegreeOfParallelism = threads), count, Action<int> probe.Body)
                        probe.Returned()
                        Expect.equal probe.Active 0 (sprintf "no body still running after loop %d returned (spin %d us)" loop spin)
                        Expect.isLessThanOrEqual probe.Most threads (sprintf "loop %d: at most %d bodies at once (spin %d us)" loop threads spin)
                        if not (Array.forall (fun v -> v = 1) probe.Visited) then
                            failtestf "loop %d (spin %d us, %d threads, %d indices): visits %A" loop spin threads count probe.Visited
                        // Every so often a pause long enough for the helpers to stop polling and sleep.
                        if loop % 97 = 0 then Thread.Sleep 2
                    Expect.equal (probes |> Seq.sumBy _.Late) 0 (sprintf "no body started after its loop returned (spin %d us)" spin))
        }

        // Sequenced: SpinMicroseconds is process-wide, and the team must be free for TryRun.
        testSequenced <| test "the worker team at up to 16 threads (a workstation's width, oversubscribed on a smaller machine): wide and narrow loops alternate, every index once, at most the loop's threads, helpers beyond a loop's width stay out, nothing after returning" {
            // SelfScheduled sends loops wider than the processors to the thread pool, so on a 2-core machine only a
            // direct TryRun drives 15 helpers: the protocol a 16-core host runs, here with threads sharing cores.
            onOwnThread (TimeSpan.FromMinutes 3.0) (fun () ->
                for spin in [ 0; 50 ] do
                    Parallelism.SpinMicroseconds <- spin
                    let rng = Random(16 + spin)
                    let probes = ResizeArray()
                    let mutable wideHelpers = 0
                    for loop in 0 .. 599 do
                        // Wide, narrow and in between, so helpers 2..15 meet loops that have no room for them.
                        let workers = match loop % 4 with 0 -> 16 | 1 -> 2 | 2 -> 1 + rng.Next 16 | _ -> 3
                        let count = rng.Next(0, 3 * workers + 2)
                        let probe = LoopProbe(count, 1000)
                        probes.Add probe
                        let body = Action<int> probe.Body
                        let mutable ran = WorkerTeam.TryRun(workers, count, body, false)
                        // Another test's loop may hold the team for a moment (it gives it back when its loop ends).
                        let mutable tries = 0
                        while not ran && tries < 10_000 do
                            Thread.Sleep 1
                            tries <- tries + 1
                            ran <- WorkerTeam.TryRun(workers, count, body, false)
                        Expect.isTrue ran (sprintf "loop %d: the team was free within 10 s" loop)
                        probe.Returned()
                        Expect.equal probe.Active 0 (sprintf "no body still running after loop %d returned (spin %d us)" loop spin)
                        Expect.isLessThanOrEqual probe.Most workers (sprintf "loop %d: at most %d bodies at once (spin %d us)" loop workers spin)
                        Expect.isLessThanOrEqual probe.Threads.Count workers (sprintf "loop %d: at most %d threads took part (spin %d us)" loop workers spin)
                        if workers = 16 && count >= 32 then wideHelpers <- max wideHelpers (probe.Threads.Count - 1)
                        if not (Array.forall (fun v -> v = 1) probe.Visited) then
                            failtestf "loop %d (spin %d us, %d threads, %d indices): visits %A" loop spin workers count probe.Visited
                        if loop % 53 = 0 then Thread.Sleep 2
                    Expect.equal (probes |> Seq.sumBy _.Late) 0 (sprintf "no body started after its loop returned (spin %d us)" spin)
                    Expect.isGreaterThan wideHelpers 1 (sprintf "16-thread loops ran on more than one helper (spin %d us)" spin))
        }

        test "SelfScheduled on the team: helpers take part, a body's exceptions leave together after every thread stopped, and the team works after" {
            let options = Tasks.ParallelOptions(MaxDegreeOfParallelism = 2)
            let caller = Environment.CurrentManagedThreadId
            let mutable away = 0
            Parallelism.SelfScheduled(options, 20, fun _ ->
                if Environment.CurrentManagedThreadId <> caller then Interlocked.Increment(&away) |> ignore
                Thread.Sleep 5)
            Expect.isGreaterThan away 0 "a helper ran some of twenty 5 ms bodies"
            // After pauses longer than the polling time the helper sleeps; each loop must wake it.
            for round in 1 .. 5 do
                Thread.Sleep(2 + Parallelism.SpinMicroseconds / 1000)
                let mutable woken = 0
                Parallelism.SelfScheduled(options, 8, fun _ ->
                    if Environment.CurrentManagedThreadId <> caller then Interlocked.Increment(&woken) |> ignore
                    Thread.Sleep 5)
                Expect.isGreaterThan woken 0 (sprintf "round %d: the sleeping helper woke and ran some of eight 5 ms bodies" round)
            let mutable running = 0
            let mutable afterReturn = 0
            let mutable returned = 0
            let e =
                Expect.throwsC (fun () ->
                    Parallelism.SelfScheduled(options, 40, fun i ->
                        Interlocked.Increment(&running) |> ignore
                        if Volatile.Read(&returned) <> 0 then Interlocked.Increment(&afterReturn) |> ignore
                        Thread.Sleep 1
                        Interlocked.Decrement(&running) |> ignore
                        if i % 7 = 3 then invalidOp (sprintf "item %d" i))) id
            Volatile.Write(&returned, 1)
            Expect.equal (Volatile.Read(&running)) 0 "every body had stopped when the exception left"
            let inner = (e :?> AggregateException).InnerExceptions
            Expect.isGreaterThanOrEqual inner.Count 1 "at least one"
            Expect.all inner (fun x -> x :? InvalidOperationException && x.Message.StartsWith "item ") "the bodies' own exceptions"
            Thread.Sleep 5
            Expect.equal afterReturn 0 "no body after the loop returned"
            let visited = Array.zeroCreate<int> 50
            Parallelism.SelfScheduled(options, 50, fun i -> Interlocked.Increment(&visited.[i]) |> ignore)
            Expect.all visited (fun v -> v = 1) "the next loop runs every index once"
        }

        test "SelfScheduled from several threads at once and nested in a body: each loop runs every index once" {
            let options = Tasks.ParallelOptions(MaxDegreeOfParallelism = 2)
            let failures = Collections.Concurrent.ConcurrentQueue<string>()
            let callers =
                [| for c in 0 .. 3 ->
                    Thread((fun () ->
                        for loop in 0 .. 299 do
                            let count = 1 + (loop * 7 + c) % 11
                            let visited = Array.zeroCreate<int> count
                            Parallelism.SelfScheduled(options, count, fun i ->
                                if i = 0 && loop % 10 = 0 then
                                    // A loop inside a loop's body.
                                    let inner = Array.zeroCreate<int> 5
                                    Parallelism.SelfScheduled(options, 5, fun j -> Interlocked.Increment(&inner.[j]) |> ignore)
                                    if not (Array.forall (fun v -> v = 1) inner) then failures.Enqueue(sprintf "caller %d loop %d: nested %A" c loop inner)
                                Interlocked.Increment(&visited.[i]) |> ignore)
                            if not (Array.forall (fun v -> v = 1) visited) then failures.Enqueue(sprintf "caller %d loop %d: %A" c loop visited)), IsBackground = true) |]
            for t in callers do t.Start()
            for t in callers do Expect.isTrue (t.Join(TimeSpan.FromMinutes 2.0)) "a caller finished (no deadlock)"
            Expect.isEmpty failures "every loop ran every index once"
        }

        testSequenced <| test "SpinMicroseconds is refused outside 0..1,000,000, naming the range, and kept" {
            let before = Parallelism.SpinMicroseconds
            for bad in [ -1; 1_000_001 ] do
                let e = Expect.throwsC (fun () -> Parallelism.SpinMicroseconds <- bad) id
                Expect.isTrue (e :? ArgumentOutOfRangeException) "ArgumentOutOfRangeException"
                Expect.stringContains e.Message "0..1000000" "names the range"
            Expect.equal Parallelism.SpinMicroseconds before "unchanged"
            try
                Parallelism.SpinMicroseconds <- 250
                Expect.equal Parallelism.SpinMicroseconds 250 "set"
            finally
                Parallelism.SpinMicroseconds <- before
        }

        testSequenced <| test "Map keeps the order and rethrows the first exception of the mapping unwrapped" {
            let squares = withThreads 2 (fun () -> Parallelism.Map([| 1 .. 100 |], Func<int, int>(fun i -> i * i)))
            Expect.equal squares [| for i in 1 .. 100 -> i * i |] "in order"
            Expect.throwsT<InvalidOperationException>
                (fun () -> withThreads 2 (fun () -> Parallelism.Map([| 1 .. 10 |], Func<int, int>(fun i -> if i = 7 then invalidOp "seven" else i)) |> ignore))
                "the mapping's own exception"
        }

        testSequenced <| test "MaxThreads is refused outside 1..4 x the processors, naming the range, and the value is kept" {
            let before = Parallelism.MaxThreads
            Expect.equal Parallelism.Limit (4 * Environment.ProcessorCount) "the limit"
            for bad in [ 0; -3; Parallelism.Limit + 1 ] do
                let e = Expect.throwsC (fun () -> Parallelism.MaxThreads <- bad) id
                Expect.isTrue (e :? ArgumentOutOfRangeException) "ArgumentOutOfRangeException"
                Expect.stringContains e.Message (sprintf "1..%d" Parallelism.Limit) "names the range"
            Expect.equal Parallelism.MaxThreads before "unchanged after refusals"
        }

        testSequenced <| test "a managed engine created without a count takes the process-wide setting" {
            withThreads 3 (fun () ->
                use e = new ManagedEngine()
                Expect.equal e.MaxThreads 3 "the setting"
                Expect.stringContains e.DeviceName "3 threads" "named in the device")
            use explicit = new ManagedEngine(1)
            Expect.equal explicit.MaxThreads 1 "an explicit count wins"
        }

        test "a managed engine's thread count can be changed between calls: validated, named, same floats" {
            use e = new ManagedEngine(1)
            let stft = StftConfig(256, 128, 256, WindowKind.Hann, true, PadMode.Constant)
            let mel = MelConfig(8000, 40, 0.0, Nullable 4000.0)
            let batch, samples = 24, 8192
            use x = upload e (randomSignal 13 (batch * samples)) [| batch; samples |]
            use y = e.Allocate(batch, mel.NMels, stft.FrameCount samples)
            let run () =
                e.Dsp.LogMelSpectrogram(stft, mel, DbConfig(TopDb = Nullable 80.0), x, y, SpectrumKind.Power)
                y.ToArray()
            let one = run ()
            e.MaxThreads <- 3
            Expect.equal e.MaxThreads 3 "the new count"
            Expect.stringContains e.DeviceName "3 threads" "named in the device"
            Expect.equal (run ()) one "the same floats at 3 threads"
            for bad in [ 0; Parallelism.Limit + 1 ] do
                Expect.throwsT<ArgumentOutOfRangeException> (fun () -> e.MaxThreads <- bad) (sprintf "%d refused" bad)
            Expect.equal e.MaxThreads 3 "kept after refusals"
            e.MaxThreads <- 1
            Expect.equal (run ()) one "the same floats back at 1 thread"
        }

        test "the managed GEMM splits along K by the product's shape alone: few outputs and a long inner dimension" {
            Expect.isTrue (ManagedNn.UsesSplitK(64, 128, 10240)) "a dense layer's forward pass ([64 x 10240] x [10240 x 128])"
            Expect.isFalse (ManagedNn.UsesSplitK(64, 10240, 128)) "its input gradient (a long N)"
            Expect.isFalse (ManagedNn.UsesSplitK(10240, 128, 64)) "its weight gradient (a long M)"
            Expect.isFalse (ManagedNn.UsesSplitK(64, 128, 2 * ManagedNn.KSegment - 1)) "K under two segments"
            for (m, n, k) in [ 64, 128, 2500; 17, 30, 3000; 40, 9, 2048; 5, 7, 4100 ] do
                Expect.isTrue (ManagedNn.UsesSplitK(m, n, k)) (sprintf "%dx%dx%d (ManagedNnTests' split products)" m n k)
        }

        test "W1's log-mel and MFCC are bitwise equal at 1, 2 and 8 threads" {
            let stft = StftConfig(256, 128, 256, WindowKind.Hann, true, PadMode.Constant)
            let mel = MelConfig(8000, 40, 0.0, Nullable 4000.0)
            let clips = randomSignal 11 (24 * 8192)
            let reference = logMel 1 stft mel clips 24
            for threads in [ 2; 8 ] do
                let bands, mfcc = logMel threads stft mel clips 24
                Expect.equal bands (fst reference) (sprintf "log-mel at %d threads" threads)
                Expect.equal mfcc (snd reference) (sprintf "MFCC at %d threads" threads)
        }

        test "W2's two long clips, split into frame segments, give bitwise the log-mel of 1 thread (top_db clamping across segments)" {
            let stft = StftConfig(2048, 512, 2048, WindowKind.Hann, true, PadMode.Constant)
            let mel = MelConfig(22050, 128)
            let samples = 8 * 22050
            // The second half of each clip is silent: its dB values are clamped at the loud first half's maximum - 80,
            // which only a segment of the first half sees.
            let clips = randomSignal 12 (2 * samples) |> Array.mapi (fun i v -> if i % samples < samples / 2 then v else 0.0f)
            let reference = logMel 1 stft mel clips 2
            Expect.isTrue (fst reference |> Array.exists (fun v -> v = Array.max (fst reference) - 80.0f)) "the clamp applies"
            for threads in [ 2; 8 ] do
                let bands, mfcc = logMel threads stft mel clips 2
                Expect.equal bands (fst reference) (sprintf "log-mel at %d threads" threads)
                Expect.equal mfcc (snd reference) (sprintf "MFCC at %d threads" threads)
        }
    ]
