/// The generator on source strings: emitted code compiles, layout, names, shape and fingerprint.
module Hybrid.GeneratorsTests.FeatureSchemaGeneratorTests

open System
open Expecto
open FsCheck
open Microsoft.CodeAnalysis
open Hybrid.TestSupport
open Hybrid.Features.Schemas
open Hybrid.GeneratorsTests.Driver

let genreSource (typeName: string) (schemaName: string) (parameters: string) =
    sprintf
        """
[FeatureSchema("%s"%s)]
public sealed partial record %s
{
    [Chroma(Statistic.Mean)] public partial float ChromaStft { get; }
    [Rms(Statistic.Mean)] public partial float Rmse { get; }
    [SpectralCentroid(Statistic.Mean)] public partial float SpectralCentroid { get; }
    [SpectralBandwidth(Statistic.Mean)] public partial float SpectralBandwidth { get; }
    [SpectralRolloff(Statistic.Mean)] public partial float Rolloff { get; }
    [ZeroCrossingRate(Statistic.Mean)] public partial float ZeroCrossingRate { get; }
    [Mfcc(20, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }
}
"""
        schemaName
        parameters
        typeName

let genreHeader =
    [ "chroma_stft"; "rmse"; "spectral_centroid"; "spectral_bandwidth"; "rolloff"; "zero_crossing_rate" ]
    @ [ for i in 1..20 -> sprintf "mfcc%d" i ]

let everythingSource =
    """
[FeatureSchema("everything", SampleRate = 16000, ClipSamples = 4000, NFft = 512, HopLength = 256, NMels = 32, NMfcc = 13)]
public sealed partial record Everything
{
    [SpectralCentroid(Statistic.Std)] public partial float Centroid { get; }
    [SpectralBandwidth(Statistic.Min)] public partial float Bandwidth { get; }
    [SpectralRolloff(Statistic.Max)] public partial float Rolloff { get; }
    [SpectralFlatness] public partial float Flatness { get; }
    [ZeroCrossingRate(Statistic.Mean, FrameLength = 1024, HopLength = 128)] public partial float Zcr { get; }
    [Rms(Statistic.Std)] public partial float Energy { get; }
    [Chroma(Statistic.Max, PerBin = true)] public partial ReadOnlyMemory<float> Chroma { get; }
    [Mfcc(Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc { get; }
    [MfccDelta(13, Statistic.Std, Order = 2, Width = 5)] public partial ReadOnlyMemory<float> MfccDelta { get; }
    [MelBands(Statistic.Min, Decibels = false)] public partial ReadOnlyMemory<float> Mel { get; }
}
"""

let imageSource =
    """
[FeatureSchema("image", SampleRate = 8000, ClipSamples = 8192, NFft = 256, HopLength = 128, NMels = 40)]
public partial struct Image
{
    [MelBands(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> LogMel { get; }
    [Mfcc(13, Statistic.TimeSeries)] public partial ReadOnlyMemory<float> Mfcc { get; }
    [Rms(Statistic.TimeSeries)] public partial ReadOnlyMemory<float> Rms { get; }
}
"""

let private memberOf (info: FeatureSchemaInfo) property =
    info.Members |> Seq.find (fun m -> m.Property = property)

/// Every DSP parameter of the schema attribute with a value different from its default.
let parameterChanges =
    [ "SampleRate = 16000"; "ClipSamples = 44100"; "NFft = 1024"; "HopLength = 256"; "WinLength = 1024"
      "Window = WindowKind.Hamming"; "Center = false"; "PadMode = PadMode.Reflect"; "NMels = 64"; "FMin = 20"
      "FMax = 8000"; "Htk = true"; "Norm = MelNorm.None"; "Power = 1"; "TopDb = 60"; "NMfcc = 13"; "Lifter = 22"
      "Tuning = 0.1"; "RollPercent = 0.9"; "EstimateTuning = true" ]

/// One random statistic member: its declaration (property P{i}, column m{i}_) and expected width.
type RandomMember =
    | Scalar of statistic: int
    | Mfcc of count: int * statistic: int
    | PerBinChroma of statistic: int
    | Mel of statistic: int

let private statistics = [| "Mean"; "Std"; "Min"; "Max" |]

let private declare i m =
    let s k = statistics.[abs k % 4]
    match m with
    | Scalar k -> sprintf "[SpectralCentroid(Statistic.%s, Column = \"m%d_\")] public partial float P%d { get; }" (s k) i i, 1
    | Mfcc(n, k) ->
        let n = 1 + abs n % 16
        sprintf "[Mfcc(%d, Statistic.%s, Column = \"m%d_\")] public partial ReadOnlyMemory<float> P%d { get; }" n (s k) i i, n
    | PerBinChroma k -> sprintf "[Chroma(Statistic.%s, PerBin = true, Column = \"m%d_\")] public partial ReadOnlyMemory<float> P%d { get; }" (s k) i i, 12
    | Mel k -> sprintf "[MelBands(Statistic.%s, Column = \"m%d_\")] public partial ReadOnlyMemory<float> P%d { get; }" (s k) i i, 16

