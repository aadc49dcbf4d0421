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

/// One benchmark: what it is called, how much audio a run processes, and how to set it up on an engine.
type Workload =
    { /// JSON key `workload`, e.g. "w1-logmel".
      Name: string
      /// Clips per run (0 when the workload is not clip-shaped).
      Clips: int
      /// Seconds of audio per run (0 when not applicable).
      AudioSeconds: float
      /// Training samples per run (0 when the workload does not train): gives samples_per_s.
      Samples: int
      /// Floating-point operations per run for GFLOP/s, when the workload has a conventional count.
      Flops: float option
      /// Allocates inputs on the engine and returns the timed action (which must synchronise the engine)
      /// and the cleanup.
      Setup: Engine -> (unit -> unit) * (unit -> unit) }

/// Allocates a [rows, columns] tensor filled with deterministic noise in [-0.5, 0.5), generated in slices so no
/// full host copy is held beside the engine's.
let private noiseTensor (engine: Engine) (rng: Random) (rows: int) (columns: int) =
    let t = engine.Allocate(rows, columns)
    let slice = Array.zeroCreate<float32> (max columns (1 <<< 20) / columns * columns)
    let mutable offset = 0L
    while offset < t.Length do
        let count = int (min (int64 slice.Length) (t.Length - offset))
        for i in 0 .. count - 1 do
            slice.[i] <- float32 (rng.NextDouble() - 0.5)
        t.CopyFrom(ReadOnlySpan(slice, 0, count), offset)
        offset <- offset + int64 count
    t

/// Log-mel (and optionally MFCC) over chunks of clips: STFT power -> mel -> power_to_db (-> DCT). The clips
/// live in chunk tensors of `chunk` rows so every engine can work one chunk at a time; the spectrogram (and,
/// for MFCC, the log-mel) of a chunk is scratch reused by every chunk, so peak memory stays near input + output.
let private logMelWorkload name clips samples sampleRate (stft: StftConfig) (mel: MelConfig) (nMfcc: int option) chunk =
    { Name = name
      Clips = clips
      AudioSeconds = float clips * float samples / float sampleRate
      Samples = 0
      Flops = None
      Setup =
        fun engine ->
            let rng = Random 1234
            let inputs = [| for start in 0 .. chunk .. clips - 1 -> noiseTensor engine rng (min chunk (clips - start)) samples |]
            let frames = stft.FrameCount samples
            let scratch = Collections.Generic.Dictionary<int * int, Tensor>()
            let scratchOf rows features =
                match scratch.TryGetValue((rows, features)) with
                | true, t -> t
                | _ ->
                    let t = engine.Allocate(rows, features, frames)
                    scratch.[(rows, features)] <- t
                    t
            let outputs =
                inputs |> Array.map (fun t -> engine.Allocate(t.Shape.[0], defaultArg nMfcc mel.NMels, frames))
            let db = DbConfig()
            let run () =
                for i in 0 .. inputs.Length - 1 do
                    let rows = inputs.[i].Shape.[0]
                    let spectrum = scratchOf rows stft.Bins
                    engine.Dsp.Stft(stft, inputs.[i], spectrum, SpectrumKind.Power)
                    match nMfcc with
                    | Some n ->
                        let logMel = scratchOf rows mel.NMels
                        engine.Dsp.Mel(mel, stft.NFft, spectrum, logMel)
                        engine.Dsp.PowerToDb(db, logMel, logMel)
                        engine.Dsp.Mfcc(n, 0.0f, logMel, outputs.[i])
                    | None ->
                        engine.Dsp.Mel(mel, stft.NFft, spectrum, outputs.[i])
                        engine.Dsp.PowerToDb(db, outputs.[i], outputs.[i])
                engine.Synchronize()
            let cleanup () =
                for t in Seq.concat [ inputs; outputs; Array.ofSeq scratch.Values ] do
                    t.Dispose()
            run, cleanup }

/// Batched real FFT of length n over `count` rows; GFLOP/s counted as 2.5 n log2 n per transform.
let private rfftWorkload (n: int) (count: int) =
    { Name = sprintf "rfft-%d" n
      Clips = 0
      AudioSeconds = 0.0
      Samples = 0
      Flops = Some(2.5 * float n * Math.Log2(float n) * float count)
      Setup =
        fun engine ->
            let input = noiseTensor engine (Random 1234) count n
            let output = engine.Allocate(count, n / 2 + 1, 2)
            let run () =
                engine.Dsp.Rfft(input, output)
                engine.Synchronize()
            run, (fun () -> input.Dispose(); output.Dispose()) }

