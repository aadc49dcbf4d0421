module Hybrid.CliTests.FeaturesCommandTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.TestSupport

let private referenceSignals = [ "0_jackson_0"; "3_theo_12"; "7_nicolas_31"; "9_yweweler_44" ]

/// A reference array from a librosa JSON file: shape and row-major values.
let private referenceArray (dir: string) (signal: string) (name: string) =
    use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, signal + ".json")))
    let a = doc.RootElement.GetProperty name
    let shape = [| for d in a.GetProperty("shape").EnumerateArray() -> d.GetInt32() |]
    let data = [| for v in a.GetProperty("data").EnumerateArray() -> float32 (v.GetDouble()) |]
    shape, data

/// Copies the reference recordings into a fresh FSDD-shaped folder.
let private withReferenceFolder (fsdd: string) (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-features-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory(Path.Combine(dir, "recordings")) |> ignore
    try
        for s in referenceSignals do
            File.Copy(Path.Combine(fsdd, "recordings", s + ".wav"), Path.Combine(dir, "recordings", s + ".wav"))
        body dir
    finally
        Directory.Delete(dir, true)

let private run (args: string list) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = Hybrid.Cli.FeaturesCommand.run out err (Array.ofList args)
    code, out.ToString(), err.ToString()

let private fsddArgs = [ "--sr"; "8000"; "--n-fft"; "256"; "--hop-length"; "128"; "--n-mels"; "40"; "--fmax"; "4000"; "--device"; "managed" ]

/// Checks one exported clip against librosa, every frame: the export holds the one recording of `signal` at its own
/// length (clips are padded to the longest recording, centred, so a lone recording is not padded).
let private checkTransform (reference: string) (npy: string) (signal: string) (arrayName: string) (tolerance: float32[] -> float) =
    let shape, values = Export.readNpy npy
    let order = File.ReadAllLines(npy + ".files.txt") |> Array.map (fun l -> nonNull (Path.GetFileNameWithoutExtension(l.Split('\t').[0])))
    Expect.equal order [| signal |] "one row, the recording"
    let rshape, expected = referenceArray reference signal arrayName
    Expect.equal shape.[1..] rshape (sprintf "%s shape" signal)
    Assertions.allClose 0.0 (tolerance expected) expected values (sprintf "%s %s" signal arrayName)

[<Tests>]
let tests =
    testList "FeaturesCommand" [
        TestData.testWithFsdd "exported log-mel and MFCC transforms match librosa within the DSP tolerances" (fun fsdd ->
            match TestData.referenceFolder () with
            | None -> skiptest "librosa reference folder not found"
            | Some reference ->
                withReferenceFolder fsdd (fun dir ->
                    for signal in referenceSignals do
                        // Each reference recording is its speaker's only one here: export it alone.
                        let one = [ "--data"; dir; "--split"; "speaker:" + signal.Split('_').[1]; "--part"; "test" ]
                        for transform, array, extra, tolerance in
                            [ "logmel", "log_mel_db", [], (fun (_: float32[]) -> 0.01)
                              "mfcc", "mfcc", [ "--n-mfcc"; "13" ], (fun _ -> 1e-3)
                              "mel", "mel_spectrogram", [], (fun e -> 1e-4 * float (Array.max e)) ] do
                            let npy = Path.Combine(dir, sprintf "%s-%s.npy" transform signal)
                            let code, _, err = run (one @ [ "--out"; npy; "--transform"; transform ] @ extra @ fsddArgs)
                            Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                            checkTransform reference npy signal array tolerance))

        TestData.testWithFsdd "a schema exports to CSV, Parquet and .npy with the same rows" (fun fsdd ->
            withReferenceFolder fsdd (fun dir ->
                let outputs = [ "t.csv"; "t.parquet"; "t.npy" ] |> List.map (fun f -> Path.Combine(dir, f))
                for o in outputs do
                    let code, _, err = run [ "--data"; dir; "--out"; o; "--schema"; "mfcc-mean40"; "--device"; "managed" ]
                    Expect.equal code 0 (sprintf "exit code for %s (stderr: %s)" o err)
                let csv = Export.readCsv outputs.[0]
                let parquet = Export.readParquet outputs.[1]
                let shape, npy = Export.readNpy outputs.[2]
                Expect.equal csv.Columns.Length 40 "40 MFCC columns"
                Expect.equal parquet.Columns csv.Columns "same columns"
                Expect.equal parquet.Values csv.Values "same values in CSV and Parquet"
                Expect.equal shape [| 4; 40 |] ".npy shape"
                Expect.equal npy csv.Values "same values in .npy"
                Expect.equal csv.Labels [| "0"; "3"; "7"; "9" |] "labels from the file names"))

        TestData.testWithFsdd "the command writes FeatureExport.export's file byte for byte, for a schema part and a transform" (fun fsdd ->
            withReferenceFolder fsdd (fun dir ->
                File.WriteAllText(Path.Combine(dir, "recordings", "5_theo_0.wav"), "not audio")
                let request features out =
                    { FeatureExport.request features (Path.Combine(dir, out)) with
                        Data = FeatureExport.ExportData.Folder(Some dir)
                        Device = "managed" }
                let schemaPart =
                    { request (FeatureExport.ExportFeatures.Schema(Schemas.ByName "mfcc-mean40")) "api-part.csv" with
                        Split = Some(HoldOutSpeakers [ "theo"; "nicolas" ])
                        Part = FeatureExport.ExportPart.Train }
                let logMel =
                    let settings sr =
                        { Transforms.defaults sr with
                            Stft = Hybrid.Dsp.StftConfig(NFft = 256, HopLength = 128)
                            Mel = Hybrid.Dsp.MelConfig(SampleRate = sr, NMels = 40, FMax = 4000.0) }
                    request (FeatureExport.ExportFeatures.Transform { Kind = Transforms.LogMel; Sr = Some 8000; Length = None; Settings = settings }) "api-logmel.csv"
                let skipped = ResizeArray()
                let part = FeatureExport.export { schemaPart with OnSkipped = skipped.Add }
                let transform = FeatureExport.export logMel
                Expect.equal [ for s in skipped -> Path.GetFileName s.Path ] [ "5_theo_0.wav" ] "the API reports the unusable file"
                Expect.equal [ for i in part.Items -> i.Speaker ] [ Some "jackson"; Some "yweweler" ] "the train part"
                for api, args in
                    [ "api-part.csv", [ "--schema"; "mfcc-mean40"; "--split"; "speaker:theo,nicolas"; "--part"; "train"; "--device"; "managed" ]
                      "api-logmel.csv", [ "--transform"; "logmel" ] @ fsddArgs ] do
                    let cli = Path.Combine(dir, "cli-" + api)
                    let code, out, err = run ([ "--data"; dir; "--out"; cli ] @ args)
                    Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                    Expect.stringContains err "features: skipped " "the command reports the unusable file"
                    Expect.stringContains out (sprintf "features: wrote %s" cli) "the command names its file"
                    Expect.equal (File.ReadAllBytes cli) (File.ReadAllBytes(Path.Combine(dir, api))) (sprintf "%s byte for byte" api)
                Expect.equal transform.Shape.[0] 40 "40 mel bands"))

        TestData.testWithFsdd "with --cache a second export takes every row from the cache and writes the same values" (fun fsdd ->
            withReferenceFolder fsdd (fun dir ->
                let cache = Path.Combine(dir, "cache")
                let first, second = Path.Combine(dir, "a.npy"), Path.Combine(dir, "b.npy")
                let args out = [ "--data"; dir; "--out"; out; "--schema"; "logmel-fsdd"; "--device"; "managed"; "--cache"; cache ]
                let code1, out1, _ = run (args first)
                let code2, out2, _ = run (args second)
                Expect.equal (code1, code2) (0, 0) "exit codes"
                Expect.stringContains out1 "0 of 4 rows from the cache" "first run extracts"
                Expect.stringContains out2 "4 of 4 rows from the cache" "second run reads the cache"
                Expect.equal (Export.readNpy second) (Export.readNpy first) "same values"))

        TestData.testWithFsdd "a damaged or truncated cache shard is rebuilt with a warning, never read as numbers or a crash" (fun fsdd ->
            withReferenceFolder fsdd (fun dir ->
                let cache = Path.Combine(dir, "cache")
                let args out = [ "--data"; dir; "--out"; out; "--schema"; "logmel-fsdd"; "--device"; "managed"; "--cache"; cache ]
                let reference = Path.Combine(dir, "reference.npy")
                let code, _, _ = run (args reference)
                Expect.equal code 0 "first export"
                let shard: string = Directory.GetFiles(cache, "shard-*.parquet", SearchOption.AllDirectories) |> Array.exactlyOne
                let damages: (string * (byte[] -> byte[])) list =
                    [ "64 bytes zeroed in the middle", (fun b -> let c = Array.copy b in Array.fill c (c.Length / 2) 64 0uy; c)
                      "cut to half its length", (fun b -> b.[.. b.Length / 2 - 1])
                      "cut to 10 bytes", (fun b -> b.[.. 9])
                      "one byte flipped near the end of the data", (fun b -> let c = Array.copy b in c.[c.Length * 3 / 4] <- c.[c.Length * 3 / 4] ^^^ 0x55uy; c) ]
                for what, damage in damages do
                    File.WriteAllBytes(shard, damage (File.ReadAllBytes shard))
                    let out = Path.Combine(dir, "again.npy")
                    let code, _, err = run (args out)
                    Expect.equal code 0 (sprintf "%s: exit code (stderr: %s)" what err)
                    Expect.stringContains err "rebuilding the shard" (sprintf "%s: the damaged shard is reported" what)
                    Expect.stringContains err (nonNull (Path.GetFileName shard)) (sprintf "%s: the message names the shard" what)
                    Expect.equal (Export.readNpy out) (Export.readNpy reference) (sprintf "%s: the rebuilt rows are the reference's" what)
                    let code, _, err = run (args out)
                    Expect.equal code 0 (sprintf "%s: a run after the rebuild" what)
                    Expect.isFalse (err.Contains "rebuilding") (sprintf "%s: the rebuilt shard reads cleanly" what)))

        TestData.testWithFsdd "the scattering transform exports [clips, paths, frames], and --log-mean its log time average without order 0" (fun fsdd ->
            withReferenceFolder fsdd (fun dir ->
                let full = Path.Combine(dir, "s.npy")
                let means = Path.Combine(dir, "m.npy")
                let common = [ "--data"; dir; "--transform"; "scattering"; "--j"; "6"; "--q"; "4"; "--sr"; "8000"; "--length"; "2048"; "--device"; "managed" ]
                let code, _, err = run (common @ [ "--out"; full ])
                Expect.equal code 0 err
                let code, _, err = run (common @ [ "--out"; means; "--log-mean" ])
                Expect.equal code 0 err
                let bank = Hybrid.Dsp.Filters.Scattering1D(Hybrid.Dsp.ScatteringConfig(6, 4), 2048)
                let paths, frames = bank.Paths.Count, bank.Frames
                let shape, s = Export.readNpy full
                Expect.equal shape [| 4; paths; frames |] "[clips, paths, frames]"
                Expect.isTrue (File.Exists(full + ".files.txt")) "sidecar like the other transforms"
                let mshape, m = Export.readNpy means
                Expect.equal mshape [| 4; paths - 1 |] "[clips, paths - 1]"
                for c in 0 .. 3 do
                    for p in 1 .. paths - 1 do
                        let expected = Seq.average (seq { for f in 0 .. frames - 1 -> log (abs (float s.[(c * paths + p) * frames + f]) + 1e-6) })
                        let actual = float m.[c * (paths - 1) + p - 1]
                        if abs (actual - expected) > 1e-4 then failtestf "clip %d path %d: log-mean %g, from the full export %g" c p actual expected
                Expect.isGreaterThan (Array.max s) 0.0f "non-zero coefficients"))

        test "--transform scattering without --j, and --j with another transform, are usage errors" {
            let code, _, err = run [ "--data"; "."; "--out"; "x.npy"; "--transform"; "scattering" ]
            Expect.equal code 2 "exit code 2 without --j"
            Expect.stringContains err "--j" "names the missing flag"
            let code, _, err = run [ "--data"; "."; "--out"; "x.npy"; "--transform"; "mel"; "--j"; "6" ]
            Expect.equal code 2 "exit code 2 for --j with mel"
            Expect.stringContains err "applies only with --transform scattering" "says where --j applies"
        }

        test "a NaN recording is skipped with its reason, a truncated one used with a warning; --strict refuses both" {
            use temp = new Hybrid.FeaturesTests.DatasetFixtures.TempFolder()
            Hybrid.FeaturesTests.DatasetFixtures.writeFsdd temp.Path [ 1; 2 ] [ "ann" ] [ 0 ]
            Hybrid.FeaturesTests.DatasetFixtures.write (temp.Combine "recordings/3_ann_0.wav") (Hybrid.FeaturesTests.DatasetFixtures.floatWav32 [| 0.1f; nanf; 0.0f |])
            Hybrid.FeaturesTests.DatasetFixtures.write (temp.Combine "recordings/4_ann_0.wav") (snd (Hybrid.FeaturesTests.DatasetFixtures.truncatedWavs ()).[1])
            let out = temp.Combine "rms.npy"
            let args = [ "--data"; temp.Path; "--out"; out; "--transform"; "rms"; "--sr"; "8000"; "--n-fft"; "256"; "--device"; "managed" ]
            let code, _, err = run args
            Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
            Expect.stringContains err "3_ann_0.wav: non-finite samples: NaN at frame 1, channel 0" "the NaN file is skipped with its reason"
            Expect.stringContains err "warning" "the truncated file is warned about"
            let shape, values = Export.readNpy out
            Expect.equal shape.[0] 3 "three clips exported"
            Expect.isTrue (values |> Array.forall Single.IsFinite) "no NaN features"
            let code, _, err = run ("--strict" :: args)
            Expect.equal code 1 (sprintf "--strict exits 1 (stderr: %s)" err)
            Expect.stringContains err "3_ann_0.wav" "naming the first refused file"
        }

        // The single feature path: `features` exports, for each schema (declared or a run-time variant), exactly the
        // rows `train` feeds the network. The comparison point is FeatureStore.partRows (rows read from the feature shards), whose output is xTrain/xTest
        // just before Normalization.fit and the train-fitted standardisation; the recipe's per-utterance step (cnn2d's
        // per-band mean removal, a training-side normalisation `features` does not apply) is switched off. Clips are
        // loaded as `train` loads them (Dataset.openFolder, AudioFile.read at the schema's rate); every float must
        // have the same bits.
        TestData.testWithFsdd "the rows features exports are bit-identical to the rows train feeds the network" (fun fsdd ->
            withReferenceFolder fsdd (fun dir ->
                let cases =
                    [ "logmel-fsdd", [], Extraction.noOverrides, "cnn2d"
                      "mfcc-mean40", [], Extraction.noOverrides, "mlp"
                      "genre", [], Extraction.noOverrides, "logreg"
                      "logmel-fsdd", [ "--n-fft"; "512"; "--n-mels"; "64" ], { Extraction.noOverrides with NFft = Some 512; NMels = Some 64 }, "cnn2d"
                      "mfcc-mean40", [ "--n-fft"; "1024"; "--n-mfcc"; "13"; "--fmax"; "8000" ], { Extraction.noOverrides with NFft = Some 1024; NMfcc = Some 13; FMax = Some 8000.0 }, "mlp" ]
                use engine = new Hybrid.Dsp.Managed.ManagedEngine()
                let dataset = Dataset.openFolder false dir
                for k, (name, flags, overrides, model) in List.indexed cases do
                    let npy = Path.Combine(dir, sprintf "rows%d.npy" k)
                    let code, out, err = run ([ "--data"; dir; "--out"; npy; "--schema"; name; "--device"; "managed"; "--json" ] @ flags)
                    Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                    let shape, exported = Export.readNpy npy
                    let order = File.ReadAllLines(npy + ".files.txt") |> Array.map (fun l -> l.Split('\t').[0])
                    let schema = Extraction.variant (Hybrid.Features.Schemas.Schemas.ByName name) overrides
                    use json = JsonDocument.Parse((out.Trim().Split('\n') |> Array.last))
                    Expect.equal (json.RootElement.GetProperty("fingerprint").GetString()) schema.Fingerprint (sprintf "%s %A: the variant train derives" name flags)
                    Expect.equal shape.[1..] (Array.ofSeq schema.Shape) "row shape"
                    let items = order |> Array.map (fun p -> dataset.Items |> Array.find (fun i -> i.Key = p))
                    // As train: the recordings' shards (one whole clip each), then the part's rows read from them.
                    let plan: Hybrid.Classifier.ClipPlan = { SampleRate = schema.SampleRate; ClipSamples = max 1 schema.ClipSamples; RecordingSamples = None; Segment = None; Trim = None; Loudness = None }
                    let cache = Path.Combine(dir, sprintf "cache%d" k)
                    let plans, _ =
                        Hybrid.Classifier.FeatureStore.ensure engine schema cache (Hybrid.Classifier.FeatureStore.clipVariant plan)
                            (Hybrid.Classifier.FeatureStore.clipsOf plan [] 0 [||] 0) dataset.Items
                    let part = Hybrid.Classifier.FeatureStore.partRows engine schema cache Hybrid.Classifier.NoNormalization plan plans [] 0 0 [||] "none" ignore (Path.Combine(dir, sprintf "rows%d.f32" k)) items
                    let fed = Hybrid.Classifier.FeatureStore.partValues part
                    Expect.equal fed.Length exported.Length (sprintf "%s %A: row count" name flags)
                    let bits (a: float32[]) = a |> Array.map BitConverter.SingleToInt32Bits
                    Expect.isTrue (bits fed = bits exported) (sprintf "%s %A: bit-identical rows" name flags)))

        TestData.testWithFsdd "feature options derive a schema variant: its own shape, columns and fingerprint" (fun fsdd ->
            withReferenceFolder fsdd (fun dir ->
                let csv = Path.Combine(dir, "variant.csv")
                let code, out, err = run [ "--data"; dir; "--out"; csv; "--schema"; "logmel-fsdd"; "--n-mels"; "64"; "--hop-length"; "64"; "--device"; "managed"; "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                use json = JsonDocument.Parse((out.Trim().Split('\n') |> Array.last))
                let root = json.RootElement
                Expect.equal [ for d in root.GetProperty("shape").EnumerateArray() -> d.GetInt32() ] [ 64; 129 ] "64 mels x 129 frames (hop 64)"
                Expect.notEqual (root.GetProperty("fingerprint").GetString()) Hybrid.Features.Schemas.LogMelFsddFeatures.Fingerprint "a variant's own fingerprint"
                Expect.equal (root.GetProperty("variant").GetString()) "hop_length=64,n_mels=64" "the variant's parameters"
                let table = Export.readCsv csv
                Expect.equal table.Columns.Length (64 * 129) "one column per mel and frame"
                Expect.equal table.Columns.[129] "log_mel2_1" "column names follow the schema's rule"))

        TestData.testWithFsdd "invalid feature options are refused with the option's name and valid range" (fun fsdd ->
            withReferenceFolder fsdd (fun dir ->
                let out = Path.Combine(dir, "x.npy")
                for flags, expected in
                    [ [ "--schema"; "logmel-fsdd"; "--n-fft"; "1" ], [ "--n-fft"; "in 2..16384"; "was 1" ]
                      [ "--schema"; "mfcc-mean40"; "--fmax"; "20000" ], [ "--fmax"; "Nyquist"; "11025" ]
                      [ "--schema"; "mfcc-mean40"; "--n-mels"; "32" ], [ "--n-mfcc"; "40 MFCCs"; "n_mels = 32" ]
                      [ "--schema"; "logmel-fsdd"; "--top-db"; "0" ], [ "--top-db"; "a finite number of dB > 0" ]
                      [ "--schema"; "genre"; "--n-mels"; "0" ], [ "--n-mels"; "an integer >= 1, was 0" ] ] do
                    let code, _, err = run ([ "--data"; dir; "--out"; out; "--device"; "managed" ] @ flags)
                    Expect.equal code 2 (sprintf "%A: a usage error (stderr: %s)" flags err)
                    for e in expected do Expect.stringContains err e (sprintf "%A: the message names %s" flags e)))

        test "exported rows are keyed by the path relative to the dataset root, so equal file names in class folders stay apart" {
            use temp = new Hybrid.FeaturesTests.DatasetFixtures.TempFolder()
            Hybrid.FeaturesTests.DatasetFixtures.writeSpeechCommands temp.Path [ "no"; "yes" ] 2 2 1 |> ignore
            let csv = temp.Combine "rows.csv"
            let code, _, err = run [ "--data"; temp.Path; "--out"; csv; "--transform"; "rms"; "--sr"; "16000"; "--n-fft"; "512"; "--length"; "4000"; "--device"; "managed" ]
            Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
            let table = Export.readCsv csv
            Expect.equal (Array.distinct table.Files).Length table.Files.Length "one key per row"
            for key in table.Files do
                Expect.isTrue (key.StartsWith "no/" || key.StartsWith "yes/") (sprintf "%s is relative to the root, with its class folder" key)
            let names = table.Files |> Array.map (fun k -> k.Substring(k.IndexOf '/' + 1))
            Expect.isLessThan (Array.distinct names).Length names.Length "the stand-in repeats file names across words, as Speech Commands does"
        }

        test "--part and --seed without --split are usage errors" {
            for flags, name in [ [ "--part"; "test" ], "--part"; [ "--seed"; "3" ], "--seed" ] do
                let code, _, err = run ([ "--data"; "."; "--out"; "x.csv"; "--schema"; "genre" ] @ flags)
                Expect.equal code 2 (sprintf "%s: exit code 2" name)
                Expect.stringContains err (name + " ") (sprintf "%s: names the option" name)
                Expect.stringContains err "--split" (sprintf "%s: says what is missing" name)
        }

        test "giving neither a schema nor a transform is a usage error" {
            let code, _, err = run [ "--data"; "."; "--out"; "x.csv" ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "--schema" "expected the fix in the message"
        }

        test "--help prints the options and succeeds" {
            let code, out, _ = run [ "--help" ]
            Expect.equal code 0 "exit code 0"
            Expect.stringContains out "--hop-length" "expected librosa-named options"
        }
    ]
