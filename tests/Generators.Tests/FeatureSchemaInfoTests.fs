/// FeatureSchemaInfo and its executor: Extract equals the IDspOps calls done by hand, shares one STFT, and
/// rejects mismatched input; the constructor rejects inconsistent layouts.
module Hybrid.GeneratorsTests.FeatureSchemaInfoTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.Features.Schemas
open Hybrid.TestSupport
open Hybrid.GeneratorsTests.FakeEngine

/// A statistic computed independently of the executor (double accumulation, population std).
let stat (s: Statistic) (values: float32[]) =
    match s with
    | Statistic.Mean -> values |> Array.averageBy float |> float32
    | Statistic.Std ->
        let m = values |> Array.averageBy float
        sqrt (values |> Array.averageBy (fun v -> (float v - m) ** 2.0)) |> float32
    | Statistic.Min -> Array.min values
    | Statistic.Max -> Array.max values
    | _ -> failwithf "no statistic %A" s

/// Deterministic test clips: two tones and seeded noise per clip.
let clips batch samples sampleRate =
    let rng = Random(1234)
    Array.init (batch * samples) (fun i ->
        let b, n = i / samples, i % samples
        let t = float n / float sampleRate
        float32 (0.5 * sin (2.0 * Math.PI * (220.0 * float (b + 1)) * t) + 0.2 * sin (2.0 * Math.PI * 1375.0 * t) + 0.05 * (rng.NextDouble() - 0.5)))

/// Runs a computation with the clips uploaded to the engine and helpers for by-hand calls.
type Hand(engine: Engine, x: float32[], batch: int, samples: int) =
    let input = engine.FromHost(ReadOnlySpan x, batch, samples)
    member _.Clips = input
    member _.Dsp = engine.Dsp
    /// Allocates, fills by `f` and downloads a tensor.
    member _.Run (shape: int[]) (f: Tensor -> unit) =
        use t = engine.Allocate shape
        f t
        t.ToArray()
    /// Allocates a tensor filled by `f` and keeps it on the engine.
    member _.Keep (shape: int[]) (f: Tensor -> unit) =
        let t = engine.Allocate shape
        f t
        t
    interface IDisposable with
        member _.Dispose() = input.Dispose()

/// Row block [b] of a [batch, rows, frames] array, as rows of frames.
let rowsOf (a: float32[]) (rows: int) (frames: int) b =
    [| for r in 0 .. rows - 1 -> a.[(b * rows + r) * frames .. (b * rows + r + 1) * frames - 1] |]

/// The genre schema computed with IDspOps calls by hand.
let handGenre (engine: Engine) (x: float32[]) batch samples =
    let p = GenreFeatures.Info.Parameters
    use h = new Hand(engine, x, batch, samples)
    let f = p.Stft.FrameCount samples
    let bins = p.Stft.Bins
    use mag = h.Keep [| batch; bins; f |] (fun t -> h.Dsp.Stft(p.Stft, h.Clips, t, SpectrumKind.Magnitude))
    use pow = h.Keep [| batch; bins; f |] (fun t -> h.Dsp.Stft(p.Stft, h.Clips, t, SpectrumKind.Power))
    let chroma =
        h.Run [| batch; 12; f |] (fun t ->
            if p.EstimateTuning then Tuning.ChromaStft(engine, pow, p.SampleRate, p.NFft, 12, t) |> ignore
            else h.Dsp.Chroma(p.SampleRate, p.NFft, 12, float32 p.Tuning, pow, t))
    let rms = h.Run [| batch; f |] (fun t -> h.Dsp.Rms(p.NFft, p.HopLength, p.Center, p.PadMode, h.Clips, t))
    let centroid = h.Run [| batch; f |] (fun t -> h.Dsp.SpectralCentroid(p.SampleRate, p.NFft, mag, t))
    let bandwidth = h.Run [| batch; f |] (fun t -> h.Dsp.SpectralBandwidth(p.SampleRate, p.NFft, 2.0f, mag, t))
    let rolloff = h.Run [| batch; f |] (fun t -> h.Dsp.SpectralRolloff(p.SampleRate, p.NFft, float32 p.RollPercent, mag, t))
    let zcr = h.Run [| batch; f |] (fun t -> h.Dsp.ZeroCrossingRate(p.NFft, p.HopLength, p.Center, h.Clips, t))
    use mel = h.Keep [| batch; p.NMels; f |] (fun t -> h.Dsp.Mel(p.Mel, p.NFft, pow, t))
    use db = h.Keep [| batch; p.NMels; f |] (fun t -> h.Dsp.PowerToDb(p.Db, mel, t))
    let mfcc = h.Run [| batch; 20; f |] (fun t -> h.Dsp.Mfcc(20, float32 p.Lifter, db, t))
    [| for b in 0 .. batch - 1 do
           yield stat Statistic.Mean chroma.[b * 12 * f .. (b + 1) * 12 * f - 1]
           for series in [ rms; centroid; bandwidth; rolloff; zcr ] do
               yield stat Statistic.Mean series.[b * f .. (b + 1) * f - 1]
           for row in rowsOf mfcc 20 f b do
               yield stat Statistic.Mean row |]

