/// The layout rules shared by the generator and the run time (src/Features.Schemas/Shared/LayoutRules.cs, linked into
/// the generator): a schema declared in C# and the same schema laid out at run time get the same layout for edge
/// cases too, librosa's frame counts included, and a schema the generator refuses is refused at run time with the
/// diagnostic's own message (the run time once accepted several of these).
module Hybrid.GeneratorsTests.LayoutRulesTests

open System
open Expecto
open Hybrid.Features.Schemas
open Hybrid.GeneratorsTests.Driver

/// A schema S with the given attribute parameters around the given members.
let private source (parameters: string) (members: string) =
    sprintf "[FeatureSchema(\"S\"%s)]\npublic sealed partial record S\n{\n%s\n}\n" parameters members

/// Edge cases with the shape librosa gives them (frames = 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop when
/// centred, 1 + (samples - n_fft) // hop when not).
let private edgeCases =
    [ "even n_fft, centred: 1 + 8192 // 128 = 65 frames",
      source ", SampleRate = 8000, ClipSamples = 8192, NFft = 256, HopLength = 128, NMels = 40"
          "[MelBands(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> LogMel { get; }",
      [ 40; 65 ]
      "odd n_fft, centred: 1 + (8192 - 1) // 128 = 64 frames",
      source ", SampleRate = 8000, ClipSamples = 8192, NFft = 255, HopLength = 128, NMels = 40"
          "[MelBands(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> LogMel { get; }",
      [ 40; 64 ]
      "not centred: 1 + (8192 - 256) // 128 = 63 frames",
      source ", SampleRate = 8000, ClipSamples = 8192, NFft = 256, HopLength = 128, NMels = 40, Center = false"
          "[Mfcc(13, Statistic.TimeSeries)] public partial ReadOnlyMemory<float> Mfcc { get; }",
      [ 13; 63 ]
      "a clip of exactly one frame, not centred",
      source ", SampleRate = 8000, ClipSamples = 256, NFft = 256, HopLength = 64, Center = false"
          "[SpectralCentroid(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> Centroid { get; }",
      [ 1 ]
      "ZCR and RMS with their own frame and hop lengths agree with the STFT's frames: 1 + 22050 // 512 = 44",
      source ", SampleRate = 22050, ClipSamples = 22050, NFft = 1024, HopLength = 512"
          ("[ZeroCrossingRate(Statistic.TimeSeries, FrameLength = 2048)] public partial ReadOnlyMemory<float> Zcr { get; }\n"
           + "[Rms(Statistic.TimeSeries, FrameLength = 512, HopLength = 512)] public partial ReadOnlyMemory<float> Energy { get; }\n"
           + "[SpectralRolloff(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> Rolloff { get; }"),
      [ 3; 44 ]
      "per-bin chroma as an image beside deltas whose width equals the clip's 9 frames",
      source ", SampleRate = 8000, ClipSamples = 1024, NFft = 256, HopLength = 128, NMels = 20"
          ("[Chroma(Statistic.TimeSeries, PerBin = true)] public partial ReadOnlyMemory<float> Chroma { get; }\n"
           + "[MfccDelta(13, Statistic.TimeSeries, Width = 9)] public partial ReadOnlyMemory<float> Delta { get; }"),
      [ 25; 9 ]
      "a waveform",
      source ", SampleRate = 8000, ClipSamples = 100" "[Waveform(100)] public partial ReadOnlyMemory<float> Waveform { get; }",
      [ 100 ]
      "statistics and a waveform side by side are one row",
      source ", SampleRate = 8000, ClipSamples = 300, NFft = 256"
          ("[Waveform(300)] public partial ReadOnlyMemory<float> Waveform { get; }\n"
           + "[Chroma(Statistic.Std)] public partial float Chroma { get; }\n"
           + "[MelBands(Statistic.Max, Decibels = false)] public partial ReadOnlyMemory<float> Mel { get; }"),
      [ 300 + 1 + 128 ]
      "log-scattering over two parts of the clip, without order 2",
      source ", SampleRate = 8000, ClipSamples = 1024"
          "[Scattering(6, 8, Statistic.LogStd, MaxOrder = 1, Segments = 2)] public partial ReadOnlyMemory<float> Scattering { get; }",
      [] ]

/// A copy of `m` with `rows` rows and no place in a row (what a run-time caller who got the rows wrong would pass).
let private withRows (rows: int) (m: FeatureMember) =
    FeatureMember(
        Property = m.Property, Kind = m.Kind, Statistic = m.Statistic, Column = m.Column, Offset = 0, Width = 0, Rows = rows,
        Frames = m.Frames, Pooled = m.Pooled, Decibels = m.Decibels, DeltaOrder = m.DeltaOrder, DeltaWidth = m.DeltaWidth,
        FrameLength = m.FrameLength, HopLength = m.HopLength, ScatteringJ = m.ScatteringJ, ScatteringQ = m.ScatteringQ,
        ScatteringT = m.ScatteringT, ScatteringMaxOrder = m.ScatteringMaxOrder, LogEpsilon = m.LogEpsilon,
        PeakNormalize = m.PeakNormalize, ScatteringSegments = m.ScatteringSegments)

