/// The experiment façade: dataset -> split -> augmentation -> features -> network -> training -> evaluation ->
/// model file, metrics and report. This is the one place that composes audio and the network core; build.fsx's
/// `train` target and the F# scripts call `Experiment.train`.
module Hybrid.Classifier.Experiment

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// How a model's input is computed and prepared.
type Recipe =
    { /// CLI name (`--model`).
      Name: string
      /// One line for help and reports.
      Description: string
      /// Default feature schema (`--features` overrides it).
      Schema: string
      /// Run-time parameters of `Schema` for this model (Extraction.variant; the feature options win over them, one by
      /// one; not applied to another schema chosen with `--features`). Recorded in model files like the options.
      FeatureParameters: Extraction.Overrides
      /// Per-utterance mean normalisation of each band of a [bands, frames] image before the train-fitted
      /// standardisation (removes the recording channel's colouring).
      PerUtterance: bool
      /// Builds the network for an input shape and a class count.
      Build: int list -> int -> Net
      Epochs: int
      BatchSize: int
      LearningRate: float
      /// Default waveform augmentation (Augment.parse syntax; empty for none).
      Augment: string
      /// Augmented copies of each training clip added to the originals (with `Augment`).
      Copies: int
      /// Augmented versions computed of each training clip (at least Copies when there is waveform augmentation): every
      /// epoch, each of a clip's Copies augmented rows is drawn afresh from them (PooledRows), which approximates
      /// augmentation on the fly for the cost of extracting each version once. Equal to Copies: the same copies every epoch.
      AugmentPool: int
      /// Test-time speed averaging: a clip's class probabilities are the normalised, weighted geometric mean of the
      /// model's probabilities over copies of the clip resampled at each (factor, weight) (empty: the clip alone).
      /// Evaluation and `predict` both apply it; model files record it.
      TestSpeeds: (float * float) list }