/// `scattering-fsdd`: kymatio's spoken-digit features, Scattering1D with J 8, Q 12 (T 2^J, order 2) of 3,000 clips of
/// 8,192 samples at 8 kHz, in chunks of 256 clips (input and [256, 337, 32] output per chunk).
let private scatteringWorkload =
    let clips, samples, chunk = 3000, 8192, 256
    let config = ScatteringConfig(8, 12)
    { Name = "scattering-fsdd"
      Clips = clips
      AudioSeconds = float clips * float samples / 8000.0
      Samples = 0
      Flops = None
      Setup =
        fun engine ->
            let bank = Filters.Scattering1D(config, samples)
            let rng = Random 1234
            let inputs = [| for start in 0 .. chunk .. clips - 1 -> noiseTensor engine rng (min chunk (clips - start)) samples |]
            let outputs = inputs |> Array.map (fun t -> engine.Allocate(t.Shape.[0], bank.Paths.Count, bank.Frames))
            let run () =
                for i in 0 .. inputs.Length - 1 do
                    engine.Dsp.Scattering1D(config, inputs.[i], outputs.[i])
                engine.Synchronize()
            run, (fun () -> for t in Array.append inputs outputs do t.Dispose()) }

let private w1Stft = StftConfig(256, 128, 256, WindowKind.Hann, true, PadMode.Constant)
let private w1Mel = MelConfig(8000, 40, 0.0, Nullable 4000.0)
let private w2Stft = StftConfig(2048, 512, 2048, WindowKind.Hann, true, PadMode.Constant)
let private w2Mel = MelConfig(22050, 128)

/// `train-cnn2d`: one epoch of the reference CNN (issue 5) on 2,700 log-mel-shaped images of 1 x 40 x 65, batch 64,
/// forward, backward and Adam step; reported as training samples per second.
let private trainWorkload =
    { Name = "train-cnn2d"
      Clips = 0
      AudioSeconds = 0.0
      Samples = 2700
      Flops = None
      Setup = fun engine -> (let epoch = Hybrid.Classifier.Bench.prepareCnn2d engine in (fun () -> epoch () |> ignore), ignore) }

/// Every workload, in table order. Add a workload by adding one line here.
let workloads: Workload list =
    [ logMelWorkload "w1-logmel" 3000 8192 8000 w1Stft w1Mel None 64
      logMelWorkload "w1-mfcc" 3000 8192 8000 w1Stft w1Mel (Some 13) 64
      logMelWorkload "w2-logmel" 64 (30 * 22050) 22050 w2Stft w2Mel None 2
      rfftWorkload 256 195_000
      rfftWorkload 2048 24_375
      trainWorkload
      scatteringWorkload ]

/// One measured row of the table / JSON.
type Result =
    { engine: string
      device: string
      workload: string
      median_ms: float
      clips_per_s: float option
      audio_s_per_s: float option
      gflops: float option
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
      /// cpu_ms / (median_ms * threads): the share of its threads' time the run spent computing (cpuShare).
      cpu_share: float option
      /// The contention warning (contentionWarning), when the share is below minimumCpuShare.
      warning: string option }

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

/// The kernel's peak resident set of this process (VmHWM in /proc/self/status) in bytes, when readable.
let private residentPeak () =
    try
        File.ReadAllLines "/proc/self/status"
        |> Array.tryFind (fun l -> l.StartsWith "VmHWM:")
        |> Option.map (fun l -> int64 (l.Substring(6).Trim().Split(' ').[0]) * 1024L)
    with _ ->
        None

/// Resets the kernel's peak resident set of this process (Linux 4.0+: "5" to /proc/self/clear_refs); false when
/// the system offers no such reset.
let private resetResidentPeak () =
    try
        File.WriteAllText("/proc/self/clear_refs", "5")
        (residentPeak ()).IsSome
    with _ ->
        false

/// The peak working set in MB while `action` runs. On Linux the kernel keeps the peak (VmHWM), reset before the
/// action and read after it, so measuring costs nothing during the timed runs; elsewhere a thread samples the working
/// set every 5 ms (which takes CPU time from the workload on a small machine).
let private peakDuring (action: unit -> unit) =
    use proc = Process.GetCurrentProcess()
    if resetResidentPeak () then
        action ()
        proc.Refresh()
        let peak = residentPeak () |> Option.defaultValue 0L
        float (max peak proc.WorkingSet64) / 1048576.0
    else
        let mutable peak = 0L
        use stop = new ManualResetEventSlim(false)
        let sampler =
            Thread(
                (fun () ->
                    while not (stop.Wait 5) do
                        proc.Refresh()
                        peak <- max peak proc.WorkingSet64),
                IsBackground = true
            )
        sampler.Start()
        action ()
        proc.Refresh()
        peak <- max peak proc.WorkingSet64
        stop.Set()
        sampler.Join()
        float peak / 1048576.0

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