/// The ArgumentException of `f`.
let private refusal (f: unit -> FeatureSchemaInfo) =
    try
        f () |> ignore
        failtest "expected ArgumentException"
    with :? ArgumentException as e -> e

/// Parameters of a schema S declared with `parameters` (one RMS member, which every parameter set allows).
let private parametersOf (parameters: string) =
    (compileSchema (source parameters "[Rms] public partial float Rms { get; }") "S").Parameters

/// A run-time member X of `kind` (column x) with `rows` rows and the given frame and hop lengths.
let private member' kind statistic (rows: int) (frameLength: int) (hopLength: int) =
    FeatureMember(Property = "X", Kind = kind, Statistic = statistic, Column = "x", Offset = 0, Width = 0, Rows = rows,
                  FrameLength = frameLength, HopLength = hopLength)

let private scattering (j: int) (segments: int) =
    FeatureMember(Property = "X", Kind = FeatureKind.Scattering, Statistic = Statistic.LogMean, Column = "x", Offset = 0, Width = 0, Rows = 1,
                  ScatteringJ = j, ScatteringQ = 12, ScatteringMaxOrder = 2, LogEpsilon = 1e-6, ScatteringSegments = segments)

/// Schemas the generator refuses: the declaration, the diagnostic's ID, the run-time equivalent and the ParamName.
let private refusedCases =
    [ "a ZCR frame length below 0",
      source "" "[ZeroCrossingRate(FrameLength = -1)] public partial float X { get; }", "HYB008",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf "", [| member' FeatureKind.ZeroCrossingRate Statistic.Mean 1 -1 0 |])),
      "members"
      "an RMS hop length below 0",
      source "" "[Rms(HopLength = -4)] public partial float X { get; }", "HYB008",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf "", [| member' FeatureKind.Rms Statistic.Mean 1 0 -4 |])),
      "members"
      "chroma pooled over bins kept as a time series",
      source ", ClipSamples = 22050" "[Chroma(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> X { get; }", "HYB006",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf ", ClipSamples = 22050", [| FeatureMember(Property = "X", Kind = FeatureKind.Chroma, Statistic = Statistic.TimeSeries, Column = "x", Offset = 0, Width = 0, Rows = 12, Pooled = true) |])),
      "members"
      "a log statistic of MFCCs",
      source "" "[Mfcc(Statistic.LogMean)] public partial ReadOnlyMemory<float> X { get; }", "HYB006",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf "", [| member' FeatureKind.Mfcc Statistic.LogMean 20 0 0 |])),
      "members"
      "scattering scales longer than the clip",
      source ", SampleRate = 8000, ClipSamples = 200" "[Scattering(8, 12, Statistic.LogMean)] public partial ReadOnlyMemory<float> X { get; }", "HYB008",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf ", SampleRate = 8000, ClipSamples = 200", [| scattering 8 1 |])),
      "clip_samples"
      "more scattering parts than the clip has frames",
      source ", SampleRate = 8000, ClipSamples = 512" "[Scattering(8, 12, Statistic.LogMean, Segments = 4)] public partial ReadOnlyMemory<float> X { get; }", "HYB008",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf ", SampleRate = 8000, ClipSamples = 512", [| scattering 8 4 |])),
      "clip_samples"
      "an MFCC count of 0",
      source "" "[Mfcc(0, Statistic.Mean)] public partial ReadOnlyMemory<float> X { get; }", "HYB004",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf "", [| member' FeatureKind.Mfcc Statistic.Mean 0 0 0 |])),
      "n_mfcc"
      "a delta wider than the clip's frames",
      source ", SampleRate = 8000, ClipSamples = 1024, NFft = 256, HopLength = 128, NMels = 20" "[MfccDelta(13, Statistic.Mean, Width = 11)] public partial ReadOnlyMemory<float> X { get; }", "HYB007",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf ", SampleRate = 8000, ClipSamples = 1024, NFft = 256, HopLength = 128, NMels = 20",
                                          [| FeatureMember(Property = "X", Kind = FeatureKind.MfccDelta, Statistic = Statistic.Mean, Column = "x", Offset = 0, Width = 0, Rows = 13, DeltaOrder = 1, DeltaWidth = 11) |])),
      "clip_samples"
      "two members with one column name",
      source "" ("[Rms(Column = \"x\")] public partial float X { get; }\n" + "[SpectralCentroid(Column = \"x\")] public partial float Y { get; }"), "HYB005",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf "",
                                          [| member' FeatureKind.Rms Statistic.Mean 1 0 0
                                             FeatureMember(Property = "Y", Kind = FeatureKind.SpectralCentroid, Statistic = Statistic.Mean, Column = "x", Offset = 0, Width = 0, Rows = 1) |])),
      "members"
      "two time series of different frame counts",
      source ", SampleRate = 8000, ClipSamples = 8192, NFft = 256, HopLength = 128"
          ("[Rms(Statistic.TimeSeries, HopLength = 64)] public partial ReadOnlyMemory<float> X { get; }\n"
           + "[SpectralCentroid(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> Y { get; }"), "HYB009",
      (fun () -> FeatureSchemaInfo.Create("S", parametersOf ", SampleRate = 8000, ClipSamples = 8192, NFft = 256, HopLength = 128",
                                          [| member' FeatureKind.Rms Statistic.TimeSeries 1 0 64
                                             FeatureMember(Property = "Y", Kind = FeatureKind.SpectralCentroid, Statistic = Statistic.TimeSeries, Column = "y", Offset = 0, Width = 0, Rows = 1) |])),
      "hop_length" ]

