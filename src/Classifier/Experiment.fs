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

/// kymatio's spoken-digit classifier: batch normalisation of the log-scattering means, then one softmax layer.
let private scattering (input: int list) classes = Net.sequential input [ Layers.flatten; Layers.batchNorm; Layers.dense classes ]

/// The models `--model` chooses from; the first is the default.
let recipes =
    [ { Name = "cnn2d"; Description = "2-D CNN on a 40 x 65 log-mel image (the spoken-digit write-up)"
        Schema = "logmel-fsdd"; PerUtterance = true; Build = cnn2d
        Epochs = 12; BatchSize = 64; LearningRate = 3e-3; Augment = "speed:0.85-1.15,shift:0.08,gain:6,snr:10-40"; Copies = 1
        TestSpeeds = parseSpeeds "0.7-1.3:0.05:tri" }
      { Name = "mlp"; Description = "Dense network on 40 MFCC means (the UrbanSound8K write-up)"
        Schema = "mfcc-mean40"; PerUtterance = false; Build = mlp
        Epochs = 60; BatchSize = 32; LearningRate = 1e-3; Augment = ""; Copies = 0; TestSpeeds = [] }
      { Name = "cnn1d"; Description = "1-D convolutions on the raw 8,192-sample waveform with noise augmentation (the Speech Commands write-up)"
        Schema = "raw8192"; PerUtterance = false; Build = cnn1d
        Epochs = 20; BatchSize = 64; LearningRate = 2e-3; Augment = "noise:0.005,shift:0.08"; Copies = 1; TestSpeeds = [] }
      { Name = "logreg"; Description = "linear softmax on MFCC and spectral statistics (the genre write-up's table)"
        Schema = "genre"; PerUtterance = false; Build = logreg
        Epochs = 100; BatchSize = 64; LearningRate = 1e-2; Augment = ""; Copies = 0; TestSpeeds = [] }
      { Name = "scattering"; Description = "batch normalisation and a softmax layer on log-scattering means, J 8, Q 12 (kymatio's spoken-digit example)"
        Schema = "scattering-fsdd"; PerUtterance = false; Build = scattering
        Epochs = 50; BatchSize = 32; LearningRate = 1e-3; Augment = ""; Copies = 0; TestSpeeds = [] } ]

/// Looks a recipe up by name.
let recipe (name: string) =
    match recipes |> List.tryFind (fun r -> r.Name = name.ToLowerInvariant()) with
    | Some r -> r
    | None -> invalidArg "model" (sprintf "unknown model '%s'; expected one of %s" name (recipes |> List.map (fun r -> r.Name) |> String.concat ", "))

/// Options of a training run (the CLI's `train` flags).
type TrainOptions =
    { Data: string option
      Split: string
      Model: string
      Features: string option
      Epochs: int option
      BatchSize: int option
      LearningRate: float option
      Augment: string option
      /// Test-time speeds and weights (None: the model's; Some []: none).
      TestSpeeds: (float * float) list option
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

      /// Feature parameters chosen at run time (--sr, a clip length from --duration, --n-fft, --hop-length, --n-mels,
      /// --fmin, --fmax, --n-mfcc): they derive a variant of the schema (Extraction.variant), recorded in the model file
      /// and replayed by `predict`. Extraction.noOverrides keeps the schema as declared (whole clips for schemas that
      /// accept any length).
      FeatureParameters: Extraction.Overrides }

/// Defaults: FSDD, official split, the default model on `auto`, seed 0.
let defaults =
    { Data = None; Split = "official"; Model = (List.head recipes).Name; Features = None; Epochs = None; BatchSize = None
      LearningRate = None; Augment = None; TestSpeeds = None; Device = "auto"; Seed = 0; Out = None; Log = ignore; Progress = true; Plots = true
      Strict = false; FeatureParameters = Extraction.noOverrides }

/// One trained and evaluated fold.
type FoldResult =
    { Name: string
      NTrain: int
      NTest: int
      TestAccuracy: float
      TrainAccuracy: float
      Metrics: Metrics
      History: EpochReport list
      TrainSeconds: float
      ModelFile: string }

/// What a run did.
type RunResult =
    { Split: string
      Model: string
      Features: string
      Device: string
      DeviceName: string
      Folds: FoldResult list
      /// Mean test accuracy over folds (the test accuracy for a single split).
      TestAccuracy: float
      /// Test-time speeds and weights the accuracies were averaged over (empty: none).
      TestSpeeds: (float * float) list
      ExtractSeconds: float
      TrainSeconds: float
      TotalSeconds: float
      OutDir: string
      Skipped: SkippedFile[] }

