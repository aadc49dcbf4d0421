/// `hybrid bench`: times the issue-3 DSP workloads (and any later ones added to `workloads`) on every engine,
/// prints a markdown table and optionally writes JSON.
module Hybrid.Cli.Bench

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Threading
open Argu
open Hybrid.Dsp
open Hybrid.Dsp.Ilgpu
open BenchStages
open BenchWorkloads
open BenchMachine

/// Every workload, in table order (BenchWorkloads.all).
let workloads: BenchWorkloads.Workload list = BenchWorkloads.all

/// One measured row of the table / JSON.
type Result =
    { engine: string
      device: string
      workload: string
      median_ms: float
      clips_per_s: float option
      audio_s_per_s: float option
      gflops: float option
      /// Bytes read and written a second (ceiling-memory), in 10^9.
      gb_per_s: float option
      samples_per_s: float option
      peak_mb: float
      /// On an ILGPU engine, the transfers of one more run counted by `IlgpuEngine.Transfers` (host-to-device copies,
      /// device-to-host copies, synchronisations); absent on the managed engine.
      host_to_device: int option
      device_to_host: int option
      synchronizations: int option
      /// Median CPU time of a run summed over all threads: compare with median_ms * threads when the
      /// machine is shared (wall time then includes waiting for the cores).
      cpu_ms: float
      /// Threads a CPU engine computes on (the managed engine's MaxThreads, the processor count for ilgpu-cpu); absent
      /// for device engines, whose CPU time is mostly spent waiting.
      threads: int option
      /// On the managed engine: how long its idle worker threads polled for the next parallel loop before sleeping
      /// (Parallelism.SpinMicroseconds, HYBRID_SPIN_US), since it changes how fast a loop starts; absent elsewhere.
      spin_us: int option
      /// cpu_ms / (median_ms * threads): the share of its threads' time the run spent computing (cpuShare).
      cpu_share: float option
      /// The contention warning (contentionWarning), when the share is below minimumCpuShare.
      warning: string option
      /// Managed memory allocated by one run (median over the timed runs), MB.
      alloc_mb: float
      /// Garbage collections (all generations) during the timed runs, in all.
      gc_count: int
      /// The machine's 1-minute load average when the workload finished (/proc/loadavg), when readable: above the
      /// core count, other processes competed for the cores and the wall time is inflated.
      load_average: float option
      /// With several thread counts (--threads 1,2,... or --scaling): this row's wall time against the same engine
      /// and workload at the fewest threads measured, scaled to 1 thread (wall(1) / wall(n)); the median of
      /// round_speedups when the sweep measured the counts interleaved.
      speedup: float option
      /// The interleaved sweep's timed rounds, each one run at every thread count back to back: per round, the wall
      /// time at the fewest threads over this row's (so a slow minute of a shared machine slows both sides of a ratio).
      round_speedups: float list option
      /// speedup / threads.
      efficiency: float option }

/// Below this share of the threads' time spent computing (cpu_ms / (median_ms * threads)), a CPU engine's wall time is
/// taken to include waiting for cores that other processes hold, and `bench` warns.
[<Literal>]
let minimumCpuShare = 0.6

/// The share of `threads` threads' time over `wallMs` that a run spent computing (`cpuMs` summed over all threads);
/// None without a positive wall time and thread count.
let cpuShare (wallMs: float) (cpuMs: float) (threads: int) : float option =
    if wallMs > 0.0 && threads > 0 then Some(cpuMs / (wallMs * float threads)) else None

/// The warning `bench` prints for a workload whose wall time is far above its CPU time per thread: Some text when the
/// run computed less than minimumCpuShare of its threads' time (other processes probably held the cores, or the
/// workload does not keep every thread busy), else None.
let contentionWarning (workload: string) (engine: string) (wallMs: float) (cpuMs: float) (threads: int) : string option =
    match cpuShare wallMs cpuMs threads with
    | Some share when share < minimumCpuShare ->
        Some(sprintf "%s on %s: %.1f ms wall but %.1f ms CPU over %d threads, %.0f%% of their time (expected at least %.0f%%): the cores are probably shared with other processes (or the workload leaves threads idle), so the wall time overstates the workload's cost"
                 workload engine wallMs cpuMs threads (100.0 * share) (100.0 * minimumCpuShare))
    | _ -> None

