/// The workloads `hybrid bench` times (W1/W2 log-mel and MFCC, batched rFFT, one training epoch, scattering, the
/// machine's compute and memory ceilings), with their stages timed when HYBRID_BENCH_PROFILE=1 (BenchStages).
module Hybrid.Cli.BenchWorkloads

open System
open Hybrid.Dsp
open Hybrid.Cli.BenchStages

/// Whether the log-mel workloads run the unfused chain (one engine call per stage: Stft, Mel, PowerToDb, Mfcc) instead
/// of the fused operations (IDspOps.LogMelSpectrogram, IDspOps.Mfcc from clips): HYBRID_BENCH_CHAIN=1, to compare the
/// two on one build. Both give the same values on the managed engine.
let chained () = Environment.GetEnvironmentVariable "HYBRID_BENCH_CHAIN" = "1"

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
      /// Bytes a run reads and writes for GB/s, when that is what the workload measures (ceiling-memory).
      Bytes: float option
      /// Measured on the managed engine only (the machine's own ceilings, which run plain parallel C# under the
      /// engine's thread count): other engines skip it.
      ManagedOnly: bool
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

/// Log-mel (and optionally MFCC) over chunks of clips: STFT power -> mel -> power_to_db (-> DCT), as one fused engine
/// call per chunk (IDspOps.LogMelSpectrogram or the MFCC from clips), or with HYBRID_BENCH_CHAIN=1 as one call per stage
/// (`chained`). The clips live in chunk tensors of `chunk` rows so every engine can work one chunk at a time; the
/// chain's spectrogram (and, for MFCC, log-mel) of a chunk is scratch reused by every chunk, so peak memory stays near
/// input + output.
let private logMelWorkload name clips samples sampleRate (stft: StftConfig) (mel: MelConfig) (nMfcc: int option) chunk =
    { Name = name
      Clips = clips
      AudioSeconds = float clips * float samples / float sampleRate
      Samples = 0
      Flops = None
      Bytes = None
      ManagedOnly = false
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
            let chain = chained ()
            let runChain i =
                let rows = inputs.[i].Shape.[0]
                let spectrum = scratchOf rows stft.Bins
                stage "stft" (fun () -> engine.Dsp.Stft(stft, inputs.[i], spectrum, SpectrumKind.Power))
                match nMfcc with
                | Some n ->
                    let logMel = scratchOf rows mel.NMels
                    stage "mel" (fun () -> engine.Dsp.Mel(mel, stft.NFft, spectrum, logMel))
                    stage "power_to_db" (fun () -> engine.Dsp.PowerToDb(db, logMel, logMel))
                    stage "mfcc" (fun () -> engine.Dsp.Mfcc(n, 0.0f, logMel, outputs.[i]))
                | None ->
                    stage "mel" (fun () -> engine.Dsp.Mel(mel, stft.NFft, spectrum, outputs.[i]))
                    stage "power_to_db" (fun () -> engine.Dsp.PowerToDb(db, outputs.[i], outputs.[i]))
            let runFused i =
                match nMfcc with
                | Some n -> stage "fused_mfcc" (fun () -> engine.Dsp.Mfcc(stft, mel, db, n, 0.0f, inputs.[i], outputs.[i], null, SpectrumKind.Power))
                | None -> stage "fused_log_mel" (fun () -> engine.Dsp.LogMelSpectrogram(stft, mel, db, inputs.[i], outputs.[i], SpectrumKind.Power))
            let run () =
                for i in 0 .. inputs.Length - 1 do
                    if chain then runChain i else runFused i
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
      Bytes = None
      ManagedOnly = false
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
      Bytes = None
      ManagedOnly = false
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
      Bytes = None
      ManagedOnly = false
      Setup =
        fun engine ->
            // Profiling times every network operation of the step (BenchStages.ProfiledEngine).
            let engine = if profiling () then new ProfiledEngine(engine) :> Engine else engine
            let epoch = Hybrid.Classifier.Bench.prepareCnn2d engine
            (fun () -> epoch () |> ignore), ignore }