/// Formats test-time speeds as `train --test-speeds` accepts them and model files record them: `0.9*0.5,1,1.1*0.5`
/// (a factor and its weight, the weight left out when it is 1; `none` when empty).
let formatSpeeds (speeds: (float * float) list) =
    let r (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
    if speeds.IsEmpty then "none"
    else speeds |> List.map (fun (f, w) -> if w = 1.0 then r f else r f + "*" + r w) |> String.concat ","

/// Raises ArgumentException unless every factor lies in [0.5, 2] and every weight is positive and finite; `text`
/// names the speeds in the message.
let private checkSpeeds (text: string) (speeds: (float * float) list) =
    for f, w in speeds do
        if not (f >= 0.5 && f <= 2.0) then invalidArg "test-speeds" (sprintf "test speeds '%s': factor %g is outside [0.5, 2]" text f)
        if not (w > 0.0 && w < Double.PositiveInfinity) then invalidArg "test-speeds" (sprintf "test speeds '%s': weight %g of factor %g is not positive" text w f)
    speeds

/// Parses test-time speeds: `none`; a comma list of factors with optional weights (`0.9*0.5,1,1.1*0.5`); or a range
/// with a step (`0.8-1.2:0.05`, equal weights), optionally triangular (`0.7-1.3:0.05:tri`: weight 1 at factor 1,
/// falling linearly to 0 one step beyond the farther end). Factors must lie in [0.5, 2] (Augment.speed quantises
/// them to 0.01), weights must be positive; weights are rounded to 4 decimals so that files round-trip.
let parseSpeeds (text: string) : (float * float) list =
    let fail fmt = Printf.kprintf (fun m -> invalidArg "test-speeds" m) fmt
    let expected = "expected none, F[*W],F[*W],... or LO-HI:STEP[:tri]"
    let number (t: string) =
        match Double.TryParse(t.Trim(), Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
        | true, v -> v
        | _ -> fail "test speeds '%s': '%s' is not a number; %s" text t expected
    let speeds =
        match text.Trim().ToLowerInvariant() with
        | "" | "none" -> []
        | t when t.Contains ':' ->
            let parts = t.Split ':'
            let triangular =
                match parts with
                | [| _; _ |] -> false
                | [| _; _; "tri" |] -> true
                | _ -> fail "test speeds '%s': %s" text expected
            let step = number parts.[1]
            let lo, hi =
                match parts.[0].Split '-' with
                | [| a; b |] -> number a, number b
                | _ -> fail "test speeds '%s': %s" text expected
            if not (step > 0.0) || hi < lo then fail "test speeds '%s': need LO <= HI and STEP > 0" text
            let count = int (Math.Floor((hi - lo) / step + 1e-9)) + 1
            if count > 64 then fail "test speeds '%s': %d factors, at most 64" text count
            let reach = max (abs (lo - 1.0)) (abs (hi - 1.0)) + step
            [ for i in 0 .. count - 1 ->
                let f = Math.Round(lo + float i * step, 4)
                f, (if triangular then Math.Round(1.0 - abs (f - 1.0) / reach, 4) else 1.0) ]
        | t ->
            [ for item in t.Split ',' ->
                match item.Split '*' with
                | [| f |] -> number f, 1.0
                | [| f; w |] -> number f, number w
                | _ -> fail "test speeds '%s': '%s' is not F or F*W; %s" text item expected ]
    checkSpeeds text speeds

/// Network input shape for a schema's row shape: images get a channel axis, a raw waveform too (Conv1D).
let inputShape (schemaShape: int[]) (recipe: Recipe) =
    match schemaShape with
    | [| h; w |] -> [ 1; h; w ]
    | [| n |] when recipe.Name = "cnn1d" -> [ 1; n ]
    | s -> List.ofArray s

/// Batch normalisation with PyTorch's momentum (running statistics keep 90% per step): with Keras' 0.99 the
/// running statistics of a short training run are still dominated by their initial values at evaluation.
let private bn = BatchNorm(0.9, 1e-3)

let private cnn2d (input: int list) classes =
    Net.sequential input
        [ Layers.conv2d 16 (3, 3) Same; bn; Layers.relu; Layers.maxPool2d 2
          Layers.conv2d 32 (3, 3) Same; bn; Layers.relu; Layers.maxPool2d 2
          Layers.conv2d 64 (3, 3) Same; bn; Layers.relu; Layers.maxPool2d 2
          Layers.flatten
          Layers.dropout 0.3
          Layers.dense classes ]

let private cnn1d (input: int list) classes =
    Net.sequential input
        [ Layers.conv1dWith 16 9 4 1 Same; Layers.batchNorm; Layers.relu; Layers.maxPool1d 4
          Layers.conv1d 32 9 Same; Layers.batchNorm; Layers.relu; Layers.maxPool1d 4
          Layers.conv1d 64 9 Same; Layers.batchNorm; Layers.relu; Layers.maxPool1d 4
          Layers.conv1d 64 9 Same; Layers.batchNorm; Layers.relu
          Layers.globalAvgPool
          Layers.dense 64; Layers.relu; Layers.dropout 0.3
          Layers.dense classes ]

let private mlp (input: int list) classes =
    Net.sequential input [ Layers.flatten; Layers.dense 256; Layers.relu; Layers.dropout 0.3; Layers.dense 128; Layers.relu; Layers.dropout 0.3; Layers.dense classes ]

let private logreg (input: int list) classes = Net.sequential input [ Layers.flatten; Layers.dense classes ]

/// kymatio's spoken-digit classifier: batch normalisation of the log-scattering means, then one softmax layer. The
/// default features average the log-scattering over each quarter of the clip (scattering-fsdd-parts4) instead of the
/// whole clip; `--features scattering-fsdd` is the write-up's exact recipe.
let private scattering (input: int list) classes = Net.sequential input [ Layers.flatten; Layers.batchNorm; Layers.dense classes ]

/// The models `--model` chooses from; the first is the default.
let recipes =
    [ { Name = "cnn2d"; Description = "2-D CNN on a 40-band log-mel image (the spoken-digit write-up): 1.024 s clips of short recordings, the whole clip of environmental sounds, 1.024 s windows averaged per track of music"
        Schema = "logmel-fsdd"; FeatureParameters = { Extraction.noOverrides with NFft = Some 512 }; PerUtterance = true; Build = cnn2d
        Epochs = 12; BatchSize = 64; LearningRate = 3e-3; Augment = "speed:0.85-1.15,shift:0.08,gain:6,snr:10-40"; Copies = 1; AugmentPool = 3
        TestSpeeds = parseSpeeds "0.7-1.3:0.05:tri" }
      { Name = "mlp"; Description = "Dense network on 40 MFCC means (the UrbanSound8K write-up)"
        Schema = "mfcc-mean40"; FeatureParameters = Extraction.noOverrides; PerUtterance = false; Build = mlp
        Epochs = 60; BatchSize = 32; LearningRate = 1e-3; Augment = ""; Copies = 0; AugmentPool = 0; TestSpeeds = [] }
      { Name = "cnn1d"; Description = "1-D convolutions on the raw 8,192-sample waveform with noise augmentation (the Speech Commands write-up)"
        Schema = "raw8192"; FeatureParameters = Extraction.noOverrides; PerUtterance = false; Build = cnn1d
        Epochs = 20; BatchSize = 64; LearningRate = 2e-3; Augment = "noise:0.005,shift:0.08"; Copies = 1; AugmentPool = 1; TestSpeeds = [] }
      { Name = "logreg"; Description = "linear softmax on MFCC and spectral statistics (the genre write-up's table)"
        Schema = "genre"; FeatureParameters = Extraction.noOverrides; PerUtterance = false; Build = logreg
        Epochs = 100; BatchSize = 64; LearningRate = 1e-2; Augment = ""; Copies = 0; AugmentPool = 0; TestSpeeds = [] }
      { Name = "scattering"; Description = "batch normalisation and a softmax layer on log-scattering means over each quarter of the clip, J 8, Q 12 (kymatio's spoken-digit example, whose whole-clip means are --features scattering-fsdd)"
        Schema = "scattering-fsdd-parts4"; FeatureParameters = Extraction.noOverrides; PerUtterance = false; Build = scattering
        Epochs = 50; BatchSize = 32; LearningRate = 1e-3; Augment = ""; Copies = 0; AugmentPool = 0; TestSpeeds = [] } ]

/// True when `features` (None: the recipe's default) names `recipe`'s own schema, the one its FeatureParameters are
/// for. Raises ArgumentException for an unknown schema name.
let private ownSchema (recipe: Recipe) (features: string option) =
    Schemas.ByName(defaultArg features recipe.Schema).Name = Schemas.ByName(recipe.Schema).Name

/// The feature parameters a run of `recipe` applies: on the recipe's own schema (`features` None or naming it) the
/// options `overrides` over the recipe's FeatureParameters (Extraction.overridesOn), on another schema the options alone.
/// Raises ArgumentException for an unknown schema name.
let featureOverrides (recipe: Recipe) (features: string option) (overrides: Extraction.Overrides) : Extraction.Overrides =
    if ownSchema recipe features then
        Extraction.overridesOn recipe.FeatureParameters overrides
    else overrides

/// The schema a run of `recipe` extracts: `features` (None: the recipe's own schema) as its run-time variant under
/// the feature options `overrides`, which on the recipe's own schema go over the recipe's FeatureParameters
/// (Extraction.overridesOn). Raises ArgumentException for an unknown schema or an invalid parameter (naming the option).
let schemaOf (recipe: Recipe) (features: string option) (overrides: Extraction.Overrides) : FeatureSchemaInfo =
    Extraction.variant (Schemas.ByName(defaultArg features recipe.Schema)) (featureOverrides recipe features overrides)

/// Looks a recipe up by name.
let recipe (name: string) =
    match recipes |> List.tryFind (fun r -> r.Name = name.ToLowerInvariant()) with
    | Some r -> r
    | None -> invalidArg "model" (sprintf "unknown model '%s'; expected one of %s" name (recipes |> List.map (fun r -> r.Name) |> String.concat ", "))

/// Options of a training run (the CLI's `train` flags).
type TrainOptions =
    { /// Dataset folder or manifest in any layout `Dataset.openFolder` detects (None: FSDD, fetched when absent).
      Data: string option
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

/// Defaults: FSDD, the dataset's own split, the default model on `auto`, 10% validation, seed 0.
let defaults =
    { Data = None; Split = None; Model = (List.head recipes).Name; Features = None; Epochs = None; BatchSize = None
      LearningRate = None; Augment = None; AugmentPool = None; TestSpeeds = None; Labels = None; OtherLabel = None; Validation = 0.1
      EarlyStopping = None; SampleRate = None; Duration = None; Segment = None; SegmentHop = None; Resume = None
      Device = "auto"; Seed = 0; Out = None; Log = ignore; Progress = true; Plots = true; Strict = false
      FeatureParameters = Extraction.noOverrides; Distributed = None }

/// How recordings become model input clips, resolved for a dataset; recorded in model files and replayed by `predict`.
type ClipPlan =
    { /// Rate every recording is resampled to, in Hz.
      SampleRate: int
      /// Samples of one model input clip: the schema's fixed length, else the duration in samples.
      ClipSamples: int
      /// Recordings are padded or cut (from the start) to this many samples before windowing (None: kept whole).
      RecordingSamples: int option
      /// (window, hop) in samples each recording is cut into (None: one clip per recording).
      Segment: (int * int) option }

/// Cutting recordings into model input clips.
module ClipPlan =
    /// The clips of one recording (samples at plan.SampleRate): the recording itself without segments (the same
    /// array); else windows of the segment length every hop samples, the last one ending at the recording's end so
    /// that the tail is covered, or the whole recording when it is no longer than one window. Each clip is later
    /// padded or cut (centred) to ClipSamples by the extraction.
    let windows (plan: ClipPlan) (samples: float32[]) : float32[][] =
        let x =
            match plan.RecordingSamples with
            | Some n -> Clip.fit n Clip.Start samples
            | None -> samples
        match plan.Segment with
        | None -> [| x |]
        | Some (length, _) when x.Length <= length -> [| x |]
        | Some (length, hop) ->
            let count = 1 + (x.Length - length + hop - 1) / hop
            Array.init count (fun w -> Array.sub x (min (w * hop) (x.Length - length)) length)

    let private seconds (plan: ClipPlan) (samples: int) = float samples / float plan.SampleRate

    /// One line for logs and reports, e.g. "8000 Hz, clips of 1.024 s, windows of 1.024 s every 0.512 s".
    let describe (plan: ClipPlan) =
        sprintf "%d Hz, clips of %g s%s%s" plan.SampleRate (seconds plan plan.ClipSamples)
            (match plan.RecordingSamples with Some n -> sprintf ", recordings cut to %g s" (seconds plan n) | None -> "")
            (match plan.Segment with
             | Some (l, h) -> sprintf ", windows of %g s every %g s averaged per recording" (seconds plan l) (seconds plan h)
             | None -> "")

    /// The longest and the median recording of `items` in seconds (1 s each for no items).
    let internal durationsOf (items: Item[]) =
        let durations = items |> Array.map (fun i -> i.Duration) |> Array.sort
        if durations.Length = 0 then 1.0, 1.0 else Array.last durations, durations.[durations.Length / 2]

    /// The rule that tells long recordings (environmental clips, music) from short ones (digits, keywords): a median
    /// over 2 s and over 1.5 clips of `clipSeconds`.
    let internal longerThanClip (median: float) (clipSeconds: float) = median > max 2.0 (1.5 * clipSeconds)

    /// Resolves the plan for a schema and a dataset's items: the rate from `sampleRate` or the schema's (a rate
    /// other than the schema's raises ArgumentException: the schema's filters are built for its rate); for a
    /// schema that takes any clip length, clips of `duration` seconds (default: the longest item, at most 5 s), or
    /// of the window length with windows;
    /// windows of `segment` seconds every `hop` seconds (default half a window) when asked, and by default for a
    /// fixed-length schema when the median item is longer than 2 s and than 1.5 times its clip (environmental clips
    /// and music tracks are then averaged over windows of the schema's clip, half overlapping, instead of being cut
    /// to one clip; short keyword and digit clips stay one clip each). A `segment` longer than the longest item (or
    /// than `duration`) raises ArgumentException naming --segment and its largest useful value.
    let resolve (schema: FeatureSchemaInfo) (sampleRate: int option) (duration: float option) (segment: float option) (hop: float option) (items: Item[]) : ClipPlan =
        let schemaRate = schema.SampleRate
        let rate =
            match sampleRate with
            | Some r -> r
            | None when schemaRate > 0 -> schemaRate
            | None -> items |> Array.countBy (fun i -> i.SampleRate) |> Array.maxBy snd |> fst
        if rate <= 0 then invalidArg "sr" (sprintf "--sr must be positive, was %d" rate)
        if schemaRate > 0 && rate <> schemaRate then
            invalidArg "sr" (sprintf "--sr %d differs from the %d Hz that schema '%s' is defined at; choose a schema at that rate or leave --sr out" rate schemaRate schema.Name)
        let positive name (v: float) =
            if not (v > 0.0 && v < 3600.0) then invalidArg name (sprintf "--%s must lie in (0, 3600) seconds, was %g" name v)
            v
        let samples (s: float) = max 1 (int (Math.Round(s * float rate)))
        let longest, median = durationsOf items
        let clipSeconds = duration |> Option.map (positive "duration") |> Option.defaultValue (min longest 5.0)
        let fixedClip = schema.ClipSamples > 0
        let clip = if fixedClip then schema.ClipSamples else samples clipSeconds
        // Windows longer than every recording (after --duration) would each be a whole recording: refused rather
        // than accepted as a no-op.
        match segment with
        | Some s ->
            let span = match duration with Some d -> min d longest | None -> longest
            if s > span then
                invalidArg "segment"
                    (sprintf "--segment %g s is longer than %s (%g s), so no recording would be cut into windows; use at most %g s"
                        s (match duration with Some d when d < longest -> "--duration" | _ -> "the longest recording") span span)
        | None -> ()
        let segment =
            match segment |> Option.map (positive "segment"), hop |> Option.map (positive "segment-hop") with
            | Some s, h ->
                let w = samples s
                Some(w, h |> Option.map samples |> Option.defaultValue (max 1 (w / 2)))
            | None, h when fixedClip && longerThanClip median (float schema.ClipSamples / float rate) ->
                Some(clip, h |> Option.map samples |> Option.defaultValue (max 1 (clip / 2)))
            | None, Some _ -> invalidArg "segment-hop" "--segment-hop needs --segment"
            | None, None -> None
        let clip =
            match segment with
            | Some (window, _) when not fixedClip -> window
            | _ -> clip
        { ClipPlan.SampleRate = rate; ClipSamples = clip
          RecordingSamples = (if segment.IsSome then duration |> Option.map samples else None)
          Segment = segment }

/// How `predict` prepares recordings exactly as training did: recorded in model files as training settings
/// and read back typed.
type Preparation =
    { /// Feature schema name.
      Features: string
      /// The schema's run-time parameter differences (FeatureSchemaInfo.Variant; empty for the declaration).
      FeatureParameters: string
      /// Per-utterance mean normalisation of image bands (see Recipe.PerUtterance).
      PerUtterance: bool
      /// Test-time speeds and weights (see Recipe.TestSpeeds).
      TestSpeeds: (float * float) list
      Clips: ClipPlan }

/// Writing and reading Preparation as model-file settings.
module Preparation =
    /// The settings: features, per_utterance (true/false), test_speeds, sample_rate, clip_samples,
    /// recording_samples and segment (`WINDOW/HOP` in samples, or `none`).
    let toSettings (p: Preparation) =
        [ "features", p.Features; "feature_parameters", p.FeatureParameters; "per_utterance", (if p.PerUtterance then "true" else "false")
          "test_speeds", formatSpeeds p.TestSpeeds; "sample_rate", string p.Clips.SampleRate
          "clip_samples", string p.Clips.ClipSamples
          "recording_samples", (match p.Clips.RecordingSamples with Some n -> string n | None -> "none")
          "segment", (match p.Clips.Segment with Some (w, h) -> sprintf "%d/%d" w h | None -> "none") ]

    /// Reads the settings back. Files written before clip plans were recorded give the schema's rate, its clip
    /// length (else 8,192 samples, what those versions used for any-length schemas) and no windows; files without
    /// test speeds predict from the clip alone. Raises ModelFileException naming the file and the bad setting.
    let ofSettings (path: string) (schema: FeatureSchemaInfo) (settings: (string * string) list) : Preparation =
        let find key = settings |> List.tryFind (fun (k, _) -> k = key) |> Option.map snd
        let bad key (value: string) why = raise (ModelFileException(path, sprintf "training setting '%s' = '%s' %s" key value why))
        let integer key fallback =
            match find key with
            | None -> fallback
            | Some v ->
                match Int32.TryParse(v, Globalization.NumberStyles.Integer, Globalization.CultureInfo.InvariantCulture) with
                | true, n when n > 0 -> n
                | _ -> bad key v "is not a positive integer"
        let optionalInteger key =
            match find key with
            | None | Some "none" -> None
            | Some v -> Some(integer key 0)
        let segment =
            match find "segment" with
            | None | Some "none" -> None
            | Some v ->
                match v.Split '/' with
                | [| w; h |] ->
                    match Int32.TryParse w, Int32.TryParse h with
                    | (true, w), (true, h) when w > 0 && h > 0 -> Some(w, h)
                    | _ -> bad "segment" v "is not WINDOW/HOP in samples"
                | _ -> bad "segment" v "is not WINDOW/HOP in samples"
        let speeds =
            match find "test_speeds" with
            | Some v ->
                try parseSpeeds v with :? ArgumentException as e -> bad "test_speeds" v ("is invalid: " + e.Message)
            | None -> []
        let perUtterance =
            match find "per_utterance" with
            | Some v when v.Equals("true", StringComparison.OrdinalIgnoreCase) -> true
            | Some v when v.Equals("false", StringComparison.OrdinalIgnoreCase) -> false
            | Some v -> bad "per_utterance" v "is not true or false"
            | None -> raise (ModelFileException(path, "training setting 'per_utterance' is missing"))
        { Preparation.Features = schema.Name; FeatureParameters = schema.Variant; PerUtterance = perUtterance; TestSpeeds = speeds
          Clips =
            { ClipPlan.SampleRate = integer "sample_rate" schema.SampleRate
              ClipSamples = integer "clip_samples" (if schema.ClipSamples > 0 then schema.ClipSamples else Extraction.legacyAnyLengthClipSamples)
              RecordingSamples = optionalInteger "recording_samples"
              Segment = segment } }

/// Every setting of a run, resolved and typed (`resolve` fills it from TrainOptions and the dataset).
type RunSettings =
    { Recipe: Recipe
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
      Preparation: Preparation
      Seed: int }

/// The data of a run: the dataset (labels selected), its folds with their validation parts, and the
/// background-noise recordings offered to augmentation.
type PreparedData =
    { Dataset: Dataset
      /// The folder the data came from (FSDD's resolved folder when none was given).
      Folder: string
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
      /// Test-time speeds and weights the accuracies were averaged over (empty: none).
      TestSpeeds: (float * float) list
      ExtractSeconds: float
      TrainSeconds: float
      TotalSeconds: float
      OutDir: string
      Skipped: SkippedFile[] }

/// Settings recorded in model files and reports.
let private settingsOf (settings: RunSettings) (device: string) =
    [ "model", settings.Recipe.Name; "split", Split.format settings.Split; "epochs", string settings.Epochs; "batch_size", string settings.BatchSize
      "learning_rate", string settings.LearningRate; "augment", Augment.format settings.Augmentations; "copies", string settings.Copies
      "augment_pool", string settings.AugmentPool
      "validation", string settings.Validation
      "early_stopping", (match settings.EarlyStopping with Some p -> string p | None -> "none")
      "seed", string settings.Seed; "device", device ]
    @ Preparation.toSettings settings.Preparation
    // A schema declared in a user's assembly: predict names the assembly to load when it is not loaded.
    @ (if Schemas.IsPredefined settings.Schema then [] else [ "schema_assembly", Schemas.AssemblyFileOf settings.Schema ])
/// Feature rows [clips, Length] of raw clips at the schema's rate: each shaped to the schema's clip length, extracted,
/// and per-utterance normalised when asked (images only). Training, evaluation and `predict` all go through here.
/// The schema clips are extracted with under a clip plan: the schema itself when it has a clip length, else its
/// run-time variant at the plan's clip length (schemas of statistics over any length take the plan's duration).
let extractionSchema (schema: FeatureSchemaInfo) (plan: ClipPlan) : FeatureSchemaInfo =
    if schema.ClipSamples > 0 then schema
    else Extraction.variant schema { Extraction.noOverrides with ClipSamples = Some plan.ClipSamples }

/// Feature rows [clips, Length] of raw clips at the schema's rate through the one extraction path (Extraction.rows:
/// shaped by Extraction.fit, then the schema's executor; the rows `features` exports), then per-utterance
/// normalised when asked (images only). Training, evaluation and `predict` all go through here.
let private perUtteranceStep (schema: FeatureSchemaInfo) (perUtterance: bool) (values: float32[]) =
    if perUtterance && schema.Shape.Count = 2 then
        Normalization.perUtteranceInPlace schema.Shape.[0] schema.Shape.[1] false 1e-3f values
    values

let private extractShaped (engine: Engine) (schema: FeatureSchemaInfo) (perUtterance: bool) (clips: float32[][]) =
    perUtteranceStep schema perUtterance (Extraction.rows engine schema clips)

/// The shard variant text of a clip plan's clips (Shards.plan): Extraction.WholeRecordings for one centred clip per
/// recording, with the recording cut and the windows when the plan has them (so windows are cached too).
let internal clipVariant (plan: ClipPlan) =
    match plan.Segment, plan.RecordingSamples with
    | None, None -> Extraction.WholeRecordings
    | segment, recording ->
        sprintf "%s;recording_samples=%s;segment=%s" Extraction.WholeRecordings
            (match recording with Some n -> string n | None -> "none")
            (match segment with Some (w, h) -> sprintf "%d/%d" w h | None -> "none")

/// The shard variant text of augmented copy `copy` of the clips: the clip variant, the augmentations, the seed and the
/// background-noise recordings (`noiseId`), everything an augmented clip depends on besides the recording.
let internal copyVariant (plan: ClipPlan) (augmentations: Augmentation list) (seed: int) (noiseId: string) (copy: int) =
    sprintf "%s;augment=%s;seed=%d;noises=%s;copy=%d" (clipVariant plan) (Augment.format augmentations) seed noiseId copy

/// Identifies background-noise recordings by their keys, sizes and modification times (hashed), "none" without any.
let internal noiseIdOf (files: string[]) =
    if files.Length = 0 then "none"
    else
        let text = files |> Array.sort |> Array.map (fun f -> let i = FileInfo f in sprintf "%s\t%d\t%d" i.FullName i.Length i.LastWriteTimeUtc.Ticks) |> String.concat "\n"
        Convert.ToHexString(Security.Cryptography.SHA256.HashData(Text.Encoding.UTF8.GetBytes text)).Substring(0, 16).ToLowerInvariant()

/// The clips of a recording under a plan: loaded at the plan's rate and cut into windows (ClipPlan.windows); with
/// `copy` > 0, each window augmented as that copy (Augment.apply seeded by the run's seed, the copy and the window's
/// key: the recording's key, `{key}#{window}` with windows). Each clip is shaped by Extraction.fit afterwards.
let internal clipsOf (plan: ClipPlan) (augmentations: Augmentation list) (seed: int) (noises: float32[][]) (copy: int) (item: Item) =
    let windows = ClipPlan.windows plan (Dataset.loadMono plan.SampleRate item)
    if copy = 0 then windows
    else
        windows |> Array.mapi (fun w x ->
            let key = match plan.Segment with Some _ -> sprintf "%s#%d" item.Key w | None -> item.Key
            Augment.apply (seed * 7919 + copy) key noises plan.SampleRate augmentations x)

/// Computes the missing shards of `items`' clips (copy 0: the recordings; copy k: augmented copy k) under `cache`, a
/// bounded group of recordings at a time, and returns the plans and how many recordings' shards were already there.
let internal ensureShards (engine: Engine) (schema: FeatureSchemaInfo) (cache: string) (variant: string) (clips: Item -> float32[][]) (items: Item[]) =
    let byKey = items |> Array.map (fun i -> i.Key, i) |> dict
    let plans = Shards.plan schema.Fingerprint variant Extraction.shardSize (items |> Array.map (fun i -> Shards.source i.Path i.Key i.Label))
    let found, _ =
        Shards.ensure cache plans (Extraction.extractor engine schema) (fun s -> clips byKey.[s.Key] |> Array.map (Extraction.fit schema)) 32 Progress.silent
    plans, found |> Array.sumBy (fun p -> p.Sources.Length)

/// A split part's feature rows in a row file: `Physical.[i]` is the file row of logical row i, whose label is
/// `Labels.[i]` and whose recording is `Items.[i]` (an index into the part's items). Logical rows are the part's
/// clips in item order (windows in order), then augmented copy 1 of them, copy 2, ...; block b (0: the clips, k: copy
/// k) is logical rows `Blocks.[b] .. Blocks.[b + 1] - 1` (an augmented copy may have other windows than the clips).
type internal PartRows =
    { File: string
      RowLength: int
      Physical: int[]
      Labels: int[]
      Items: int[]
      Blocks: int[] }

/// The rows of a split part, as `train` feeds them to the network before the train-fitted standardisation: the
/// clips' rows read from their shards (`originals`: plans of the recordings' clips, Shards.readPlanned) and, for each
/// augmented copy, from the copy's shards (computed here when missing), per-utterance normalised when the recipe
/// asks, appended shard by shard to the row file `file`. Only one shard's rows are in memory at a time.
let internal partRows (engine: Engine) (schema: FeatureSchemaInfo) (cache: string) (recipe: Recipe) (plan: ClipPlan)
                      (originals: Shards.ShardPlan[]) (augmentations: Augmentation list) (copies: int) (seed: int)
                      (noises: float32[][]) (noiseId: string) (file: string) (items: Item[]) : PartRows =
    let index = items |> Array.mapi (fun i item -> item.Key, i) |> dict
    use writer = new RowFile.Writer(file, schema.Length)
    let append (plans: Shards.ShardPlan[]) =
        let physical = Collections.Generic.Dictionary<struct (int * int), int>()
        for p in plans do
            if p.Sources |> Array.exists (fun s -> index.ContainsKey s.Key) then
                let shard = Shards.readPlanned cache p
                let keep = [| for r in 0 .. shard.Rows - 1 do if index.ContainsKey shard.Keys.[r] then r |]
                let values = Array.zeroCreate<float32> (keep.Length * schema.Length)
                keep |> Array.iteri (fun k r -> Array.blit shard.Values (r * schema.Length) values (k * schema.Length) schema.Length)
                let first = writer.Rows
                writer.Append(perUtteranceStep schema recipe.PerUtterance values)
                keep |> Array.iteri (fun k r -> physical.[struct (index.[shard.Keys.[r]], shard.Windows.[r])] <- first + k)
        // Logical order: the part's items in order, each recording's windows in order.
        [| for i in 0 .. items.Length - 1 do
               let mutable w = 0
               while physical.ContainsKey(struct (i, w)) do
                   yield i, physical.[struct (i, w)]
                   w <- w + 1 |]
    let blocks =
        [| yield append originals
           for copy in 1 .. copies do
               let variant = copyVariant plan augmentations seed noiseId copy
               let plans, _ = ensureShards engine schema cache variant (clipsOf plan augmentations seed noises copy) items
               yield append plans |]
    let rows = Array.concat blocks
    { File = file; RowLength = schema.Length; Physical = rows |> Array.map snd; Labels = rows |> Array.map (fun (i, _) -> items.[i].LabelIndex)
      Items = rows |> Array.map fst; Blocks = Array.scan (fun start (b: _[]) -> start + b.Length) 0 blocks }

/// The choices of PooledRows over a part whose blocks are the clips and `pool` augmented versions of them: the clips'
/// rows as they are, then `copies` blocks of slots laid out as versions 1 .. copies are, each slot (a recording's
/// window) choosing among that window's rows in every version that has it (all `pool` of them unless augmentation
/// changed a recording's window count). Logical row indices of `part`. Raises ArgumentException when the part does
/// not hold 1 + pool blocks or copies exceeds pool.
let internal poolChoices (part: PartRows) (copies: int) (pool: int) : int[][] =
    if part.Blocks.Length <> pool + 2 then invalidArg "part" (sprintf "the part holds %d blocks, not the clips and %d augmented versions" (part.Blocks.Length - 1) pool)
    if copies < 1 || copies > pool then invalidArg "copies" (sprintf "%d augmented rows per clip cannot be drawn from %d versions" copies pool)
    // Each version's rows keyed by (recording, window within the recording).
    let windows =
        [| for v in 1 .. pool ->
            let counts = Collections.Generic.Dictionary<int, int>()
            [| for r in part.Blocks.[v] .. part.Blocks.[v + 1] - 1 ->
                let item = part.Items.[r]
                let w = match counts.TryGetValue item with | true, c -> c | _ -> 0
                counts.[item] <- w + 1
                struct (item, w), r |] |]
    let versions = windows |> Array.map dict
    [| for r in part.Blocks.[0] .. part.Blocks.[1] - 1 -> [| r |]
       for slot in 0 .. copies - 1 do
           for key, _ in windows.[slot] ->
               // The slot's own version always has the window, so there is at least one choice.
               [| for v in 0 .. pool - 1 do
                    match versions.[v].TryGetValue key with
                    | true, row -> row
                    | _ -> () |] |]

/// The part's rows as a row source, `prepare`d on every read (e.g. the train-fitted standardisation).
let internal rowSource (part: PartRows) (prepare: float32[] -> int -> unit) =
    new RowFile(part.File, part.RowLength, part.Labels, part.Physical, prepare)

/// Every logical row of a part in memory, [rows * RowLength] (for tests and small parts).
let internal partValues (part: PartRows) =
    use source = rowSource part (fun _ _ -> ())
    let values = Array.zeroCreate<float32> (part.Physical.Length * part.RowLength)
    if part.Physical.Length > 0 then source.Read(Array.init part.Physical.Length id, 0, part.Physical.Length, values)
    values

let internal grouping (schema: FeatureSchemaInfo) =
    if schema.Shape.Count = 2 then Normalization.PerBand(schema.Shape.[0], schema.Shape.[1]) else Normalization.PerColumn

/// Model inputs of raw clips at the model's rate, exactly as training prepared its test rows: `extractShaped`, then
/// standardised with the train-fitted statistics.
let internal prepare (engine: Engine) (schema: FeatureSchemaInfo) (perUtterance: bool) (stats: Normalization.Stats) (clips: float32[][]) =
    let values = extractShaped engine schema perUtterance clips
    Normalization.applyInPlace stats schema.Length values
    values

/// Class probabilities [clips, classes] of raw clips with test-time speed averaging: the softmax of the weighted
/// mean log-probability over the clip resampled at each factor (Augment.speed), which is the normalised weighted
/// geometric mean of the per-speed probabilities. With no speeds, the model's probabilities of the clips themselves.
let predictAveraged (model: Model) (inputsOf: float32[][] -> float32[]) (speeds: (float * float) list) (clips: float32[][]) : float32[,] =
    match speeds with
    | [] -> Model.predict model (inputsOf clips)
    | _ ->
        let n, k = clips.Length, Model.classes model
        let total = speeds |> List.sumBy snd
        let sum = Array2D.zeroCreate<float> n k
        for factor, weight in speeds do
            let p = Model.predict model (inputsOf (clips |> Array.Parallel.map (Augment.speed factor)))
            for i in 0 .. n - 1 do
                for j in 0 .. k - 1 do
                    sum.[i, j] <- sum.[i, j] + weight / total * log (max 1e-30 (float p.[i, j]))
        let result = Array2D.zeroCreate<float32> n k
        for i in 0 .. n - 1 do
            let mutable top = Double.NegativeInfinity
            for j in 0 .. k - 1 do top <- max top sum.[i, j]
            let mutable z = 0.0
            for j in 0 .. k - 1 do z <- z + exp (sum.[i, j] - top)
            for j in 0 .. k - 1 do result.[i, j] <- float32 (exp (sum.[i, j] - top) / z)
        result

/// Class probabilities [recordings, classes] of recordings at the plan's rate: each recording's clips
/// (ClipPlan.windows) through `predictAveraged` with `inputsOf`, the window probabilities averaged per recording.
/// Evaluation and `predict` both classify recordings through here.
let private recordingProbabilities (model: Model) (plan: ClipPlan) (inputsOf: float32[][] -> float32[]) (speeds: (float * float) list) (recordings: float32[][]) : float32[,] =
    let windows = recordings |> Array.map (ClipPlan.windows plan)
    let p = predictAveraged model inputsOf speeds (Array.concat windows)
    match plan.Segment with
    | None -> p
    | Some _ ->
        let k = Array2D.length2 p
        let result = Array2D.zeroCreate<float32> recordings.Length k
        let mutable row = 0
        for r in 0 .. recordings.Length - 1 do
            let n = windows.[r].Length
            for j in 0 .. k - 1 do
                let mutable sum = 0.0
                for w in 0 .. n - 1 do sum <- sum + float p.[row + w, j]
                result.[r, j] <- float32 (sum / float n)
            row <- row + n
        result

/// Writes metrics.json-style data for one fold.
let private foldJson (f: FoldResult) (labels: string[]) =
    {| name = f.Name; n_train = f.NTrain; n_validation = f.NValidation; n_test = f.NTest; test_accuracy = f.TestAccuracy
       train_accuracy = f.TrainAccuracy; validation_accuracy = Option.toNullable f.ValidationAccuracy
       best_epoch = Option.toNullable f.BestEpoch; stopped_early = f.StoppedEarly; resumed_after_epochs = f.ResumedAfterEpochs
       log_loss = f.Metrics.LogLoss; train_seconds = f.TrainSeconds; model_file = nonNull (Path.GetFileName f.ModelFile)
       per_class = [ for k in 0 .. labels.Length - 1 -> {| label = labels.[k]; precision = f.Metrics.Precision.[k]; recall = f.Metrics.Recall.[k]; f1 = f.Metrics.F1.[k] |} ]
       confusion = [ for r in 0 .. labels.Length - 1 -> [ for c in 0 .. labels.Length - 1 -> f.Metrics.Confusion.[r, c] ] ]
       history = [ for e in f.History -> {| epoch = e.Epoch; train_loss = e.TrainLoss; train_accuracy = e.TrainAccuracy
                                            validation_loss = Option.toNullable e.ValidationLoss; validation_accuracy = Option.toNullable e.ValidationAccuracy
                                            learning_rate = e.LearningRate; seconds = e.Seconds |} ] |}

let private writeConfusionCsv (path: string) (labels: string[]) (m: int[,]) =
    let lines = [|
        yield "true\\predicted," + String.Join(",", labels)
        for r in 0 .. labels.Length - 1 do
            yield labels.[r] + "," + String.Join(",", [| for c in 0 .. labels.Length - 1 -> string m.[r, c] |]) |]
    File.WriteAllLines(path, lines)

/// The file in a run folder recording the options the run was started with (`--resume` reads it).
[<Literal>]
let RunFileName = "run.json"

/// The version `run.json` files are written with: 2 since `feature_parameters` holds the model recipe's own feature
/// parameters too (files without `run_file_version` are version 1), 3 since `augment_pool` records the augment pool
/// (an earlier run drew no augmented row from a pool, so it resumes with a pool of 1).
[<Literal>]
let RunFileVersion = 3

/// Writes the options that decide a run's result into `dir/run.json` (`data` is the resolved folder), the run-time
/// feature parameters (`feature_parameters`: each override as given or as the model's recipe sets it, null where the
/// schema's own applies, so a resumed run keeps them if the recipe changes) included, and `augmentPool`, the augment
/// pool in force (RunSettings.AugmentPool; 0, written as null, without waveform augmentation).
let private writeRunFile (dir: string) (folder: string) (o: TrainOptions) (augmentPool: int) =
    let f = featureOverrides (recipe o.Model) o.Features o.FeatureParameters
    let json =
        {| run_file_version = RunFileVersion
           data = folder; split = Option.toObj o.Split; model = o.Model; features = Option.toObj o.Features
           epochs = Option.toNullable o.Epochs; batch_size = Option.toNullable o.BatchSize; learning_rate = Option.toNullable o.LearningRate
           augment = Option.toObj o.Augment
           augment_pool = (if augmentPool = 0 then Nullable() else Nullable augmentPool)
           test_speeds = o.TestSpeeds |> Option.map formatSpeeds |> Option.toObj
           labels = o.Labels |> Option.map (String.concat ",") |> Option.toObj; other_label = Option.toObj o.OtherLabel
           validation = o.Validation; early_stopping = Option.toNullable o.EarlyStopping; sr = Option.toNullable o.SampleRate
           duration = Option.toNullable o.Duration; segment = Option.toNullable o.Segment; segment_hop = Option.toNullable o.SegmentHop
           device = o.Device; seed = o.Seed
           feature_parameters =
               {| sr = Option.toNullable f.Sr; clip_samples = Option.toNullable f.ClipSamples; n_fft = Option.toNullable f.NFft
                  hop_length = Option.toNullable f.HopLength; win_length = Option.toNullable f.WinLength; n_mels = Option.toNullable f.NMels
                  fmin = Option.toNullable f.FMin; fmax = Option.toNullable f.FMax; n_mfcc = Option.toNullable f.NMfcc
                  other = [| for name, value in f.Other -> [| name; value |] |] |} |}
    File.WriteAllText(Path.Combine(dir, RunFileName), JsonSerializer.Serialize(json, JsonSerializerOptions(WriteIndented = true)))

/// The recorded feature parameters of a version 1 run file (written before recipes had feature parameters of their
/// own): such a run extracted the declared value of every parameter its options left out, so each parameter that the
/// recipe now sets on its own schema is pinned to the declared value unless recorded.
let private pinDeclared (r: Recipe) (features: string option) (recorded: Extraction.Overrides) : Extraction.Overrides =
    if not (ownSchema r features) then recorded
    else
        let p = Schemas.ByName(r.Schema).Parameters
        let f = r.FeatureParameters
        let at (set: 'a option) (value: 'b) = set |> Option.map (fun _ -> value)
        Extraction.overridesOn
            { Sr = at f.Sr p.SampleRate; ClipSamples = at f.ClipSamples p.ClipSamples; NFft = at f.NFft p.NFft
              HopLength = at f.HopLength p.HopLength; WinLength = at f.WinLength p.WinLength; NMels = at f.NMels p.NMels
              FMin = at f.FMin p.FMin; FMax = at f.FMax p.FMax; NMfcc = at f.NMfcc p.NMfcc
              Other = [ for name, _ in f.Other -> name, p.ValueText name ] }
            recorded

/// The options of the run in `dir` (its run.json), with `caller`'s logging, progress and plot choices and `dir`
/// as the output folder. Raises FileNotFoundException when `dir` holds no run.json, DatasetException when it is
/// not a run file.
let private readRunFile (dir: string) (caller: TrainOptions) : TrainOptions =
    let path = Path.Combine(dir, RunFileName)
    if not (File.Exists path) then
        raise (FileNotFoundException(sprintf "%s: no %s, so %s is not a run folder written by train (nothing to resume)" path RunFileName dir, path))
    try
        use doc = JsonDocument.Parse(File.ReadAllText path)
        let root = doc.RootElement
        let prop name =
            match root.TryGetProperty(name: string) with
            | true, v when v.ValueKind <> JsonValueKind.Null -> Some v
            | _ -> None
        let str name = prop name |> Option.map (fun v -> nonNull (v.GetString()))
        let int name = prop name |> Option.map (fun v -> v.GetInt32())
        let num name = prop name |> Option.map (fun v -> v.GetDouble())
        // Run files written before feature parameters were recorded have none: the schema as declared.
        let features =
            match prop "feature_parameters" with
            | None -> Extraction.noOverrides
            | Some p ->
                let field name =
                    match p.TryGetProperty(name: string) with
                    | true, v when v.ValueKind <> JsonValueKind.Null -> Some v
                    | _ -> None
                let fint name = field name |> Option.map (fun v -> v.GetInt32())
                let fnum name = field name |> Option.map (fun v -> v.GetDouble())
                { Sr = fint "sr"; ClipSamples = fint "clip_samples"; NFft = fint "n_fft"; HopLength = fint "hop_length"
                  WinLength = fint "win_length"; NMels = fint "n_mels"; FMin = fnum "fmin"; FMax = fnum "fmax"; NMfcc = fint "n_mfcc"
                  Other =
                    match field "other" with
                    | None -> []
                    | Some o ->
                        [ for pair in o.EnumerateArray() ->
                            if pair.GetArrayLength() <> 2 then raise (JsonException "feature_parameters.other holds a pair that is not [name, value]")
                            nonNull (pair.[0].GetString()), nonNull (pair.[1].GetString()) ] }
        let model = defaultArg (str "model") caller.Model
        let version = defaultArg (int "run_file_version") 1
        let features = if version >= 2 then features else pinDeclared (recipe model) (str "features") features
        { caller with
            Data = str "data"; Split = str "split"; Model = model; Features = str "features"
            Epochs = int "epochs"; BatchSize = int "batch_size"; LearningRate = num "learning_rate"; Augment = str "augment"
            AugmentPool = (match int "augment_pool" with Some k -> Some k | None when version < 3 -> Some 1 | None -> None)
            TestSpeeds = str "test_speeds" |> Option.map parseSpeeds
            Labels = str "labels" |> Option.map (fun l -> l.Split ',' |> List.ofArray); OtherLabel = str "other_label"
            Validation = defaultArg (num "validation") caller.Validation; EarlyStopping = int "early_stopping"
            SampleRate = int "sr"; Duration = num "duration"; Segment = num "segment"; SegmentHop = num "segment_hop"
            Device = defaultArg (str "device") caller.Device; Seed = defaultArg (int "seed") caller.Seed
            FeatureParameters = features; Out = Some dir; Resume = None }
    with
    | :? JsonException as e -> raise (DatasetException(sprintf "%s: not a run file (%s)" path e.Message))
    | :? InvalidOperationException as e -> raise (DatasetException(sprintf "%s: not a run file (%s)" path e.Message))

/// The value an option of `train` stands for in `o`, as text for messages: the recipe's and the schema's defaults
/// resolved where the option is left out (e.g. `--n-fft` of the run-time schema variant), so that a value equal to
/// the default agrees with a run that left the option out. Raises ArgumentException for an unknown option.
let private optionValue (o: TrainOptions) (option: string) : string =
    let r = recipe o.Model
    let real (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
    let orNone f = function Some v -> f v | None -> "none"
    let folder (d: string) = Path.TrimEndingDirectorySeparator(Path.GetFullPath d)
    let parameters () = (schemaOf r o.Features o.FeatureParameters).Parameters
    match option with
    | "--data" -> orNone folder o.Data
    | "--split" -> orNone (Split.parse >> Split.format) o.Split
    | "--model" -> r.Name
    | "--features" -> defaultArg o.Features r.Schema
    | "--n-fft" -> string (parameters ()).NFft
    | "--hop-length" -> string (parameters ()).HopLength
    | "--n-mels" -> string (parameters ()).NMels
    | "--fmin" -> real (parameters ()).FMin
    | "--fmax" -> real (parameters ()).FMax
    | "--n-mfcc" -> string (parameters ()).NMfcc
    | "--epochs" -> string (defaultArg o.Epochs r.Epochs)
    | "--batch-size" -> string (defaultArg o.BatchSize r.BatchSize)
    | "--lr" -> real (defaultArg o.LearningRate r.LearningRate)
    | "--augment" -> (match defaultArg o.Augment r.Augment with "" -> "none" | a -> a)
    | "--augment-pool" -> string (defaultArg o.AugmentPool r.AugmentPool)
    | "--test-speeds" -> (match defaultArg o.TestSpeeds r.TestSpeeds with [] -> "none" | s -> formatSpeeds s)
    | "--labels" -> orNone (String.concat ",") o.Labels
    | "--other-label" -> orNone id o.OtherLabel
    | "--validation" -> real o.Validation
    | "--early-stopping" -> orNone string o.EarlyStopping
    | "--sr" -> orNone string o.SampleRate
    | "--duration" -> orNone real o.Duration
    | "--segment" -> orNone real o.Segment
    | "--segment-hop" -> orNone real o.SegmentHop
    | "--device" -> o.Device
    | "--seed" -> string o.Seed
    | "--out" -> orNone folder o.Out
    | other -> invalidArg "option" (sprintf "%s is not an option that run.json records" other)

/// The options given together with `--resume DIR` that contradict the run recorded in DIR's run.json: for each
/// option named in `given` (command-line flags, e.g. "--n-fft") whose value in `options` differs from the recorded
/// one, (option, recorded value, given value). An option that repeats the recorded value (or its default, when the
/// run left it out) is no conflict. Raises FileNotFoundException when DIR holds no run.json, DatasetException when it
/// is not a run file, ArgumentException for an option run.json does not record.
let resumeConflicts (dir: string) (options: TrainOptions) (given: string list) : (string * string * string) list =
    let recorded = readRunFile dir options
    [ for option in given do
        let before = optionValue recorded option
        let now = optionValue options option
        if before <> now then yield option, before, now ]

/// Step 1, prepare data: opens the dataset (`Data`, any layout Dataset.openFolder detects; FSDD is fetched only when
/// no folder is given), keeps or folds the chosen labels, splits it (`Split`, else the dataset's own) and gives every
/// fold a validation part (the dataset's own, else `Validation` of the training part, Split.withValidation).
/// Raises DatasetException for a folder without usable audio, a split the data cannot make, or unknown labels.
let prepareData (options: TrainOptions) : PreparedData =
    let folder = Download.resolveData options.Data
    let dataset = Dataset.openFolder options.Strict folder
    for s in dataset.Skipped do options.Log (sprintf "skipped %s: %s" s.Path s.Reason)
    for s in dataset.Warnings do options.Log (sprintf "warning %s: %s" s.Path s.Reason)
    if dataset.Items.Length = 0 then
        raise (DatasetException(sprintf "%s holds no usable audio (expected FSDD recordings, class sub-folders, a CSV manifest or Speech Commands)" dataset.Root))
    let dataset =
        match options.Labels with
        | Some labels -> Dataset.selectLabels labels options.OtherLabel dataset
        | None when options.OtherLabel.IsSome -> invalidArg "other-label" "--other-label needs --labels"
        | None -> dataset
    let spec = options.Split |> Option.map Split.parse |> Option.defaultWith (fun () -> Split.defaultFor dataset.Source dataset.Items)
    let folds = Split.apply options.Seed spec dataset.Items |> Array.map (Split.withValidation options.Seed options.Validation)
    for f in folds do
        if f.Train.Length = 0 then raise (DatasetException(sprintf "%s: fold %s has no training recordings" dataset.Root f.Name))
        if f.Test.Length = 0 then raise (DatasetException(sprintf "%s: fold %s has no test recordings" dataset.Root f.Name))
    { PreparedData.Dataset = dataset; Folder = Path.GetFullPath folder; Folds = folds; NoiseFiles = dataset.NoiseFiles }

/// Environmental clips (UrbanSound8K, ESC-50: a median longer than 2 s and than 1.5 times the schema's clip, at most
/// 5 s) make one image of the whole clip: a fixed-length image schema (shape [bands, frames]) chosen by default (no
/// --features, --segment or clip-length override) becomes its variant with clips of --duration seconds, by default
/// the longest recording's up to 5 s (shorter recordings zero-padded at the end). Longer recordings (music) keep the
/// schema's clip and are cut into windows by ClipPlan.resolve; short keyword and digit clips keep the schema as is.
let internal wholeClip (options: TrainOptions) (items: Item[]) (schema: FeatureSchemaInfo) =
    if items.Length = 0 || options.Features.IsSome || options.Segment.IsSome || options.FeatureParameters.ClipSamples.IsSome
       || schema.ClipSamples <= 0 || schema.Shape.Count <> 2 then schema
    else
        let longest, median = ClipPlan.durationsOf items
        if ClipPlan.longerThanClip median (float schema.ClipSamples / float schema.SampleRate) && median <= 5.0 then
            let seconds = options.Duration |> Option.defaultValue (min longest 5.0)
            Extraction.variant schema { options.FeatureParameters with ClipSamples = Some(Extraction.clipSamplesOf schema.SampleRate seconds) }
        else
            match options.Duration with
            | Some d ->
                invalidArg "duration"
                    (sprintf "--duration %g applies to schema '%s' (clips of %d samples) only for environmental clips (median recording 2-5 s); these recordings' median is %.2f s: leave --duration out, or use --segment or a schema that takes any clip length"
                        d schema.Name schema.ClipSamples median)
            | None -> schema

/// Resolves every setting of a run from the options and the prepared data: the model's defaults where an option is
/// left out, whole-clip images for environmental clips (wholeClip), the clip plan (ClipPlan.resolve) and, when the data has background-noise recordings, `snr:`
/// augmentation mixing those recordings instead of white noise. Raises ArgumentException for a bad value.
let resolve (options: TrainOptions) (data: PreparedData) : RunSettings =
    let recipe = recipe options.Model
    let schema = wholeClip options data.Dataset.Items (schemaOf recipe options.Features options.FeatureParameters)
    let epochs = defaultArg options.Epochs recipe.Epochs
    let batch = defaultArg options.BatchSize recipe.BatchSize
    let lr = defaultArg options.LearningRate recipe.LearningRate
    let augmentText = defaultArg options.Augment recipe.Augment
    let augmentations =
        let parsed = if String.IsNullOrWhiteSpace augmentText then [] else Augment.parse augmentText
        if data.NoiseFiles.Length = 0 then parsed
        else parsed |> List.map (function NoiseSnr (lo, hi) -> Background(lo, hi) | a -> a)
    let testSpeeds = defaultArg options.TestSpeeds recipe.TestSpeeds
    checkSpeeds (formatSpeeds testSpeeds) testSpeeds |> ignore
    if epochs < 1 then invalidArg "epochs" (sprintf "epochs must be at least 1, was %d" epochs)
    if batch < 1 then invalidArg "batch-size" (sprintf "batch size must be at least 1, was %d" batch)
    if not (lr > 0.0 && Double.IsFinite lr) then invalidArg "lr" (sprintf "--lr must be a positive, finite learning rate, was %g" lr)
    let smallest = data.Folds |> Array.map (fun f -> f.Train.Length) |> Array.min
    if options.BatchSize.IsSome && batch > smallest then
        invalidArg "batch-size" (sprintf "--batch-size %d is larger than the training part (%d recordings in the smallest fold); use at most %d" batch smallest smallest)
    // A model that cannot take the schema's shape is refused before any feature is computed.
    (try recipe.Build (inputShape (Array.ofSeq schema.Shape) recipe) (max 2 data.Dataset.Labels.Length) |> ignore
     with :? ArgumentException as e ->
        invalidArg "features" (sprintf "model '%s' cannot take features '%s' of shape [%s]: %s" recipe.Name schema.Name (String.Join(", ", schema.Shape)) e.Message))
    if not (options.Validation > 0.0 && options.Validation < 1.0) then
        invalidArg "validation" (sprintf "--validation must lie strictly between 0 and 1, was %g" options.Validation)
    match options.EarlyStopping with
    | Some p when p < 1 -> invalidArg "early-stopping" (sprintf "--early-stopping needs a patience of at least 1 epoch, was %d" p)
    | _ -> ()
    if augmentations |> List.exists Augment.isMask then
        if schema.Shape.Count <> 2 then
            invalidArg "augment" (sprintf "freq-mask and time-mask act on [bands, frames] features; '%s' has shape [%s]" schema.Name (String.Join(", ", schema.Shape)))
        if options.Distributed.IsSome then
            invalidArg "augment" "freq-mask and time-mask are not available with --cluster (the workers read the training rows once)"
    let copies = if (Augment.waveform augmentations).IsEmpty then 0 else max 1 recipe.Copies
    let pool =
        match options.AugmentPool with
        | Some k when k < 1 -> invalidArg "augment-pool" (sprintf "--augment-pool must be at least 1, was %d" k)
        | Some k when k > 1 && copies = 0 ->
            invalidArg "augment-pool" (sprintf "--augment-pool %d draws augmented rows from versions of each clip, and this run has no waveform augmentation (noise, snr, background, shift, gain or speed in --augment): leave --augment-pool out or add some" k)
        | _ when copies = 0 -> 0
        | given ->
            let pool = max copies (defaultArg given recipe.AugmentPool)
            // With --cluster the workers train on one fixed set of rows: the first copies, and said so.
            if pool > copies && options.Distributed.IsSome then
                options.Log (sprintf "an augment pool of %d versions per clip is drawn from per epoch only in this process; with --cluster the workers train on each clip's first %s only" pool (if copies = 1 then "augmented version" else sprintf "%d augmented versions" copies))
                copies
            else pool
    let plan = ClipPlan.resolve schema options.SampleRate options.Duration options.Segment options.SegmentHop data.Dataset.Items
    { RunSettings.Recipe = recipe; Schema = schema
      Split = options.Split |> Option.map Split.parse |> Option.defaultWith (fun () -> Split.defaultFor data.Dataset.Source data.Dataset.Items)
      Epochs = epochs; BatchSize = batch; LearningRate = lr; Augmentations = augmentations
      Copies = copies; AugmentPool = pool
      Validation = options.Validation; EarlyStopping = options.EarlyStopping
      Preparation = { Preparation.Features = schema.Name; FeatureParameters = schema.Variant; PerUtterance = recipe.PerUtterance; TestSpeeds = testSpeeds; Clips = plan }
      Seed = options.Seed }

/// Where a run's feature rows come from.
type FeatureStore =
    { /// The shard cache folder (Shards).
      Cache: string
      /// The shard plans of every recording's clips.
      Recordings: Shards.ShardPlan[]
      /// Keys of the recordings whose shards were already in the cache when the run started.
      Cached: Set<string>
      /// Background-noise recordings at the plan's rate for `background:` augmentation, and their identity (noiseIdOf).
      Noises: float32[][]
      NoiseId: string }

/// The feature store of a run: the shards of every recording's clips under the plan (copy 0) computed where missing,
/// planned over the whole dataset so that every fold and part (and a later run with another split) reads the same
/// shards; `noiseFiles` are loaded for `background:` augmentation when the augmentations mix them.
let openStore (engine: Engine) (settings: RunSettings) (cache: string) (items: Item[]) (noiseFiles: string[]) : FeatureStore =
    let plan = settings.Preparation.Clips
    let schema = extractionSchema settings.Schema plan
    let byKey = items |> Array.map (fun i -> i.Key, i) |> dict
    let plans = Shards.plan schema.Fingerprint (clipVariant plan) Extraction.shardSize (items |> Array.map (fun i -> Shards.source i.Path i.Key i.Label))
    let found, _ =
        Shards.ensure cache plans (Extraction.extractor engine schema) (fun s -> clipsOf plan [] settings.Seed [||] 0 byKey.[s.Key] |> Array.map (Extraction.fit schema)) 32 Progress.silent
    let mixesNoise = settings.Augmentations |> List.exists (function Background _ -> true | _ -> false)
    { Cache = cache; Recordings = plans; Cached = found |> Seq.collect (fun p -> p.Sources |> Seq.map (fun s -> s.Key)) |> Set.ofSeq
      Noises = (if mixesNoise then Augment.loadNoise plan.SampleRate noiseFiles else [||])
      NoiseId = (if mixesNoise then noiseIdOf noiseFiles else "none") }

/// Step 2, build features: the training rows (clips or windows, and augmented copies) and validation rows of a fold
/// as row files in `work` (read from the store's recording shards and the augmented copies' shards), with
/// statistics fitted on the training rows in row order (Normalization.Accumulator, bit for bit Normalization.fit) and
/// applied to every batch read. With an augment pool larger than the copies, every augmented version is written and
/// fitted, and the training rows are PooledRows drawing each epoch's copies from them (poolChoices). Dispose the row sources (and delete `work`) when the fold is done.
let buildFeatures (engine: Engine) (settings: RunSettings) (store: FeatureStore) (work: string) (fold: SplitFold) : FoldFeatures =
    let plan = settings.Preparation.Clips
    let schema = extractionSchema settings.Schema plan
    Directory.CreateDirectory work |> ignore
    let part name (items: Item[]) augmentations copies =
        partRows engine schema store.Cache settings.Recipe plan store.Recordings augmentations copies settings.Seed store.Noises store.NoiseId (Path.Combine(work, name + ".f32")) items
    let train = part "train" fold.Train (Augment.waveform settings.Augmentations) (max settings.Copies settings.AugmentPool)
    let stats =
        let acc = Normalization.Accumulator(grouping schema, schema.Length)
        use raw = rowSource train (fun _ _ -> ())
        let chunk = 256
        let buffer = Array.zeroCreate<float32> (chunk * schema.Length)
        let order = Array.init raw.Count id
        let mutable start = 0
        while start < raw.Count do
            let n = min chunk (raw.Count - start)
            raw.Read(order, start, n, buffer)
            acc.Add(buffer, n)
            start <- start + n
        acc.Stats()
    let standardise (dest: float32[]) (rows: int) = Normalization.applyRowsInPlace stats schema.Length dest rows
    let validation =
        if fold.Validation.Length = 0 then None
        else Some(rowSource (part "validation" fold.Validation [] 0) standardise :> RowSource)
    let cached = Array.append fold.Train fold.Validation |> Array.filter (fun i -> store.Cached.Contains i.Key) |> Array.length
    let trainRows =
        let source =
            if settings.AugmentPool > settings.Copies then
                new PooledRows(rowSource train standardise, poolChoices train settings.Copies settings.AugmentPool, settings.Seed) :> RowSource
            else rowSource train standardise :> RowSource
        if settings.Augmentations |> List.exists Augment.isMask then
            new MaskedRows(source, schema.Shape.[0], schema.Shape.[1], settings.Augmentations, settings.Seed) :> RowSource
        else source
    { FoldFeatures.Train = trainRows; Validation = validation; Stats = stats
      TrainRecordings = fold.Train.Length; ValidationRecordings = fold.Validation.Length; CachedRecordings = cached }

/// Step 3, fit a fold: a fresh network (weights seeded by the run's seed) trained on the fold's training rows with
/// the recipe's one-cycle schedule, validation metrics every epoch, optional early stopping on the validation loss
/// (restoring the best epoch's weights) and a checkpoint in `checkpointDir` after every epoch; a checkpoint already
/// there (an interrupted run) is resumed from. `callback` receives Training.fit's progress.
let rec fitFold (engine: Engine) (settings: RunSettings) (classes: int) (features: FoldFeatures) (checkpointDir: string option) (callback: Progress -> unit) : Model * FitResult =
    fitFoldOn None engine settings classes features checkpointDir callback

/// fitFold, trained by `distributed` when given (see TrainOptions.Distributed): the same network, seed and fit options
/// in a run folder "cluster" beside the fold's checkpoints; validation metrics of the last epoch only; early stopping
/// is refused (ArgumentException naming --early-stopping) since the run does not stop early.
and fitFoldOn (distributed: (string -> unit) option) (engine: Engine) (settings: RunSettings) (classes: int) (features: FoldFeatures) (checkpointDir: string option) (callback: Progress -> unit) : Model * FitResult =
    let net = settings.Recipe.Build (inputShape (Array.ofSeq settings.Schema.Shape) settings.Recipe) classes
    let model = Model.create engine settings.Seed net
    let earlyStopping =
        match settings.EarlyStopping, features.Validation with
        | Some patience, Some _ -> Some { Monitor = ValidationLoss; Patience = patience; MinDelta = 0.0; RestoreBestWeights = true }
        | Some _, None -> invalidArg "early-stopping" "--early-stopping needs a validation part, and this fold has none (too few recordings per class?)"
        | None, _ -> None
    checkpointDir |> Option.iter (Directory.CreateDirectory >> ignore)
    let fitOptions =
        { FitOptions.defaults with
            Epochs = settings.Epochs; BatchSize = settings.BatchSize; Optimizer = Optimizer.adam settings.LearningRate
            Schedule = OneCycle(0.25, 10.0, 100.0); Seed = settings.Seed; LabelSmoothing = 0.05
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
let private evaluationChunk = 64

/// Step 4, evaluate: metrics of the test recordings, each classified once through the same preparation `predict`
/// replays (windows averaged per recording, test-time speeds), with the fold's normalisation statistics. Without
/// test-time speeds the test rows are read from the store's shards (through a row file in `work`); with them the test
/// recordings are reloaded `evaluationChunk` at a time, since each speed needs the waveform.
let evaluate (model: Model) (engine: Engine) (settings: RunSettings) (stats: Normalization.Stats) (store: FeatureStore) (work: string) (test: Item[]) : Metrics =
    let p = settings.Preparation
    let schema = extractionSchema settings.Schema p.Clips
    let k = Model.classes model
    let probabilities =
        match p.TestSpeeds with
        | [] ->
            Directory.CreateDirectory work |> ignore
            let part = partRows engine schema store.Cache settings.Recipe p.Clips store.Recordings [] 0 settings.Seed [||] "none" (Path.Combine(work, "test.f32")) test
            let windows =
                use source = rowSource part (fun dest rows -> Normalization.applyRowsInPlace stats schema.Length dest rows)
                Rows.predict model source
            File.Delete part.File
            match p.Clips.Segment with
            | None -> windows
            | Some _ ->
                // Window probabilities averaged per recording, as recordingProbabilities does.
                let result = Array2D.zeroCreate<float32> test.Length k
                let sums = Array2D.zeroCreate<float> test.Length k
                let counts = Array.zeroCreate<int> test.Length
                part.Items |> Array.iteri (fun row r ->
                    counts.[r] <- counts.[r] + 1
                    for j in 0 .. k - 1 do sums.[r, j] <- sums.[r, j] + float windows.[row, j])
                for r in 0 .. test.Length - 1 do
                    for j in 0 .. k - 1 do result.[r, j] <- float32 (sums.[r, j] / float counts.[r])
                result
        | speeds ->
            let result = Array2D.zeroCreate<float32> test.Length k
            for chunk in Array.init test.Length id |> Array.chunkBySize evaluationChunk do
                let raw = chunk |> Array.Parallel.map (fun i -> Dataset.loadMono p.Clips.SampleRate test.[i])
                let q = recordingProbabilities model p.Clips (prepare engine schema p.PerUtterance stats) speeds raw
                chunk |> Array.iteri (fun c i -> for j in 0 .. k - 1 do result.[i, j] <- q.[c, j])
            result
    Metrics.compute probabilities (test |> Array.map (fun i -> i.LabelIndex))

/// Step 5, write artefacts: metrics.json, a confusion CSV per fold and, with plots, confusion matrices, training and
/// validation curves, one example recording per class and report.html.
let writeArtefacts (options: TrainOptions) (engine: Engine) (settings: RunSettings) (data: PreparedData) (result: RunResult) =
    let outDir = result.OutDir
    let labels = result.Labels
    let results = result.Folds
    let settingRows = settingsOf settings engine.Name
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
    let examples = Collections.Generic.List<string * string>()
    if options.Plots then
        for label in labels do
            match data.Dataset.Items |> Array.tryFind (fun i -> i.Label = label) with
            | Some item ->
                for p, caption in AudioPlots.plotClip engine plotsDir (sprintf "example-%s" label) (nonNull (Path.GetFileName item.Path)) settings.Preparation.Clips.SampleRate (Dataset.loadMono settings.Preparation.Clips.SampleRate item) do
                    examples.Add(Path.GetRelativePath(outDir, p), sprintf "%s (label %s): %s" (nonNull (Path.GetFileName item.Path)) label caption)
            | None -> ()
    let metricsJson =
        {| split = result.Split; model = result.Model; features = result.Features; device = result.Device; device_name = result.DeviceName
           test_accuracy = result.TestAccuracy; test_accuracy_std = result.TestAccuracyStd; clips = result.Clips
           extract_seconds = result.ExtractSeconds; train_seconds = result.TrainSeconds
           total_seconds = result.TotalSeconds; labels = labels; settings = dict settingRows
           skipped = [ for s in data.Dataset.Skipped -> {| path = s.Path; reason = s.Reason |} ]
           folds = [ for f in results -> foldJson f labels ] |}
    File.WriteAllText(Path.Combine(outDir, "metrics.json"), JsonSerializer.Serialize(metricsJson, JsonSerializerOptions(WriteIndented = true)))
    if options.Plots then
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
        let foldRows =
            [ for f in results ->
                [ f.Name; string f.NTrain; string f.NValidation; string f.NTest; sprintf "%.4f" f.TrainAccuracy
                  (f.ValidationAccuracy |> Option.map (sprintf "%.4f") |> Option.defaultValue "-"); sprintf "%.4f" f.TestAccuracy; sprintf "%.1f" f.TrainSeconds ] ]
        let perClass =
            match results with
            | [ single ] -> [ Report.Grid("Per-class test metrics", [ "label"; "precision"; "recall"; "F1" ],
                                          [ for k in 0 .. labels.Length - 1 -> [ labels.[k]; sprintf "%.3f" single.Metrics.Precision.[k]; sprintf "%.3f" single.Metrics.Recall.[k]; sprintf "%.3f" single.Metrics.F1.[k] ] ]) ]
            | _ -> []
        Report.write outDir (sprintf "Hybrid training run: %s on %s" settings.Recipe.Name result.Split)
            ([ Report.Table("Summary", summaryRows)
               Report.Grid("Folds", [ "fold"; "train recordings"; "validation recordings"; "test recordings"; "train accuracy"; "validation accuracy"; "test accuracy"; "training s" ], foldRows) ]
             @ perClass
             @ [ Report.Table("Settings", settingRows)
                 Report.Images("Results", List.ofSeq images)
                 Report.Images("Example recordings (one per class)", List.ofSeq examples) ])
        |> ignore

/// Trains and evaluates the chosen model on every fold of the split and writes the model file(s) and artefacts:
/// prepareData, resolve, openStore (feature shards of every recording), then per fold buildFeatures, fitFold and evaluate (the test part once, after
/// training), then writeArtefacts. Every run writes run.json and per-fold checkpoints into its folder; with `Resume`
/// the run in that folder continues from its checkpoints with its own settings and ends as an uninterrupted run would.
let train (options: TrainOptions) : RunResult =
    let total = Stopwatch.StartNew()
    let resuming = options.Resume.IsSome
    let options =
        match options.Resume with
        | Some dir -> readRunFile dir options
        | None -> options
    let log = options.Log
    // Bad option values are reported before the data is opened.
    recipe options.Model |> ignore
    options.Split |> Option.iter (Split.parse >> ignore)
    let data = prepareData options
    let settings = resolve options data
    let splitName = Split.format settings.Split
    let outDir =
        match options.Out with
        | Some d -> d
        | None -> Path.Combine("runs", sprintf "%s-%s-%s" (DateTime.Now.ToString "yyyyMMdd-HHmmss") settings.Recipe.Name (splitName.Replace(':', '-').Replace(',', '-')))
    Directory.CreateDirectory outDir |> ignore
    // A fresh run into a used folder must not continue that folder's checkpoints: only --resume does.
    let checkpointRoot = Path.Combine(outDir, "checkpoints")
    if not resuming && Directory.Exists checkpointRoot then Directory.Delete(checkpointRoot, true)
    writeRunFile outDir data.Folder options settings.AugmentPool
    use engine = Engines.Create(options.Device, log)
    log (sprintf "device: %s (%s)" engine.Name engine.DeviceName)
    let plan = settings.Preparation.Clips
    log (sprintf "data: %s (%d recordings, %d labels), split %s, clips: %s" data.Dataset.Root data.Dataset.Items.Length data.Dataset.Labels.Length splitName (ClipPlan.describe plan))
    if settings.Schema.IsVariant then log (sprintf "features: %s" (settings.Schema.ToString()))
    let loadWatch = Stopwatch.StartNew()
    // Feature rows are computed once into shards beside the run folders (runs/cache by default), keyed by the schema
    // fingerprint, the clip plan and each file's relative path, size and modification time, so a second run over the
    // same files reads them; recordings are loaded a bounded group at a time, never all at once.
    let cache = Path.Combine(nonNull (Path.GetDirectoryName(Path.GetFullPath outDir)), "cache")
    if settings.Augmentations |> List.exists (function Background _ -> true | _ -> false) then
        log (sprintf "augmentation mixes %d background-noise recordings" data.NoiseFiles.Length)
    let store = openStore engine settings cache data.Dataset.Items data.NoiseFiles
    let work = Path.Combine(outDir, "rows")
    let labels = data.Dataset.Labels
    let settingRows = settingsOf settings options.Device
    let mutable extractSeconds = loadWatch.Elapsed.TotalSeconds
    let results =
        [ for fold in data.Folds do
            let w = Stopwatch.StartNew()
            let foldWork = Path.Combine(work, fold.Name.Replace('/', '-'))
            let features = buildFeatures engine settings store foldWork fold
            extractSeconds <- extractSeconds + w.Elapsed.TotalSeconds
            let copies =
                let rows = match settings.Copies with 0 -> "no augmented copy" | 1 -> "1 augmented copy" | n -> sprintf "%d augmented copies" n
                if settings.AugmentPool > settings.Copies then sprintf "%s drawn each epoch from %d versions" rows settings.AugmentPool else rows
            log (sprintf "fold %s: %d training rows (%d recordings, %s), %d validation rows (%d recordings), %d test recordings, rows gathered in %.2f s (%d of %d recordings' rows from the cache %s)"
                     fold.Name features.Train.Count fold.Train.Length copies
                     (features.Validation |> Option.map (fun v -> v.Count) |> Option.defaultValue 0) fold.Validation.Length fold.Test.Length w.Elapsed.TotalSeconds
                     features.CachedRecordings (fold.Train.Length + fold.Validation.Length) cache)
            let batches = (features.Train.Count + settings.BatchSize - 1) / settings.BatchSize
            let bar = if options.Progress then Progress.create (sprintf "train %s" fold.Name) (settings.Epochs * batches) else Progress.silent
            let callback =
                function
                | BatchEnd (e, b, n, _) -> bar.Report((e - 1) * n + b)
                | EpochEnd r ->
                    log (sprintf "fold %s epoch %d/%d: loss %.4f, train accuracy %.4f, validation loss %s, validation accuracy %s (%.1f s)" fold.Name r.Epoch settings.Epochs r.TrainLoss r.TrainAccuracy
                             (r.ValidationLoss |> Option.map (sprintf "%.4f") |> Option.defaultValue "-")
                             (r.ValidationAccuracy |> Option.map (sprintf "%.4f") |> Option.defaultValue "-") r.Seconds)
            let trainWatch = Stopwatch.StartNew()
            let checkpoints = Path.Combine(checkpointRoot, fold.Name.Replace('/', '-'))
            let model, fit =
                try fitFoldOn options.Distributed engine settings labels.Length features (Some checkpoints) callback
                finally
                    for source in features.Train :: Option.toList features.Validation do source.Dispose()
            bar.Finish()
            if fit.ResumedAfterEpochs > 0 then log (sprintf "fold %s: resumed after epoch %d" fold.Name fit.ResumedAfterEpochs)
            if fit.StoppedEarly then log (sprintf "fold %s: stopped early after epoch %d, keeping epoch %d's weights" fold.Name fit.History.Length (defaultArg fit.BestEpoch 0))
            let trainSeconds = trainWatch.Elapsed.TotalSeconds
            let metrics = evaluate model engine settings features.Stats store foldWork fold.Test
            Directory.Delete(foldWork, true)
            let file = Path.Combine(outDir, if data.Folds.Length = 1 then "model.hnn" else sprintf "model-%s.hnn" (fold.Name.Replace('/', '-')))
            ModelFile.save file
                { SchemaFingerprint = settings.Schema.Fingerprint
                  Labels = List.ofArray labels
                  Normalization = [ "mean", features.Stats.Mean; "std", features.Stats.Std ]
                  TrainingSettings = settingRows @ [ "fold", fold.Name; "grouping", (match features.Stats.Grouping with Normalization.PerColumn -> "column" | _ -> "band") ]
                  LibraryVersion = "" }
                model
            log (sprintf "fold %s: test accuracy %.4f (%d/%d recordings)%s, training %.1f s" fold.Name metrics.Accuracy
                     (int (Math.Round(metrics.Accuracy * float metrics.Count))) metrics.Count
                     (if settings.Preparation.TestSpeeds.IsEmpty then "" else sprintf " averaged over %d speeds" settings.Preparation.TestSpeeds.Length) trainSeconds)
            let kept =
                match fit.BestEpoch with
                | Some e when settings.EarlyStopping.IsSome -> fit.History |> List.tryFind (fun r -> r.Epoch = e)
                | _ -> List.tryLast fit.History
            { FoldResult.Name = fold.Name; NTrain = fold.Train.Length; NValidation = fold.Validation.Length; NTest = fold.Test.Length
              TestAccuracy = metrics.Accuracy
              TrainAccuracy = (match fit.History with [] -> nan | h -> (List.last h).TrainAccuracy)
              ValidationAccuracy = kept |> Option.bind (fun r -> r.ValidationAccuracy)
              Metrics = metrics; History = fit.History; BestEpoch = (if settings.EarlyStopping.IsSome then fit.BestEpoch else None)
              StoppedEarly = fit.StoppedEarly; ResumedAfterEpochs = fit.ResumedAfterEpochs
              TrainSeconds = trainSeconds; ModelFile = file } ]
    let accuracies = results |> List.map (fun r -> r.TestAccuracy)
    let mean = List.average accuracies
    let std =
        if accuracies.Length < 2 then 0.0
        else sqrt ((accuracies |> List.sumBy (fun a -> (a - mean) ** 2.0)) / float (accuracies.Length - 1))
    let result =
        { RunResult.Split = splitName; Model = settings.Recipe.Name; Features = settings.Schema.Name; Device = engine.Name; DeviceName = engine.DeviceName
          Labels = labels; Clips = ClipPlan.describe plan; Folds = results; TestAccuracy = mean; TestAccuracyStd = std
          TestSpeeds = settings.Preparation.TestSpeeds; ExtractSeconds = extractSeconds; TrainSeconds = results |> List.sumBy (fun r -> r.TrainSeconds)
          TotalSeconds = total.Elapsed.TotalSeconds; OutDir = Path.GetFullPath outDir; Skipped = data.Dataset.Skipped }
    if Directory.Exists work then Directory.Delete(work, true)
    writeArtefacts options engine settings data result
    { result with TotalSeconds = total.Elapsed.TotalSeconds }

/// One file's prediction.
type Prediction =
    { Path: string
      Label: string
      /// Probability of each label, in the model's label order.
      Probabilities: (string * float) list
      /// The reader's warning for a file it read only in part (a truncated recording: its whole frames).
      Warning: string option }

/// What `predictEach` made of one file.
type PredictOutcome =
    /// The file was read and classified.
    | Predicted of Prediction
    /// The file could not be read (AudioFormatException: malformed, unsupported, non-finite samples; or an I/O
    /// error such as a missing file): its path and the exception.
    | Unreadable of path: string * error: exn

/// What a model file written by `train` says about preparing its input, read back typed and validated.
type internal TrainedInput =
    { /// The schema (with its recorded run-time parameters) whose fingerprint the file carries.
      Schema: FeatureSchemaInfo
      /// The schema clips are extracted with (extractionSchema of Schema under the recorded clip plan).
      Extraction: FeatureSchemaInfo
      Preparation: Preparation
      PerUtterance: bool
      TestSpeeds: (float * float) list
      Info: ModelInfo }

/// Reads a model file's preparation settings (validated, without weights on an engine): the schema named in the file
/// with its recorded run-time parameters (`feature_parameters`), the clip plan, per-utterance normalisation and
/// test-time speeds. Raises ModelFileException for a damaged file or a missing/invalid setting (naming the schema
/// assembly to load when the schema is not known), SchemaMismatchException when the schema has another fingerprint
/// today.
let internal trainedInput (modelPath: string) : TrainedInput =
    let _, info = ModelFile.inspect modelPath
    let find key = info.TrainingSettings |> List.tryFind (fun (k, _) -> k = key) |> Option.map snd
    let features =
        match find "features" with
        | Some v -> v
        | None -> raise (ModelFileException(modelPath, "training setting 'features' is missing"))
    if not (fst (Schemas.TryGetByName features)) then
        let hint =
            match find "schema_assembly" with
            | Some assembly -> sprintf "; it is declared in %s: pass --schemas PATH/%s (or load it with Schemas.LoadAssembly)" assembly assembly
            | None -> ""
        raise (ModelFileException(modelPath, sprintf "the model was trained on features '%s', which no loaded assembly defines%s" features hint))
    let schema =
        try Extraction.replay features (defaultArg (find "feature_parameters") "")
        with :? ArgumentException as e -> raise (ModelFileException(modelPath, sprintf "training setting 'feature_parameters' is invalid: %s" e.Message))
    if schema.Fingerprint <> info.SchemaFingerprint then raise (Hybrid.Classifier.SchemaMismatchException(modelPath, schema.Fingerprint, info.SchemaFingerprint))
    let preparation = Preparation.ofSettings modelPath schema info.TrainingSettings
    { Schema = schema; Extraction = extractionSchema schema preparation.Clips; Preparation = preparation
      PerUtterance = preparation.PerUtterance; TestSpeeds = preparation.TestSpeeds; Info = info }

/// The train-fitted standardisation stored in a model file.
let internal storedStats (modelPath: string) (schema: FeatureSchemaInfo) (info: ModelInfo) : Normalization.Stats =
    let find name =
        match info.Normalization |> List.tryFind (fun (k, _) -> k = name) with
        | Some (_, v) -> v
        | None -> raise (ModelFileException(modelPath, sprintf "normalisation '%s' is missing" name))
    { Grouping = grouping schema; Mean = find "mean"; Std = find "std" }

/// Loads a model file written by `train` and classifies recordings with exactly the training preprocessing read back
/// typed from the file (the schema with its recorded parameters, rate, clip length, windows averaged per recording,
/// per-utterance and stored normalisation, test-time speeds). Every file is tried: one that cannot be read is an
/// `Unreadable` outcome in its place, the others are predicted; outcomes keep the order of `files`. Raises
/// SchemaMismatchException when the schema's fingerprint today differs from the one the model was trained on, and
/// ModelFileException for a damaged file or bad settings.
let predictEach (device: string) (log: string -> unit) (modelPath: string) (files: string list) : PredictOutcome list =
    let trained = trainedInput modelPath
    use engine = Engines.Create(device, log)
    let model, info = ModelFile.load engine trained.Schema.Fingerprint modelPath
    let stats = storedStats modelPath trained.Extraction info
    let plan = trained.Preparation.Clips
    let loaded =
        files
        |> List.map (fun f ->
            try
                let wav, audio = AudioFile.readMonoWithInfo false f
                let samples = audio.Samples.[0]
                // As the dataset scan does: a recording without frames is not classified (it would be silence).
                if samples.Length = 0 then raise (AudioFormatException(f, "holds no audio frames"))
                Ok((if audio.SampleRate = plan.SampleRate then samples else Resample.resample audio.SampleRate plan.SampleRate samples), wav.Warning)
            with
            | :? AudioFormatException
            | :? IOException
            | :? UnauthorizedAccessException as e -> Error(f, e))
    let clips = loaded |> List.choose (function Ok(c, _) -> Some c | Error _ -> None) |> Array.ofList
    let probabilities =
        if clips.Length = 0 then Array2D.zeroCreate 0 0
        else recordingProbabilities model plan (prepare engine trained.Extraction trained.PerUtterance stats) trained.TestSpeeds clips
    let labels = Array.ofList info.Labels
    let mutable next = 0
    List.zip files loaded
    |> List.map (fun (f, r) ->
        match r with
        | Error(path, e) -> Unreadable(path, e)
        | Ok(_, warning) ->
            let i = next
            next <- next + 1
            let probs = [ for k in 0 .. labels.Length - 1 -> labels.[k], float probabilities.[i, k] ]
            Predicted { Path = f; Label = fst (List.maxBy snd probs); Probabilities = probs; Warning = warning })

/// predictEach for callers that want all or nothing: the predictions in the order of `files`, or the first
/// unreadable file's exception (AudioFormatException, IOException) raised after every file was tried.
let predict (device: string) (log: string -> unit) (modelPath: string) (files: string list) : Prediction list =
    let outcomes = predictEach device log modelPath files
    match outcomes |> List.tryPick (function Unreadable(_, e) -> Some e | Predicted _ -> None) with
    | Some e ->
        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw()
        []
    | None -> outcomes |> List.choose (function Predicted p -> Some p | Unreadable _ -> None)