/// Runs `run` once with the engine's transfer counter on; returns the counts by call site.
let private countTransfers (engine: IlgpuEngine) (run: unit -> unit) =
    engine.Synchronize()
    engine.Transfers.Reset()
    engine.Transfers.Enabled <- true
    try
        run ()
        List.ofSeq (engine.Transfers.Snapshot())
    finally
        engine.Transfers.Enabled <- false
        engine.Transfers.Reset()

/// Collections of every generation so far.
let private collections () = GC.CollectionCount 0 + GC.CollectionCount 1 + GC.CollectionCount 2

/// Returns the previous workload's memory to the system so the next peak is the next workload's own.
let private compactBefore () =
    Runtime.GCSettings.LargeObjectHeapCompactionMode <- Runtime.GCLargeObjectHeapCompactionMode.CompactOnce
    GC.Collect()
    GC.WaitForPendingFinalizers()
    GC.Collect()

/// Warm-up runs: `warmup` = Some n: exactly n; None: at least 3 runs and half a second, so the JIT has tiered the hot
/// loops up (a fixed count suits a workload that takes minutes a run on a slow device).
let private warmUp (warmup: int option) (run: unit -> unit) =
    let warm = Stopwatch.StartNew()
    let mutable warmRuns = 0
    let warming () =
        match warmup with
        | Some n -> warmRuns < n
        | None -> warmRuns < 3 || warm.ElapsedMilliseconds < 500L
    while warming () do
        run ()
        warmRuns <- warmRuns + 1

/// One timed run: wall ms, CPU ms of every thread (getrusage, microsecond resolution; Process.TotalProcessorTime ticks
/// every 10 ms) and MB of managed memory allocated.
let private timedRun (run: unit -> unit) =
    let cpu0 = Environment.CpuUsage.TotalTime
    let bytes0 = GC.GetTotalAllocatedBytes false
    let sw = Stopwatch.StartNew()
    run ()
    sw.Elapsed.TotalMilliseconds,
    (Environment.CpuUsage.TotalTime - cpu0).TotalMilliseconds,
    float (GC.GetTotalAllocatedBytes false - bytes0) / 1048576.0

let private medianOf (values: float list) =
    let sorted = List.sort values |> Array.ofList
    if sorted.Length % 2 = 1 then sorted.[sorted.Length / 2]
    else (sorted.[sorted.Length / 2 - 1] + sorted.[sorted.Length / 2]) / 2.0

/// The timed runs of one workload on one engine at one thread count.
type private Sample =
    { Times: float list
      Cpu: float list
      Allocated: float list
      Gcs: int
      Stages: (string * StageTime) list
      Transfers: TransferCount list option }