/// Times one workload on one engine: warm-up runs, then the median of `runs` runs; on an ILGPU engine one more run
/// counts its host/device transfers.
let measure (engine: Engine) (runs: int) (w: Workload) =
    // Return the previous workload's memory to the system so the peak below is this workload's own.
    Runtime.GCSettings.LargeObjectHeapCompactionMode <- Runtime.GCLargeObjectHeapCompactionMode.CompactOnce
    GC.Collect()
    GC.WaitForPendingFinalizers()
    GC.Collect()
    let mutable times = []
    let mutable cpu = []
    let mutable transfers = None
    use proc = Process.GetCurrentProcess()
    let peak =
        peakDuring (fun () ->
            let run, cleanup = w.Setup engine
            try
                // Warm up until the JIT has tiered the hot loops up: at least 3 runs and half a second.
                let warm = Stopwatch.StartNew()
                let mutable warmRuns = 0
                while warmRuns < 3 || warm.ElapsedMilliseconds < 500L do
                    run ()
                    warmRuns <- warmRuns + 1
                for _ in 1..runs do
                    proc.Refresh()
                    let cpu0 = proc.TotalProcessorTime
                    let sw = Stopwatch.StartNew()
                    run ()
                    times <- sw.Elapsed.TotalMilliseconds :: times
                    proc.Refresh()
                    cpu <- (proc.TotalProcessorTime - cpu0).TotalMilliseconds :: cpu
                match engine with
                | :? IlgpuEngine as ilgpu -> transfers <- Some(countTransfers ilgpu run)
                | _ -> ()
            finally
                cleanup ())
    let medianOf values =
        let sorted = List.sort values |> Array.ofList
        if sorted.Length % 2 = 1 then sorted.[sorted.Length / 2]
        else (sorted.[sorted.Length / 2 - 1] + sorted.[sorted.Length / 2]) / 2.0
    let median = medianOf times
    // CPU time tells how much of the wall time was spent computing when other processes share the cores.
    let cpuMedian = medianOf cpu
    eprintfn "bench: %s on %s: median %.1f ms wall, %.1f ms CPU (all threads)" w.Name engine.Name median cpuMedian
    let threads =
        match engine with
        | :? Hybrid.Dsp.Managed.ManagedEngine as m -> Some m.MaxThreads
        | e when e.Name = "ilgpu-cpu" -> Some Environment.ProcessorCount
        | _ -> None
    let warning = threads |> Option.bind (contentionWarning w.Name engine.Name median cpuMedian)
    warning |> Option.iter (eprintfn "bench: warning: %s")
    let total kind = transfers |> Option.map (fun (counts: TransferCount list) -> counts |> List.filter (fun c -> c.Kind = kind) |> List.sumBy _.Count)
    transfers
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
      samples_per_s = perSecond (float w.Samples)
      peak_mb = peak
      host_to_device = total TransferKind.HostToDevice
      device_to_host = total TransferKind.DeviceToHost
      synchronizations = total TransferKind.Synchronize
      cpu_ms = cpuMedian
      threads = threads
      cpu_share = threads |> Option.bind (cpuShare median cpuMedian)
      warning = warning }

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

type Arguments =
    | Device of string
    | Json of string
    | Runs of int
    | Workload of string list

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Device _ -> "engine to measure: all (default: every available engine but ilgpu-cpu and a CPU-only opencl) or a name (auto, managed, cuda, opencl, ilgpu-cpu)"
            | Json _ -> "also write the results as a JSON list to this file"
            | Runs _ -> "timed runs per workload after warm-up (default 5; the median is reported)"
            | Workload _ -> sprintf "only these workloads (default all: %s)" (workloads |> List.map _.Name |> String.concat ", ")

/// The option table of `bench` (OptionRules).
let private optionTable (arg: Arguments) : OptionRules.Check list =
    match arg with
    | Json _ -> []
    | Device name -> [ OptionRules.oneOf ("all" :: List.ofSeq Engines.Names) name ]
    | Runs n -> [ OptionRules.atLeast 1 n ]
    | Workload names -> [ for n in names -> OptionRules.oneOf (workloads |> List.map _.Name) n ]

/// Entry point of `hybrid bench`: writes the table (and where the JSON went) to `out`. Exit codes: 0 done; 2 bad
/// options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) =
    Command.run<Arguments> "bench" out error argv (fun args ->
        OptionRules.enforce args optionTable
        let runs = args.GetResult(Runs, defaultValue = 5)
        let selected =
            match args.TryGetResult Workload with
            | None -> workloads
            | Some names -> workloads |> List.filter (fun w -> List.contains w.Name names)
        let results =
            [ for name in engineNames (args.GetResult(Device, defaultValue = "all")) do
                  use e = Engines.Create(name, fun line -> error.WriteLine("bench: " + line))
                  for w in selected do
                      let r = measure e runs w
                      yield r ]
        out.WriteLine(table results)
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