[<Tests>]
let tests =
    testList "LayoutRules" [
        testCase "the generator and the run time lay out edge cases alike, with librosa's frame counts" <| fun () ->
            for what, declaration, shape in edgeCases do
                let compiled = compileSchema declaration "S"
                if not shape.IsEmpty then Expect.sequenceEqual compiled.Shape shape (what + ": librosa's shape")
                let again = FeatureSchemaInfo.Create(compiled.Name, compiled.Parameters, Array.ofSeq compiled.Members)
                Expect.sequenceEqual again.Names compiled.Names (what + ": column names")
                Expect.sequenceEqual again.Shape compiled.Shape (what + ": shape")
                Expect.sequenceEqual again.Members compiled.Members (what + ": members")
                Expect.equal again.Fingerprint compiled.Fingerprint (what + ": fingerprint")

        testCase "the run time recomputes scattering rows from J, Q, max_order and the parts, as the generator does" <| fun () ->
            for info in [ ScatteringFsddFeatures.Info; ScatteringFsddParts4Features.Info; ScatteringFsddParts4StdFeatures.Info ] do
                let wrong = info.Members |> Seq.map (withRows 1) |> Array.ofSeq
                let again = FeatureSchemaInfo.Create(info.Name, info.Parameters, wrong)
                Expect.sequenceEqual again.Members info.Members (info.Name + ": members")
                Expect.equal again.Fingerprint info.Fingerprint (info.Name + ": fingerprint")

        testCase "a schema the generator refuses is refused at run time with the diagnostic's message" <| fun () ->
            for what, declaration, id, runtime, paramName in refusedCases do
                let r = run (prelude + declaration)
                let diagnostic =
                    match r.GeneratorDiagnostics |> List.filter (fun d -> d.Id = id) with
                    | d :: _ -> d.GetMessage(Globalization.CultureInfo.InvariantCulture)
                    | [] -> failtestf "%s: expected %s, got\n%s" what id (describe r.GeneratorDiagnostics)
                let e = refusal runtime
                Expect.equal e.ParamName paramName (what + ": the parameter blamed")
                Expect.stringStarts e.Message (diagnostic.Replace("ClipSamples", "clip_samples") + ".") (what + ": the diagnostic's words")

        testCase "every defined window, pad mode and mel norm passes the shared parameter checks" <| fun () ->
            // The checks see enums as numbers (the generator has no Hybrid.Dsp): a value added to one of them must be
            // counted there too, or schemas using it would be refused.
            let p = parametersOf ", SampleRate = 8000"
            let rms = [| member' FeatureKind.Rms Statistic.Mean 1 0 0 |]
            let names (t: Type) = Enum.GetNames t |> Array.map (fun n -> n.ToLowerInvariant())
            for name, values in [ "window", names typeof<Hybrid.Dsp.WindowKind>; "pad_mode", names typeof<Hybrid.Dsp.PadMode>; "norm", names typeof<Hybrid.Dsp.MelNorm> ] do
                for value in values do
                    let info = FeatureSchemaInfo.Create("S", p.With(sprintf "%s=%s" name value), rms)
                    Expect.equal (info.Parameters.ValueText name) value (sprintf "%s=%s is accepted" name value)

        testCase "a run-time variant too short for a scattering schema's parts is refused, not extracted" <| fun () ->
            let info = ScatteringFsddParts4Features.Info
            let e = refusal (fun () -> info.WithParameters(info.Parameters.With "clip_samples=512"))
            Expect.equal e.ParamName "clip_samples" "the parameter"
            Expect.stringContains e.Message "Segments must be in 1..2 (the frames of clip_samples / T), was 4" "the valid range"
    ]