/// The logmel-fsdd schema by hand: power STFT, mel, power_to_db, every frame kept.
let handLogMel (engine: Engine) (x: float32[]) batch samples =
    let p = LogMelFsddFeatures.Info.Parameters
    use h = new Hand(engine, x, batch, samples)
    let f = p.Stft.FrameCount samples
    use pow = h.Keep [| batch; p.Stft.Bins; f |] (fun t -> h.Dsp.Stft(p.Stft, h.Clips, t, SpectrumKind.Power))
    use mel = h.Keep [| batch; p.NMels; f |] (fun t -> h.Dsp.Mel(p.Mel, p.NFft, pow, t))
    h.Run [| batch; p.NMels; f |] (fun t -> h.Dsp.PowerToDb(p.Db, mel, t))

/// The mfcc-mean40 schema by hand.
let handMfcc40 (engine: Engine) (x: float32[]) batch samples =
    let p = MfccMean40Features.Info.Parameters
    use h = new Hand(engine, x, batch, samples)
    let f = p.Stft.FrameCount samples
    use pow = h.Keep [| batch; p.Stft.Bins; f |] (fun t -> h.Dsp.Stft(p.Stft, h.Clips, t, SpectrumKind.Power))
    use mel = h.Keep [| batch; p.NMels; f |] (fun t -> h.Dsp.Mel(p.Mel, p.NFft, pow, t))
    use db = h.Keep [| batch; p.NMels; f |] (fun t -> h.Dsp.PowerToDb(p.Db, mel, t))
    let mfcc = h.Run [| batch; 40; f |] (fun t -> h.Dsp.Mfcc(40, float32 p.Lifter, db, t))
    [| for b in 0 .. batch - 1 do
           for row in rowsOf mfcc 40 f b -> stat Statistic.Mean row |]

/// The driver-compiled "Everything" schema (FeatureSchemaGeneratorTests.everythingSource) by hand:
/// statistics other than the mean, per-bin chroma, deltas, flatness, linear mel and framing overrides.
let handEverything (info: FeatureSchemaInfo) (engine: Engine) (x: float32[]) batch samples =
    let p = info.Parameters
    use h = new Hand(engine, x, batch, samples)
    let f = p.Stft.FrameCount samples
    let bins = p.Stft.Bins
    use mag = h.Keep [| batch; bins; f |] (fun t -> h.Dsp.Stft(p.Stft, h.Clips, t, SpectrumKind.Magnitude))
    use pow = h.Keep [| batch; bins; f |] (fun t -> h.Dsp.Stft(p.Stft, h.Clips, t, SpectrumKind.Power))
    let centroid = h.Run [| batch; f |] (fun t -> h.Dsp.SpectralCentroid(p.SampleRate, p.NFft, mag, t))
    let bandwidth = h.Run [| batch; f |] (fun t -> h.Dsp.SpectralBandwidth(p.SampleRate, p.NFft, 2.0f, mag, t))
    let rolloff = h.Run [| batch; f |] (fun t -> h.Dsp.SpectralRolloff(p.SampleRate, p.NFft, float32 p.RollPercent, mag, t))
    let flatness = h.Run [| batch; f |] (fun t -> h.Dsp.SpectralFlatness(1e-10f, 2.0f, mag, t))
    let fz = 1 + samples / 128
    let zcr = h.Run [| batch; fz |] (fun t -> h.Dsp.ZeroCrossingRate(1024, 128, p.Center, h.Clips, t))
    let rms = h.Run [| batch; f |] (fun t -> h.Dsp.Rms(p.NFft, p.HopLength, p.Center, p.PadMode, h.Clips, t))
    let chroma = h.Run [| batch; 12; f |] (fun t -> h.Dsp.Chroma(p.SampleRate, p.NFft, 12, float32 p.Tuning, pow, t))
    use mel = h.Keep [| batch; p.NMels; f |] (fun t -> h.Dsp.Mel(p.Mel, p.NFft, pow, t))
    let melHost = mel.ToArray()
    use db = h.Keep [| batch; p.NMels; f |] (fun t -> h.Dsp.PowerToDb(p.Db, mel, t))
    use mfcc = h.Keep [| batch; 13; f |] (fun t -> h.Dsp.Mfcc(13, float32 p.Lifter, db, t))
    let mfccHost = mfcc.ToArray()
    let delta = h.Run [| batch; 13; f |] (fun t -> h.Dsp.Delta(5, 2, mfcc, t))
    [| for b in 0 .. batch - 1 do
           yield stat Statistic.Std centroid.[b * f .. (b + 1) * f - 1]
           yield stat Statistic.Min bandwidth.[b * f .. (b + 1) * f - 1]
           yield stat Statistic.Max rolloff.[b * f .. (b + 1) * f - 1]
           yield stat Statistic.Mean flatness.[b * f .. (b + 1) * f - 1]
           yield stat Statistic.Mean zcr.[b * fz .. (b + 1) * fz - 1]
           yield stat Statistic.Std rms.[b * f .. (b + 1) * f - 1]
           for row in rowsOf chroma 12 f b -> stat Statistic.Max row
           for row in rowsOf mfccHost 13 f b -> stat Statistic.Mean row
           for row in rowsOf delta 13 f b -> stat Statistic.Std row
           for row in rowsOf melHost p.NMels f b -> stat Statistic.Min row |]

