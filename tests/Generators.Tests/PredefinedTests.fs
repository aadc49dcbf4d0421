/// The predefined schemas compiled in the normal build (src/Features.Schemas/Predefined.cs) and the registry.
module Hybrid.GeneratorsTests.PredefinedTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.TestSupport

/// One array of a librosa reference file: shape and row-major values.
let private referenceArray (folder: string) (file: string) (key: string) =
    use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, file)))
    let a = doc.RootElement.GetProperty(key)
    let shape = [| for e in a.GetProperty("shape").EnumerateArray() -> e.GetInt32() |]
    let data = [| for e in a.GetProperty("data").EnumerateArray() -> e.GetDouble() |]
    shape, data

/// The signal a reference file was computed from, as mono float32 samples.
let private referenceSignal (folder: string) (file: string) =
    use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, file)))
    let relative = doc.RootElement.GetProperty("wav").GetString() |> nonNull
    let wav =
        match relative.IndexOf("fsdd/recordings/", StringComparison.Ordinal) with
        | -1 -> Path.Combine(folder, relative)
        | i ->
            match TestData.fsddFolder () with
            | Some fsdd -> Path.Combine(fsdd, relative.Substring(i + "fsdd/".Length))
            | None when TestData.requireData () -> failtestf "FSDD folder not found (set %s)" TestData.FsddVariable
            | None -> skiptestf "FSDD folder not found (set %s)" TestData.FsddVariable
    (AudioFile.read AudioFile.defaults wav).Samples.[0]

/// Runs a schema's Extract on the managed engine for one clip.
let private extractOne (info: FeatureSchemaInfo) (samples: float32[]) =
    use engine = new ManagedEngine()
    use clips = engine.FromHost(ReadOnlySpan samples, 1, samples.Length)
    info.Extract(engine, clips)

/// Generic code over any generated schema through IFeatureSchema's static members.
let inline private rowOf<'T when 'T :> IFeatureSchema<'T>> (values: float32[]) =
    let info = 'T.Info
    let value = 'T.FromSpan(ReadOnlySpan values)
    let back = Array.zeroCreate<float32> info.Length
    value.CopyTo(Span back)
    info.Name, back

