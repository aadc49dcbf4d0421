/// The one inference path: predict, AudioClassifier, evaluate and train's own test evaluation give the same
/// probabilities for every recipe and every preparation (windows, test-time speeds, trimming, whole clips).
module Hybrid.ClassifierTests.InferenceTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Classifier
open Hybrid.Features
open Hybrid.TestSupport

/// Fails unless every probability of `actual` is within 1e-6 of `expected`'s.
let private close (what: string) (expected: float seq) (actual: float seq) =
    Seq.iteri2 (fun i (e: float) (a: float) ->
        if abs (e - a) > 1e-6 then failtestf "%s: probability %d expected %.9g, was %.9g" what i e a) expected actual

/// Copies the held-out recordings into an FSDD layout for evaluate.
let private heldOutFolder (fsdd: string) (files: string list) =
    let dir = TrainedModels.scratch "evaluate"
    let recordings = Path.Combine(dir, "recordings")
    Directory.CreateDirectory recordings |> ignore
    for f in files do File.Copy(f, Path.Combine(recordings, nonNull (Path.GetFileName f)))
    dir

/// predict == AudioClassifier (files and buffers) == evaluate, to 1e-6, for the model at `modelPath`.
let private agree (fsdd: string) (name: string) (modelPath: string) =
    let files = TrainedModels.heldOut fsdd |> List.truncate 10
    let predicted = Inference.predict "managed" ignore modelPath files
    use classifier = AudioClassifier.Load modelPath
    let fromFiles = classifier.ClassifyFiles(Array.ofList files)
    for p, c in List.zip predicted (List.ofArray fromFiles) do
        Expect.equal c.Label p.Label (sprintf "%s: AudioClassifier's label for %s" name p.Path)
        close (sprintf "%s: AudioClassifier.ClassifyFiles, %s" name p.Path) (p.Probabilities |> List.map snd) (c.Probabilities |> Seq.map float)
    let buffers = files |> List.map (fun f -> (AudioFile.read AudioFile.defaults f).Samples.[0]) |> Array.ofList
    for p, c in List.zip predicted (List.ofArray (classifier.ClassifyBatch(buffers, 8000))) do
        close (sprintf "%s: AudioClassifier.ClassifyBatch, %s" name p.Path) (p.Probabilities |> List.map snd) (c.Probabilities |> Seq.map float)
    let evaluated =
        Evaluation.evaluate
            { Model = modelPath; Data = heldOutFolder fsdd files; LabelMap = []; Labels = None; Part = None; Seed = 0
              Device = "managed"; Strict = false; Out = None; Plots = false; Log = ignore }
    Expect.equal evaluated.Count files.Length (sprintf "%s: evaluate scores every recording" name)
    let byName = predicted |> List.map (fun p -> nonNull (Path.GetFileName p.Path), p) |> dict
    for path, _, label, probability in evaluated.Predictions do
        let p = byName.[nonNull (Path.GetFileName path)]
        Expect.equal label p.Label (sprintf "%s: evaluate's label for %s" name path)
        close (sprintf "%s: evaluate, %s" name path) [ snd (p.Probabilities |> List.find (fun (l, _) -> l = label)) ] [ probability ]

