/// AudioClassifier, the prediction façade, and the sample application under samples/Classify that uses it.
module Hybrid.ClassifierTests.AudioClassifierTests

open System
open System.Diagnostics
open System.IO
open System.Threading.Tasks
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Classifier
open Hybrid.Features
open Hybrid.TestSupport

let private close (what: string) (expected: float32 seq) (actual: float32 seq) =
    Seq.iteri2 (fun i (a: float32) (b: float32) ->
        if abs (a - b) > 1e-6f then failtestf "%s: probability %d expected %g, was %g" what i a b) expected actual

[<Tests>]
let tests =
    testSequenced <| testList "AudioClassifier" [
        slow <| TestData.testWithFsdd "files in other formats are read as predict reads them (.au, AIFF, MP3)" (fun fsdd ->
            let modelPath = TrainedModels.model fsdd "cnn2d"
            let audio =
                match TestData.repositoryRoot () with
                | Some root -> Path.Combine(root, "tests", "Features.Tests", "audio")
                | None -> failtest "repository root not found"
            let files = [ for name in [ "s16.au"; "s16.aiff"; "mono-22k.mp3" ] -> Path.Combine(audio, name) ]
            let expected = Inference.predict "managed" ignore modelPath files
            use classifier = AudioClassifier.Load modelPath
            for e, r in List.zip expected (List.ofArray (classifier.ClassifyFiles(Array.ofList files))) do
                close (nonNull (IO.Path.GetFileName e.Path)) (e.Probabilities |> List.map (snd >> float32)) r.Probabilities)

        slow <| TestData.testWithFsdd "files, buffers and streams give predict's labels and probabilities" (fun fsdd ->
            let modelPath = TrainedModels.model fsdd "cnn2d"
            let files = TrainedModels.heldOut fsdd |> List.truncate 12
            let expected = Inference.predict "managed" ignore modelPath files
            use classifier = AudioClassifier.Load modelPath
            Expect.equal (List.ofSeq classifier.Labels) (expected.Head.Probabilities |> List.map fst) "labels in output order"
            let fromFiles = classifier.ClassifyFiles(Array.ofList files)
            for e, r in List.zip expected (List.ofArray fromFiles) do
                Expect.equal r.Label e.Label "label"
                close "file" (e.Probabilities |> List.map (snd >> float32)) r.Probabilities
            let audio = AudioFile.read AudioFile.defaults files.Head
            close "buffer" fromFiles[0].Probabilities (classifier.Classify(audio.Samples[0], audio.SampleRate)).Probabilities
            use stream = File.OpenRead files.Head
            close "stream" fromFiles[0].Probabilities (classifier.ClassifyStream stream).Probabilities
            Expect.floatClose Accuracy.medium (float (Seq.sum fromFiles[0].Probabilities)) 1.0 "probabilities sum to 1")

        slow <| TestData.testWithFsdd "recordings at another rate are resampled to the model's (8 kHz FSDD under a 22,050 Hz model)" (fun fsdd ->
            let modelPath = TrainedModels.model fsdd "mlp"
            let files = TrainedModels.heldOut fsdd |> List.truncate 6
            let expected = Inference.predict "managed" ignore modelPath files
            use classifier = AudioClassifier.Load modelPath
            Expect.equal classifier.SampleRate 22050 "model rate"
            let clips = files |> List.map (fun f -> (AudioFile.read AudioFile.defaults f).Samples[0]) |> Array.ofList
            let results = classifier.ClassifyBatch(clips, 8000)
            for e, r in List.zip expected (List.ofArray results) do
                close "8 kHz buffer" (e.Probabilities |> List.map (snd >> float32)) r.Probabilities)

        slow <| TestData.testWithFsdd "concurrent calls from eight threads give the results of calls one at a time" (fun fsdd ->
            let modelPath = TrainedModels.model fsdd "cnn2d"
            let files = TrainedModels.heldOut fsdd |> List.truncate 16 |> Array.ofList
            use classifier = AudioClassifier.Load modelPath
            let sequential = files |> Array.map classifier.ClassifyFile
            let parallelResults = Array.zeroCreate files.Length
            Parallel.For(0, files.Length, ParallelOptions(MaxDegreeOfParallelism = 8), fun i -> parallelResults[i] <- classifier.ClassifyFile files[i]) |> ignore
            for s: Classification, p: Classification in Array.zip sequential parallelResults do
                close "parallel" s.Probabilities p.Probabilities)

        testCase "a damaged model file raises ModelFileException naming it" (fun () ->
            let path = Path.Combine(Path.GetTempPath(), "hybrid-damaged-" + Guid.NewGuid().ToString("N") + ".hnn")
            try
                File.WriteAllBytes(path, Text.Encoding.ASCII.GetBytes "HYBRIDNN not really a model")
                try
                    use _ = AudioClassifier.Load path
                    failtest "expected ModelFileException"
                with :? ModelFileException as e -> Expect.stringContains e.Message path "names the file"
            finally
                File.Delete path)

        slow <| TestData.testWithFsdd "the sample application builds and classifies a recording" (fun fsdd ->
            let root = (TestData.repositoryRoot ()).Value
            let project = Path.Combine(root, "samples", "Classify")
            let modelPath = TrainedModels.model fsdd "cnn2d"
            let file = (TrainedModels.heldOut fsdd).Head
            let expected = (Inference.predict "managed" ignore modelPath [ file ]).Head
            let runProcess (args: string list) =
                let psi = ProcessStartInfo("dotnet", args, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
                use p = nonNull (Process.Start psi)
                let output = p.StandardOutput.ReadToEndAsync()
                let error = p.StandardError.ReadToEnd()
                p.WaitForExit()
                p.ExitCode, output.Result, error
            let code, output, error = runProcess [ "build"; project; "-c"; "Release"; "-v"; "q"; "-nologo" ]
            Expect.equal code 0 (sprintf "dotnet build samples/Classify: %s %s" output error)
            let dll = Path.Combine(project, "bin", "Release", "net10.0", "Classify.dll")
            let code, output, error = runProcess [ dll; modelPath; file ]
            Expect.equal code 0 (sprintf "the sample failed: %s" error)
            Expect.stringContains output (sprintf "%s: %s (" file expected.Label) "prints predict's label"
            // A bad file among good ones: the sample goes on, names it, and ends with exit code 1, as `predict` does.
            let bad = Path.Combine(Path.GetTempPath(), sprintf "classify-bad-%d.wav" (Random.Shared.Next()))
            File.WriteAllBytes(bad, Text.Encoding.ASCII.GetBytes "RIFF....WAVEnot audio")
            try
                let code, output, error = runProcess [ dll; modelPath; bad; file ]
                Expect.equal code 1 (sprintf "one unreadable file: exit code 1 (%s)" error)
                Expect.stringContains error bad "the bad file is named"
                let named = error.Split('\n') |> Array.filter (fun l -> l.Contains bad)
                Expect.equal named.Length 1 (sprintf "one error line names the bad file: %s" error)
                Expect.equal (named[0].Split(bad).Length - 1) 1 (sprintf "the path is named once: %s" named[0])
                Expect.stringContains output (sprintf "%s: %s (" file expected.Label) "the good file after it is still classified"
            finally File.Delete bad)
    ]