/// The managed engine's current thread count (the ceilings split their work into that many equal parts).
let private threadsOf (engine: Engine) =
    match engine with
    | :? Hybrid.Dsp.Managed.ManagedEngine as m -> m.MaxThreads
    | _ -> Environment.ProcessorCount

/// Runs part(p, parts) for p in [0, parts) on `parts` threads at once (one part a thread, the split fixed).
let private splitOver (parts: int) (part: int -> int -> unit) =
    Threading.Tasks.Parallel.For(0, parts, Threading.Tasks.ParallelOptions(MaxDegreeOfParallelism = parts), (fun p -> part p parts))
    |> ignore

/// `ceiling-compute`: the speed-up the machine itself gives from 1 to N threads on work that shares nothing: 2^28
/// vector multiply-adds (256-bit, or the hardware's vector width) in 8 independent chains in registers, split into
/// equal parts, one a thread; no memory traffic, no synchronisation but the loop's end. No workload can scale better
/// on the same machine at the same moment: a virtual machine whose vCPUs share physical cores (or whose host clocks
/// down with more cores busy) shows it here. GFLOP/s counts a multiply and an add per lane.
let private computeCeiling =
    let iterations = 1 <<< 28
    let chains = 8
    { Name = "ceiling-compute"
      Clips = 0
      AudioSeconds = 0.0
      Samples = 0
      Flops = Some(2.0 * float Numerics.Vector<float32>.Count * float iterations)
      Bytes = None
      ManagedOnly = true
      Setup =
        fun engine ->
            let sink = Array.zeroCreate<float32> (4 * Parallelism.Limit)
            let run () =
                splitOver (threadsOf engine) (fun p parts ->
                    let count = iterations / parts + (if p < iterations % parts then 1 else 0)
                    let m = Numerics.Vector<float32>(0.999f)
                    let c = Numerics.Vector<float32>(0.001f)
                    let mutable a0 = Numerics.Vector<float32>(1.0f)
                    let mutable a1 = a0
                    let mutable a2 = a0
                    let mutable a3 = a0
                    let mutable a4 = a0
                    let mutable a5 = a0
                    let mutable a6 = a0
                    let mutable a7 = a0
                    for _ in 1 .. count / chains do
                        a0 <- a0 * m + c
                        a1 <- a1 * m + c
                        a2 <- a2 * m + c
                        a3 <- a3 * m + c
                        a4 <- a4 * m + c
                        a5 <- a5 * m + c
                        a6 <- a6 * m + c
                        a7 <- a7 * m + c
                    sink.[4 * p] <- Numerics.Vector.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7))
            run, ignore }

/// `ceiling-memory`: the speed-up the machine's memory gives from 1 to N threads: copies a 200 MB array into another
/// (rfft-256's input and output sizes), split into equal contiguous parts, one a thread. Workloads that stream more
/// data than the caches hold (rfft-2048, W2's long tracks) are bounded by it rather than by ceiling-compute.
let private memoryCeiling =
    let count = 50_000_000
    { Name = "ceiling-memory"
      Clips = 0
      AudioSeconds = 0.0
      Samples = 0
      Flops = None
      Bytes = Some(2.0 * 4.0 * float count)
      ManagedOnly = true
      Setup =
        fun engine ->
            let source = Array.init count float32
            let target = Array.zeroCreate<float32> count
            let run () =
                splitOver (threadsOf engine) (fun p parts ->
                    let s = int (int64 count * int64 p / int64 parts)
                    let e = int (int64 count * int64 (p + 1) / int64 parts)
                    ReadOnlySpan(source, s, e - s).CopyTo(Span(target, s, e - s)))
            run, ignore }

/// Every workload, in table order. Add a workload by adding one line here.
let all: Workload list =
    [ logMelWorkload "w1-logmel" 3000 8192 8000 w1Stft w1Mel None 64
      logMelWorkload "w1-mfcc" 3000 8192 8000 w1Stft w1Mel (Some 13) 64
      logMelWorkload "w2-logmel" 64 (30 * 22050) 22050 w2Stft w2Mel None 2
      rfftWorkload 256 195_000
      rfftWorkload 2048 24_375
      trainWorkload
      scatteringWorkload
      computeCeiling
      memoryCeiling ]

