module Hybrid.FeaturesTests.FeaturesCommandTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.Features
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

/// Checks the first frames of each exported clip (later frames are the zero padding to the longest clip,
/// which changes nothing before it: librosa centres with zero padding too).
let private checkTransform (reference: string) (npy: string) (arrayName: string) (tolerance: float32[] -> float) =
    let shape, values = Export.readNpy npy
    let order = File.ReadAllLines(npy + ".files.txt") |> Array.map (fun l -> nonNull (Path.GetFileNameWithoutExtension(l.Split('\t').[0])))
    Expect.equal (Array.sort order) (List.toArray referenceSignals |> Array.sort) "one row per recording"
    order
    |> Array.iteri (fun row signal ->
        let rshape, expected = referenceArray reference signal arrayName
        let rows, frames = rshape.[0], rshape.[1]
        Expect.equal shape.[1] rows (sprintf "%s rows" signal)
        let actual = Array.init (rows * frames) (fun k -> values.[row * shape.[1] * shape.[2] + (k / frames) * shape.[2] + k % frames])
        let atol = tolerance expected
        Assertions.allClose 0.0 atol expected actual (sprintf "%s %s" signal arrayName))

[<Tests>]
let tests =
    testList "FeaturesCommand" [
        TestData.testWithFsdd "exported log-mel and MFCC transforms match librosa within the DSP tolerances" (fun fsdd ->
            match TestData.referenceFolder () with
            | None -> skiptest "librosa reference folder not found"
            | Some reference ->
                withReferenceFolder fsdd (fun dir ->
                    let logmel = Path.Combine(dir, "logmel.npy")
                    let code, _, err = run ([ "--data"; dir; "--out"; logmel; "--transform"; "logmel" ] @ fsddArgs)
                    Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                    checkTransform reference logmel "log_mel_db" (fun _ -> 0.01)
                    let mfcc = Path.Combine(dir, "mfcc.npy")
                    let code, _, err = run ([ "--data"; dir; "--out"; mfcc; "--transform"; "mfcc"; "--n-mfcc"; "13" ] @ fsddArgs)
                    Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                    checkTransform reference mfcc "mfcc" (fun _ -> 1e-3)
                    let mel = Path.Combine(dir, "mel.npy")
                    let code, _, err = run ([ "--data"; dir; "--out"; mel; "--transform"; "mel" ] @ fsddArgs)
                    Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                    checkTransform reference mel "mel_spectrogram" (fun e -> 1e-4 * float (Array.max e))))

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
            Expect.stringContains err "--transform scattering only" "says where --j applies"
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
