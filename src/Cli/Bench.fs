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

/// One benchmark: what it is called, how much audio a run processes, and how to set it up on an engine.
type Workload =
    { /// JSON key `workload`, e.g. "w1-logmel".
      Name: string
      /// Clips per run (0 when the workload is not clip-shaped).
      Clips: int
      /// Seconds of audio per run (0 when not applicable).
      AudioSeconds: float
      /// Floating-point operations per run for GFLOP/s, when the workload has a conventional count.
      Flops: float option
      /// Allocates inputs on the engine and returns the timed action (which must synchronise the engine)
      /// and the cleanup.
      Setup: Engine -> (unit -> unit) * (unit -> unit) }

/// A deterministic noise batch [clips, samples] in [-0.5, 0.5).
let private noise (clips: int) (samples: int) =
    let rng = Random 1234
    let data = Array.zeroCreate<float32> (clips * samples)
    for i in 0 .. data.Length - 1 do
        data.[i] <- float32 (rng.NextDouble() - 0.5)
    data

/// Allocates the clips in chunks of `chunk` rows (a tensor each), so every engine can run the
/// spectrogram of one chunk at a time and peak memory stays near input + output.
let private chunked (engine: Engine) (data: float32[]) (clips: int) (samples: int) (chunk: int) =
    [| for start in 0 .. chunk .. clips - 1 ->
           let count = min chunk (clips - start)
           engine.FromHost(ReadOnlySpan(data, start * samples, count * samples), count, samples) |]

/// Log-mel (and optionally MFCC) over chunks of clips: STFT power -> mel -> power_to_db (-> DCT).
let private logMelWorkload name clips samples sampleRate (stft: StftConfig) (mel: MelConfig) (nMfcc: int option) chunk =
    { Name = name
      Clips = clips
      AudioSeconds = float clips * float samples / float sampleRate
      Flops = None
      Setup =
        fun engine ->
            let data = noise clips samples
            let inputs = chunked engine data clips samples chunk
            let frames = stft.FrameCount samples
            let spectra = inputs |> Array.map (fun t -> engine.Allocate(t.Shape.[0], stft.Bins, frames))
            let mels = inputs |> Array.map (fun t -> engine.Allocate(t.Shape.[0], mel.NMels, frames))
            let mfccs = nMfcc |> Option.map (fun n -> inputs |> Array.map (fun t -> engine.Allocate(t.Shape.[0], n, frames)))
            let db = DbConfig()
            let run () =
                for i in 0 .. inputs.Length - 1 do
                    engine.Dsp.Stft(stft, inputs.[i], spectra.[i], SpectrumKind.Power)
                    engine.Dsp.Mel(mel, stft.NFft, spectra.[i], mels.[i])
                    engine.Dsp.PowerToDb(db, mels.[i], mels.[i])
                    match mfccs, nMfcc with
                    | Some outs, Some n -> engine.Dsp.Mfcc(n, 0.0f, mels.[i], outs.[i])
                    | _ -> ()
                engine.Synchronize()
            let cleanup () =
                for t in Seq.concat [ inputs; spectra; mels; defaultArg mfccs [||] ] do
                    t.Dispose()
            run, cleanup }

/// Batched real FFT of length n over `count` rows; GFLOP/s counted as 2.5 n log2 n per transform.
let private rfftWorkload (n: int) (count: int) =
    { Name = sprintf "rfft-%d" n
      Clips = 0
      AudioSeconds = 0.0
      Flops = Some(2.5 * float n * Math.Log2(float n) * float count)
      Setup =
        fun engine ->
            let input = engine.FromHost(ReadOnlySpan(noise count n), count, n)
            let output = engine.Allocate(count, n / 2 + 1, 2)
            let run () =
                engine.Dsp.Rfft(input, output)
                engine.Synchronize()
            run, (fun () -> input.Dispose(); output.Dispose()) }

let private w1Stft = StftConfig(256, 128, 256, WindowKind.Hann, true, PadMode.Constant)
let private w1Mel = MelConfig(8000, 40, 0.0, Nullable 4000.0)
let private w2Stft = StftConfig(2048, 512, 2048, WindowKind.Hann, true, PadMode.Constant)
let private w2Mel = MelConfig(22050, 128)

/// Every workload, in table order. Add a workload by adding one line here.
let workloads: Workload list =
    [ logMelWorkload "w1-logmel" 3000 8192 8000 w1Stft w1Mel None 64
      logMelWorkload "w1-mfcc" 3000 8192 8000 w1Stft w1Mel (Some 13) 64
      logMelWorkload "w2-logmel" 64 (30 * 22050) 22050 w2Stft w2Mel None 2
      rfftWorkload 256 195_000
      rfftWorkload 2048 24_375 ]

/// One measured row of the table / JSON.
type Result =
    { engine: string
      device: string
      workload: string
      median_ms: float
      clips_per_s: float option
      audio_s_per_s: float option
      gflops: float option
      peak_mb: float }

/// Samples the process working set every few milliseconds while `action` runs; returns the maximum in MB.
let private peakDuring (action: unit -> unit) =
    use proc = Process.GetCurrentProcess()
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

