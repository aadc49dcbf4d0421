namespace Hybrid.Classifier

open Hybrid.Features
open Hybrid.Features.Schemas

/// Options of a training run (the CLI's `train` flags).
type TrainOptions =
    { /// Dataset folders or manifests in any layout `Dataset.openFolder` detects (empty: FSDD, fetched when absent);
      /// several are merged into one training set (Dataset.merge), each split by the same split specification on its
      /// own (its own lists, speakers and folds), with test accuracy reported per source.
      Data: string list
      /// Dataset labels read as other names (FROM, TO), applied to every source that has FROM (e.g. Speech Commands'
      /// zero ... nine read as FSDD's 0 ... 9); `Labels` then selects among the mapped names.
      LabelMap: (string * string) list
      /// Split specification in Split.parse's syntax (None: the dataset's own, Split.defaultFor).
      Split: string option
      Model: string
      Features: string option
      Epochs: int option
      BatchSize: int option
      LearningRate: float option
      Augment: string option
      /// Augmented versions of each training clip that every epoch's augmented rows are drawn from (None: the model's
      /// Recipe.AugmentPool; at least 1, and 1 means the same copy every epoch).
      AugmentPool: int option
      /// Test-time speeds and weights (None: the model's; Some []: none).
      TestSpeeds: (float * float) list option
      /// Classes to keep, in this order (None: every class).
      Labels: string list option
      /// With Labels: every other class is folded into one class of this name (else dropped).
      OtherLabel: string option
      /// Share of the training part set aside for validation when the split has no validation part, in (0, 1).
      Validation: float
      /// Stop after this many epochs without a lower validation loss and restore the best epoch's weights.
      EarlyStopping: int option
      /// How the training loss weights each class (Keras' class_weight; Unweighted by default).
      ClassWeight: ClassWeighting
      /// After a cross-validation split (`folds`, `loso`, `kfold:K`): train once more on every recording with the
      /// same settings and write `model.hnn` (scikit-learn's refit, Keras' final fit on all data). Refused (an
      /// ArgumentException) with any other split.
      Refit: bool
      /// Rate every recording is resampled to, in Hz (None: the schema's).
      SampleRate: int option
      /// Seconds each clip is padded or cut to for schemas that take any clip length (None: the dataset's longest
      /// clip, at most 5 s); with `Segment`, recordings are cut to it before windowing (None: kept whole).
      Duration: float option
      /// Window length in seconds: recordings are cut into windows for training and window probabilities are
      /// averaged per recording at evaluation and in `predict` (None: the model's default for the data).
      Segment: float option
      /// Seconds between window starts (None: half the window).
      SegmentHop: float option
      /// Per-utterance normalisation of image features (None: the model's).
      PerUtterance: PerUtterance option
      /// Silence trimming of recordings before they are cut into clips (None: the model's; Some None: none).
      Trim: Trim option option
      /// RMS level in dBFS every recording is scaled to after trimming (None: kept at its level).
      Loudness: float option
      /// A folder of background-noise recordings for `background:` augmentation (with the dataset's own, e.g. Speech
      /// Commands' _background_noise_); `snr:` then mixes them instead of white noise.
      Noise: string option
      /// Folder of an interrupted run to continue from its checkpoints; its run.json settings replace these.
      Resume: string option
      Device: string
      Seed: int
      Out: string option
      /// Receives progress lines and warnings.
      Log: string -> unit
      /// Draw progress bars (else none: the caller prints summaries).
      Progress: bool
      /// Write plots and report.html (model file and metrics are always written).
      Plots: bool
      /// Refuse the dataset at its first unusable or truncated file (else such files are skipped or warned about).
      Strict: bool
      /// Feature parameters chosen at run time (--n-fft, --hop-length, --n-mels, --fmin, --fmax, --n-mfcc): they
      /// derive a variant of the schema (Extraction.variant), recorded in the model file (`feature_parameters`) and
      /// replayed by `predict`. Extraction.noOverrides keeps the schema as declared.
      FeatureParameters: Extraction.Overrides
      /// Trains each fold elsewhere (`train --cluster`): receives a run folder prepared by `DataParallel.prepare`
      /// (in the fold's checkpoint folder) and trains it there, e.g. on an Orleans cluster (Hybrid.Cluster); the
      /// model is read back from the folder's last checkpoint. None: Training.fit in this process.
      Distributed: (string -> unit) option }