/// Builds the row of one workload on one engine from its timed runs, printing the summary line, the stage profile,
/// the contention warning and the transfer counts to stderr.
let private report (engine: Engine) (threads: int option) (w: Workload) (peak: float) (sample: Sample) =
    let runs = sample.Times.Length
    let median = medianOf sample.Times
    // CPU time tells how much of the wall time was spent computing when other processes share the cores.
    let cpuMedian = medianOf sample.Cpu
    let load = loadAverage ()
    let spin = match engine with :? Hybrid.Dsp.Managed.ManagedEngine -> Some Parallelism.SpinMicroseconds | _ -> None
    let at = threads |> Option.map (fun n -> sprintf " at %d thread%s" n (if n = 1 then "" else "s")) |> Option.defaultValue ""
    let at = at + (spin |> Option.map (sprintf " (workers poll %d us)") |> Option.defaultValue "")
    let bandwidth = w.Bytes |> Option.map (fun b -> sprintf " (%.1f GB/s read and written)" (b / (median / 1000.0) / 1e9)) |> Option.defaultValue ""
    eprintfn "bench: %s on %s%s: median %.1f ms wall%s, %.1f ms CPU (all threads), %.1f MB allocated a run, %d GCs in %d runs, load %s"
        w.Name engine.Name at median bandwidth cpuMedian (medianOf sample.Allocated) sample.Gcs runs (load |> Option.map (sprintf "%.2f") |> Option.defaultValue "n/a")
    // HYBRID_BENCH_PROFILE=1: each stage's share of the timed runs (log-mel workloads' engine calls, train-cnn2d's
    // network operations).
    if not sample.Stages.IsEmpty then
        let total = List.sum sample.Times
        for name, t in sample.Stages do
            // Work inside the managed engine's parallel loops against wall x threads: the rest is waiting (or serial).
            let work =
                match threads with
                | Some n when t.WorkMs > 0.0 && t.WallMs > 0.0 ->
                    sprintf ", %8.2f ms work a run (%3.0f%% of wall x %d)" (t.WorkMs / float runs) (100.0 * t.WorkMs / (t.WallMs * float n)) n
                | _ -> ""
            eprintfn "bench: profile %s on %s%s: %-56s %8.2f ms wall a run (%4.1f%%), %8.2f ms CPU a run, %d calls a run%s"
                w.Name engine.Name at name (t.WallMs / float runs) (100.0 * t.WallMs / total) (t.CpuMs / float runs) (t.Calls / runs) work
    let warning = threads |> Option.bind (contentionWarning w.Name engine.Name median cpuMedian)
    warning |> Option.iter (eprintfn "bench: warning: %s")
    let total kind = sample.Transfers |> Option.map (fun counts -> counts |> List.filter (fun c -> c.Kind = kind) |> List.sumBy _.Count)
    sample.Transfers
    |> Option.iter (fun counts ->
        eprintfn "bench: %s on %s: transfers in one run: %d host->device, %d device->host, %d synchronisations" w.Name engine.Name
            (total TransferKind.HostToDevice).Value (total TransferKind.DeviceToHost).Value (total TransferKind.Synchronize).Value
        for c in counts do
            eprintfn "bench:   %A %s x%d (%d bytes)" c.Kind c.CallSite c.Count c.Bytes)
    let perSecond x = if x > 0.0 then Some(x / (median / 1000.0)) else None
    { engine = engine.Name
      device = engine.DeviceName
      workload = w.Name
      median_ms = median
      clips_per_s = perSecond (float w.Clips)
      audio_s_per_s = perSecond w.AudioSeconds
      gflops = w.Flops |> Option.map (fun f -> f / (median / 1000.0) / 1e9)
      gb_per_s = w.Bytes |> Option.map (fun b -> b / (median / 1000.0) / 1e9)
      samples_per_s = perSecond (float w.Samples)
      peak_mb = peak
      host_to_device = total TransferKind.HostToDevice
      device_to_host = total TransferKind.DeviceToHost
      synchronizations = total TransferKind.Synchronize
      cpu_ms = cpuMedian
      threads = threads
      spin_us = spin
      cpu_share = threads |> Option.bind (cpuShare median cpuMedian)
      warning = warning
      alloc_mb = medianOf sample.Allocated
      gc_count = sample.Gcs
      load_average = load
      speedup = None
      round_speedups = None
      efficiency = None }

/// Threads a CPU engine computes on: the managed engine's MaxThreads, the processor count for ilgpu-cpu; None for
/// device engines.
let private engineThreads (engine: Engine) =
    match engine with
    | :? Hybrid.Dsp.Managed.ManagedEngine as m -> Some m.MaxThreads
    | e when e.Name = "ilgpu-cpu" -> Some Environment.ProcessorCount
    | _ -> None

/// Times one workload on one engine: warm-up runs (`warmup` = Some n: exactly n; None: at least 3 runs and half a
/// second, so the JIT has tiered the hot loops up), then the median of `runs` runs; on an ILGPU engine one more run
/// counts its host/device transfers.
let measure (engine: Engine) (runs: int) (warmup: int option) (w: Workload) =
    measureWorkWhenProfiling () |> ignore
    compactBefore ()
    let mutable sample = None
    let peak =
        peakDuring (fun () ->
            let run, cleanup = w.Setup engine
            try
                warmUp warmup run
                takeStages () |> ignore
                let gc0 = collections ()
                let timed = [ for _ in 1..runs -> timedRun run ]
                let gcs = collections () - gc0
                let stages = takeStages ()
                let transfers =
                    match engine with
                    | :? IlgpuEngine as ilgpu -> Some(countTransfers ilgpu run)
                    | _ -> None
                sample <-
                    Some
                        { Times = timed |> List.map (fun (t, _, _) -> t)
                          Cpu = timed |> List.map (fun (_, c, _) -> c)
                          Allocated = timed |> List.map (fun (_, _, a) -> a)
                          Gcs = gcs
                          Stages = stages
                          Transfers = transfers }
            finally
                cleanup ())
    report engine (engineThreads engine) w peak sample.Value