/// Settings recorded in model files and reports.
let private settingsOf (options: TrainOptions) (recipe: Recipe) (schema: FeatureSchemaInfo) epochs batch lr augment testSpeeds =
    [ "model", recipe.Name; "features", schema.Name; "feature_parameters", schema.Variant; "split", options.Split; "epochs", string epochs; "batch_size", string batch
      "learning_rate", string lr; "augment", augment; "copies", string recipe.Copies; "per_utterance", string recipe.PerUtterance
      "seed", string options.Seed; "device", options.Device; "test_speeds", formatSpeeds testSpeeds ]

/// Feature rows [clips, Length] of raw clips at the schema's rate: extracted through the one extraction path
/// (Extraction.rows: shaped by Extraction.fit, then the schema's executor; the rows `features` exports), then
/// per-utterance normalised when asked (images only). Training, evaluation and `predict` all go through here.
let private perUtteranceStep (schema: FeatureSchemaInfo) (perUtterance: bool) (values: float32[]) =
    if perUtterance && schema.Shape.Count = 2 then
        Normalization.perUtteranceInPlace schema.Shape.[0] schema.Shape.[1] false 1e-3f values
    values

let private extractShaped (engine: Engine) (schema: FeatureSchemaInfo) (perUtterance: bool) (clips: float32[][]) =
    perUtteranceStep schema perUtterance (Extraction.rows engine schema clips)

/// The features of one split part: the clips (their rows read from and written to the feature cache when one is
/// given: Extraction.cachedRows, keyed by the schema fingerprint and each file's path, size and modification time)
/// and optional augmented copies (always extracted: they change with the seed), as `extractShaped` computes them.
/// Returns [rows, Length] values (originals, then copy 1, 2, ...), their labels and the number of rows read from the
/// cache: what `train` feeds the network before the train-fitted standardisation.
let internal featuresOf (engine: Engine) (schema: FeatureSchemaInfo) (cache: Pipeline.FeatureCache option) (recipe: Recipe)
                        (clips: Map<string, float32[]>) (augmentations: Augmentation list) (copies: int) (seed: int) (items: Item[]) =
    let originals, hits =
        match cache with
        | Some c ->
            let keyOf = items |> Array.map (fun i -> i.Path, i.Key) |> dict
            Extraction.cachedRows engine schema c (items |> Array.map (fun i -> i.Path)) (fun path -> clips.[keyOf.[path]]) Progress.silent
        | None -> Extraction.rows engine schema [| for item in items -> clips.[item.Key] |], 0
    let augmented =
        Extraction.rows engine schema [|
            for copy in 1 .. copies do
                for item in items do
                    yield Augment.apply (seed * 7919 + copy) item.Key [||] schema.SampleRate augmentations clips.[item.Key] |]
    let labels = Array.concat [ for _ in 0 .. copies -> items |> Array.map (fun i -> i.LabelIndex) ]
    perUtteranceStep schema recipe.PerUtterance (Array.append originals augmented), labels, hits

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

/// Writes metrics.json-style data for one fold.
let private foldJson (f: FoldResult) (labels: string[]) =
    {| name = f.Name; n_train = f.NTrain; n_test = f.NTest; test_accuracy = f.TestAccuracy; train_accuracy = f.TrainAccuracy
       log_loss = f.Metrics.LogLoss; train_seconds = f.TrainSeconds; model_file = nonNull (Path.GetFileName f.ModelFile)
       per_class = [ for k in 0 .. labels.Length - 1 -> {| label = labels.[k]; precision = f.Metrics.Precision.[k]; recall = f.Metrics.Recall.[k]; f1 = f.Metrics.F1.[k] |} ]
       confusion = [ for r in 0 .. labels.Length - 1 -> [ for c in 0 .. labels.Length - 1 -> f.Metrics.Confusion.[r, c] ] ]
       history = [ for e in f.History -> {| epoch = e.Epoch; train_loss = e.TrainLoss; train_accuracy = e.TrainAccuracy
                                            test_loss = Option.toNullable e.ValidationLoss; test_accuracy = Option.toNullable e.ValidationAccuracy
                                            learning_rate = e.LearningRate; seconds = e.Seconds |} ] |}

