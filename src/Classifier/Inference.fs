namespace Hybrid.Classifier

open System
open System.IO
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// A trained model with everything that classifying a recording needs, as training prepared its input: the network
/// (on its engine), the schema with its recorded run-time parameters, the preparation (clip plan, per-utterance
/// normalisation, test-time speeds), the train-fitted standardisation and the class names. `Inference.load` reads
/// one from a model file; `train` builds one in memory for its test part.
type TrainedModel =
    { Model: Model
      /// Class names, in the order of the probabilities' columns.
      Labels: string[]
      /// The schema the model was trained on, with its recorded run-time parameters (its fingerprint is the file's).
      Schema: FeatureSchemaInfo
      /// The schema clips are extracted with (Preparation.extractionSchema of Schema under the clip plan).
      Extraction: FeatureSchemaInfo
      Preparation: Preparation
      /// Train-fitted standardisation of the feature rows.
      Stats: Normalization.Stats }

/// The prediction of one clip of a recording (one window of the clip plan).
type WindowPrediction =
    { /// The window's index in its recording, from 0.
      Index: int
      /// Where the window starts in the recording, in seconds (trimmed silence counted: ClipPlan.spans).
      Start: float
      /// Where the window ends in the recording, in seconds (exclusive; padding not counted).
      End: float
      /// The likeliest label of the window.
      Label: string
      /// Probability of each label for the window, in the model's label order.
      Probabilities: (string * float) list }

/// One file's prediction.
type Prediction =
    { Path: string
      Label: string
      /// Probability of each label, in the model's label order: the mean of the windows' probabilities.
      Probabilities: (string * float) list
      /// The clips the recording was classified from, in order (one for a model without windows: the recording).
      Windows: WindowPrediction list
      /// The reader's warning for a file it read only in part (a truncated recording: its whole frames).
      Warning: string option }

/// What classifying one file gave.
type PredictOutcome =
    /// The file was read and classified.
    | Predicted of Prediction
    /// The file could not be classified: it could not be read (AudioFormatException: malformed, unsupported,
    /// non-finite samples; an I/O error such as a missing file; ArgumentOutOfRangeException: a rate too far above the
    /// model's to resample), or the model's probabilities for it were not finite
    /// (InvalidDataException). Its path and the exception.
    | Failed of path: string * error: exn

