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
    let buffers = files |> List.map (fun f -> (AudioFile.readMono f).Samples.[0]) |> Array.ofList
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