/// The driver-compiled "Everything" schema, compiled once for all engines.
let private everything = lazy (Driver.compileSchema FeatureSchemaGeneratorTests.everythingSource "Everything")

let private extract (engine: Engine) (info: FeatureSchemaInfo) (x: float32[]) batch samples =
    use t = engine.FromHost(ReadOnlySpan x, batch, samples)
    info.Extract(engine, t)

/// Extract versus the by-hand computation on an engine, for every predefined schema and "Everything".
let agreement (engine: unit -> Engine) rtol atol =
    [ testCase "genre equals chroma, rms, spectral stats, ZCR and MFCC means computed by hand" <| fun () ->
          use e = engine ()
          let x = clips 3 6000 22050
          Assertions.allClose rtol atol (handGenre e x 3 6000) (extract e GenreFeatures.Info x 3 6000) "genre"
      testCase "mfcc-mean40 equals 40 MFCC means computed by hand" <| fun () ->
          use e = engine ()
          let x = clips 2 5000 22050
          Assertions.allClose rtol atol (handMfcc40 e x 2 5000) (extract e MfccMean40Features.Info x 2 5000) "mfcc-mean40"
      testCase "logmel-fsdd equals the log-mel image computed by hand" <| fun () ->
          use e = engine ()
          let x = clips 3 8192 8000
          Assertions.allClose rtol atol (handLogMel e x 3 8192) (extract e LogMelFsddFeatures.Info x 3 8192) "logmel-fsdd"
      testCase "raw8192 copies the clips" <| fun () ->
          use e = engine ()
          let x = clips 2 8192 8000
          Expect.sequenceEqual (extract e Raw8192Features.Info x 2 8192) x "raw waveform"
      testCase "a schema with every kind, statistic and option equals its by-hand computation" <| fun () ->
          use e = engine ()
          let info = everything.Force()
          let x = clips 2 4000 16000
          Assertions.allClose rtol atol (handEverything info e x 2 4000) (extract e info x 2 4000) "everything" ]