/// The one inference path: `predict`, `evaluate`, `AudioClassifier`, train's evaluation of its test part and the ONNX
/// parity tests all classify recordings through `classifyWindows` (`classify`, `classifyFiles`): each recording (mono,
/// at the model's rate) is cut into the clip plan's windows, each window's features are extracted (Extraction.rows),
/// per-utterance normalised and standardised, the network's class probabilities are averaged over the test-time speeds
/// (a weighted geometric mean), and then over the recording's windows (an arithmetic mean; `predict --windows` shows
/// the windows' own probabilities).
[<RequireQualifiedAccess>]
module Inference =
    /// Recordings classified per call of the network when a part is classified from files (`classifyItems`,
    /// `classifyFiles`): bounds the waveforms and feature rows in memory.
    let chunkSize = 64

    /// Network inputs [clips.Length * schema length] of raw clips at the model's rate: the extraction schema's rows,
    /// per-utterance normalised when the model asks, then standardised with the train-fitted statistics.
    let inputs (trained: TrainedModel) (clips: float32[][]) : float32[] =
        let values = Preparation.rows trained.Model.Engine trained.Extraction trained.Preparation.PerUtterance clips
        Normalization.applyInPlace trained.Stats trained.Extraction.Length values
        values

    /// Class probabilities [clips, classes] of raw clips with test-time speed averaging: the softmax of the weighted
    /// mean log-probability over the clip resampled at each factor (Augment.speed), which is the normalised weighted
    /// geometric mean of the per-speed probabilities. With no speeds, the model's probabilities of the clips themselves.
    /// `inputsOf` turns clips into network inputs (e.g. `inputs trained`).
    let predictAveraged (model: Model) (inputsOf: float32[][] -> float32[]) (speeds: (float * float) list) (clips: float32[][]) : float32[,] =
        match speeds with
        | [] -> Model.predict model (inputsOf clips)
        | _ ->
            let n, k = clips.Length, Model.classes model
            let total = speeds |> List.sumBy snd
            let sum = Array2D.zeroCreate<float> n k
            for factor, weight in speeds do
                let p = Model.predict model (inputsOf (clips |> Hybrid.Features.Threads.map (Augment.speed factor)))
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

    /// Class probabilities of each recording's clips (recordings mono, at the model's rate, as ClipPlan.load gives
    /// them): for recording r, [clips of ClipPlan.windows, classes], every clip of every recording through one call of
    /// `predictAveraged`. A row is NaN where the network gave non-finite values (see `classifyFiles`).
    let classifyWindows (trained: TrainedModel) (recordings: float32[][]) : float32[,][] =
        let k = trained.Labels.Length
        if recordings.Length = 0 then [||]
        else
            let windows = recordings |> Array.map (ClipPlan.windows trained.Preparation.Clips)
            let p = predictAveraged trained.Model (inputs trained) trained.Preparation.TestSpeeds (Array.concat windows)
            let starts = windows |> Array.scan (fun start w -> start + w.Length) 0
            windows |> Array.mapi (fun r w -> Array2D.init w.Length k (fun i j -> p.[starts.[r] + i, j]))

    /// The arithmetic mean over the rows of one recording's window probabilities [windows, classes]: its class
    /// probabilities (the row itself for one window).
    let private meanOf (p: float32[,]) : float32[] =
        let n = Array2D.length1 p
        Array.init (Array2D.length2 p) (fun j ->
            let mutable sum = 0.0
            for w in 0 .. n - 1 do sum <- sum + float p.[w, j]
            float32 (sum / float n))

    /// Class probabilities [recordings, classes] of recordings (mono, at the model's rate, as ClipPlan.load gives
    /// them): each recording's window probabilities (`classifyWindows`) averaged per recording. A row is NaN where the
    /// network gave non-finite values (see `classifyFiles`).
    let classify (trained: TrainedModel) (recordings: float32[][]) : float32[,] =
        let means = classifyWindows trained recordings |> Array.map meanOf
        Array2D.init recordings.Length trained.Labels.Length (fun r j -> means.[r].[j])

    /// `trained` set to classify long recordings window by window: its own plan when that has windows; else windows
    /// of its clip length every half clip over the whole recording (the last ending at the recording's end), whose
    /// mean then stands for the recording instead of the one centred clip the model otherwise takes.
    let windowed (trained: TrainedModel) : TrainedModel =
        let plan = trained.Preparation.Clips
        match plan.Segment with
        | Some _ -> trained
        | None ->
            let segment = Some(plan.ClipSamples, max 1 (plan.ClipSamples / 2))
            { trained with Preparation = { trained.Preparation with Clips = { plan with Segment = segment } } }

    /// Class probabilities [items, classes] of dataset items, loaded `chunkSize` at a time (in parallel) with
    /// ClipPlan.load and classified by `classify`. Raises what ClipPlan.load raises for an item that cannot be read
    /// (the dataset scan has already set such files aside).
    let classifyItems (trained: TrainedModel) (items: Item[]) : float32[,] =
        let k = trained.Labels.Length
        let result = Array2D.zeroCreate<float32> items.Length k
        for chunk in Array.init items.Length id |> Array.chunkBySize chunkSize do
            let raw = chunk |> Hybrid.Features.Threads.map (fun i -> ClipPlan.load trained.Preparation.Clips items.[i].Path)
            let q = classify trained raw
            chunk |> Array.iteri (fun c i -> for j in 0 .. k - 1 do result.[i, j] <- q.[c, j])
        result

    /// Classifies files: each is read (any format AudioFile reads; channels averaged, resampled to the model's rate),
    /// `chunkSize` at a time, and classified window by window (`classifyWindows`; the recording's probabilities are
    /// the windows' mean, as `classify` gives them). Every file is tried: one that cannot be read, or whose
    /// probabilities are not finite (a recording of huge sample values, a model of non-finite weights), is a `Failed`
    /// outcome in its place; outcomes keep the order of `files`.
    let classifyFiles (trained: TrainedModel) (files: string list) : PredictOutcome list =
        let plan = trained.Preparation.Clips
        let labelled (p: float32[]) = [ for j in 0 .. trained.Labels.Length - 1 -> trained.Labels.[j], float p.[j] ]
        let seconds (samples: int) = float samples / float plan.SampleRate
        [ for chunk in List.chunkBySize chunkSize files do
            let loaded =
                chunk
                |> Array.ofList
                |> Hybrid.Features.Threads.map (fun f ->
                    try
                        let samples, warning = ClipPlan.loadWithWarning plan f
                        Ok(samples, warning)
                    with
                    | :? AudioFormatException
                    | :? IOException
                    | :? UnauthorizedAccessException
                    | :? ArgumentOutOfRangeException as e -> Error e)
            let clips = loaded |> Array.choose (function Ok(c, _) -> Some c | Error _ -> None)
            let perWindow = classifyWindows trained clips
            let mutable next = 0
            for f, r in Array.zip (Array.ofList chunk) loaded do
                match r with
                | Error e -> yield Failed(f, e)
                | Ok(samples, warning) ->
                    let windows = perWindow.[next]
                    next <- next + 1
                    let mean = meanOf windows
                    if not (Array.forall Single.IsFinite mean) then
                        yield Failed(f, InvalidDataException "the model's class probabilities for this recording are not finite (samples far outside [-1, 1], or a model with non-finite weights)")
                    else
                        let probs = labelled mean
                        let windowPredictions =
                            ClipPlan.spans plan samples
                            |> Array.mapi (fun w (start, stop) ->
                                let p = labelled (Array.init trained.Labels.Length (fun j -> windows.[w, j]))
                                { Index = w; Start = seconds start; End = seconds stop; Label = fst (List.maxBy snd p); Probabilities = p })
                            |> List.ofArray
                        yield Predicted { Path = f; Label = fst (List.maxBy snd probs); Probabilities = probs; Windows = windowPredictions; Warning = warning } ]

    /// What a model file written by `train` says about preparing its input, read back typed and validated: the schema
    /// named in the file with its recorded run-time parameters (`feature_parameters`) and the preparation. Raises
    /// ModelFileException for a missing or invalid setting (naming the schema assembly to load when the schema is not
    /// known).
    let internal preparationOf (modelPath: string) (settings: ModelSettings) : FeatureSchemaInfo * Preparation =
        let features =
            match settings.Features with
            | null -> raise (ModelFileException(modelPath, sprintf "training setting '%s' is missing" (ModelSettings.key (nameof settings.Features))))
            | v -> v
        if not (fst (Schemas.TryGetByName features)) then
            let hint =
                match settings.SchemaAssembly with
                | null -> ""
                | assembly -> sprintf "; it is declared in %s: pass --schemas PATH/%s (or load it with Schemas.LoadAssembly)" assembly assembly
            raise (ModelFileException(modelPath, sprintf "the model was trained on features '%s', which no loaded assembly defines%s" features hint))
        let schema =
            try Extraction.replay features (match settings.FeatureParameters with null -> "" | p -> p)
            with :? ArgumentException as e ->
                raise (ModelFileException(modelPath, sprintf "training setting '%s' is invalid: %s" (ModelSettings.key (nameof settings.FeatureParameters)) e.Message))
        schema, Preparation.ofSettings modelPath schema settings

    /// Why a model file's schema fingerprint differs from `schema`'s (the schema its settings name, as this library
    /// lays it out), in words for SchemaMismatchException: the schema's name and recorded run-time parameters, and
    /// the parameters whose values differ where the file records them all (`schema_parameters`), else that it cannot
    /// tell (files written before they were recorded), or that the parameters agree and the layout differs.
    let mismatchDetail (settings: ModelSettings) (schema: FeatureSchemaInfo) : string =
        let find (value: string | null) = Option.ofObj value
        let trained =
            match find settings.FeatureParameters with
            | Some v when v <> "" -> sprintf "features '%s' with feature_parameters %s" schema.Name v
            | _ -> sprintf "features '%s' as declared" schema.Name
        match find settings.SchemaParameters with
        | Some recorded ->
            match Preparation.parameterDifferences recorded schema with
            | [] -> sprintf "the model was trained on %s, whose parameters are unchanged but whose members or layout differ in this library" trained
            | differences ->
                let listed = differences |> List.map (fun (n, was, now) -> sprintf "%s %s in the model file, %s here" n was now) |> String.concat "; "
                sprintf "the model was trained on %s, and schema '%s' differs in this library: %s" trained schema.Name listed
        | None -> sprintf "the model was trained on %s, which this library lays out differently (the file records no schema_parameters to name the parameter that changed)" trained

    /// The train-fitted standardisation stored in a model file. Raises ModelFileException when it is missing.
    let internal storedStats (modelPath: string) (schema: FeatureSchemaInfo) (info: ModelInfo) : Normalization.Stats =
        let find name =
            match info.Normalization |> List.tryFind (fun (k, _) -> k = name) with
            | Some (_, v) -> v
            | None -> raise (ModelFileException(modelPath, sprintf "normalisation '%s' is missing" name))
        { Grouping = FeatureStore.grouping schema; Mean = find "mean"; Std = find "std" }

    /// A trained model built in memory (train's test part): the extraction schema follows from the preparation.
    let ofParts (model: Model) (labels: string[]) (schema: FeatureSchemaInfo) (preparation: Preparation) (stats: Normalization.Stats) : TrainedModel =
        { Model = model; Labels = labels; Schema = schema; Extraction = Preparation.extractionSchema schema preparation.Clips
          Preparation = preparation; Stats = stats }

    /// Loads a model file written by `train` onto `engine`, reading and checksumming it once: the preparation settings
    /// are read back typed and the schema's fingerprint today compared with the file's before any weight is
    /// allocated. Raises ModelFileException for a damaged file or bad settings, and SchemaMismatchException when the
    /// schema has another fingerprint in this library than the model was trained on.
    let load (engine: Engine) (modelPath: string) : TrainedModel =
        let mutable prepared = None
        let model, info =
            ModelFile.loadChecked engine (fun info ->
                let settings = ModelSettings.ofStored modelPath info.Settings
                let schema, preparation = preparationOf modelPath settings
                if schema.Fingerprint <> info.SchemaFingerprint then
                    raise (Hybrid.Classifier.SchemaMismatchException(modelPath, schema.Fingerprint, info.SchemaFingerprint, mismatchDetail settings schema))
                prepared <- Some(schema, preparation)
                schema.Fingerprint) modelPath
        let schema, preparation = Option.get prepared
        let extraction = Preparation.extractionSchema schema preparation.Clips
        { Model = model; Labels = Array.ofList info.Labels; Schema = schema; Extraction = extraction; Preparation = preparation
          Stats = storedStats modelPath extraction info }

    /// Loads `modelPath` on the engine `device` names and classifies `files` (classifyFiles); `log` receives the
    /// engine's lines. Raises what `load` and Engines.Create raise.
    let predictFiles (device: string) (log: string -> unit) (modelPath: string) (files: string list) : PredictOutcome list =
        use engine = Engines.Create(device, log)
        classifyFiles (load engine modelPath) files

    /// predictFiles with the model `windowed`: each prediction's Windows are the windows of its own plan, or windows of
    /// its clip length every half clip for a model without windows (whose recording probabilities are then their
    /// mean, not the one centred clip predictFiles classifies). Raises what `load` and Engines.Create raise.
    let predictWindows (device: string) (log: string -> unit) (modelPath: string) (files: string list) : PredictOutcome list =
        use engine = Engines.Create(device, log)
        classifyFiles (windowed (load engine modelPath)) files

    /// predictFiles for callers that want all or nothing: the predictions in the order of `files`, or the first
    /// failed file's exception (AudioFormatException, IOException, InvalidDataException) raised after every file was
    /// tried.
    let predict (device: string) (log: string -> unit) (modelPath: string) (files: string list) : Prediction list =
        let outcomes = predictFiles device log modelPath files
        match outcomes |> List.tryPick (function Failed(_, e) -> Some e | Predicted _ -> None) with
        | Some e ->
            Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw()
            []
        | None -> outcomes |> List.choose (function Predicted p -> Some p | Failed _ -> None)
