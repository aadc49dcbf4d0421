module Hybrid.FeaturesTests.TrainCommandTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport

let private run (command: TextWriter -> TextWriter -> string[] -> int) (args: string list) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = command out err (Array.ofList args)
    code, out.ToString(), err.ToString()

/// Two speakers, every digit, indexes 0-7.
let private withSubset (fsdd: string) (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-train-cmd-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory(Path.Combine(dir, "recordings")) |> ignore
    try
        for digit in 0 .. 9 do
            for speaker in [ "george"; "nicolas" ] do
                for index in 0 .. 7 do
                    let name = sprintf "%d_%s_%d.wav" digit speaker index
                    File.Copy(Path.Combine(fsdd, "recordings", name), Path.Combine(dir, "recordings", name))
        body dir
    finally
        Directory.Delete(dir, true)

[<Tests>]
let tests =
    testSequenced <| testList "TrainCommand" [
        TestData.testWithFsdd "--json ends with one line holding the split, sizes, accuracy and timings" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let code, out, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "3"; "--device"; "managed"; "--no-plots"; "--out"; Path.Combine(dir, "run"); "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                let last = out.Trim().Split('\n') |> Array.last
                use doc = JsonDocument.Parse last
                let root = doc.RootElement
                for key in [ "split"; "model"; "device"; "n_train"; "n_test"; "test_accuracy"; "train_seconds"; "total_seconds"; "per_speaker" ] do
                    Expect.isTrue (fst (root.TryGetProperty key)) (sprintf "expected key %s" key)
                Expect.equal (root.GetProperty("n_train").GetInt32()) 60 "indexes 5-7 of 20 digit-speaker pairs"
                Expect.equal (root.GetProperty("n_test").GetInt32()) 100 "indexes 0-4"
                Expect.equal (root.GetProperty("model").GetString()) "logreg" "model"))

        TestData.testWithFsdd "--split loso reports every held-out speaker" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let code, out, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "2"; "--split"; "loso"; "--device"; "managed"; "--no-plots"; "--out"; Path.Combine(dir, "loso"); "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                use doc = JsonDocument.Parse(out.Trim().Split('\n') |> Array.last)
                let perSpeaker = doc.RootElement.GetProperty "per_speaker"
                Expect.equal [ for p in perSpeaker.EnumerateObject() -> p.Name ] [ "george"; "nicolas" ] "one accuracy per speaker"
                Expect.isTrue (File.Exists(Path.Combine(dir, "loso", "model-george.hnn"))) "one model per fold"))

        TestData.testWithFsdd "feature options train on a schema variant that the model file records" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let out = Path.Combine(dir, "variant")
                let code, _, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "2"; "--n-fft"; "1024"; "--n-mfcc"; "13"; "--device"; "managed"; "--no-plots"; "--out"; out ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                let _, info = Hybrid.Classifier.ModelFile.inspect (Path.Combine(out, "model.hnn"))
                Expect.contains info.TrainingSettings ("feature_parameters", "n_fft=1024,hop_length=256,win_length=1024,n_mfcc=13") "the variant's parameters"
                let schema = Hybrid.Features.Extraction.replay "genre" "n_fft=1024,hop_length=256,win_length=1024,n_mfcc=13"
                Expect.equal info.SchemaFingerprint schema.Fingerprint "the variant's fingerprint"
                Expect.equal schema.Length 19 "6 spectral statistics and 13 MFCC means"))

        test "an invalid feature option is a usage error naming the option and its range" {
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--model"; "mlp"; "--n-mfcc"; "0"; "--data"; "." ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "n_mfcc must be positive, was 0" "the range"
            Expect.stringContains err "--n-mfcc" "the option"
        }

        test "an unknown model is a usage error naming the valid models" {
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--model"; "transformer"; "--data"; "." ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "cnn2d" "expected the valid names"
        }

        test "plot writes the four example pictures of a recording" {
            let dir = Path.Combine(Path.GetTempPath(), "hybrid-plot-" + Guid.NewGuid().ToString("N"))
            try
                let wav = Path.Combine(dir, "tone.wav")
                Directory.CreateDirectory dir |> ignore
                let samples = Array.init 8000 (fun i -> float32 (0.5 * sin (2.0 * Math.PI * 440.0 * float i / 8000.0)))
                Hybrid.Features.Wav.write wav Hybrid.Features.SampleFormat.Pcm16 { SampleRate = 8000; Samples = [| samples |] }
                let code, out, err = run Hybrid.Cli.PlotCommand.run [ wav; "--out"; dir; "--device"; "managed" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                for kind in [ "waveform"; "spectrogram"; "mel"; "mfcc" ] do
                    let png = Path.Combine(dir, sprintf "tone-%s.png" kind)
                    Expect.stringContains out png "reported"
                    let w, h, colours = Hybrid.Features.Plots.inspectPng png
                    Expect.isGreaterThan (w * h) 100000 "a full-size picture"
                    Expect.isGreaterThan colours 8 "not blank"
            finally
                if Directory.Exists dir then Directory.Delete(dir, true)
        }

        test "predict without files is a usage error" {
            let code, _, err = run Hybrid.Cli.PredictCommand.run [ "--model"; "missing.hnn" ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "WAV file" "expected what is missing"
        }
    ]
