namespace Hybrid.Classifier

open System
open System.IO
open System.Text.Json
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// What a training run leaves in its folder besides model files: metrics.json, confusion matrices as CSV and PNG,
/// training curves, example plots and report.html.
[<RequireQualifiedAccess>]
module Artefacts =
    /// The settings recorded in model files and reports: the run's, its preparation, every schema parameter (so that
    /// a model whose schema later differs can name the parameter that changed) and, for a schema declared in a user's
    /// assembly, that assembly's file (predict names it when it is not loaded).
    let settingsOf (settings: RunSettings) (device: string) : ModelSettings =
        { Preparation.toSettings settings.Preparation with
            Data = Array.ofList settings.Data
            LabelMap = [| for from, into in settings.LabelMap -> [| from; into |] |]
            Model = settings.Recipe.Name; Split = Split.format settings.Split; Epochs = Nullable settings.Epochs
            BatchSize = Nullable settings.BatchSize; LearningRate = Nullable settings.LearningRate
            Augment = Augment.format settings.Augmentations; Copies = Nullable settings.Copies; AugmentPool = Nullable settings.AugmentPool
            Validation = Nullable settings.Validation; EarlyStopping = Option.toNullable settings.EarlyStopping
            ClassWeight = ClassWeighting.format settings.ClassWeight; Refit = Nullable settings.Refit; Seed = Nullable settings.Seed
            Device = device; SchemaParameters = Preparation.schemaParameters settings.Schema
            SchemaAssembly = (if Schemas.IsPredefined settings.Schema then null else Schemas.AssemblyFileOf settings.Schema) }

    /// The per-class rows of a classification report (scikit-learn's classification_report): label, precision,
    /// recall, F1 and support.
    let perClassJson (labels: string[]) (m: Metrics) =
        [ for k in 0 .. labels.Length - 1 ->
            {| label = labels.[k]; precision = m.Precision.[k]; recall = m.Recall.[k]; f1 = m.F1.[k]; support = m.Support.[k] |} ]

    /// Writes metrics.json-style data for one fold.
    let private foldJson (f: FoldResult) (labels: string[]) =
        {| name = f.Name; n_train = f.NTrain; n_validation = f.NValidation; n_test = f.NTest; test_accuracy = f.TestAccuracy
           train_accuracy = f.TrainAccuracy; validation_accuracy = Option.toNullable f.ValidationAccuracy
           best_epoch = Option.toNullable f.BestEpoch; stopped_early = f.StoppedEarly; resumed_after_epochs = f.ResumedAfterEpochs
           log_loss = f.Metrics.LogLoss
           per_source = [ for name, n, accuracy in f.PerSource -> {| source = name; n_test = n; test_accuracy = accuracy |} ]
           train_seconds = f.TrainSeconds; model_file = nonNull (Path.GetFileName f.ModelFile)
           per_class = perClassJson labels f.Metrics
           confusion = [ for r in 0 .. labels.Length - 1 -> [ for c in 0 .. labels.Length - 1 -> f.Metrics.Confusion.[r, c] ] ]
           history = [ for e in f.History -> {| epoch = e.Epoch; train_loss = e.TrainLoss; train_accuracy = e.TrainAccuracy
                                                validation_loss = Option.toNullable e.ValidationLoss; validation_accuracy = Option.toNullable e.ValidationAccuracy
                                                learning_rate = e.LearningRate; seconds = e.Seconds |} ] |}

    /// The pooled out-of-fold report of a cross-validation for metrics.json and `train --json`: pooled accuracy,
    /// log-loss and macro F1, the folds' accuracies with their mean and sample standard deviation, the per-class table
    /// and the confusion matrix [true, predicted].
    let pooledJson (result: RunResult) (pooled: Metrics) =
        {| n_test = pooled.Count; accuracy = pooled.Accuracy; log_loss = pooled.LogLoss; macro_f1 = Metrics.macroF1 pooled
           fold_accuracies = [ for f in result.Folds -> {| name = f.Name; n_test = f.NTest; test_accuracy = f.TestAccuracy |} ]
           fold_accuracy_mean = result.TestAccuracy; fold_accuracy_std = result.TestAccuracyStd
           per_class = perClassJson result.Labels pooled
           confusion = [ for r in 0 .. result.Labels.Length - 1 -> [ for c in 0 .. result.Labels.Length - 1 -> pooled.Confusion.[r, c] ] ] |}

    /// The refit model for metrics.json and `train --json`.
    let refitJson (r: RefitResult) =
        {| n_train = r.NTrain; epochs = r.Epochs; train_accuracy = r.TrainAccuracy; train_seconds = r.TrainSeconds
           resumed_after_epochs = r.ResumedAfterEpochs; model_file = nonNull (Path.GetFileName r.ModelFile) |}

    /// Writes a confusion matrix (rows: true label, columns: predicted label, counts) as CSV with the class names as
    /// the header row and first column. Raises IOException or UnauthorizedAccessException when `path` cannot be written.
    let writeConfusionCsv (path: string) (labels: string[]) (m: int[,]) =
        let lines = [|
            yield "true\\predicted," + String.Join(",", labels)
            for r in 0 .. labels.Length - 1 do
                yield labels.[r] + "," + String.Join(",", [| for c in 0 .. labels.Length - 1 -> string m.[r, c] |]) |]
        File.WriteAllLines(path, lines)

    /// The file in a run folder recording the options the run was started with (`--resume` reads it).

    /// Writes a run's artefacts (step 5 of Experiment.train): metrics.json, a confusion CSV per fold and, with plots, confusion matrices, training and
    /// validation curves, one example recording per class and report.html.
    let write (options: TrainOptions) (engine: Engine) (settings: RunSettings) (data: PreparedData) (result: RunResult) =
        let outDir = result.OutDir
        let labels = result.Labels
        let results = result.Folds
        let storedSettings = ModelSettings.toStored (settingsOf settings engine.Name)
        let settingRows = ModelSettings.rows storedSettings
        let plotsDir = Path.Combine(outDir, "plots")
        let images = Collections.Generic.List<string * string>()
        for r in results do
            let tag = if results.Length = 1 then "" else "-" + r.Name.Replace('/', '-')
            writeConfusionCsv (Path.Combine(outDir, sprintf "confusion%s.csv" tag)) labels r.Metrics.Confusion
            if options.Plots then
                let cm = Plots.confusionMatrix (Path.Combine(plotsDir, sprintf "confusion%s.png" tag)) (sprintf "confusion matrix, test %s" r.Name) labels r.Metrics.Confusion
                let loss =
                    Plots.curves (Path.Combine(plotsDir, sprintf "loss%s.png" tag)) (sprintf "loss per epoch (%s)" r.Name) "epoch" "cross-entropy"
                        [ "train", [| for e in r.History -> e.TrainLoss |]; "validation", [| for e in r.History -> defaultArg e.ValidationLoss nan |] ]
                let acc =
                    Plots.curves (Path.Combine(plotsDir, sprintf "accuracy%s.png" tag)) (sprintf "accuracy per epoch (%s)" r.Name) "epoch" "accuracy"
                        [ "train", [| for e in r.History -> e.TrainAccuracy |]; "validation", [| for e in r.History -> defaultArg e.ValidationAccuracy nan |] ]
                for p, caption in [ cm, "confusion matrix " + r.Name; loss, "loss " + r.Name; acc, "accuracy " + r.Name ] do
                    images.Add(Path.GetRelativePath(outDir, p), caption)
        match result.Pooled with
        | Some pooled ->
            writeConfusionCsv (Path.Combine(outDir, "confusion-pooled.csv")) labels pooled.Confusion
            if options.Plots then
                let cm = Plots.confusionMatrix (Path.Combine(plotsDir, "confusion-pooled.png")) (sprintf "confusion matrix, %d folds pooled" results.Length) labels pooled.Confusion
                images.Insert(0, (Path.GetRelativePath(outDir, cm), "confusion matrix, every fold's test part pooled"))
        | None -> ()
        let examples = Collections.Generic.List<string * string>()
        if options.Plots then
            for label in labels do
                match data.Dataset.Items |> Array.tryFind (fun i -> i.Label = label) with
                | Some item ->
                    for p, caption in AudioPlots.plotClip engine plotsDir (sprintf "example-%s" label) (nonNull (Path.GetFileName item.Path)) (AudioPlots.settingsFor settings.Preparation.Clips.SampleRate) ((AudioFile.read { AudioFile.defaults with SampleRate = Some settings.Preparation.Clips.SampleRate } item.Path).Samples.[0]) do
                        examples.Add(Path.GetRelativePath(outDir, p), sprintf "%s (label %s): %s" (nonNull (Path.GetFileName item.Path)) label caption)
                | None -> ()
        let metricsJson =
            {| split = result.Split; model = result.Model; features = result.Features; device = result.Device; device_name = result.DeviceName
               test_accuracy = result.TestAccuracy; test_accuracy_std = result.TestAccuracyStd; clips = result.Clips
               extract_seconds = result.ExtractSeconds; train_seconds = result.TrainSeconds
               total_seconds = result.TotalSeconds; labels = labels; settings = ModelSettings.json storedSettings
               skipped = [ for s in data.Dataset.Skipped -> {| path = s.Path; reason = s.Reason |} ]
               folds = [ for f in results -> foldJson f labels ]
               pooled = result.Pooled |> Option.map (pooledJson result) |> Option.toObj
               refit = result.Refit |> Option.map refitJson |> Option.toObj |}
        File.WriteAllText(Path.Combine(outDir, "metrics.json"), JsonSerializer.Serialize(metricsJson, JsonSerializerOptions(WriteIndented = true)))
        if options.Plots then
            let refitRows =
                match result.Refit with
                | Some r -> [ "refit on all data", sprintf "%s: %d recordings, %d epochs, train accuracy %.4f" (nonNull (Path.GetFileName r.ModelFile)) r.NTrain r.Epochs r.TrainAccuracy ]
                | None -> []
            let summaryRows =
                [ "model", sprintf "%s: %s" settings.Recipe.Name settings.Recipe.Description
                  "features", settings.Schema.ToString()
                  "clips", result.Clips
                  "split", result.Split
                  "device", sprintf "%s (%s)" engine.Name engine.DeviceName
                  (if results.Length > 1 then sprintf "test accuracy (mean ± sd over %d folds)" results.Length else "test accuracy"),
                  (if results.Length > 1 then sprintf "%.4f ± %.4f" result.TestAccuracy result.TestAccuracyStd else sprintf "%.4f" result.TestAccuracy)
                  "feature extraction", sprintf "%.1f s" result.ExtractSeconds
                  "training", sprintf "%.1f s" result.TrainSeconds
                  "skipped files", string data.Dataset.Skipped.Length ]
                @ refitRows
            let foldRows =
                [ for f in results ->
                    [ f.Name; string f.NTrain; string f.NValidation; string f.NTest; sprintf "%.4f" f.TrainAccuracy
                      (f.ValidationAccuracy |> Option.map (sprintf "%.4f") |> Option.defaultValue "-"); sprintf "%.4f" f.TestAccuracy; sprintf "%.1f" f.TrainSeconds ] ]
            let perClassGrid title (m: Metrics) =
                Report.Grid(title, [ "label"; "precision"; "recall"; "F1"; "support" ],
                            [ for k in 0 .. labels.Length - 1 -> [ labels.[k]; sprintf "%.3f" m.Precision.[k]; sprintf "%.3f" m.Recall.[k]; sprintf "%.3f" m.F1.[k]; string m.Support.[k] ] ])
            let perClass =
                match results, result.Pooled with
                | _, Some pooled ->
                    [ Report.Table("Cross-validation, out-of-fold predictions pooled",
                                   [ "recordings", string pooled.Count
                                     "pooled accuracy", sprintf "%.4f" pooled.Accuracy
                                     "fold accuracies", (results |> List.map (fun f -> sprintf "%s %.4f" f.Name f.TestAccuracy) |> String.concat ", ")
                                     "mean ± sd of fold accuracies", sprintf "%.4f ± %.4f" result.TestAccuracy result.TestAccuracyStd
                                     "macro F1", sprintf "%.4f" (Metrics.macroF1 pooled)
                                     "log-loss", sprintf "%.4f" pooled.LogLoss ])
                      perClassGrid "Per-class metrics, out-of-fold predictions pooled" pooled ]
                | [ single ], None -> [ perClassGrid "Per-class test metrics" single.Metrics ]
                | _ -> []
            Report.write outDir (sprintf "Hybrid training run: %s on %s" settings.Recipe.Name result.Split)
                ([ Report.Table("Summary", summaryRows)
                   Report.Grid("Folds", [ "fold"; "train recordings"; "validation recordings"; "test recordings"; "train accuracy"; "validation accuracy"; "test accuracy"; "training s" ], foldRows) ]
                 @ perClass
                 @ [ Report.Table("Settings", settingRows)
                     Report.Images("Results", List.ofSeq images)
                     Report.Images("Example recordings (one per class)", List.ofSeq examples) ])
            |> ignore
