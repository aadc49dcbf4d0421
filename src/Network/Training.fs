namespace Hybrid.Classifier

open System
open System.Diagnostics
open System.IO

/// Training.
[<RequireQualifiedAccess>]
module Training =
    /// Seeded Fisher-Yates permutation of 0..n-1 for one epoch.
    let internal permutation (seed: int) (epoch: int) (n: int) =
        let rng = SplitMix(SplitMix.Derive(seed, 1, epoch))
        let order = Array.init n id
        for i = n - 1 downto 1 do
            let j = rng.NextInt(i + 1)
            let t = order[i]
            order[i] <- order[j]
            order[j] <- t
        order

    /// Raises ArgumentException when `options` or the data cannot be trained by `model`.
    let private check (options: FitOptions) (model: Model) (train: RowSource) (validation: RowSource option) =
        if options.Epochs < 1 then invalidArg "options" (sprintf "Epochs must be at least 1, was %d." options.Epochs)
        if options.BatchSize < 1 then invalidArg "options" (sprintf "BatchSize must be at least 1, was %d." options.BatchSize)
        if not (options.LabelSmoothing >= 0.0 && options.LabelSmoothing < 1.0) then
            invalidArg "options" (sprintf "LabelSmoothing must be in [0, 1), was %g." options.LabelSmoothing)
        if train.RowLength <> model.Net.SampleSize then
            invalidArg "train" (sprintf "Rows have %d floats, the model's input shape %s needs %d." train.RowLength (Shapes.describe model.Net.InputShape) model.Net.SampleSize)
        let n = train.Count
        if train.Labels.Length <> n then invalidArg "train" (sprintf "Training data has %d samples but %d labels." n train.Labels.Length)
        if n = 0 then invalidArg "train" "Training data is empty."
        let classes = Model.classes model
        train.Labels |> Array.iteri (fun i y -> if y < 0 || y >= classes then invalidArg "train" (sprintf "Label %d of sample %d is outside 0..%d." y i (classes - 1)))
        match options.EarlyStopping, validation with
        | Some { Monitor = (ValidationLoss | ValidationAccuracy) }, None ->
            invalidArg "options" "Early stopping on a validation metric needs validation data."
        | _ -> ()

    /// The fit's starting state: fresh, or, when `options.CheckpointDir` holds a checkpoint, read from it before the
    /// first epoch (weights, optimizer slots and step, history, early-stopping state and best weights).
    let private start (options: FitOptions) (model: Model) (trainer: Trainer) (bestWeights: BestWeights) : FitState =
        let state =
            { Model = model; Trainer = trainer; Seed = options.Seed; History = []; EpochsDone = 0
              Best = None; BestEpoch = None; Wait = 0; StopTraining = false; BestWeights = bestWeights }
        match options.CheckpointDir with
        | Some dir when File.Exists(Path.Combine(dir, Checkpoint.fileName)) ->
            let saved, savedBest = Checkpoint.read dir model options.Seed trainer.State.Tensors
            trainer.State.Step <- saved.OptimizerStep
            state.History <- saved.History
            state.Best <- saved.Best
            state.BestEpoch <- saved.BestEpoch
            state.Wait <- saved.Wait
            state.StopTraining <- saved.Stopped
            savedBest |> Option.iter bestWeights.Load
            state.EpochsDone <- saved.EpochsDone
        | _ -> ()
        state

    /// The callbacks of `options`, in the order they run at each epoch's end: early stopping, restore-best-weights,
    /// checkpoint (which records what the first two decided), progress (after the checkpoint was written).
    let private callbacksOf (options: FitOptions) : Callback list =
        [ match options.EarlyStopping with
          | Some es ->
              Callbacks.earlyStopping es
              if es.RestoreBestWeights then Callbacks.restoreBestWeights ()
          | None -> ()
          match options.CheckpointDir with
          | Some dir -> Callbacks.checkpoint dir
          | None -> ()
          Callbacks.progress options.Callback ]

    /// Trains epoch `epoch` (0-based) of the fit in `state` and evaluates `validation`; raises TrainingException on a
    /// non-finite loss or non-finite weights.
    let private runEpoch (options: FitOptions) (state: FitState) (callbacks: Callback list)
                         (train: RowSource) (validation: RowSource option) (epoch: int) : EpochReport =
        let n = train.Count
        let batches = (n + options.BatchSize - 1) / options.BatchSize
        let totalSteps = options.Epochs * batches
        let baseRate = Optimizer.learningRate options.Optimizer
        let watch = Stopwatch.StartNew()
        let order = permutation options.Seed epoch n
        train.BeginEpoch epoch
        let lossSum = ref 0.0
        let correct = ref 0
        let rateOf b = baseRate * Schedule.factor options.Schedule (epoch * batches + b) totalSteps batches
        let rate = rateOf (batches - 1)
        let onBatch b loss c =
            if not (Double.IsFinite loss) then
                raise (TrainingException(
                    sprintf "Training stopped: the loss became %g at epoch %d, batch %d of %d (learning rate %g). Nothing was saved for this epoch; lower the learning rate, enable gradient clipping or check the inputs for NaN."
                        loss (epoch + 1) (b + 1) batches (rateOf b)))
            lossSum.Value <- lossSum.Value + loss * float (min options.BatchSize (n - b * options.BatchSize))
            correct.Value <- correct.Value + c
            for callback in callbacks do
                callback.OnBatchEnd(state, epoch + 1, b + 1, batches, loss)
        state.Trainer.Run(train, order, n, options.BatchSize, rateOf,
                          (fun b -> SplitMix.Derive(options.Seed, 2, epoch * batches + b)), onBatch)
        let metrics = validation |> Option.map state.Trainer.Evaluate
        let report =
            { Epoch = epoch + 1
              TrainLoss = lossSum.Value / float n
              TrainAccuracy = float correct.Value / float n
              ValidationLoss = metrics |> Option.map fst
              ValidationAccuracy = metrics |> Option.map snd
              LearningRate = rate
              Seconds = watch.Elapsed.TotalSeconds }
        if not (state.Trainer.WeightsFinite()) then
            raise (TrainingException(
                sprintf "Training stopped: the weights became NaN or infinite during epoch %d (last batch %d of %d, learning rate %g). Nothing was saved for this epoch; lower the learning rate or enable gradient clipping."
                    (epoch + 1) batches batches rate))
        report

    /// Trains `model` in place with softmax cross-entropy: per epoch a seeded shuffle of `train`'s rows (read a batch
    /// at a time, so a source on disk holds at most `BatchSize` rows in memory), mini-batches of `BatchSize` (the last
    /// one smaller), each row's loss times its class's weight when `ClassWeights` are given (Keras' class_weight; the
    /// reported training loss is then the weighted one), the learning rate times the schedule's factor, optional
    /// clipping, one optimizer step per batch;
    /// then validation metrics (when `validation` is given, in inference mode), and the epoch-end callbacks in order:
    /// early stopping, restore-best-weights, a checkpoint (atomic) and `Callback`.
    /// With a checkpoint folder holding a checkpoint of this architecture and seed, training resumes after its last
    /// epoch and ends with the same weights as an uninterrupted run. With early stopping and RestoreBestWeights the
    /// model ends with the best epoch's weights.
    /// Raises ArgumentException for Epochs or BatchSize below 1, LabelSmoothing outside [0, 1), rows whose length
    /// is not the model's sample size, a label count other than the row count, no rows, a label outside the model's
    /// classes, class weights that are not one finite non-negative weight per class, or early stopping on a validation
    /// metric without validation data; TrainingException naming the epoch
    /// and batch when a loss or weight becomes NaN or infinite (before that epoch's checkpoint is written);
    /// ModelFileException when the checkpoint found is damaged or was written for another architecture, seed or
    /// optimizer.
    let fitRows (options: FitOptions) (model: Model) (train: RowSource) (validation: RowSource option) : FitResult =
        check options model train validation
        let trainer = Trainer(model, options.Optimizer, options.ClipNorm, options.LabelSmoothing, options.ClassWeights)
        use bestWeights = new BestWeights(model)
        let state = start options model trainer bestWeights
        let resumed = state.EpochsDone
        let callbacks = callbacksOf options
        for callback in callbacks do
            callback.OnTrainBegin state
        while state.EpochsDone < options.Epochs && not state.StopTraining do
            let report = runEpoch options state callbacks train validation state.EpochsDone
            state.History <- state.History @ [ report ]
            state.EpochsDone <- report.Epoch
            for callback in callbacks do
                if callback.OnEpochEnd(state, report) then state.StopTraining <- true
        for callback in callbacks do
            callback.OnTrainEnd state
        { History = state.History
          BestEpoch = state.BestEpoch
          StoppedEarly = state.StopTraining
          ResumedAfterEpochs = resumed }

    /// `fitRows` on examples held in memory: `train.Inputs` [samples x SampleSize] with one label per sample (same
    /// shuffles, batches and results as the same rows from any source). Raises ArgumentException when the inputs do
    /// not fit the model's input shape, and whatever `fitRows` raises.
    let fit (options: FitOptions) (model: Model) (train: Examples) (validation: Examples option) : FitResult =
        let size = model.Net.SampleSize
        Model.checkInputs model train.Inputs |> ignore
        validation |> Option.iter (fun v -> Model.checkInputs model v.Inputs |> ignore)
        fitRows options model (new ExampleRows(train, size)) (validation |> Option.map (fun v -> new ExampleRows(v, size) :> RowSource))