let private writeConfusionCsv (path: string) (labels: string[]) (m: int[,]) =
    let lines = [|
        yield "true\\predicted," + String.Join(",", labels)
        for r in 0 .. labels.Length - 1 do
            yield labels.[r] + "," + String.Join(",", [| for c in 0 .. labels.Length - 1 -> string m.[r, c] |]) |]
    File.WriteAllLines(path, lines)

/// Trains and evaluates the chosen model on every fold of the split, writes the model file(s), metrics.json,
/// confusion matrices (CSV and PNG), training curves, example plots and report.html into the output folder.
let train (options: TrainOptions) : RunResult =
    let total = Stopwatch.StartNew()
    let log = options.Log
    let recipe = recipe options.Model
    let schema = Extraction.variant (Schemas.ByName(defaultArg options.Features recipe.Schema)) options.FeatureParameters
    let epochs = defaultArg options.Epochs recipe.Epochs
    let batch = defaultArg options.BatchSize recipe.BatchSize
    let lr = defaultArg options.LearningRate recipe.LearningRate
    let augmentText = defaultArg options.Augment recipe.Augment
    let augmentations = if String.IsNullOrWhiteSpace augmentText then [] else Augment.parse augmentText
    let copies = if augmentations.IsEmpty then 0 else max 1 recipe.Copies
    let testSpeeds = defaultArg options.TestSpeeds recipe.TestSpeeds
    checkSpeeds (formatSpeeds testSpeeds) testSpeeds |> ignore
    if epochs < 1 then invalidArg "epochs" (sprintf "epochs must be at least 1, was %d" epochs)
    if batch < 1 then invalidArg "batch-size" (sprintf "batch size must be at least 1, was %d" batch)
    let spec = Split.parse options.Split
    let folder = Download.ensureFsdd options.Data
    let dataset = Dataset.openFolder options.Strict folder
    for s in dataset.Skipped do log (sprintf "skipped %s: %s" s.Path s.Reason)
    for s in dataset.Warnings do log (sprintf "warning %s: %s" s.Path s.Reason)
    if dataset.Items.Length = 0 then raise (DatasetException(sprintf "%s holds no usable audio" dataset.Root))
    let folds = Split.apply options.Seed spec dataset.Items
    let outDir =
        match options.Out with
        | Some d -> d
        | None -> Path.Combine("runs", sprintf "%s-%s-%s" (DateTime.Now.ToString "yyyyMMdd-HHmmss") recipe.Name (options.Split.Replace(':', '-').Replace(',', '-')))
    Directory.CreateDirectory outDir |> ignore
    use engine = Engines.Create(options.Device, log)
    log (sprintf "device: %s (%s)" engine.Name engine.DeviceName)
    if schema.IsVariant then log (sprintf "features: %s" (schema.ToString()))
    // Feature rows of the recordings are cached beside the run folders (runs/cache by default), so a second run over
    // the same recordings with the same schema reads them instead of extracting.
    let cache = Pipeline.FeatureCache(Path.Combine(nonNull (Path.GetDirectoryName(Path.GetFullPath outDir)), "cache"))
    let loadWatch = Stopwatch.StartNew()
    let clips =
        dataset.Items
        |> Array.Parallel.map (fun item -> item.Key, Dataset.loadMono schema.SampleRate item)
        |> Map.ofArray
    let labels = dataset.Labels
    let settings = settingsOf options recipe schema epochs batch lr (Augment.format augmentations) testSpeeds
    let mutable extractSeconds = loadWatch.Elapsed.TotalSeconds
    let results =
        [ for fold in folds do
            let w = Stopwatch.StartNew()
            let xTrain, yTrain, trainHits = featuresOf engine schema (Some cache) recipe clips augmentations copies options.Seed fold.Train
            let xTest, yTest, testHits = featuresOf engine schema (Some cache) recipe clips [] 0 options.Seed fold.Test
            let stats = Normalization.fit (grouping schema) schema.Length xTrain
            Normalization.applyInPlace stats schema.Length xTrain
            Normalization.applyInPlace stats schema.Length xTest
            extractSeconds <- extractSeconds + w.Elapsed.TotalSeconds
            log (sprintf "fold %s: %d training rows (%d clips, %d augmented copies), %d test clips, features %.2f s (%d of %d rows from the cache %s)"
                     fold.Name yTrain.Length fold.Train.Length copies fold.Test.Length w.Elapsed.TotalSeconds
                     (trainHits + testHits) (fold.Train.Length + fold.Test.Length) cache.Folder)
            let net = recipe.Build (inputShape (Array.ofSeq schema.Shape) recipe) labels.Length
            let model = Model.create engine options.Seed net
            let batches = (yTrain.Length + batch - 1) / batch
            let bar = if options.Progress then Progress.create (sprintf "train %s" fold.Name) (epochs * batches) else Progress.silent
            let callback =
                function
                | BatchEnd (e, b, n, _) -> bar.Report((e - 1) * n + b)
                | EpochEnd r ->
                    log (sprintf "fold %s epoch %d/%d: loss %.4f, train accuracy %.4f, test accuracy %s (%.1f s)" fold.Name r.Epoch epochs r.TrainLoss r.TrainAccuracy
                             (r.ValidationAccuracy |> Option.map (sprintf "%.4f") |> Option.defaultValue "-") r.Seconds)
            let fitOptions =
                { FitOptions.defaults with
                    Epochs = epochs; BatchSize = batch; Optimizer = Optimizer.adam lr; Schedule = OneCycle(0.25, 10.0, 100.0)
                    Seed = options.Seed; LabelSmoothing = 0.05; Callback = callback }
            let trainWatch = Stopwatch.StartNew()
            let fit = Training.fit fitOptions model { Inputs = xTrain; Labels = yTrain } (Some { Inputs = xTest; Labels = yTest })
            bar.Finish()
            let trainSeconds = trainWatch.Elapsed.TotalSeconds
            let metrics =
                match testSpeeds with
                | [] -> Model.evaluate model { Inputs = xTest; Labels = yTest }
                | _ ->
                    let raw = fold.Test |> Array.map (fun item -> clips.[item.Key])
                    Metrics.compute (predictAveraged model (prepare engine schema recipe.PerUtterance stats) testSpeeds raw) yTest
            let file = Path.Combine(outDir, if folds.Length = 1 then "model.hnn" else sprintf "model-%s.hnn" (fold.Name.Replace('/', '-')))
            ModelFile.save file
                { SchemaFingerprint = schema.Fingerprint
                  Labels = List.ofArray labels
                  Normalization = [ "mean", stats.Mean; "std", stats.Std ]
                  TrainingSettings = settings @ [ "fold", fold.Name; "grouping", (match stats.Grouping with Normalization.PerColumn -> "column" | _ -> "band") ]
                  LibraryVersion = "" }
                model
            log (sprintf "fold %s: test accuracy %.4f (%d/%d)%s, training %.1f s" fold.Name metrics.Accuracy
                     (int (Math.Round(metrics.Accuracy * float metrics.Count))) metrics.Count
                     (if testSpeeds.IsEmpty then "" else sprintf " averaged over %d speeds" testSpeeds.Length) trainSeconds)
            { Name = fold.Name; NTrain = fold.Train.Length; NTest = fold.Test.Length; TestAccuracy = metrics.Accuracy
              TrainAccuracy = (match fit.History with [] -> nan | h -> (List.last h).TrainAccuracy)
              Metrics = metrics; History = fit.History; TrainSeconds = trainSeconds; ModelFile = file } ]
    let trainSeconds = results |> List.sumBy (fun r -> r.TrainSeconds)
    let mean = results |> List.averageBy (fun r -> r.TestAccuracy)
    // Artefacts: metrics, confusion matrices, curves, example plots and the report.
    let plotsDir = Path.Combine(outDir, "plots")
    let images = Collections.Generic.List<string * string>()
    for r in results do
        let tag = if results.Length = 1 then "" else "-" + r.Name.Replace('/', '-')
        writeConfusionCsv (Path.Combine(outDir, sprintf "confusion%s.csv" tag)) labels r.Metrics.Confusion
        if options.Plots then
            let cm = Plots.confusionMatrix (Path.Combine(plotsDir, sprintf "confusion%s.png" tag)) (sprintf "confusion matrix, test %s" r.Name) labels r.Metrics.Confusion
            let loss =
                Plots.curves (Path.Combine(plotsDir, sprintf "loss%s.png" tag)) (sprintf "loss per epoch (%s)" r.Name) "epoch" "cross-entropy"
                    [ "train", [| for e in r.History -> e.TrainLoss |]; "test", [| for e in r.History -> defaultArg e.ValidationLoss nan |] ]
            let acc =
                Plots.curves (Path.Combine(plotsDir, sprintf "accuracy%s.png" tag)) (sprintf "accuracy per epoch (%s)" r.Name) "epoch" "accuracy"
                    [ "train", [| for e in r.History -> e.TrainAccuracy |]; "test", [| for e in r.History -> defaultArg e.ValidationAccuracy nan |] ]
            for p, caption in [ cm, "confusion matrix " + r.Name; loss, "loss " + r.Name; acc, "accuracy " + r.Name ] do
                images.Add(Path.GetRelativePath(outDir, p), caption)
    let examples = Collections.Generic.List<string * string>()
    if options.Plots then
        for label in labels do
            match dataset.Items |> Array.tryFind (fun i -> i.Label = label) with
            | Some item ->
                for p, caption in AudioPlots.plotClip engine plotsDir (sprintf "example-%s" label) (nonNull (Path.GetFileName item.Path)) schema.SampleRate clips.[item.Key] do
                    examples.Add(Path.GetRelativePath(outDir, p), sprintf "%s (label %s): %s" (nonNull (Path.GetFileName item.Path)) label caption)
            | None -> ()
    let result =
        { Split = options.Split; Model = recipe.Name; Features = schema.Name; Device = engine.Name; DeviceName = engine.DeviceName
          Folds = results; TestAccuracy = mean; TestSpeeds = testSpeeds; ExtractSeconds = extractSeconds; TrainSeconds = trainSeconds
          TotalSeconds = total.Elapsed.TotalSeconds; OutDir = Path.GetFullPath outDir; Skipped = dataset.Skipped }
    let metricsJson =
        {| split = result.Split; model = result.Model; features = result.Features; device = result.Device; device_name = result.DeviceName
           test_accuracy = result.TestAccuracy; extract_seconds = result.ExtractSeconds; train_seconds = result.TrainSeconds
           total_seconds = total.Elapsed.TotalSeconds; labels = labels; settings = dict settings
           skipped = [ for s in dataset.Skipped -> {| path = s.Path; reason = s.Reason |} ]
           folds = [ for f in results -> foldJson f labels ] |}
    File.WriteAllText(Path.Combine(outDir, "metrics.json"), JsonSerializer.Serialize(metricsJson, JsonSerializerOptions(WriteIndented = true)))
    if options.Plots then
        let summaryRows =
            [ "model", sprintf "%s: %s" recipe.Name recipe.Description
              "features", schema.ToString()
              "split", options.Split
              "device", sprintf "%s (%s)" engine.Name engine.DeviceName
              "test accuracy (mean over folds)", sprintf "%.4f" mean
              "feature extraction", sprintf "%.1f s" extractSeconds
              "training", sprintf "%.1f s" trainSeconds
              "skipped files", string dataset.Skipped.Length ]
        let foldRows =
            [ for f in results -> [ f.Name; string f.NTrain; string f.NTest; sprintf "%.4f" f.TrainAccuracy; sprintf "%.4f" f.TestAccuracy; sprintf "%.1f" f.TrainSeconds ] ]
        let perClass =
            match results with
            | [ single ] -> [ Report.Grid("Per-class test metrics", [ "label"; "precision"; "recall"; "F1" ],
                                          [ for k in 0 .. labels.Length - 1 -> [ labels.[k]; sprintf "%.3f" single.Metrics.Precision.[k]; sprintf "%.3f" single.Metrics.Recall.[k]; sprintf "%.3f" single.Metrics.F1.[k] ] ]) ]
            | _ -> []
        Report.write outDir (sprintf "Hybrid training run: %s on %s" recipe.Name options.Split)
            ([ Report.Table("Summary", summaryRows)
               Report.Grid("Folds", [ "fold"; "train clips"; "test clips"; "train accuracy"; "test accuracy"; "training s" ], foldRows) ]
             @ perClass
             @ [ Report.Table("Settings", settings)
                 Report.Images("Results", List.ofSeq images)
                 Report.Images("Example recordings (one per class)", List.ofSeq examples) ])
        |> ignore
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