[<Tests>]
let tests =
    testList "FeatureSchemaGenerator" [
        testCase "a schema mirroring the genre write-up compiles and yields exactly its header" <| fun () ->
            let info = compileSchema (genreSource "Genre" "genre-mirror" "") "Genre"
            Expect.sequenceEqual info.Names genreHeader "genre header"
            Expect.equal info.Length 26 "Length"
            Expect.sequenceEqual info.Shape [ 26 ] "Shape"

        testCase "a schema using every feature kind compiles and lays members out in declaration order" <| fun () ->
            let info = compileSchema everythingSource "Everything"
            let expectedNames =
                [ "centroid"; "bandwidth"; "rolloff"; "flatness"; "zcr"; "energy" ]
                @ [ for i in 1..12 -> sprintf "chroma%d" i ]
                @ [ for i in 1..13 -> sprintf "mfcc%d" i ]
                @ [ for i in 1..13 -> sprintf "mfcc_delta%d" i ]
                @ [ for i in 1..32 -> sprintf "mel%d" i ]
            Expect.sequenceEqual info.Names expectedNames "names"
            Expect.sequenceEqual info.Shape [ 76 ] "shape"
            let offsets = info.Members |> Seq.map (fun m -> m.Property, m.Offset, m.Width) |> Seq.toList
            Expect.sequenceEqual
                offsets
                [ "Centroid", 0, 1; "Bandwidth", 1, 1; "Rolloff", 2, 1; "Flatness", 3, 1; "Zcr", 4, 1; "Energy", 5, 1
                  "Chroma", 6, 12; "Mfcc", 18, 13; "MfccDelta", 31, 13; "Mel", 44, 32 ]
                "offsets and widths"
            let zcr = memberOf info "Zcr"
            Expect.equal (zcr.FrameLength, zcr.HopLength) (1024, 128) "ZCR framing overrides"
            let energy = memberOf info "Energy"
            Expect.equal (energy.FrameLength, energy.HopLength) (512, 256) "RMS framing defaults to n_fft and hop"
            let delta = memberOf info "MfccDelta"
            Expect.equal (delta.DeltaOrder, delta.DeltaWidth, delta.Statistic) (2, 5, Statistic.Std) "delta options"
            Expect.isFalse (memberOf info "Mel").Decibels "Decibels = false is kept"
            Expect.equal info.Parameters.NMfcc 13 "n_mfcc"
            Expect.equal (memberOf info "Mfcc").Rows 13 "an MFCC member without a count takes NMfcc"

        testCase "time-series members of equal frame counts stack into one [rows, frames] image" <| fun () ->
            let info = compileSchema imageSource "Image"
            Expect.sequenceEqual info.Shape [ 40 + 13 + 1; 65 ] "shape"
            Expect.equal info.Length (54 * 65) "Length"
            Expect.equal info.Names.[0] "log_mel1_1" "first column"
            Expect.equal info.Names.[64] "log_mel1_65" "end of the first mel row"
            Expect.equal info.Names.[65] "log_mel2_1" "start of the second mel row"
            Expect.equal info.Names.[40 * 65] "mfcc1_1" "first MFCC column"
            Expect.equal info.Names.[53 * 65] "rms1" "a one-row series is numbered by frame"
            Expect.equal info.Names.[54 * 65 - 1] "rms65" "last column"
            Expect.equal (memberOf info "Mfcc").Offset (40 * 65) "MFCC offset"
            Expect.equal (memberOf info "Rms").Frames 65 "RMS frames"

        testCase "the generated type exposes per-member offset and width constants" <| fun () ->
            let r = run (prelude + everythingSource)
            let asm = load r
            let t = asm.GetType("Probe.Everything") |> nonNull
            let constant name = (t.GetField(name) |> nonNull).GetRawConstantValue() |> nonNull |> unbox<int>
            Expect.equal (constant "MfccOffset") 18 "MfccOffset"
            Expect.equal (constant "MfccWidth") 13 "MfccWidth"
            Expect.equal (constant "Length") 76 "Length"
            let fingerprint = (t.GetField("Fingerprint") |> nonNull).GetRawConstantValue() |> nonNull |> string
            Expect.equal fingerprint (info asm "Everything").Fingerprint "Fingerprint constant equals Info.Fingerprint"

        testCase "readonly, internal and non-sealed declarations of every kind compile cleanly" <| fun () ->
            for declaration in
                [ "public readonly partial record struct R"; "public readonly partial struct R"; "public partial struct R"
                  "internal partial record R"; "public partial record R"; "public sealed partial record R" ] do
                let r = run (prelude + sprintf "[FeatureSchema(\"r\")] %s { [Rms] public partial float Rms { get; } }" declaration)
                let problems = r.GeneratorDiagnostics @ r.CompilationProblems
                Expect.isEmpty problems (sprintf "%s:\n%s" declaration (describe problems))

        testCase "the generated file is named after the namespace and type" <| fun () ->
            let r = run (prelude + imageSource)
            Expect.sequenceEqual (r.Sources |> List.map fst) [ "Probe.Image.FeatureSchema.g.cs"; registrationHint ] "hint names"
            Expect.isEmpty r.CompilationProblems (describe r.CompilationProblems)

        testCase "the fingerprint is 64 lower-case hex digits and equals the normal build's for the same declaration" <| fun () ->
            let fp = fingerprintOf (genreSource "Genre" "genre-mirror" ", EstimateTuning = true")
            Expect.isMatch fp "^[0-9a-f]{64}$" "hex SHA-256"
            Expect.equal fp GenreFeatures.Fingerprint "the SDK's build of GenreFeatures and this driver agree"

        testCase "the fingerprint ignores the type and registry names" <| fun () ->
            let a = fingerprintOf (genreSource "Genre" "genre-mirror" "")
            let b = fingerprintOf (genreSource "Other" "something-else" "")
            Expect.equal a b "renaming changes no feature"

        testCase "the fingerprint is unchanged when librosa's defaults are spelled out" <| fun () ->
            let a = fingerprintOf (genreSource "Genre" "genre-mirror" "")
            let b = fingerprintOf (genreSource "Genre" "genre-mirror" ", SampleRate = 22050, NFft = 2048, HopLength = 512, WinLength = 2048, FMax = 11025, TopDb = 80")
            Expect.equal a b "explicit defaults"

        testCase "the fingerprint changes when any DSP parameter changes" <| fun () ->
            let baseline = fingerprintOf (genreSource "Genre" "genre-mirror" "")
            let changed = parameterChanges |> List.map (fun p -> p, fingerprintOf (genreSource "Genre" "genre-mirror" (", " + p)))
            for p, fp in changed do
                Expect.notEqual fp baseline (sprintf "%s must change the fingerprint" p)
            let distinct = changed |> List.map snd |> List.distinct
            Expect.equal distinct.Length changed.Length "every change gives its own fingerprint"

        testCase "the fingerprint changes when the layout changes" <| fun () ->
            let baseline = fingerprintOf (genreSource "Genre" "genre-mirror" "")
            let variants =
                [ (genreSource "Genre" "genre-mirror" "").Replace("[Rms(Statistic.Mean)]", "[Rms(Statistic.Std)]")
                  (genreSource "Genre" "genre-mirror" "").Replace("Mfcc(20,", "Mfcc(21,")
                  (genreSource "Genre" "genre-mirror" "").Replace("Rmse", "Energy")
                  (genreSource "Genre" "genre-mirror" "").Replace("[Chroma(Statistic.Mean)]", "[Chroma(Statistic.Mean, PerBin = true)]").Replace("partial float ChromaStft", "partial ReadOnlyMemory<float> ChromaStft") ]
            for v in variants do
                Expect.notEqual (fingerprintOf v) baseline "a layout change must change the fingerprint"

        testCase "an edit that leaves the schema alone reuses the cached model" <| fun () ->
            let source = genreSource "Genre" "genre-mirror" ""
            let reasons = secondRunReasons (source + "public class Other { }") (source + "public class Other { public int X; }")
            Expect.isNonEmpty reasons "the parse step ran"
            for r in reasons do
                Expect.isTrue (r = IncrementalStepRunReason.Unchanged || r = IncrementalStepRunReason.Cached) (sprintf "reason %A" r)

        testCase "an edit to the schema produces a new model" <| fun () ->
            let reasons = secondRunReasons (genreSource "Genre" "genre-mirror" "") (genreSource "Genre" "genre-mirror" ", NFft = 1024")
            Expect.contains reasons IncrementalStepRunReason.Modified "the model changed"

        testPropertyWithConfig (Properties.config 6) "any mix of statistic members compiles into a row its members tile with unique columns" <| fun (NonEmptyArray (members: RandomMember[])) ->
            let members = members |> Array.truncate 6
            let declared = members |> Array.mapi declare
            let source = sprintf "[FeatureSchema(\"mix\", NMels = 16)] public partial record Mix {\n%s\n}" (declared |> Array.map fst |> String.concat "\n")
            let info = compileSchema source "Mix"
            Expect.equal info.Length (declared |> Array.sumBy snd) "Length is the sum of the widths"
            Expect.equal (info.Names |> Seq.distinct |> Seq.length) info.Length "columns are unique"
            let offsets = info.Members |> Seq.map (fun m -> m.Offset) |> Seq.toList
            Expect.equal offsets (declared |> Array.map snd |> Array.scan (+) 0 |> Array.truncate declared.Length |> Array.toList) "offsets in declaration order"

        testPropertyWithConfig (Properties.config 12) "an MFCC member of count n gives columns mfcc1..mfccn" <| fun (PositiveInt n) ->
            let n = 1 + (n - 1) % 128
            let info =
                compileSchema
                    (sprintf "[FeatureSchema(\"m\")] public partial record struct M { [Mfcc(%d, Statistic.Max)] public partial ReadOnlyMemory<float> Mfcc { get; } }" n)
                    "M"
            Expect.equal info.Length n "Length"
            Expect.sequenceEqual info.Names [ for i in 1..n -> sprintf "mfcc%d" i ] "names"
    ]
