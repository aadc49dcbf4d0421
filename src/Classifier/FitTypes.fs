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
    /// 10 epochs of batch 32, Adam 1e-3, constant rate, seed 0, no clipping, smoothing, early stopping or checkpoints.
    let defaults =
        { Epochs = 10
          BatchSize = 32
          Optimizer = Optimizer.adam 1e-3
          Schedule = Constant
          Seed = 0
          ClipNorm = None
          LabelSmoothing = 0.0
          EarlyStopping = None
          CheckpointDir = None
          Callback = ignore }