[<Tests>]
let tests =
    testSequenced << slow <| testList "Inference" [
        for recipe in Recipes.all do
            TestData.testWithFsdd (sprintf "predict, AudioClassifier and evaluate agree to 1e-6 on a %s model" recipe.Name) (fun fsdd ->
                agree fsdd recipe.Name (TrainedModels.model fsdd recipe.Name))
        for variant, what in [ "windowed", "windows averaged per recording"; "speeds", "test-time speeds"; "trimmed", "silence trimmed and levelled"; "untrimmed", "recordings kept whole"; "pcen", "PCEN front end" ] do
            TestData.testWithFsdd (sprintf "predict, AudioClassifier and evaluate agree to 1e-6 on a cnn2d model with %s" what) (fun fsdd ->
                agree fsdd variant (TrainedModels.variant fsdd variant))

        TestData.testWithFsdd "a PCEN model records pcen=true and predict replays the training-time schema variant" (fun fsdd ->
            let modelPath = TrainedModels.variant fsdd "pcen"
            let _, info = ModelFile.inspect modelPath
            let trained =
                Extraction.variant (Hybrid.Features.Schemas.Schemas.ByName "logmel-fsdd") { Extraction.noOverrides with NFft = Some 512; Other = [ "pcen", "true" ] }
            Expect.equal info.SchemaFingerprint trained.Fingerprint "the file carries the PCEN variant's fingerprint"
            use engine = Hybrid.Dsp.Engines.Create("managed", ignore)
            let loaded = Inference.load engine modelPath
            Expect.equal loaded.Extraction.Fingerprint trained.Fingerprint "predict extracts with the PCEN variant"
            Expect.isNotNull (box loaded.Extraction.Parameters.Pcen) "PCEN replayed")

        TestData.testWithFsdd "train's test accuracy and log-loss are predict's on the same recordings (windows, speeds, PCEN)" (fun fsdd ->
            for variant in [ "windowed"; "speeds"; "pcen" ] do
                let modelPath = TrainedModels.variant fsdd variant
                let metrics = Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(nonNull (Path.GetDirectoryName modelPath), "metrics.json")))
                let fold = metrics.RootElement.GetProperty("folds").[0]
                let test =
                    Directory.GetFiles(Path.Combine(TrainedModels.subset fsdd, "recordings"))
                    |> Array.filter (fun f -> Dataset.tryParseFsddName (nonNull (Path.GetFileName f)) |> Option.exists (fun (_, _, i) -> i < 5))
                    |> Array.sort |> List.ofArray
                let predicted = Inference.predict "managed" ignore modelPath test
                let label (p: Prediction) = (nonNull (Path.GetFileName p.Path)).Substring(0, 1)
                let accuracy = predicted |> List.averageBy (fun p -> if p.Label = label p then 1.0 else 0.0)
                let logLoss = predicted |> List.averageBy (fun p -> -log (max 1e-15 (p.Probabilities |> List.find (fun (l, _) -> l = label p) |> snd)))
                Expect.floatClose Accuracy.veryHigh accuracy (fold.GetProperty("test_accuracy").GetDouble()) (sprintf "%s: test accuracy" variant)
                Expect.floatClose { absolute = 1e-6; relative = 1e-6 } logLoss (fold.GetProperty("log_loss").GetDouble()) (sprintf "%s: test log-loss" variant))
    ]

/// Fails unless `expected` and `actual` hold the same labels in the same order with probabilities within 1e-6.
let private sameProbabilities (what: string) (expected: (string * float) list) (actual: (string * float) list) =
    Expect.equal (List.map fst actual) (List.map fst expected) (sprintf "%s: label order" what)
    close what (List.map snd expected) (List.map snd actual)

