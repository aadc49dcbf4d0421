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

        TestData.testWithFsdd "train lists a truncated recording as a warning and uses it; --strict refuses it, naming the file" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let cut = Path.Combine(dir, "recordings", "3_george_7.wav")
                let whole = File.ReadAllBytes cut
                File.WriteAllBytes(cut, whole.[.. whole.Length - 1001])
                let args = [ "--data"; dir; "--model"; "logreg"; "--epochs"; "1"; "--device"; "managed"; "--no-plots"; "--out"; Path.Combine(dir, "run") ]
                let code, out, err = run Hybrid.Cli.TrainCommand.run args
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                Expect.stringContains out (sprintf "warning %s: truncated file" cut) "the warning is listed"
                let code, _, err = run Hybrid.Cli.TrainCommand.run (args @ [ "--strict" ])
                Expect.equal code 1 "--strict exits 1"
                Expect.stringContains err "3_george_7.wav" "naming the refused file"
                Expect.stringContains err "truncated file" "and why"))

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

        TestData.testWithFsdd "predict with several files gives a result per readable file and an error per bad one, then exits 1" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let runDir = Path.Combine(dir, "run")
                let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "1"; "--device"; "managed"; "--no-plots"; "--out"; runDir ]
                Expect.equal code 0 (sprintf "training exit code (stderr: %s)" err)
                let model = Path.Combine(runDir, "model.hnn")
                let good1 = Path.Combine(dir, "recordings", "0_george_0.wav")
                let good2 = Path.Combine(dir, "recordings", "5_nicolas_3.wav")
                let nanFile = Path.Combine(dir, "nan.wav")
                Hybrid.Features.Wav.write nanFile Hybrid.Features.SampleFormat.Float32 { SampleRate = 8000; Samples = [| [| 0.1f; nanf; 0.2f |] |] }
                let missing = Path.Combine(dir, "missing.wav")
                let cut = Path.Combine(dir, "cut.wav")
                let whole = File.ReadAllBytes good2
                File.WriteAllBytes(cut, whole.[.. whole.Length - 1001])
                let files = [ good1; nanFile; missing; cut; good2 ]
                let code, out, err = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed" ] @ files)
                Expect.equal code 1 "exit code 1: some files could not be read"
                let lines = out.Trim().Split('\n') |> Array.map (fun l -> l.Trim())
                Expect.equal (lines |> Array.map (fun l -> l.Substring(0, l.IndexOf ": "))) [| good1; cut; good2 |] "a result line per readable file, in order"
                Expect.stringContains err (sprintf "predict: %s: non-finite samples: NaN at frame 1, channel 0" nanFile) "an error line naming the NaN file and why"
                Expect.stringContains err (sprintf "predict: %s: " missing) "an error line naming the missing file"
                Expect.stringContains err (sprintf "predict: warning %s: truncated file" cut) "the truncated file's warning"
                let code, out, _ = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed"; "--json" ] @ files)
                Expect.equal code 1 "--json: exit code 1 too"
                let items = out.Trim().Split('\n') |> Array.map (fun l -> JsonDocument.Parse(l).RootElement)
                Expect.equal (items |> Array.map (fun e -> e.GetProperty("path").GetString() |> nonNull)) (Array.ofList files) "one object per file, in order"
                Expect.equal (items |> Array.map (fun e -> fst (e.TryGetProperty "error"))) [| false; true; true; false; false |] "an error field exactly for the bad files"
                Expect.stringStarts (items.[1].GetProperty("error").GetString() |> nonNull) "non-finite samples" "the NaN file's error"
                Expect.equal (items |> Array.map (fun e -> fst (e.TryGetProperty "label"))) [| true; false; false; true; true |] "a label for every readable file"
                Expect.equal (items.[3].GetProperty("warning").ValueKind) JsonValueKind.String "the truncated file carries its warning"
                let code, out, _ = run Hybrid.Cli.PredictCommand.run [ "--model"; model; "--device"; "managed"; good1; good2 ]
                Expect.equal code 0 "exit code 0 when every file was classified"
                Expect.equal (out.Trim().Split('\n').Length) 2 "two results"))

        test "predict without files is a usage error" {
            let code, _, err = run Hybrid.Cli.PredictCommand.run [ "--model"; "missing.hnn" ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "WAV file" "expected what is missing"
        }
    ]