[<Tests>]
let tests =
    testList "Predefined" [
        testCase "genre has exactly the write-up's header of 26 columns at 22,050 Hz" <| fun () ->
            let info = Schemas.ByName "genre"
            Expect.sequenceEqual
                info.Names
                ([ "chroma_stft"; "rmse"; "spectral_centroid"; "spectral_bandwidth"; "rolloff"; "zero_crossing_rate" ]
                 @ [ for i in 1..20 -> sprintf "mfcc%d" i ])
                "header"
            Expect.equal
                (String.Join(" ", info.Names))
                "chroma_stft rmse spectral_centroid spectral_bandwidth rolloff zero_crossing_rate mfcc1 mfcc2 mfcc3 mfcc4 mfcc5 mfcc6 mfcc7 mfcc8 mfcc9 mfcc10 mfcc11 mfcc12 mfcc13 mfcc14 mfcc15 mfcc16 mfcc17 mfcc18 mfcc19 mfcc20"
                "header text"
            Expect.equal info.Length 26 "Length"
            Expect.sequenceEqual info.Shape [ 26 ] "Shape"
            Expect.equal info.SampleRate 22050 "sr"
            Expect.equal info.ClipSamples 0 "any clip length"
            Expect.equal (info.Parameters.NFft, info.Parameters.HopLength, info.Parameters.NMels) (2048, 512, 128) "librosa defaults"
            Expect.equal
                (info.Parameters.Window, info.Parameters.PadMode, info.Parameters.Norm, info.Parameters.Center)
                (Hybrid.Dsp.WindowKind.Hann, Hybrid.Dsp.PadMode.Constant, Hybrid.Dsp.MelNorm.Slaney, true)
                "window, padding, mel norm and centring"
            Expect.isTrue (info.Members |> Seq.forall (fun m -> m.Statistic = Statistic.Mean)) "all means"
            Expect.isTrue (Object.ReferenceEquals(info, GenreFeatures.Info)) "the registry returns the generated Info"

        testCase "mfcc-mean40 is the mean of 40 MFCCs at 22,050 Hz" <| fun () ->
            let info = Schemas.ByName "mfcc-mean40"
            Expect.sequenceEqual info.Names [ for i in 1..40 -> sprintf "mfcc%d" i ] "names"
            Expect.sequenceEqual info.Shape [ 40 ] "shape"
            Expect.equal info.SampleRate 22050 "sr"
            Expect.equal MfccMean40Features.Length 40 "Length constant"

        testCase "logmel-fsdd is a 40 x 65 log-mel image of 8,192 samples at 8 kHz" <| fun () ->
            let info = Schemas.ByName "logmel-fsdd"
            Expect.sequenceEqual info.Shape [ 40; 65 ] "shape"
            Expect.equal info.Length 2600 "Length"
            Expect.equal (info.SampleRate, info.ClipSamples) (8000, 8192) "sr and clip"
            let p = info.Parameters
            Expect.equal (p.NFft, p.HopLength, p.NMels, p.FMax, p.TopDb) (256, 128, 40, 4000.0, Nullable 80.0) "DSP parameters"
            let m = info.Members.[0]
            Expect.equal (m.Kind, m.Statistic, m.Decibels, m.Rows, m.Frames) (FeatureKind.MelBands, Statistic.TimeSeries, true, 40, 65) "member"
            Expect.equal info.Names.[0] "log_mel1_1" "first"
            Expect.equal info.Names.[2599] "log_mel40_65" "last"
            Expect.equal LogMelFsddFeatures.LogMelFrames 65 "frames constant"

        testCase "scattering-fsdd is kymatio's 336 log-scattering means of 8,192 samples at 8 kHz" <| fun () ->
            let info = Schemas.ByName "scattering-fsdd"
            Expect.sequenceEqual info.Shape [ 336 ] "shape (337 paths of J 8, Q 12 without order 0)"
            Expect.equal info.Names.[0] "scattering1" "first"
            Expect.equal info.Names.[335] "scattering336" "last"
            Expect.equal (info.SampleRate, info.ClipSamples) (8000, 8192) "sr and clip"
            let m = info.Members.[0]
            Expect.equal (m.Kind, m.Statistic, m.ScatteringJ, m.ScatteringQ, m.ScatteringT, m.ScatteringMaxOrder) (FeatureKind.Scattering, Statistic.LogMean, 8, 12, 0, 2) "member"
            Expect.equal (m.LogEpsilon, m.PeakNormalize) (1e-6, true) "epsilon and peak normalisation"

        testCase "scattering-fsdd-parts4 and -parts4-std average each quarter of the frames and add the whole clip's spread" <| fun () ->
            let parts = Schemas.ByName "scattering-fsdd-parts4"
            let both = Schemas.ByName "scattering-fsdd-parts4-std"
            Expect.sequenceEqual parts.Shape [ 1344 ] "336 paths x 4 parts"
            Expect.sequenceEqual both.Shape [ 1680 ] "1344 part means and 336 deviations"
            Expect.equal (parts.Members.[0].ScatteringSegments, both.Members.[1].Statistic) (4, Statistic.LogStd) "members"
            // two clips: noise in the first quarter only, and noise throughout
            let rng = Random 11
            let clips = Array.init (2 * 8192) (fun i -> if i < 8192 && i >= 2048 then 0.0f else float32 (rng.NextDouble() - 0.5))
            use engine = Engines.Create "managed"
            use x = engine.FromHost(ReadOnlySpan clips, 2, 8192)
            let whole = ScatteringFsddFeatures.Info.Extract(engine, x)
            let quarters = ScatteringFsddParts4Features.Info.Extract(engine, x)
            let withStd = ScatteringFsddParts4StdFeatures.Info.Extract(engine, x)
            // S itself, for the deviations: clips divided by their peak as the schemas do
            let bank = Filters.Scattering1D(ScatteringConfig(8, 12), 8192)
            let paths, frames = bank.Paths.Count, bank.Frames
            let normalised = Array.copy clips
            for b in 0 .. 1 do
                let peak = Array.max [| for i in 0 .. 8191 -> abs clips.[b * 8192 + i] |]
                for i in 0 .. 8191 do normalised.[b * 8192 + i] <- clips.[b * 8192 + i] / peak
            use xn = engine.FromHost(ReadOnlySpan normalised, 2, 8192)
            use s = engine.Allocate(2, paths, frames)
            engine.Dsp.Scattering1D(ScatteringConfig(8, 12), xn, s)
            let s = s.ToArray()
            for b in 0 .. 1 do
                for p in 0 .. 335 do
                    let q = [| for k in 0 .. 3 -> float quarters.[b * 1344 + 4 * p + k] |]
                    Expect.floatClose { absolute = 1e-5; relative = 1e-6 } (Array.average q) (float whole.[b * 336 + p]) $"clip {b} path {p + 1}: the quarters average to the whole-clip mean"
                    for k in 0 .. 3 do
                        Expect.equal withStd.[b * 1680 + 4 * p + k] quarters.[b * 1344 + 4 * p + k] "the part means are the same"
                    let logs = [| for f in 0 .. frames - 1 -> float (float32 (log (abs (float s.[(b * paths + p + 1) * frames + f]) + 1e-6))) |]
                    let mean = Array.average logs
                    let std = sqrt (Array.averageBy (fun v -> (v - mean) * (v - mean)) logs)
                    Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (float withStd.[b * 1680 + 1344 + p]) std $"clip {b} path {p + 1}: the deviation over frames"
            // the first clip is silent after its first quarter: its first quarter's first-order energy stands far above its last
            let first, last = quarters.[4 * 0], quarters.[4 * 0 + 3]
            Expect.isGreaterThan (first - last) 3.0f $"the first quarter of path 1 ({first}) is louder than the last ({last})"

        // managed: the five FSDD rows; ilgpu-cpu (log-means reduced on the device, about 15 times slower): two of them
        for engineName, rows in [ "managed", 5; "ilgpu-cpu", 2 ] do
          TestData.testWithKymatio $"scattering-fsdd on the {engineName} engine matches kymatio's log-scattering means of the FSDD reference rows" <| fun folder ->
              let readF8 (path: string) =
                  let bytes = File.ReadAllBytes path
                  let headerLength = int (BitConverter.ToUInt16(bytes, 8))
                  let header = Text.Encoding.ASCII.GetString(bytes, 10, headerLength)
                  let f8 = header.Contains "'<f8'"
                  let size = if f8 then 8 else 4
                  let count = (bytes.Length - 10 - headerLength) / size
                  Array.init count (fun i ->
                      let at = 10 + headerLength + size * i
                      if f8 then BitConverter.ToDouble(bytes, at) else float (BitConverter.ToSingle(bytes, at)))
              let signals = readF8 (Path.Combine(folder, "signals.npy"))
              let reference = readF8 (Path.Combine(folder, "fsdd_log_mean.npy"))
              // rows 0-4 are FSDD recordings divided by their peak and centred in 8,192 samples, as the schema shapes them
              let clips = Array.init (rows * 8192) (fun i -> float32 signals.[i])
              use engine = Engines.Create engineName
              use x = engine.FromHost(ReadOnlySpan clips, rows, 8192)
              let actual = ScatteringFsddFeatures.Info.Extract(engine, x)
              Expect.equal actual.Length (rows * 336) "rows x 336"
              let worst = Array.init actual.Length (fun i -> abs (float actual.[i] - reference.[i])) |> Array.max
              Expect.isLessThanOrEqual worst 1e-3 "log-mean within 1e-3 of kymatio"

        testCase "raw8192 is 8,192 raw samples at 8 kHz" <| fun () ->
            let info = Schemas.ByName "raw8192"
            Expect.sequenceEqual info.Shape [ 8192 ] "shape"
            Expect.equal info.Names.[0] "waveform1" "first"
            Expect.equal info.Names.[8191] "waveform8192" "last"
            Expect.equal (info.SampleRate, info.ClipSamples) (8000, 8192) "sr and clip"

        TestData.testWithReference "genre on the managed engine matches librosa's features of mix_22k averaged over frames" <| fun folder ->
            let file = "mix_22k.json"
            let actual = extractOne GenreFeatures.Info (referenceSignal folder file)
            let mean key = referenceArray folder file key |> snd |> Array.average
            let _, mfcc = referenceArray folder file "mfcc"
            let frames = mfcc.Length / 20
            let expected =
                Array.append
                    // chroma_stft with librosa's default estimated tuning (the reference folder's chroma is at tuning 0).
                    [| TestData.chromaReference.Value.GetProperty("mix_22k_chroma_stft_mean").GetDouble(); mean "rms"; mean "spectral_centroid"; mean "spectral_bandwidth"; mean "spectral_rolloff"; mean "zero_crossing_rate" |]
                    [| for c in 0 .. 19 -> Array.average mfcc.[c * frames .. (c + 1) * frames - 1] |]
            Assertions.allClose 1e-4 1e-4 (Array.map float32 expected) actual "genre row"

        TestData.testWithReference "logmel-fsdd on the managed engine matches librosa's log-mel of an FSDD recording in its first frames" <| fun folder ->
            let file = "0_jackson_0.json"
            let signal = referenceSignal folder file
            let clip = Array.init 8192 (fun i -> if i < signal.Length then signal.[i] else 0.0f)
            let actual = extractOne LogMelFsddFeatures.Info clip
            let shape, expected = referenceArray folder file "log_mel_db"
            let mels, frames = shape.[0], shape.[1]
            Expect.equal mels 40 "reference mels"
            let actualFirst = [| for m in 0 .. mels - 1 do for t in 0 .. frames - 1 -> actual.[m * 65 + t] |]
            Assertions.allClose 1e-4 1e-3 (Array.map float32 expected) actualFirst "log-mel frames present in the recording"

        testCase "the registry lists the predefined schemas by name, case-insensitively" <| fun () ->
            let predefined = Schemas.All |> Seq.filter Schemas.IsPredefined |> Seq.map (fun s -> s.Name) |> List.ofSeq
            Expect.equal (List.truncate 5 predefined) [ "genre"; "mfcc-mean40"; "logmel-fsdd"; "raw8192"; "scattering-fsdd" ] "names"
            Expect.equal (List.truncate predefined.Length (List.ofSeq Schemas.Names)) predefined "Names in the order of All"
            Expect.equal (Schemas.ByName "GENRE").Name "genre" "case-insensitive"
            Expect.isFalse (fst (Schemas.TryGetByName "nope")) "unknown name"

        testCase "an unknown schema name is rejected with the known names" <| fun () ->
            let e = Driver.throws<ArgumentException> (fun () -> Schemas.ByName "mfcc" |> ignore)
            Expect.stringContains e.Message "Unknown feature schema 'mfcc'; expected one of: genre, mfcc-mean40, logmel-fsdd, raw8192, scattering-fsdd" "message"

        testCase "the predefined fingerprints are distinct SHA-256 hex strings" <| fun () ->
            let fps = Schemas.All |> Seq.filter Schemas.IsPredefined |> Seq.map (fun s -> s.Fingerprint) |> Seq.toList
            for fp in fps do Expect.isMatch fp "^[0-9a-f]{64}$" "hex"
            Expect.equal (List.distinct fps).Length fps.Length "distinct"

        testCase "a genre row round-trips through FromSpan and CopyTo and exposes its members" <| fun () ->
            let row = Array.init 26 (fun i -> float32 i * 1.5f)
            let g = GenreFeatures.FromSpan(ReadOnlySpan row)
            Expect.equal g.ChromaStft 0.0f "chroma_stft"
            Expect.equal g.Rmse 1.5f "rmse"
            Expect.equal g.ZeroCrossingRate 7.5f "zero_crossing_rate"
            Expect.sequenceEqual (g.Mfcc.ToArray()) row.[6..] "mfcc"
            let back = Array.zeroCreate<float32> 26
            g.CopyTo(Span back)
            Expect.sequenceEqual back row "CopyTo"
            row.[0] <- 99.0f
            Expect.equal g.ChromaStft 0.0f "FromSpan copies"

        testCase "generic code reaches Info and FromSpan through IFeatureSchema" <| fun () ->
            let values = Array.init 40 float32
            let name, back = rowOf<MfccMean40Features> values
            Expect.equal name "mfcc-mean40" "Info via the interface"
            Expect.sequenceEqual back values "FromSpan and CopyTo via the interface"

        testCase "genre values compare by their floats" <| fun () ->
            let row = Array.init 26 float32
            let a = GenreFeatures.FromSpan(ReadOnlySpan row)
            let b = GenreFeatures.FromSpan(ReadOnlySpan row)
            Expect.equal a b "equal rows are equal values"
            Expect.equal (a.GetHashCode()) (b.GetHashCode()) "and hash alike"
            row.[25] <- -1.0f
            Expect.notEqual a (GenreFeatures.FromSpan(ReadOnlySpan row)) "a different float makes a different value"

        testCase "FromSpan and FromBatch reject rows of the wrong length" <| fun () ->
            let e = Driver.throws<SchemaMismatchException> (fun () -> GenreFeatures.FromSpan(ReadOnlySpan(Array.zeroCreate<float32> 25)) |> ignore)
            Expect.equal e.Message "Feature schema 'genre': a row must have 26 floats, had 25." "message"
            Driver.throws<SchemaMismatchException> (fun () -> GenreFeatures.FromBatch(ReadOnlySpan(Array.zeroCreate<float32> 53)) |> ignore) |> ignore
            Expect.equal (GenreFeatures.FromBatch(ReadOnlySpan(Array.zeroCreate<float32> 52))).Length 2 "two rows"
    
        testList "Schemas registry" [
            testCase "a user assembly's schemas register themselves when it is loaded from a path" <| fun () ->
                let r = Driver.run (Driver.prelude + "[FeatureSchema(\"user-energy\", SampleRate = 8000, NFft = 256)] public sealed partial record UserEnergy { [Rms(Statistic.Mean)] public partial float Rms { get; } }")
                Expect.isEmpty (r.GeneratorDiagnostics @ r.CompilationProblems) (Driver.describe (r.GeneratorDiagnostics @ r.CompilationProblems))
                let path = Driver.emitToFile r
                Expect.isFalse (fst (Schemas.TryGetByName "user-energy")) "not known before the assembly is loaded"
                let found = Schemas.LoadAssembly path
                Expect.sequenceEqual (found |> Seq.map (fun s -> s.Name)) [ "user-energy" ] "the assembly's schemas"
                let info = Schemas.ByName "USER-energy"
                Expect.equal info.SchemaType.FullName "Probe.UserEnergy" "found by name, case-insensitively"
                Expect.equal (Schemas.AssemblyFileOf info) (nonNull (Path.GetFileName path)) "its defining assembly's file"
                Expect.isFalse (Schemas.IsPredefined info) "not predefined"
                Expect.contains Schemas.Names "user-energy" "listed in Names"
                Expect.sequenceEqual (Schemas.LoadAssembly path |> Seq.map (fun s -> s.Name)) [ "user-energy" ] "loading twice is harmless"

            testCase "the predefined schemas register through the same mechanism, first and in declaration order" <| fun () ->
                let predefined = Schemas.All |> Seq.filter Schemas.IsPredefined |> Seq.map (fun s -> s.Name) |> List.ofSeq
                Expect.equal (List.truncate 5 predefined) [ "genre"; "mfcc-mean40"; "logmel-fsdd"; "raw8192"; "scattering-fsdd" ] "declaration order"
                Expect.equal (Schemas.All |> Seq.take predefined.Length |> Seq.map (fun s -> s.Name) |> List.ofSeq) predefined "predefined first"

            testCase "loading a second assembly that declares a taken name is refused, naming both types" <| fun () ->
                let source name = Driver.prelude + sprintf "[FeatureSchema(\"%s\")] public sealed partial record Twin { [Rms(Statistic.Mean)] public partial float Rms { get; } }" name
                let first = Driver.emitToFile (Driver.run (source "twin-name"))
                let second = Driver.emitToFile (Driver.run (source "twin-name"))
                Schemas.LoadAssembly first |> ignore
                let e = Driver.throws<SchemaNameConflictException> (fun () -> Schemas.LoadAssembly second |> ignore)
                Expect.stringContains e.Message "Feature schema name 'twin-name' is declared by both 'Probe.Twin'" "names the clash"
                Expect.equal (e.Name, e.Registered.Assembly.Location, e.Refused.Assembly.Location) ("twin-name", first, second) "the name and both types"
                let lookup = Driver.throws<SchemaNameConflictException> (fun () -> Schemas.ByName "twin-name" |> ignore)
                Expect.equal lookup.Message e.Message "the name is refused from then on rather than selecting either"

            testCase "LoadAssembly names the file that is missing, not an assembly, or declares no schema" <| fun () ->
                let missing = Driver.throws<ArgumentException> (fun () -> Schemas.LoadAssembly "/nonexistent/x.dll" |> ignore)
                Expect.stringContains missing.Message "Schema assembly '/nonexistent/x.dll' does not exist." "missing"
                let text = Path.GetTempFileName()
                File.WriteAllText(text, "not an assembly")
                let bad = Driver.throws<ArgumentException> (fun () -> Schemas.LoadAssembly text |> ignore)
                Expect.stringContains bad.Message "is not a .NET assembly" "not an assembly"
                let empty = Driver.throws<ArgumentException> (fun () -> Schemas.LoadAssembly typeof<Expecto.Test>.Assembly.Location |> ignore)
                Expect.stringContains empty.Message "declares no feature schemas" "no schema"

            testCase "an unknown name says how user schemas are found" <| fun () ->
                let e = Driver.throws<ArgumentException> (fun () -> Schemas.ByName "nope" |> ignore)
                Expect.stringContains e.Message "--schemas PATH.dll" "hint"
        ]
    ]