/// With a stage profile (HYBRID_BENCH_PROFILE=1) in an interleaved sweep: a line per stage timed at both t0 and n
/// threads with its wall time a run at each, its speed-up, and the milliseconds a run it spends beyond perfect scaling
/// (wall at n - wall at t0 * t0 / n), most first: which stage holds the workload's speed-up back. Where the stage's
/// work in parallel loops was measured at both counts (Parallelism.MeasureWork), the line splits that loss in two: the
/// threads' work at n against at t0 ("work 1.10x": each thread ran 10% slower, from memory or cache sharing) and the
/// ms a run a thread spent waiting at n (wall - work / n: loop ends, serial parts, waking threads).
let stageScaling (workload: string) (t0: int) (n: int) (runs: int) (fewest: (string * StageTime) list) (at: (string * StageTime) list) =
    let perRun (t: StageTime) = t.WallMs / float runs
    [ for name, t in at do
          match fewest |> List.tryFind (fun (other, _) -> other = name) with
          | Some(_, b) when perRun t > 0.0 -> yield name, b, t, perRun t - perRun b * float t0 / float n
          | _ -> () ]
    |> List.sortByDescending (fun (_, _, _, beyond) -> beyond)
    |> List.map (fun (name, b, t, beyond) ->
        let w0, w = perRun b, perRun t
        let split =
            if b.WorkMs > 0.0 && t.WorkMs > 0.0 then
                sprintf ", work %.2fx, %.2f ms a run waiting" (t.WorkMs / b.WorkMs) ((t.WallMs - t.WorkMs / float n) / float runs)
            else ""
        sprintf "bench: profile %s from %d to %d threads: %-56s %9.2f -> %9.2f ms wall a run, %5.2fx, %8.2f ms a run beyond %gx%s"
            workload t0 n name w0 w (w0 / w) beyond (float n / float t0) split)

/// Times one workload on the managed engine at several thread counts, interleaved: one setup, warm-up at every count,
/// then `runs` rounds that each time one run at every count back to back (the order rotating from round to round), so
/// that a slow minute of a shared machine falls on every count alike. Each row's speedup is the median of its rounds'
/// ratios against the fewest threads (round_speedups); the process-wide setting follows the engine's count.
let measureInterleaved (engine: Hybrid.Dsp.Managed.ManagedEngine) (counts: int list) (runs: int) (warmup: int option) (w: Workload) =
    measureWorkWhenProfiling () |> ignore
    compactBefore ()
    let counts = Array.ofList counts
    let timed = Array.init counts.Length (fun _ -> Collections.Generic.List<float * float * float>())
    let gcs = Array.zeroCreate<int> counts.Length
    let stages = Array.init counts.Length (fun _ -> Collections.Generic.List<string * StageTime>())
    let previousEngine, previousProcess = engine.MaxThreads, Parallelism.MaxThreads
    let setThreads n =
        engine.MaxThreads <- n
        Parallelism.MaxThreads <- n
    let peak =
        peakDuring (fun () ->
            let run, cleanup = w.Setup engine
            try
                for n in counts do
                    setThreads n
                    warmUp warmup run
                takeStages () |> ignore
                for round in 0 .. runs - 1 do
                    for j in 0 .. counts.Length - 1 do
                        let i = (j + round) % counts.Length
                        setThreads counts.[i]
                        let gc0 = collections ()
                        timed.[i].Add(timedRun run)
                        gcs.[i] <- gcs.[i] + collections () - gc0
                        for name, t in takeStages () do
                            addStage stages.[i] name t.WallMs t.CpuMs t.WorkMs t.Calls
            finally
                cleanup ()
                engine.MaxThreads <- previousEngine
                Parallelism.MaxThreads <- previousProcess)
    let fewest = counts |> Array.mapi (fun i n -> n, i) |> Array.min |> snd
    try
      [ for i in 0 .. counts.Length - 1 do
            let sample =
                { Times = [ for t, _, _ in timed.[i] -> t ]
                  Cpu = [ for _, c, _ in timed.[i] -> c ]
                  Allocated = [ for _, _, a in timed.[i] -> a ]
                  Gcs = gcs.[i]
                  Stages = List.ofSeq stages.[i]
                  Transfers = None }
            // The row names the engine at this count (its device name says the threads).
            engine.MaxThreads <- counts.[i]
            let row = report engine (Some counts.[i]) w peak sample
            // The fewest threads against themselves is 1 by definition; a round whose clock read no time gives no ratio.
            let ratios =
                [ for r in 0 .. runs - 1 do
                      let t0, _, _ = timed.[fewest].[r]
                      let t, _, _ = timed.[i].[r]
                      if i = fewest then yield 1.0
                      elif t0 > 0.0 && t > 0.0 then yield t0 / t ]
            if i <> fewest then
                stageScaling w.Name counts.[fewest] counts.[i] runs (List.ofSeq stages.[fewest]) (List.ofSeq stages.[i])
                |> List.iter (eprintfn "%s")
            yield { row with round_speedups = Some ratios } ]
    finally
        engine.MaxThreads <- previousEngine