/// What a model file written by `train` says about preparing its input: the schema (whose fingerprint today must
/// equal the file's), per-utterance normalisation, test-time speeds, and the stored info (labels, normalisation).
type internal TrainedInput =
    { /// The schema (with its recorded run-time parameters) whose fingerprint the file carries.
      Schema: FeatureSchemaInfo
      /// The schema clips are extracted with: Schema, or for files written before feature parameters were recorded
      /// Extraction.legacy of it (any-length schemas on 8,192 centred samples).
      Extraction: FeatureSchemaInfo
      PerUtterance: bool
      TestSpeeds: (float * float) list
      Info: ModelInfo }

/// Reads a model file's preparation settings (validated, without weights on an engine). Raises ModelFileException for
/// a damaged file or a missing/invalid setting, SchemaMismatchException when the schema named in the file has another
/// fingerprint today.
let internal trainedInput (modelPath: string) : TrainedInput =
    let _, info = ModelFile.inspect modelPath
    let setting key =
        match info.TrainingSettings |> List.tryFind (fun (k, _) -> k = key) with
        | Some (_, v) -> v
        | None -> raise (ModelFileException(modelPath, sprintf "training setting '%s' is missing" key))
    let declared =
        match Schemas.TryGetByName(setting "features") with
        | true, s -> nonNull s
        | _ -> raise (ModelFileException(modelPath, sprintf "the model was trained on features '%s', which this library does not define" (setting "features")))
    // The schema whose fingerprint the file must carry, and the one its clips are extracted with: the same, except
    // for files written before feature parameters were recorded, whose any-length schemas ran on 8,192 samples.
    let schema, extraction =
        match info.TrainingSettings |> List.tryFind (fun (k, _) -> k = "feature_parameters") with
        | Some (_, v) ->
            let s =
                try Extraction.replay declared.Name v
                with :? ArgumentException as e -> raise (ModelFileException(modelPath, sprintf "training setting 'feature_parameters' is invalid: %s" e.Message))
            s, s
        | None -> declared, Extraction.legacy declared
    if schema.Fingerprint <> info.SchemaFingerprint then raise (Hybrid.Classifier.SchemaMismatchException(modelPath, schema.Fingerprint, info.SchemaFingerprint))
    // Files written before test-time speed averaging existed have no such setting: they predict from the clip alone.
    let testSpeeds =
        match info.TrainingSettings |> List.tryFind (fun (k, _) -> k = "test_speeds") with
        | Some (_, v) ->
            try parseSpeeds v
            with :? ArgumentException as e -> raise (ModelFileException(modelPath, sprintf "training setting 'test_speeds' is invalid: %s" e.Message))
        | None -> []
    { Schema = schema; Extraction = extraction; PerUtterance = (setting "per_utterance" = "True"); TestSpeeds = testSpeeds; Info = info }