[<Tests>]
let tests =
    testList "FeatureSchemaInfo" [
        testList "on the fake engine" (agreement (fun () -> new FakeEngine()) 1e-5 1e-5)
        testList "on the managed engine" (agreement (fun () -> new Hybrid.Dsp.Managed.ManagedEngine()) 1e-4 1e-3)
        testList "on ILGPU's CPU accelerator" (agreement (fun () -> Engines.Create "ilgpu-cpu") 1e-4 1e-3)

        testCase "Reads names the librosa parameters a schema's members compute with" <| fun () ->
            let reads (info: FeatureSchemaInfo) = FeatureParameters.Names |> Seq.filter info.Reads |> List.ofSeq
            Expect.sequenceEqual (reads Raw8192Features.Info) [ "sr"; "clip_samples" ] "the waveform reads only the rate and the length"
            Expect.sequenceEqual (reads ScatteringFsddFeatures.Info) [ "sr"; "clip_samples" ] "so does the scattering transform"
            Expect.sequenceEqual
                (reads LogMelFsddFeatures.Info)
                [ "sr"; "clip_samples"; "n_fft"; "hop_length"; "win_length"; "window"; "center"; "pad_mode"; "n_mels"; "fmin"; "fmax"
                  "htk"; "norm"; "power"; "top_db"; "pcen" ]
                "dB mel bands: STFT, mel, power, top_db and PCEN"
            let genre = reads GenreFeatures.Info
            for name in [ "n_mfcc"; "lifter"; "roll_percent"; "tuning"; "top_db" ] do
                Expect.contains genre name (sprintf "genre reads %s" name)
            Expect.isFalse (List.contains "pcen" genre) "MFCCs keep power_to_db: genre does not read pcen"
            Expect.throwsT<ArgumentException> (fun () -> GenreFeatures.Info.Reads "nfft" |> ignore) "an unknown name is refused"

        testCase "genre runs one STFT, one mel filter bank and one MFCC for all its members" <| fun () ->
            use e = new FakeEngine()
            let x = clips 2 4096 22050
            extract e GenreFeatures.Info x 2 4096 |> ignore
            Expect.equal (e.Fake.Calls "Stft") 1 "STFT calls"
            Expect.equal (e.Fake.Calls "Mel") 1 "mel calls"
            Expect.equal (e.Fake.Calls "PowerToDb") 1 "dB calls"
            Expect.equal (e.Fake.Calls "Mfcc") 1 "MFCC calls"

        testCase "MFCCs and their deltas share one MFCC computation" <| fun () ->
            use e = new FakeEngine()
            let info =
                Driver.compileSchema
                    "[FeatureSchema(\"d\", ClipSamples = 8000, NMels = 40)] public partial record D { [Mfcc(13, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; } [MfccDelta(20, Statistic.Mean)] public partial ReadOnlyMemory<float> Delta { get; } [MfccDelta(13, Statistic.Max, Order = 2)] public partial ReadOnlyMemory<float> Delta2 { get; } }"
                    "D"
            extract e info (clips 1 8000 22050) 1 8000 |> ignore
            Expect.equal (e.Fake.Calls "Stft", e.Fake.Calls "Mfcc", e.Fake.Calls "Delta") (1, 1, 2) "STFT, MFCC and delta calls"

        testCase "Extract rejects clips of the wrong length" <| fun () ->
            use e = new FakeEngine()
            use t = e.Allocate [| 2; 8000 |]
            let ex = Driver.throws<SchemaMismatchException> (fun () -> LogMelFsddFeatures.Info.Extract(e, t) |> ignore)
            Expect.equal ex.Message "Feature schema 'logmel-fsdd': clips must have 8192 samples, had 8000; cut or zero-pad them first." "message"

        testCase "Extract rejects a destination of the wrong size" <| fun () ->
            use e = new FakeEngine()
            use t = e.Allocate [| 2; 8192 |]
            let ex = Driver.throws<SchemaMismatchException> (fun () -> Raw8192Features.Info.Extract(e, t, Span(Array.zeroCreate<float32> 8192)))
            Expect.stringContains ex.Message "destination must hold batch x Length = 2 x 8192 = 16384 floats, had 8192" "message"

        testCase "Extract rejects clips living on another engine" <| fun () ->
            use a = new FakeEngine()
            use b = new FakeEngine()
            use t = a.Allocate [| 1; 8192 |]
            Driver.throws<ArgumentException> (fun () -> Raw8192Features.Info.Extract(b, t) |> ignore) |> ignore

        testCase "Extract rejects clips shorter than n_fft when frames are needed" <| fun () ->
            use e = new FakeEngine()
            use t = e.Allocate [| 1; 100 |]
            let info =
                Driver.compileSchema
                    "[FeatureSchema(\"short\", Center = false)] public partial record Short { [SpectralCentroid] public partial float Centroid { get; } }"
                    "Short"
            let ex = Driver.throws<SchemaMismatchException> (fun () -> info.Extract(e, t) |> ignore)
            Expect.equal ex.Message "Feature schema 'short': clips of 100 samples are shorter than n_fft = 2048." "message"

        testCase "an empty batch gives an empty result" <| fun () ->
            use e = new FakeEngine()
            use t = e.Allocate [| 0; 4096 |]
            Expect.isEmpty (GenreFeatures.Info.Extract(e, t)) "no rows"

        testCase "the constructor rejects members that do not tile the row" <| fun () ->
            let members = GenreFeatures.Info.Members |> Seq.toArray
            let names = GenreFeatures.Info.Names |> Seq.toArray
            Driver.throws<ArgumentException> (fun () ->
                FeatureSchemaInfo("bad", typeof<GenreFeatures>, "x", GenreFeatures.Info.Parameters, [| 26 |], names, members.[1..]) |> ignore)
            |> ignore
            Driver.throws<ArgumentException> (fun () ->
                FeatureSchemaInfo("bad", typeof<GenreFeatures>, "x", GenreFeatures.Info.Parameters, [| 25 |], names, members) |> ignore)
            |> ignore

        testCase "Describe lists the parameters and every member of the plan" <| fun () ->
            let text = GenreFeatures.Info.Describe()
            Expect.stringContains text GenreFeatures.Fingerprint "fingerprint"
            Expect.stringContains text "n_fft 2048, hop 512" "parameters"
            Expect.stringContains text "mfcc: Mfcc[20] Mean at 6..26" "MFCC member"
            Expect.stringContains text "chroma_stft: Chroma[12, pooled] Mean at 0..1" "pooled chroma member"
            let image = LogMelFsddFeatures.Info.Describe()
            Expect.stringContains image "log_mel: MelBands[40] TimeSeries x 65 frames at 0..2600" "time-series member"
    ]