/// The engine names --device selects: "all" is every engine available here except ilgpu-cpu (ILGPU's CPU
/// simulator, a kernel test vehicle about 10x slower than managed; name it to measure it) and except opencl when
/// its only qualifying device is a CPU (PoCL's, far slower than managed there); anything else is one name of
/// Engines.Names.
let private engineNames (device: string) =
    let openclGpu () = Engines.OpenClDevices() |> Seq.exists (fun d -> d.Qualifies && d.Kind <> "CPU")
    match device.Trim().ToLowerInvariant() with
    | "all" -> Engines.Available() |> Seq.filter (fun n -> n <> "ilgpu-cpu" && (n <> "opencl" || openclGpu ())) |> List.ofSeq
    | name when Seq.contains name Engines.Names -> [ name ]
    | other -> failwithf "--device: unknown engine '%s' (expected all or one of %s)" other (String.Join(", ", Engines.Names))

/// Formats the results as a markdown table: wall time (median ms), CPU time over all threads and the share of the
/// threads' time spent computing side by side, "(!)" after a share that drew a contention warning.
let table (results: Result list) =
    let opt (f: float -> string) = Option.map f >> Option.defaultValue ""
    [ yield "| engine | device | workload | median ms | CPU ms | CPU share | clips/s | audio s/s | GFLOP/s | samples/s | peak MB |"
      yield "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
      for r in results ->
          sprintf "| %s | %s | %s | %.1f | %.0f | %s | %s | %s | %s | %s | %.0f |" r.engine r.device r.workload r.median_ms r.cpu_ms
              (r.cpu_share |> Option.map (fun v -> sprintf "%.0f%%%s" (100.0 * v) (if r.warning.IsSome then " (!)" else "")) |> Option.defaultValue "")
              (opt (sprintf "%.0f") r.clips_per_s) (opt (sprintf "%.0f") r.audio_s_per_s) (opt (sprintf "%.1f") r.gflops)
              (opt (sprintf "%.0f") r.samples_per_s) r.peak_mb ]
    |> String.concat Environment.NewLine

/// Fills speedup and efficiency of every row from the row of the same engine and workload at the fewest threads
/// measured (t0 threads, wall w0): speedup = the median of the row's round_speedups when the counts were measured
/// interleaved, else w0 / wall; efficiency = speedup / (threads / t0); unchanged without threads.
let withScaling (results: Result list) : Result list =
    let baseOf (r: Result) =
        results
        |> List.filter (fun b -> b.engine = r.engine && b.workload = r.workload && b.threads.IsSome)
        |> List.sortBy (fun b -> b.threads)
        |> List.tryHead
    [ for r in results ->
        match r.threads, baseOf r with
        | Some n, Some b when r.median_ms > 0.0 ->
            let speedup =
                match r.round_speedups with
                | Some ratios when not ratios.IsEmpty -> medianOf ratios
                | _ -> b.median_ms / r.median_ms
            { r with speedup = Some speedup; efficiency = Some(speedup / (float n / float b.threads.Value)) }
        | _ -> r ]

