namespace Hybrid.Classifier

open System
open System.IO
open Hybrid.Dsp
open Hybrid.Features

/// Training a fold's network on its feature rows: the recipe's optimiser and schedule, validation, early stopping,
/// checkpoints and resume (Training.fitRows), in this process or on a cluster.
[<RequireQualifiedAccess>]
module Fit =
    /// Fits a fold (step 3 of Experiment.train): a fresh network (weights seeded by the run's seed) trained on the fold's training rows with
    /// the recipe's one-cycle schedule, the loss weighted per class by `ClassWeight` (balanced weights counted over the
    /// fold's training rows), validation metrics every epoch, optional early stopping on the validation loss
    /// (restoring the best epoch's weights) and a checkpoint in `checkpointDir` after every epoch; a checkpoint already
    /// there (an interrupted run) is resumed from. `callback` receives Training.fitRows's progress.
    let rec fold (engine: Engine) (settings: RunSettings) (classes: int) (features: FoldFeatures) (checkpointDir: string option) (callback: Progress -> unit) : Model * FitResult =
        foldOn None engine settings classes features checkpointDir callback

    /// fold, trained by `distributed` when given (see TrainOptions.Distributed): the same network, seed and fit options
    /// in a run folder "cluster" beside the fold's checkpoints; validation metrics of the last epoch only; early stopping
    /// is refused (ArgumentException naming --early-stopping) since the run does not stop early, and so are class
    /// weights (naming --class-weight), which the workers do not apply.
    and foldOn (distributed: (string -> unit) option) (engine: Engine) (settings: RunSettings) (classes: int) (features: FoldFeatures) (checkpointDir: string option) (callback: Progress -> unit) : Model * FitResult =
        let net = settings.Recipe.Build (Recipes.inputShape (Array.ofSeq settings.Schema.Shape) settings.Recipe) classes
        let model = Model.create engine settings.Seed net
        let earlyStopping =
            match settings.EarlyStopping, features.Validation with
            | Some patience, Some _ -> Some { Monitor = ValidationLoss; Patience = patience; MinDelta = 0.0; RestoreBestWeights = true }
            | Some _, None -> invalidArg "early-stopping" "--early-stopping needs a validation part, and this fold has none (too few recordings per class?)"
            | None, _ -> None
        if distributed.IsSome && settings.ClassWeight <> Unweighted then
            invalidArg "class-weight" "--class-weight is not available with --cluster (the workers weigh every class 1)."
        checkpointDir |> Option.iter (Directory.CreateDirectory >> ignore)
        let fitOptions =
            { FitOptions.defaults with
                Epochs = settings.Epochs; BatchSize = settings.BatchSize; Optimizer = Optimizer.adam settings.LearningRate
                Schedule = OneCycle(0.25, 10.0, 100.0); Seed = settings.Seed; LabelSmoothing = 0.05
                ClassWeights = ClassWeighting.weights settings.ClassWeight classes features.Train.Labels
                EarlyStopping = earlyStopping; CheckpointDir = checkpointDir; Callback = callback }
        match distributed with
        | None -> model, Training.fitRows fitOptions model features.Train features.Validation
        | Some trainThere ->
            if settings.EarlyStopping.IsSome then invalidArg "early-stopping" "--early-stopping is not available with --cluster (a distributed run trains every epoch)."
            let runDir = Path.Combine(defaultArg checkpointDir (Path.Combine(Path.GetTempPath(), "hybrid-cluster-" + Guid.NewGuid().ToString("N"))), "cluster")
            // The workers read the training rows from the run folder's examples file: every row is read once here.
            let train =
                let source = features.Train
                let values = Array.zeroCreate<float32> (source.Count * source.RowLength)
                source.Read(Array.init source.Count id, 0, source.Count, values)
                { Inputs = values; Labels = Array.copy source.Labels }
            DataParallel.prepare runDir { fitOptions with EarlyStopping = None; CheckpointDir = None } model train
            trainThere runDir
            let history = DataParallel.load runDir model
            let metrics = features.Validation |> Option.map (Rows.evaluate model)
            let history =
                history |> List.mapi (fun i r ->
                    if i = history.Length - 1 then
                        { r with ValidationLoss = metrics |> Option.map (fun m -> m.LogLoss); ValidationAccuracy = metrics |> Option.map (fun m -> m.Accuracy) }
                    else r)
            history |> List.tryLast |> Option.iter (EpochEnd >> callback)
            model, { History = history; BestEpoch = None; StoppedEarly = false; ResumedAfterEpochs = 0 }

    /// Recordings loaded at once when test-time speeds need the waveforms (evaluation reloads the test part in chunks).
