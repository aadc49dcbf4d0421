/// Every diagnostic of the generator: its stable ID, its exact message, where it points, and that an invalid
/// schema fails with the generator's diagnostics only (its partial properties still get bodies).
module Hybrid.GeneratorsTests.DiagnosticsTests

open Expecto
open Microsoft.CodeAnalysis
open Hybrid.GeneratorsTests.Driver

/// A schema named S around the given members.
let schema (parameters: string) (members: string) =
    sprintf "[FeatureSchema(\"s\"%s)]\npublic sealed partial record S\n{\n%s\n}\n" parameters members

let private rms = "[Rms] public partial float Rms { get; }"

type Case =
    { Name: string
      Source: string
      Id: string
      Message: string
      /// True when nothing but the generator's diagnostics may fail the compilation.
      OnlyGeneratorErrors: bool }

let private case name source id message clean =
    { Name = name; Source = source; Id = id; Message = message; OnlyGeneratorErrors = clean }

let cases =
    [ case "HYB001 reports a schema that is not partial"
          "[FeatureSchema(\"np\")] public record NotPartial { [Rms] public float Rms => 0; }"
          "HYB001" "Feature schema 'NotPartial' must be declared partial so that the generator can add its layout, properties and Info" false
      case "HYB002 reports a schema declared as a class"
          "[FeatureSchema(\"c\")] public partial class Plain { [Rms] public partial float Rms { get; } }"
          "HYB002" "'Plain' is a class; a feature schema must be a top-level, non-generic, non-abstract partial record, record struct or struct" false
      case "HYB002 reports a nested schema"
          "public partial class Outer { [FeatureSchema(\"n\")] public partial record Inner { [Rms] public partial float Rms { get; } } }"
          "HYB002" "'Inner' is nested in 'Outer'; a feature schema must be a top-level, non-generic, non-abstract partial record, record struct or struct" false
      case "HYB002 reports a generic schema"
          "[FeatureSchema(\"g\")] public partial record G<T> { [Rms] public partial float Rms { get; } }"
          "HYB002" "'G' is generic; a feature schema must be a top-level, non-generic, non-abstract partial record, record struct or struct" false
      case "HYB003 reports a schema without members"
          "[FeatureSchema(\"e\")] public partial record Empty;"
          "HYB003" "Feature schema 'Empty' has no feature members; declare at least one partial property with a feature attribute such as [Mfcc(20, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }" true
      case "HYB004 reports an MFCC count of zero"
          (schema "" "[Mfcc(0, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }")
          "HYB004" "'S.Mfcc': count must be positive, was 0" true
      case "HYB004 reports a negative delta count"
          (schema "" "[MfccDelta(-3, Statistic.Mean)] public partial ReadOnlyMemory<float> Delta { get; }")
          "HYB004" "'S.Delta': count must be positive, was -3" true
      case "HYB004 reports a negative waveform length"
          (schema ", ClipSamples = 100" "[Waveform(-5)] public partial ReadOnlyMemory<float> Raw { get; }")
          "HYB004" "'S.Raw': samples must be positive, was -5" true
      case "HYB005 reports two members producing the same column"
          (schema "" "[Rms] public partial float Energy { get; }\n[ZeroCrossingRate(Column = \"energy\")] public partial float Zcr { get; }")
          "HYB005" "Feature schema 'S': column 'energy' is produced by both 'Energy' and 'Zcr'; give one of them another Column" true
      case "HYB005 reports a scalar clashing with a numbered vector column"
          (schema "" "[Mfcc(2, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }\n[Rms(Column = \"mfcc2\")] public partial float Energy { get; }")
          "HYB005" "Feature schema 'S': column 'mfcc2' is produced by both 'Mfcc' and 'Energy'; give one of them another Column" true
      case "HYB006 reports pooled chroma kept as a time series"
          (schema ", ClipSamples = 22050" "[Chroma(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> Chroma { get; }")
          "HYB006" "'S.Chroma': Chroma pooled over bins does not support the statistic TimeSeries; set PerBin = true to keep the 12 x frames chroma image" true
      case "HYB006 reports an undefined statistic"
          (schema "" "[Rms((Statistic)9)] public partial float Rms { get; }")
          "HYB006" "'S.Rms': Rms does not support the statistic (Statistic)9; use Mean, Std, Min, Max or TimeSeries" true
      case "HYB006 reports a scattering member kept as a standard deviation"
          (schema ", ClipSamples = 8192" "[Scattering(8, 12, Statistic.Std)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB006" "'S.Scat': Scattering does not support the statistic Std; use LogMean (kymatio's log-scattering time average), LogStd or Mean" true
      case "HYB006 reports LogStd on a feature other than scattering"
          (schema "" "[Rms(Statistic.LogStd)] public partial float Rms { get; }")
          "HYB006" "'S.Rms': Rms does not support the statistic LogStd; LogStd is for [Scattering]; use Mean, Std, Min, Max or TimeSeries" true
      case "HYB007 reports scattering parts asked of a plain mean"
          (schema ", ClipSamples = 8192" "[Scattering(8, 12, Statistic.Mean, Segments = 4)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB007" "Feature schema 'S': 'Scat' sets Segments, which needs Statistic.LogMean or Statistic.LogStd" true
      case "HYB008 reports more scattering parts than frames"
          (schema ", ClipSamples = 8192" "[Scattering(8, 12, Statistic.LogMean, Segments = 64)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB008" "Feature schema 'S': Scat's Segments must be in 1..32 (the frames of ClipSamples / T), was 64" true
      case "HYB006 reports LogMean on a feature other than scattering"
          (schema "" "[Rms(Statistic.LogMean)] public partial float Rms { get; }")
          "HYB006" "'S.Rms': Rms does not support the statistic LogMean; LogMean is for [Scattering]; use Mean, Std, Min, Max or TimeSeries" true
      case "HYB007 reports a scattering member in a schema without ClipSamples"
          (schema "" "[Scattering(8, 12, Statistic.LogMean)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB007" "Feature schema 'S': 'Scat' is a scattering transform, which needs the schema's ClipSamples (the clip length in samples)" true
      case "HYB007 reports a hop longer than n_fft"
          (schema ", HopLength = 4096" rms)
          "HYB007" "Feature schema 'S': hop_length (4096) must not exceed n_fft (2048), or samples would be skipped between frames" true
      case "HYB007 reports a window longer than n_fft"
          (schema ", NFft = 512, WinLength = 1024" rms)
          "HYB007" "Feature schema 'S': win_length (1024) must not exceed n_fft (512)" true
      case "HYB007 reports fmax above the Nyquist frequency"
          (schema ", FMax = 12000" rms)
          "HYB007" "Feature schema 'S': fmax (12000 Hz) must not exceed the Nyquist frequency sr / 2 (11025 Hz)" true
      case "HYB007 reports fmin at or above fmax"
          (schema ", FMin = 5000, FMax = 4000" rms)
          "HYB007" "Feature schema 'S': fmin (5000 Hz) must be below fmax (4000 Hz)" true
      case "HYB007 reports a time series without a clip length"
          (schema "" "[MelBands(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> LogMel { get; }")
          "HYB007" "Feature schema 'S': 'LogMel' keeps a time series, which needs the schema's ClipSamples (the clip length in samples) to fix the frame count" true
      case "HYB007 reports more MFCCs than mel bands"
          (schema ", NMels = 20" "[Mfcc(40, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }")
          "HYB007" "Feature schema 'S': 'Mfcc' asks for 40 MFCCs, but the DCT of n_mels = 20 bands gives at most 20" true
      case "HYB007 reports a delta width wider than a clip's frames"
          (schema ", ClipSamples = 2048" "[MfccDelta(Statistic.Mean)] public partial ReadOnlyMemory<float> Delta { get; }")
          "HYB007" "Feature schema 'S': 'Delta' has a delta width of 9, more than the 5 frames of a clip" true
      case "HYB008 reports n_fft out of range"
          (schema ", NFft = 1" rms)
          "HYB008" "Feature schema 'S': n_fft must be in 2..16384, was 1" true
      case "HYB008 reports a non-positive top_db"
          (schema ", TopDb = -10" rms)
          "HYB008" "Feature schema 'S': top_db must be positive (double.PositiveInfinity keeps everything), was -10" true
      case "HYB008 reports an even delta width"
          (schema "" "[MfccDelta(Statistic.Mean, Width = 4)] public partial ReadOnlyMemory<float> Delta { get; }")
          "HYB008" "Feature schema 'S': Delta's width must be odd and at least 3, was 4" true
      case "HYB008 reports a scattering scale 2^J above the clip length"
          (schema ", ClipSamples = 8192" "[Scattering(14, 12, Statistic.LogMean)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB008" "Feature schema 'S': Scat's J must be at least 1 with 2^J at most ClipSamples (8192), was 14" true
      case "HYB008 reports a scattering Q of zero"
          (schema ", ClipSamples = 8192" "[Scattering(8, 0, Statistic.LogMean)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB008" "Feature schema 'S': Scat's Q must be in 1..64, was 0" true
      case "HYB008 reports a scattering T that is not a power of two"
          (schema ", ClipSamples = 8192" "[Scattering(8, 12, Statistic.LogMean, T = 100)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB008" "Feature schema 'S': Scat's T must be 0 (2^J) or a power of two up to ClipSamples (8192), was 100" true
      case "HYB008 reports a scattering max_order of 3"
          (schema ", ClipSamples = 8192" "[Scattering(8, 12, Statistic.LogMean, MaxOrder = 3)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB008" "Feature schema 'S': Scat's max_order must be 1 or 2, was 3" true
      case "HYB008 reports a non-positive log epsilon"
          (schema ", ClipSamples = 8192" "[Scattering(8, 12, Statistic.LogMean, LogEpsilon = 0)] public partial ReadOnlyMemory<float> Scat { get; }")
          "HYB008" "Feature schema 'S': Scat's log epsilon must be positive, was 0" true
      case "HYB009 reports time-series members of different frame counts"
          (schema ", SampleRate = 8000, ClipSamples = 8192, NFft = 256, HopLength = 128"
               "[MelBands(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> LogMel { get; }\n[Rms(Statistic.TimeSeries, HopLength = 64)] public partial ReadOnlyMemory<float> Rms { get; }")
          "HYB009" "Feature schema 'S': time-series members 'LogMel' (65 frames) and 'Rms' (129 frames) must have the same frame count to form one image; align their hop and frame lengths or keep one as a statistic" true
      case "HYB010 reports a feature attribute on a property that is not partial"
          (schema "" (rms + "\n[ZeroCrossingRate] public float Zcr { get; }"))
          "HYB010" "'S.Zcr' carries a feature attribute but is not a non-static partial property without a body; declare it as 'public partial float Zcr { get; }'" true
      case "HYB011 reports a member of the wrong type"
          (schema "" "[Mfcc(Statistic.Mean)] public partial float Mfcc { get; }")
          "HYB011" "'S.Mfcc' must have type ReadOnlyMemory<float> for Mfcc with Mean, was float" true
      case "HYB011 reports a scalar statistic declared as a vector"
          (schema "" "[SpectralCentroid(Statistic.Max)] public partial ReadOnlyMemory<float> Centroid { get; }")
          "HYB011" "'S.Centroid' must have type float for SpectralCentroid with Max, was ReadOnlyMemory<float>" true
      case "HYB012 reports a positional record"
          "[FeatureSchema(\"p\")] public sealed partial record P(int X) { [Rms] public partial float Rms { get; } }"
          "HYB012" "Feature schema 'P' must not have a primary constructor parameter list; its values come from the feature row (use FromSpan)" true
      case "HYB014 reports two schemas registered under one name"
          ("[FeatureSchema(\"same\")] public partial record A { [Rms] public partial float Rms { get; } }\n"
           + "[FeatureSchema(\"same\")] public partial record B { [Rms] public partial float Rms { get; } }")
          "HYB014" "Feature schema name 'same' is used by both 'A' and 'B'; names select schemas (--schema) and must be unique in a project" true
      case "HYB014 compares names case-insensitively, as Schemas.ByName looks them up"
          ("[FeatureSchema(\"Same\")] public partial record A { [Rms] public partial float Rms { get; } }\n"
           + "[FeatureSchema(\"sAME\")] public partial record B { [Rms] public partial float Rms { get; } }")
          "HYB014" "Feature schema name 'sAME' is used by both 'A' and 'B'; names select schemas (--schema) and must be unique in a project" true
      case "HYB015 reports a schema named like a predefined one in the referenced Hybrid.Features.Schemas"
          "[FeatureSchema(\"Genre\")] public partial record MyGenre { [Rms] public partial float Rms { get; } }"
          "HYB015" "Feature schema name 'Genre' of 'MyGenre' is already declared by 'Hybrid.Features.Schemas.GenreFeatures' in the referenced assembly Hybrid.Features.Schemas; names select schemas (--schema, model files) and must be unique across the loaded assemblies: give 'MyGenre' another name" true
      case "HYB013 reports two feature attributes on one member"
          (schema "" "[Rms, ZeroCrossingRate] public partial float Both { get; }")
          "HYB013" "'S.Both' carries 2 feature attributes; give each feature its own property" true ]

/// The source text a diagnostic points at.
let private textAt (source: string) (d: Diagnostic) =
    source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length)

let private check (c: Case) =
    let r = run (prelude + c.Source)
    match r.GeneratorDiagnostics |> List.filter (fun d -> d.Id = c.Id) with
    | [ d ] ->
        Expect.equal (d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)) c.Message "message"
        Expect.equal d.Severity DiagnosticSeverity.Error "severity"
        Expect.equal (d.Location.GetLineSpan().Path) "Schema.cs" "the diagnostic points into the schema's file"
        Expect.isGreaterThan d.Location.SourceSpan.Length 0 "and at some text"
    | found -> failtestf "expected one %s, was:\n%s" c.Id (describe r.GeneratorDiagnostics)
    if c.OnlyGeneratorErrors then
        let others = r.CompilationProblems |> List.filter (fun d -> not (d.Id.StartsWith "HYB"))
        Expect.isEmpty others (sprintf "no compiler errors besides the generator's, was:\n%s" (describe others))

[<Tests>]
let tests =
    testList "Diagnostics" [
        yield! cases |> List.map (fun c -> testCase c.Name (fun () -> check c))

        yield testCase "every diagnostic ID from HYB001 to HYB015 is covered by a case" <| fun () ->
            let covered = cases |> List.map (fun c -> c.Id) |> Set.ofList
            let expected = set [ for i in 1..15 -> sprintf "HYB%03d" i ]
            Expect.equal covered expected "covered IDs"

        yield testCase "a parameter diagnostic points at the named argument that set it" <| fun () ->
            let r = run (prelude + schema ", HopLength = 4096" rms)
            let d = r.GeneratorDiagnostics |> List.find (fun d -> d.Id = "HYB007")
            Expect.equal (textAt (prelude + schema ", HopLength = 4096" rms) d) "HopLength = 4096" "location"

        yield testCase "a member diagnostic points at the property" <| fun () ->
            let r = run (prelude + schema "" "[Mfcc(0, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }")
            let d = r.GeneratorDiagnostics |> List.find (fun d -> d.Id = "HYB004")
            Expect.equal (textAt (prelude + schema "" "[Mfcc(0, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }") d) "Mfcc" "location"

        yield testCase "a record that is not partial reports only HYB001" <| fun () ->
            let r = run (prelude + "[FeatureSchema(\"np\")] public sealed record NotPartial { [Rms] public partial float Rms { get; } }")
            Expect.equal (r.GeneratorDiagnostics |> List.map (fun d -> d.Id)) [ "HYB001" ] (describe r.GeneratorDiagnostics)

        yield testCase "a partial class reports only HYB002: its partial properties still get bodies" <| fun () ->
            let r = run (prelude + "[FeatureSchema(\"c\")] public partial class Plain { [Rms] public partial float Rms { get; } [Mfcc(3, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; } }")
            Expect.equal (r.GeneratorDiagnostics |> List.map (fun d -> d.Id)) [ "HYB002" ] (describe r.GeneratorDiagnostics)
            let others = r.CompilationProblems |> List.filter (fun d -> not (d.Id.StartsWith "HYB"))
            Expect.isEmpty others (sprintf "no compiler errors besides the generator's, was:\n%s" (describe others))

        yield testCase "a valid schema produces no diagnostics" <| fun () ->
            let r = run (prelude + schema ", SampleRate = 8000, NFft = 256, FMax = 4000" rms)
            Expect.isEmpty (r.GeneratorDiagnostics @ r.CompilationProblems) (describe (r.GeneratorDiagnostics @ r.CompilationProblems))
    ]