/// A row's speed-up as the scaling table prints it: "1.85x", and with interleaved rounds that differ, their range
/// after it ("1.85x (1.62-1.97)").
let speedupText (r: Result) =
    match r.speedup, r.round_speedups with
    | Some s, Some ratios when not ratios.IsEmpty && List.min ratios <> List.max ratios ->
        sprintf "%.2fx (%.2f-%.2f)" s (List.min ratios) (List.max ratios)
    | Some s, _ -> sprintf "%.2fx" s
    | None, _ -> ""

/// The scaling table of rows filled by withScaling: per engine and workload, one line per thread count with wall and
/// CPU time, the CPU time against the fewest threads (above 1: work the threads add, such as waiting or spinning),
/// speed-up, efficiency, the share of the threads' time spent computing and the load average at the time.
let scalingTable (results: Result list) =
    let baseCpu (r: Result) =
        results |> List.filter (fun b -> b.engine = r.engine && b.workload = r.workload) |> List.minBy (fun b -> b.threads) |> _.cpu_ms
    let opt (f: float -> string) = Option.map f >> Option.defaultValue ""
    [ yield "| engine | workload | threads | wall ms | CPU ms | CPU vs fewest | speed-up | efficiency | CPU share | load |"
      yield "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
      for r in results |> List.sortBy (fun r -> r.engine, r.workload, r.threads) ->
          sprintf "| %s | %s | %s | %.1f | %.1f | %.2f | %s | %s | %s | %s |" r.engine r.workload
              (r.threads |> Option.map string |> Option.defaultValue "") r.median_ms r.cpu_ms (r.cpu_ms / baseCpu r)
              (speedupText r) (opt (sprintf "%.0f%%" << (*) 100.0) r.efficiency)
              (r.cpu_share |> Option.map (fun v -> sprintf "%.0f%%%s" (100.0 * v) (if r.warning.IsSome then " (!)" else "")) |> Option.defaultValue "")
              (opt (sprintf "%.2f") r.load_average) ]
    |> String.concat Environment.NewLine

/// The thread counts of `bench --threads`: one count N or a comma-separated list (e.g. 1,2,4), each in
/// 1..Parallelism.Limit; None when the text is not such a list.
let parseThreadCounts (text: string) : int list option =
    let parts = text.Split(',', StringSplitOptions.TrimEntries)
    let parsed = parts |> Array.map (fun p -> match Int32.TryParse p with | true, n when n >= 1 && n <= Parallelism.Limit -> Some n | _ -> None)
    if parts.Length > 0 && Array.forall Option.isSome parsed then Some(parsed |> Array.choose id |> Array.distinct |> List.ofArray) else None

/// The thread counts `--scaling` sweeps: 1, 2, ... up to the logical processors.
let scalingCounts () = [ 1 .. Environment.ProcessorCount ]

type Arguments =
    | Device of string
    | Json of string
    | Runs of int
    | Warmup of int
    | Workload of string list
    | Threads of counts: string
    | Scaling

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Device _ -> "engine to measure: all (default with one thread count: every available engine but ilgpu-cpu and a CPU-only opencl) or a name (auto, managed, cuda, opencl, ilgpu-cpu); with several thread counts (--threads 1,2,... or --scaling) only managed, the default then"
            | Json _ -> "also write the results as a JSON list to this file"
            | Runs _ -> "timed runs per workload after warm-up (default 5; the median is reported)"
            | Warmup _ -> "untimed warm-up runs before the timed ones (default: at least 3 and half a second, so the JIT has tiered the hot loops up; 1 suits a workload that takes minutes a run, e.g. train-cnn2d on a CPU OpenCL device; 0 times the first run, compilation included)"
            | Workload _ -> sprintf "only these workloads (default all: %s)" (workloads |> List.map _.Name |> String.concat ", ")
            | Threads _ -> "threads of the managed engine (and every parallel step): N, or a list 1,2,4 to measure each workload at each count and print the scaling table (default: all logical processors)"
            | Scaling -> "measure every workload on the managed engine at 1, 2, ... up to the logical processors and print the scaling table (speed-up and efficiency against 1 thread)"

