namespace Hybrid.Classifier

/// The quantity early stopping watches.
type Monitor =
    /// Validation log-loss (lower is better).
    | ValidationLoss
    /// Validation accuracy (higher is better).
    | ValidationAccuracy
    /// Mean training loss of the epoch (lower is better; for fits without validation data).
    | TrainingLoss

/// Early stopping (Keras' EarlyStopping): stop after `Patience` epochs without an improvement larger than
/// `MinDelta`, and optionally restore the weights of the best epoch.
type EarlyStopping =
    { Monitor: Monitor
      Patience: int
      MinDelta: float
      RestoreBestWeights: bool }

/// How the training loss weights each class (Keras' `class_weight`): every row's loss (and its gradient) is multiplied
/// by its class's weight, and the batch loss is the weighted sum over the batch size (Keras' sum-over-batch-size
/// reduction), so that a rare class counts as much as a frequent one when balanced.
type ClassWeighting =
    /// Every class weighs 1 (the plain mean cross-entropy).
    | Unweighted
    /// scikit-learn's `compute_class_weight('balanced')`: class c weighs n_rows / (n_classes * count_c) over the
    /// training rows, n_classes counting the classes present there (absent classes weigh 0: they have no rows).
    | Balanced

/// Parsing, formatting and computing class weightings.
[<RequireQualifiedAccess>]
module ClassWeighting =
    /// "none" or "balanced", as `train --class-weight` takes them. Raises ArgumentException for anything else.
    let parse (text: string) : ClassWeighting =
        match text.Trim().ToLowerInvariant() with
        | "none" -> Unweighted
        | "balanced" -> Balanced
        | other -> invalidArg "class-weight" (sprintf "--class-weight must be none or balanced, was '%s'." other)

    /// The text `parse` reads back: "none" or "balanced".
    let format (weighting: ClassWeighting) : string =
        match weighting with
        | Unweighted -> "none"
        | Balanced -> "balanced"

    /// Per-class weights [classes] of `weighting` for training rows with `labels` (class indices in 0..classes-1):
    /// None for Unweighted; for Balanced n_rows / (n_present * count_c), where n_present is the number of classes with
    /// rows, and 0 for a class without rows (the weights then average 1 over the rows, as scikit-learn's). Raises
    /// ArgumentException for a label outside 0..classes-1.
    let weights (weighting: ClassWeighting) (classes: int) (labels: int[]) : float[] option =
        match weighting with
        | Unweighted -> None
        | Balanced ->
            let counts = Array.zeroCreate<int> classes
            for i in 0 .. labels.Length - 1 do
                let y = labels[i]
                if y < 0 || y >= classes then invalidArg "labels" (sprintf "Label %d of row %d is outside 0..%d." y i (classes - 1))
                counts[y] <- counts[y] + 1
            let present = counts |> Array.filter (fun c -> c > 0) |> Array.length
            Some(counts |> Array.map (fun c -> if c = 0 then 0.0 else float labels.Length / (float present * float c)))

/// Metrics of one finished epoch.
type EpochReport =
    { /// 1-based epoch number.
      Epoch: int
      /// Mean training loss over the epoch's batches (dropout active, label smoothing included).
      TrainLoss: float
      /// Training accuracy over the epoch (predictions made during the training forward passes).
      TrainAccuracy: float
      /// Validation log-loss (inference mode), when validation data was given.
      ValidationLoss: float option
      /// Validation accuracy, when validation data was given.
      ValidationAccuracy: float option
      /// Learning rate of the epoch's last step.
      LearningRate: float
      /// Wall-clock seconds of the epoch (training and validation).
      Seconds: float }

/// Progress reported to the fit callback.
type Progress =
    /// After each optimization step: 1-based epoch and batch, batches per epoch, the batch's mean loss.
    | BatchEnd of epoch: int * batch: int * batches: int * loss: float
    /// After each epoch (after its checkpoint was written).
    | EpochEnd of EpochReport

/// Settings of `Training.fit`; start from `FitOptions.defaults`.
type FitOptions =
    { Epochs: int
      BatchSize: int
      Optimizer: Optimizer
      Schedule: Schedule
      /// Seeds the shuffles and dropout masks (weights are seeded by Model.create).
      Seed: int
      /// Gradient clipping by global L2 norm.
      ClipNorm: float option
      /// Label smoothing of the cross-entropy targets, in [0, 1).
      LabelSmoothing: float
      /// Per-class weights of the training loss [classes] (Keras' `class_weight`; ClassWeighting.weights computes the
      /// balanced ones); None weighs every class 1. Validation metrics are never weighted.
      ClassWeights: float[] option
      EarlyStopping: EarlyStopping option
      /// Folder receiving `checkpoint.hnn` after every epoch; a fit finding one there resumes from it.
      CheckpointDir: string option
      /// Receives progress (batch and epoch ends), e.g. to drive a progress bar.
      Callback: Progress -> unit }

/// What `Training.fit` did.
type FitResult =
    { /// Every epoch's report, including epochs completed before a resume.
      History: EpochReport list
      /// The best epoch by the early-stopping monitor (None without early stopping).
      BestEpoch: int option
      /// True when early stopping ended training before `Epochs`.
      StoppedEarly: bool
      /// Number of epochs restored from a checkpoint (0 for a fresh run).
      ResumedAfterEpochs: int }

/// Defaults for FitOptions.
[<RequireQualifiedAccess>]
module FitOptions =
    /// 10 epochs of batch 32, Adam 1e-3, constant rate, seed 0, no clipping, smoothing, class weights, early stopping
    /// or checkpoints.
    let defaults =
        { Epochs = 10
          BatchSize = 32
          Optimizer = Optimizer.adam 1e-3
          Schedule = Constant
          Seed = 0
          ClipNorm = None
          LabelSmoothing = 0.0
          ClassWeights = None
          EarlyStopping = None
          CheckpointDir = None
          Callback = ignore }