/// Times one workload on one engine: one warm-up run, then the median of `runs` runs.
let measure (engine: Engine) (runs: int) (w: Workload) =
    GC.Collect()
    GC.WaitForPendingFinalizers()
    let mutable times = []
    let mutable cpu = []
    use proc = Process.GetCurrentProcess()
    let peak =
        peakDuring (fun () ->
            let run, cleanup = w.Setup engine
            try
                run ()
                for _ in 1..runs do
                    proc.Refresh()
                    let cpu0 = proc.TotalProcessorTime
                    let sw = Stopwatch.StartNew()
                    run ()
                    times <- sw.Elapsed.TotalMilliseconds :: times
                    proc.Refresh()
                    cpu <- (proc.TotalProcessorTime - cpu0).TotalMilliseconds :: cpu
            finally
                cleanup ())
    let medianOf values =
        let sorted = List.sort values |> Array.ofList
        if sorted.Length % 2 = 1 then sorted.[sorted.Length / 2]
        else (sorted.[sorted.Length / 2 - 1] + sorted.[sorted.Length / 2]) / 2.0
    let median = medianOf times
    // CPU time tells how much of the wall time was spent computing when other processes share the cores.
    eprintfn "bench: %s on %s: median %.1f ms wall, %.1f ms CPU (all threads)" w.Name engine.Name median (medianOf cpu)
    let perSecond x = if x > 0.0 then Some(x / (median / 1000.0)) else None
    { engine = engine.Name
      device = engine.DeviceName
      workload = w.Name
      median_ms = median
      clips_per_s = perSecond (float w.Clips)
      audio_s_per_s = perSecond w.AudioSeconds
      gflops = w.Flops |> Option.map (fun f -> f / (median / 1000.0) / 1e9)
      peak_mb = peak }

/// The engines named by --device: "all" (every engine that can be created here) or one engine name.
/// "all" leaves out ilgpu-cpu (ILGPU's CPU simulator, a kernel test vehicle about ten times slower than managed):
/// name it to measure it. A named GPU that cannot be created falls back to managed with a warning on stderr.
let private engines (device: string) : Engine list =
    match device with
    | "all" -> [ for name in Engines.Available() do if name <> "ilgpu-cpu" then Engines.Create name ]
    | name when name <> "auto" && Seq.contains name Engines.Names -> [ Engines.Create name ]
    | other -> failwithf "--device: unknown engine '%s' (expected all, %s)" other (Engines.Names |> Seq.filter ((<>) "auto") |> String.concat ", ")

/// Formats the results as a markdown table.
let table (results: Result list) =
    let opt (f: float -> string) = Option.map f >> Option.defaultValue ""
    [ yield "| engine | device | workload | median ms | clips/s | audio s/s | GFLOP/s | peak MB |"
      yield "|---|---|---|---:|---:|---:|---:|---:|"
      for r in results ->
          sprintf "| %s | %s | %s | %.1f | %s | %s | %s | %.0f |" r.engine r.device r.workload r.median_ms
              (opt (sprintf "%.0f") r.clips_per_s) (opt (sprintf "%.0f") r.audio_s_per_s) (opt (sprintf "%.1f") r.gflops) r.peak_mb ]
    |> String.concat Environment.NewLine

type Arguments =
    | Device of string
    | Json of string
    | Runs of int
    | Workload of string list

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Device _ -> "engine to measure: all (default) or an engine name (managed, cuda, opencl, ilgpu-cpu)"
            | Json _ -> "also write the results as a JSON list to this file"
            | Runs _ -> "timed runs per workload after one warm-up run (default 5; the median is reported)"
            | Workload _ -> sprintf "only these workloads (default all: %s)" (workloads |> List.map _.Name |> String.concat ", ")

/// Entry point of `hybrid bench`.
let run (argv: string[]) =
    let parser = ArgumentParser.Create<Arguments>(programName = "hybrid bench")
    try
        let args = parser.ParseCommandLine(argv)
        let runs = args.GetResult(Runs, defaultValue = 5)
        if runs < 1 then failwithf "--runs must be at least 1, was %d" runs
        let selected =
            match args.TryGetResult Workload with
            | None -> workloads
            | Some names ->
                names
                |> List.map (fun n ->
                    match workloads |> List.tryFind (fun w -> w.Name = n) with
                    | Some w -> w
                    | None -> failwithf "--workload: unknown workload '%s'" n)
        let results =
            [ for engine in engines (args.GetResult(Device, defaultValue = "all")) do
                  use e = engine
                  for w in selected do
                      let r = measure e runs w
                      yield r ]
        printfn "%s" (table results)
        match args.TryGetResult Json with
        | Some path ->
            let options = JsonSerializerOptions(WriteIndented = true)
            options.DefaultIgnoreCondition <- Serialization.JsonIgnoreCondition.WhenWritingNull
            File.WriteAllText(path, JsonSerializer.Serialize(results, options))
            printfn "bench: wrote %s" path
        | None -> ()
        0
    with
    | :? ArguParseException as e ->
        eprintfn "%s" e.Message
        (if e.ErrorCode = ErrorCode.HelpText then 0 else 2)
    | Failure message ->
        eprintfn "bench: %s" message
        2