/// The option table of `bench` (OptionRules).
let private optionTable (arg: Arguments) : OptionRules.Check list =
    match arg with
    | Json _ -> []
    | Device name -> [ OptionRules.oneOf ("all" :: List.ofSeq Engines.Names) name ]
    | Runs n -> [ OptionRules.atLeast 1 n ]
    | Warmup n -> [ OptionRules.atLeast 0 n ]
    | Workload names -> [ for n in names -> OptionRules.oneOf (workloads |> List.map _.Name) n ]
    | Threads text ->
        [ OptionRules.InDomain((parseThreadCounts text).IsSome, sprintf "a thread count or a comma-separated list of them, each an integer in 1..%d" Parallelism.Limit, text) ]
    | Scaling -> []

/// Entry point of `hybrid bench`: writes the table (and where the JSON went) to `out`. Exit codes: 0 done; 2 bad
/// options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) =
    Command.run<Arguments> "bench" out error argv (fun args ->
        OptionRules.enforce args optionTable
        if args.Contains Scaling && args.Contains Threads then
            invalidArg "threads" "give either --scaling (1 up to every logical processor) or --threads 1,2,..., not both"
        let counts =
            if args.Contains Scaling then scalingCounts ()
            else args.TryGetResult Threads |> Option.bind parseThreadCounts |> Option.defaultValue [ Parallelism.MaxThreads ]
        let scaling = counts.Length > 1
        match args.TryGetResult Threads with
        | Some text when text.Split(',').Length > counts.Length ->
            error.WriteLine(
                sprintf "bench: note: --threads %s repeats a count; each is measured once (%s)%s" text (String.Join(",", counts))
                    (if scaling then "" else ": one count, so no thread sweep and no scaling table"))
        | _ -> ()
        let device = args.GetResult(Device, defaultValue = (if scaling then "managed" else "all"))
        if scaling && device.Trim().ToLowerInvariant() <> "managed" then
            invalidArg "device" (sprintf "--device %s: the scaling sweep measures the managed engine, whose thread count --threads sets; give --device managed or leave it out" device)
        let runs = args.GetResult(Runs, defaultValue = 5)
        let warmup = args.TryGetResult Warmup
        if scaling && warmup = Some 0 then
            error.WriteLine "bench: note: --warmup 0 in a thread sweep leaves first-touch and JIT costs to whichever count runs first; keep at least 1"
        let selected =
            match args.TryGetResult Workload with
            | None -> workloads
            | Some names -> workloads |> List.filter (fun w -> List.contains w.Name names)
        let measureAt name (n: int) (ws: BenchWorkloads.Workload list) =
            [ use _ = OptionRules.threadScope (Some n)
              use e = Engines.Create(name, fun line -> error.WriteLine("bench: " + line))
              for w in ws do
                  if not w.ManagedOnly || e :? Hybrid.Dsp.Managed.ManagedEngine then yield measure e runs warmup w
                  else error.WriteLine(sprintf "bench: %s measures the machine on the managed engine only; skipped on %s" w.Name e.Name) ]
        let results =
            [ for name in engineNames device do
                  if not scaling then yield! measureAt name counts.Head selected
                  else
                      // One managed engine whose thread count changes run by run: every workload's counts are measured
                      // interleaved, so the rows compared share the load other processes put on the machine.
                      use _ = OptionRules.threadScope (Some(List.max counts))
                      use e = new Hybrid.Dsp.Managed.ManagedEngine()
                      for w in selected do
                          yield! measureInterleaved e counts runs warmup w ]
            |> withScaling
        out.WriteLine(table results)
        if scaling then
            out.WriteLine()
            out.WriteLine(scalingTable results)
        let warned = results |> List.filter (fun r -> r.warning.IsSome)
        if not warned.IsEmpty then
            out.WriteLine(sprintf "warning: %d workload%s ran on cores shared with other processes (CPU share below %.0f%%; see the warnings above): their wall times overstate the cost"
                              warned.Length (if warned.Length > 1 then "s" else "") (100.0 * minimumCpuShare))
        match args.TryGetResult Json with
        | Some path ->
            let options = JsonSerializerOptions(WriteIndented = true)
            options.DefaultIgnoreCondition <- Serialization.JsonIgnoreCondition.WhenWritingNull
            File.WriteAllText(path, JsonSerializer.Serialize(results, options))
            out.WriteLine(sprintf "bench: wrote %s" path)
        | None -> ()
        0)