/// The windows of the one inference path, on models made without training (ModelFixtures) and seeded recordings.
[<Tests>]
let windowTests =
    testList "Inference windows" [
        test "a windowed model's recording probabilities are the mean of its windows', in classifyFiles and classify" {
            let dir = TrainedModels.scratch "windows"
            let p = ModelFixtures.preparation "cnn2d"
            let prepared = { p with Clips = { p.Clips with Segment = Some(8192, 4096); Trim = None } }
            let modelPath = ModelFixtures.write (Path.Combine(dir, "w.hnn")) "cnn2d" [ for d in 0 .. 9 -> string d ] prepared 11 10.0f
            let files = [ for seed, seconds in [ 1, 3.0; 2, 5.3; 3, 0.7 ] -> ModelFixtures.writeRecording (Path.Combine(dir, sprintf "r%d.wav" seed)) seed 8000 seconds ]
            let predictions = Inference.predict "managed" ignore modelPath files
            // 3 s = 24,000 samples: windows at 0, 4096, 8192, 12288 and the last ending at the end (15,808); 5.3 s: 10;
            // 0.7 s is shorter than a window: one window, the whole recording.
            Expect.equal [ for q in predictions -> q.Windows.Length ] [ 5; 10; 1 ] "windows per recording"
            for q in predictions do
                let mean = [ for j in 0 .. q.Probabilities.Length - 1 -> fst q.Probabilities.[j], q.Windows |> List.averageBy (fun w -> snd w.Probabilities.[j]) ]
                sameProbabilities (sprintf "%s: the mean of the windows" q.Path) q.Probabilities mean
                for w in q.Windows do
                    Expect.equal w.Label (fst (List.maxBy snd w.Probabilities)) "each window's label is its likeliest"
            Expect.isTrue (predictions.[1].Windows |> List.map (fun w -> w.Label, snd (List.maxBy snd w.Probabilities)) |> List.distinct |> List.length > 1)
                "the windows of a recording differ (the test could not tell them from their mean otherwise)"
            use engine = new Hybrid.Dsp.Managed.ManagedEngine(1)
            let trained = Inference.load engine modelPath
            let recordings = [| for f in files -> ClipPlan.load trained.Preparation.Clips f |]
            let inMemory = Inference.classify trained recordings
            for r, q in List.indexed predictions do
                close (sprintf "%s: classify" q.Path) (List.map snd q.Probabilities) [ for j in 0 .. 9 -> float inMemory.[r, j] ]
        }

        test "window times: starts every hop, the last window ending at the recording's end, trimmed silence counted" {
            let p = (ModelFixtures.preparation "cnn2d").Clips
            let plan = { p with Segment = Some(8192, 4096); Trim = None }
            Expect.equal (ClipPlan.spans plan (Array.zeroCreate 24000)) [| 0, 8192; 4096, 12288; 8192, 16384; 12288, 20480; 15808, 24000 |] "3 s at 8 kHz"
            Expect.equal (ClipPlan.spans plan (Array.zeroCreate 5000)) [| 0, 5000 |] "shorter than a window: the recording"
            Expect.equal (ClipPlan.spans { plan with Segment = None } (Array.zeroCreate 24000)) [| 0, 24000 |] "no windows: the recording"
            Expect.equal (ClipPlan.spans { plan with RecordingSamples = Some 12000 } (Array.zeroCreate 30000)) [| 0, 8192; 3808, 12000 |] "cut to 1.5 s first"
            Expect.equal (ClipPlan.spans { plan with RecordingSamples = Some 20000 } (Array.zeroCreate 9000)) [| 0, 8192; 4096, 9000; 8192, 9000; 9000, 9000 |]
                "padded to 2.5 s: the padding is not part of a span"
            // Half a second of silence, 2 s of tone, half a second of silence: the trim keeps the tone.
            let tone = Array.init 16000 (fun i -> float32 (0.5 * sin (2.0 * Math.PI * 440.0 * float i / 8000.0)))
            let samples = Array.concat [ Array.zeroCreate 4000; tone; Array.zeroCreate 4000 ]
            let trimmed = { plan with Trim = p.Trim }
            let start, stop = Clip.trimInterval 20.0 256 64 samples
            Expect.isTrue (start > 3000 && start <= 4000 && stop >= 20000 && stop < 21000) (sprintf "the trim finds the tone (%d, %d)" start stop)
            let spans = ClipPlan.spans trimmed samples
            Expect.equal spans.[0] (start, start + 8192) "the first window starts where the kept part does"
            Expect.equal (snd (Array.last spans)) stop "the last ends where it ends"
            Expect.equal (ClipPlan.windows trimmed samples |> Array.map Array.length) (spans |> Array.map (fun (a, b) -> b - a)) "one span per window, of its length"
            for (a, _), w in Array.zip spans (ClipPlan.windows trimmed samples) do
                Expect.equal w samples.[a .. a + w.Length - 1] "each window is the recording's samples at its span"
        }

        test "predictWindows on a model without windows: windows of its clip length every half clip; predictFiles keeps one clip" {
            let dir = TrainedModels.scratch "windows-plain"
            let p = ModelFixtures.preparation "cnn2d"
            let modelPath = ModelFixtures.write (Path.Combine(dir, "m.hnn")) "cnn2d" [ "a"; "b"; "c" ] { p with Clips = { p.Clips with Trim = None } } 12 10.0f
            let file = ModelFixtures.writeRecording (Path.Combine(dir, "long.wav")) 4 8000 4.0
            let whole = Inference.predict "managed" ignore modelPath [ file ] |> List.exactlyOne
            Expect.equal [ for w in whole.Windows -> w.Index, w.Start, w.End ] [ 0, 0.0, 4.0 ] "one clip: the whole recording"
            sameProbabilities "the one window is the recording" whole.Probabilities whole.Windows.Head.Probabilities
            match Inference.predictWindows "managed" ignore modelPath [ file ] with
            | [ Predicted windowed ] ->
                Expect.equal [ for w in windowed.Windows -> w.Start ] [ 0.0; 0.512; 1.024; 1.536; 2.048; 2.56; 2.976 ] "every 0.512 s, the last ending at 4 s"
                Expect.isTrue (windowed.Windows |> List.forall (fun w -> abs (w.End - w.Start - 1.024) < 1e-9)) "each 1.024 s long"
                let mean = [ for j in 0 .. 2 -> fst windowed.Probabilities.[j], windowed.Windows |> List.averageBy (fun w -> snd w.Probabilities.[j]) ]
                sameProbabilities "the recording is then the windows' mean" windowed.Probabilities mean
            | other -> failtestf "one prediction expected, was %A" other
        }
    ]