/// The train-fitted standardisation stored in a model file.
let internal storedStats (modelPath: string) (schema: FeatureSchemaInfo) (info: ModelInfo) : Normalization.Stats =
    let find name =
        match info.Normalization |> List.tryFind (fun (k, _) -> k = name) with
        | Some (_, v) -> v
        | None -> raise (ModelFileException(modelPath, sprintf "normalisation '%s' is missing" name))
    { Grouping = grouping schema; Mean = find "mean"; Std = find "std" }

/// Loads a model file written by `train` and classifies recordings with exactly the training preprocessing
/// (the schema named in the file with its recorded run-time parameters, the same extraction path, per-utterance and
/// stored normalisation; files written before feature parameters were recorded replay Extraction.legacy). Every file is
/// tried: one that cannot be read is an `Unreadable` outcome in its place, the others are predicted; outcomes
/// keep the order of `files`. Raises SchemaMismatchException when the schema's fingerprint today differs from
/// the one the model was trained on, and ModelFileException for a damaged file.
let predictEach (device: string) (log: string -> unit) (modelPath: string) (files: string list) : PredictOutcome list =
    let trained = trainedInput modelPath
    let schema, perUtterance, testSpeeds = trained.Schema, trained.PerUtterance, trained.TestSpeeds
    use engine = Engines.Create(device, log)
    let model, info = ModelFile.load engine schema.Fingerprint modelPath
    let stats = storedStats modelPath schema info
    let extraction = trained.Extraction
    let loaded =
        files
        |> List.map (fun f ->
            try
                let wav, audio = AudioFile.readMonoWithInfo false f
                let samples = audio.Samples.[0]
                Ok((if audio.SampleRate = extraction.SampleRate then samples else Resample.resample audio.SampleRate extraction.SampleRate samples), wav.Warning)
            with
            | :? AudioFormatException
            | :? IOException
            | :? UnauthorizedAccessException as e -> Error(f, e))
    let clips = loaded |> List.choose (function Ok(c, _) -> Some c | Error _ -> None) |> Array.ofList
    let probabilities = if clips.Length = 0 then Array2D.zeroCreate 0 0 else predictAveraged model (prepare engine extraction perUtterance stats) testSpeeds clips
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