/// Every setting of a run, typed and resolved (Experiment.resolve: options over the recipe's defaults, the schema
/// variant, the clip plan); run.json records it and `--resume` reads it back (RunFile).
type RunSettings =
    { /// The data folders (several: merged), and the label map read through.
      Data: string list
      LabelMap: (string * string) list
      Recipe: Recipe
      Schema: FeatureSchemaInfo
      Split: SplitSpec
      Epochs: int
      BatchSize: int
      LearningRate: float
      Augmentations: Augmentation list
      /// Augmented copies of each training clip (0 without augmentation).
      Copies: int
      /// Augmented versions computed of each training clip, which each epoch's Copies rows are drawn from (Copies or
      /// more; 0 without augmentation).
      AugmentPool: int
      Validation: float
      EarlyStopping: int option
      ClassWeight: ClassWeighting
      /// Train on every recording after cross-validation (TrainOptions.Refit).
      Refit: bool
      Preparation: Preparation
      Seed: int }

/// The data of a run: the dataset (labels selected), its folds with their validation parts, and the
/// background-noise recordings offered to augmentation.
type PreparedData =
    { /// The dataset (several sources merged into one, Dataset.merge), labels mapped and selected.
      Dataset: Dataset
      /// The folders the data came from, full paths (FSDD's resolved folder when none was given).
      Folders: string list
      /// The split every source was split by.
      Split: SplitSpec
      Folds: SplitFold[]
      NoiseFiles: string[] }

/// The feature rows of one fold, standardised with statistics fitted on its training rows: row files under the run
/// folder (RowFile) read a batch at a time, so no part is held in memory.
type FoldFeatures =
    { Train: RowSource
      /// None when the validation part is empty.
      Validation: RowSource option
      Stats: Normalization.Stats
      /// Recordings (not windows or copies) in each part.
      TrainRecordings: int
      ValidationRecordings: int
      /// Recordings whose rows came from the feature cache (0 without a cache).
      CachedRecordings: int }

/// One trained and evaluated fold.
type FoldResult =
    { Name: string
      /// Training recordings (before windows and augmented copies).
      NTrain: int
      NValidation: int
      /// Test recordings; test accuracy is per recording.
      NTest: int
      TestAccuracy: float
      TrainAccuracy: float
      /// Validation accuracy of the epoch whose weights the model kept (the last, or the best with early stopping).
      ValidationAccuracy: float option
      Metrics: Metrics
      History: EpochReport list
      /// The epoch whose weights were kept, with early stopping.
      BestEpoch: int option
      StoppedEarly: bool
      /// Epochs restored from a checkpoint (`--resume`).
      ResumedAfterEpochs: int
      TrainSeconds: float
      /// Test accuracy per source of a merged dataset (name, test recordings, accuracy); empty for one source.
      PerSource: (string * int * float) list
      /// Class probabilities [test recordings, classes] of the fold's model on its test part, in `TestLabels`' order.
      TestProbabilities: float32[,]
      /// The test recordings' class indices.
      TestLabels: int[]
      ModelFile: string }

/// The model trained on every recording after cross-validation (`--refit`).
type RefitResult =
    { /// Recordings it trained on (every recording of the dataset).
      NTrain: int
      /// Epochs it trained: the run's epochs, or with early stopping the rounded mean of the folds' best epochs.
      Epochs: int
      /// Training accuracy of its last epoch.
      TrainAccuracy: float
      TrainSeconds: float
      /// Epochs restored from a checkpoint (`--resume`).
      ResumedAfterEpochs: int
      ModelFile: string }

/// What a run did.
type RunResult =
    { Split: string
      Model: string
      Features: string
      Device: string
      DeviceName: string
      Labels: string[]
      /// The clip plan, described (rate, clip length, windows).
      Clips: string
      Folds: FoldResult list
      /// Mean test accuracy over folds (the test accuracy for a single split).
      TestAccuracy: float
      /// Sample standard deviation of the folds' test accuracies (0 for one fold).
      TestAccuracyStd: float
      /// Cross-validation (`folds`, `loso`, `kfold:K`): the metrics of every recording's out-of-fold prediction pooled
      /// into one set (confusion matrix, per-class precision, recall, F1 and support, pooled accuracy); None otherwise.
      Pooled: Metrics option
      /// The model trained on all the data after cross-validation (`--refit`), else None.
      Refit: RefitResult option
      /// Test-time speeds and weights the accuracies were averaged over (empty: none).
      TestSpeeds: (float * float) list
      /// How the loss weighted the classes (`--class-weight`).
      ClassWeight: ClassWeighting
      ExtractSeconds: float
      TrainSeconds: float
      TotalSeconds: float
      OutDir: string
      Skipped: SkippedFile[] }
