/// The experiment façade: dataset -> split -> augmentation -> features -> network -> training -> evaluation ->
/// model file, metrics and report. This is the one place that composes audio and the network core; build.fsx's
/// `train` target and the F# scripts call `Experiment.train`, a short list of named steps (prepareData, resolve,
/// outputFolder, FeatureStore.create, then per fold FeatureStore.foldFeatures, Fit.foldOn and evaluate, with --refit refit, then Artefacts.write) that
/// scripts and tests can also call one by one.
module Hybrid.Classifier.Experiment

open System
open System.Diagnostics
open System.IO
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// Defaults: FSDD, the dataset's own split, the default model on `auto`, 10% validation, seed 0.
let defaults =
    { Data = []; LabelMap = []; Split = None; Model = (List.head Recipes.all).Name; Features = None; Epochs = None; BatchSize = None
      LearningRate = None; Augment = None; AugmentPool = None; TestSpeeds = None; Labels = None; OtherLabel = None; Validation = 0.1
      EarlyStopping = None; ClassWeight = Unweighted; Refit = false; SampleRate = None; Duration = None; Segment = None; SegmentHop = None; PerUtterance = None; Trim = None; Loudness = None; Noise = None; Resume = None
      Device = "auto"; Seed = 0; Out = None; Log = ignore; Progress = true; Plots = true; Strict = false
      FeatureParameters = Extraction.noOverrides; Distributed = None }


/// One source of a run's data: opened (files it cannot use are reported to the log and skipped) and its labels read
/// through the label map entries it has. Raises DatasetException for a folder without usable audio.
let private openSource (options: TrainOptions) (data: string option) : string * string[] * Dataset =
    let folder = Download.resolveData data
    let dataset = Dataset.openFolder options.Strict folder
    for s in dataset.Skipped do options.Log (sprintf "skipped %s: %s" s.Path s.Reason)
    for s in dataset.Warnings do options.Log (sprintf "warning %s: %s" s.Path s.Reason)
    if dataset.Items.Length = 0 then
        raise (DatasetException(sprintf "%s holds no usable audio (expected FSDD recordings, class sub-folders, a CSV manifest or Speech Commands)" dataset.Root))
    let known = Set.ofArray dataset.Labels
    let map = options.LabelMap |> List.filter (fun (from, _) -> known.Contains from)
    Path.GetFullPath folder, dataset.Labels, (if map.IsEmpty then dataset else Dataset.mapLabels map dataset)

/// Step 1, prepare data: opens the dataset (`Data`, any layout Dataset.openFolder detects; FSDD is fetched only when
/// no folder is given; several folders are merged with Dataset.merge, each split on its own by the same split), maps
/// its labels (`LabelMap`), keeps or folds the chosen labels, splits it (`Split`, else the dataset's own) and gives
/// every fold a validation part (the dataset's own, else `Validation` of the training part, Split.withValidation).
/// Labels that no recording carries are dropped (and logged) unless `Labels` or `OtherLabel` names them.
/// Raises DatasetException for a folder without usable audio, a label map entry no source has, a split the data
/// cannot make, sources whose own splits differ without --split, a split of several folds over several sources, or
/// unknown labels; ArgumentException when `Labels` names a class without recordings or `OtherLabel` would have none.
let prepareData (options: TrainOptions) : PreparedData =
    let opened = (match options.Data with [] -> [ None ] | folders -> List.map Some folders) |> List.map (openSource options)
    let original = opened |> List.collect (fun (_, labels, _) -> List.ofArray labels) |> set
    match options.LabelMap |> List.map fst |> List.filter (original.Contains >> not) with
    | [] -> ()
    | missing ->
        raise (DatasetException(sprintf "--label-map names label%s %s that no dataset has (their labels are %s)" (if missing.Length > 1 then "s" else "")
                                    (String.concat ", " missing) (original |> String.concat ", ")))
    let dataset =
        match opened with
        | [ (_, _, d) ] -> d
        | several -> Dataset.merge [ for folder, _, d in several -> nonNull (Path.GetFileName(Path.TrimEndingDirectorySeparator folder)), d ]
    // A class without recordings cannot be learnt: one asked for by name (--labels, --other-label) is refused (an
    // ArgumentException, the CLI's exit code 2), one the data merely lists (e.g. FSDD's digits absent from a subset) is
    // dropped with a log line.
    let dataset =
        match options.Labels with
        | Some labels ->
            let selected = Dataset.selectLabels labels options.OtherLabel dataset
            match Dataset.emptyLabels selected |> List.partition (fun l -> Some l = options.OtherLabel) with
            | [], [] -> selected
            | _, (_ :: _ as empty) ->
                raise (ArgumentException(sprintf "--labels names %s with no recordings in %s: %s (the classes with recordings are %s)" (if empty.Length > 1 then "classes" else "a class")
                                             dataset.Root (String.concat ", " empty) (String.concat ", " (Dataset.withoutEmptyLabels dataset).Labels)))
            | other :: _, [] ->
                raise (ArgumentException(sprintf "--other-label %s would be a class with no recordings: every recording in %s is one of --labels %s (leave --other-label out)"
                                             other dataset.Root (String.concat "," labels)))
        | None when options.OtherLabel.IsSome -> invalidArg "other-label" "--other-label needs --labels"
        | None ->
            match Dataset.emptyLabels dataset with
            | [] -> dataset
            | empty ->
                options.Log (sprintf "data: dropping %d label%s with no recordings: %s" empty.Length (if empty.Length > 1 then "s" else "") (String.concat ", " empty))
                Dataset.withoutEmptyLabels dataset
    let sources =
        match dataset.Source with
        | Merged names -> [ for name, (_, _, d) in List.zip names opened -> name, d.Source, dataset.Items |> Array.filter (fun i -> i.Key.StartsWith(name + "/", StringComparison.Ordinal)) ]
        | source -> [ "", source, dataset.Items ]
    let spec =
        match options.Split with
        | Some text -> Split.parse text
        | None ->
            match sources |> List.map (fun (_, source, items) -> Split.defaultFor source items) |> List.distinct with
            | [ spec ] -> spec
            | specs ->
                raise (DatasetException(sprintf "the datasets have different own splits (%s): give one with --split that every dataset can make (e.g. random:0.2)"
                                            (List.zip sources specs |> List.map (fun ((name, _, _), s) -> sprintf "%s: %s" name (Split.format s)) |> String.concat ", ")))
    let folds =
        match sources with
        | [ (_, _, items) ] -> Split.apply options.Seed spec items |> Array.map (Split.withValidation options.Seed options.Validation)
        | several ->
            let perSource =
                [ for name, _, items in several ->
                    match Split.apply options.Seed spec items with
                    | [| fold |] -> Split.withValidation options.Seed options.Validation fold
                    | folds -> raise (DatasetException(sprintf "--split %s makes %d folds of %s; several datasets are trained on together with a single split (official, speaker:NAME, fold:K, random:RATIO)" (Split.format spec) folds.Length name)) ]
            [| { Name = perSource.Head.Name; Train = perSource |> Array.ofList |> Array.collect (fun f -> f.Train)
                 Validation = perSource |> Array.ofList |> Array.collect (fun f -> f.Validation); Test = perSource |> Array.ofList |> Array.collect (fun f -> f.Test) } |]
    for f in folds do
        if f.Train.Length = 0 then raise (DatasetException(sprintf "%s: fold %s has no training recordings" dataset.Root f.Name))
        if f.Test.Length = 0 then raise (DatasetException(sprintf "%s: fold %s has no test recordings" dataset.Root f.Name))
    let noise =
        match options.Noise with
        | None -> [||]
        | Some dir ->
            let n = Dataset.openNoiseFolder dir
            if n.Length = 0 then raise (DatasetException(sprintf "%s: --noise holds no audio file" (Path.GetFullPath dir)))
            n
    { PreparedData.Dataset = dataset; Folders = opened |> List.map (fun (folder, _, _) -> folder); Split = spec; Folds = folds
      NoiseFiles = Array.append dataset.NoiseFiles noise }

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
/// left out, whole-clip images for environmental clips (wholeClip), the clip plan (ClipPlan.resolve; the model's
/// silence trimming for utterances, one clip per recording of at most 2 s (the median), unless --trim says otherwise) and, when the data has background-noise recordings, `snr:`
/// augmentation mixing those recordings instead of white noise. Raises ArgumentException for a bad value.
let rec resolve (options: TrainOptions) (data: PreparedData) : RunSettings = resolveWith (Recipes.byName options.Model) options data

/// resolve with the recipe given (tests try recipes that are not registered).
and internal resolveWith (recipe: Recipe) (options: TrainOptions) (data: PreparedData) : RunSettings =
    let schema = wholeClip options data.Dataset.Items (Recipes.schemaOf recipe options.Features options.FeatureParameters)
    let epochs = defaultArg options.Epochs recipe.Epochs
    let batch = defaultArg options.BatchSize recipe.BatchSize
    let lr = defaultArg options.LearningRate recipe.LearningRate
    let augmentText = defaultArg options.Augment recipe.Augment
    let augmentations =
        let parsed = if String.IsNullOrWhiteSpace augmentText then [] else Augment.parse augmentText
        if data.NoiseFiles.Length = 0 then parsed
        else parsed |> List.map (function NoiseSnr (lo, hi) -> Background(lo, hi) | a -> a)
    let testSpeeds = defaultArg options.TestSpeeds recipe.TestSpeeds
    TestSpeeds.check (TestSpeeds.format testSpeeds) testSpeeds |> ignore
    if epochs < 1 then invalidArg "epochs" (sprintf "epochs must be at least 1, was %d" epochs)
    if batch < 1 then invalidArg "batch-size" (sprintf "batch size must be at least 1, was %d" batch)
    if not (lr > 0.0 && Double.IsFinite lr) then invalidArg "lr" (sprintf "--lr must be a positive, finite learning rate, was %g" lr)
    // A batch larger than a fold's training rows (windows of every recording and augmented copies, known once the
    // rows are gathered) is clamped to them by trainFold, with a log line.
    // A model that cannot take the schema's shape is refused before any feature is computed.
    (try recipe.Build (Recipes.inputShape (Array.ofSeq schema.Shape) recipe) (max 2 data.Dataset.Labels.Length) |> ignore
     with :? ArgumentException as e ->
        invalidArg "features" (sprintf "model '%s' cannot take features '%s' of shape [%s]: %s" recipe.Name schema.Name (String.Join(", ", schema.Shape)) e.Message))
    if not (options.Validation > 0.0 && options.Validation < 1.0) then
        invalidArg "validation" (sprintf "--validation must lie strictly between 0 and 1, was %g" options.Validation)
    match options.EarlyStopping with
    | Some p when p < 1 -> invalidArg "early-stopping" (sprintf "--early-stopping needs a patience of at least 1 epoch, was %d" p)
    | _ -> ()
    if augmentations |> List.exists Augment.isImage then
        if schema.Shape.Count <> 2 then
            invalidArg "augment" (sprintf "freq-mask, time-mask and vtlp act on [bands, frames] features; '%s' has shape [%s]" schema.Name (String.Join(", ", schema.Shape)))
        if options.Distributed.IsSome then
            invalidArg "augment" "freq-mask, time-mask and vtlp are not available with --cluster (the workers read the training rows once)"
    if augmentations |> List.exists (function Vtlp _ -> true | _ -> false) && (FeatureStore.melCentres schema).Length = 0 then
        invalidArg "augment" (sprintf "vtlp warps mel bands; schema '%s' has no mel-band image" schema.Name)
    let copies = if (Augment.waveform augmentations).IsEmpty then 0 else max 1 recipe.Copies
    let pool =
        match options.AugmentPool with
        | Some k when k < 1 -> invalidArg "augment-pool" (sprintf "--augment-pool must be at least 1, was %d" k)
        | Some k when k > 1 && copies = 0 ->
            invalidArg "augment-pool" (sprintf "--augment-pool %d draws augmented rows from versions of each clip, and this run has no waveform augmentation (noise, snr, pink, brown, background, shift, gain, speed or reverb in --augment): leave --augment-pool out or add some" k)
        | _ when copies = 0 -> 0
        | given ->
            let pool = max copies (defaultArg given recipe.AugmentPool)
            // With --cluster the workers train on one fixed set of rows: the first copies, and said so.
            if pool > copies && options.Distributed.IsSome then
                options.Log (sprintf "an augment pool of %d versions per clip is drawn from per epoch only in this process; with --cluster the workers train on each clip's first %s only" pool (if copies = 1 then "augmented version" else sprintf "%d augmented versions" copies))
                copies
            else pool
    let plan = ClipPlan.resolve schema options.SampleRate options.Duration options.Segment options.SegmentHop None data.Dataset.Items
    // The recipe's trimming is for utterances: one clip per recording of at most 2 s (the median). Environmental clips
    // (a whole-clip image or statistics) and windows of long recordings keep their recordings whole unless --trim asks.
    let utterances =
        plan.Segment.IsNone && snd (ClipPlan.durationsOf data.Dataset.Items) <= 2.0
        && schema.Fingerprint = (Recipes.schemaOf recipe options.Features options.FeatureParameters).Fingerprint
    let plan = { plan with Trim = (match options.Trim with Some t -> t | None when utterances -> recipe.Trim |> Option.map (Trim.atRate plan.SampleRate) | None -> None); Loudness = options.Loudness }
    { RunSettings.Data = data.Folders; LabelMap = options.LabelMap; Recipe = recipe; Schema = schema
      Split = data.Split
      Epochs = epochs; BatchSize = batch; LearningRate = lr; Augmentations = augmentations
      Copies = copies; AugmentPool = pool
      Validation = options.Validation; EarlyStopping = options.EarlyStopping; ClassWeight = options.ClassWeight; Refit = options.Refit
      Preparation = { Preparation.Features = schema.Name; FeatureParameters = schema.Variant; PerUtterance = defaultArg options.PerUtterance recipe.PerUtterance; TestSpeeds = testSpeeds; Clips = plan }
      Seed = options.Seed }

/// Evaluates a fold's model on its test recordings (step 4 of `train`): each recording classified once through the
/// one inference path (Inference.classifyItems: the preparation `predict` replays, windows averaged per recording,
/// test-time speeds) with the fold's normalisation statistics. Returns the metrics and the probabilities
/// [recordings, classes].
let evaluate (model: Model) (labels: string[]) (settings: RunSettings) (stats: Normalization.Stats) (test: Item[]) : Metrics * float32[,] =
    let trained = Inference.ofParts model labels settings.Schema settings.Preparation stats
    let probabilities = Inference.classifyItems trained test
    Metrics.compute probabilities (test |> Array.map (fun i -> i.LabelIndex)), probabilities

/// Test accuracy per source of a merged dataset: (name, recordings, accuracy) in the sources' order; empty otherwise.
let internal perSource (dataset: Dataset) (test: Item[]) (probabilities: float32[,]) : (string * int * float) list =
    match dataset.Source with
    | Merged names ->
        [ for name in names do
            let rows = test |> Array.indexed |> Array.filter (fun (_, item) -> Dataset.sourceOf dataset item = Some name)
            if rows.Length > 0 then
                let correct = rows |> Array.filter (fun (r, item) -> Metrics.argmaxRow probabilities r = item.LabelIndex) |> Array.length
                yield name, rows.Length, float correct / float rows.Length ]
    | _ -> []


/// Where a run writes (step 0 of `train`): `Out`, else runs/DATE-MODEL-SPLIT (with -2, -3 ... appended when a run
/// started in the same second holds that name), created; a fresh run into a used folder clears that folder's
/// checkpoints and model files (only `--resume` continues a run; the CLI refuses a used `--out` without `--force`);
/// run.json records the options.
let outputFolder (options: TrainOptions) (data: PreparedData) (settings: RunSettings) : string =
    let splitName = Split.format settings.Split
    let outDir =
        match options.Out with
        | Some d -> d
        | None ->
            let name = Path.Combine("runs", sprintf "%s-%s-%s" (DateTime.Now.ToString "yyyyMMdd-HHmmss") settings.Recipe.Name (splitName.Replace(':', '-').Replace(',', '-')))
            Seq.initInfinite (fun i -> if i = 0 then name else sprintf "%s-%d" name (i + 1))
            |> Seq.find (fun d -> (RunFile.runContents d).IsEmpty)
    Directory.CreateDirectory outDir |> ignore
    let checkpointRoot = Path.Combine(outDir, "checkpoints")
    if options.Resume.IsNone then
        if Directory.Exists checkpointRoot then Directory.Delete(checkpointRoot, true)
        // An overwritten run leaves no model file of its own behind (e.g. model-FOLD.hnn of an earlier split).
        for name in RunFile.runContents outDir do
            if name.EndsWith(".hnn", StringComparison.Ordinal) then File.Delete(Path.Combine(outDir, name))
    RunFile.write outDir data.Folders options settings.AugmentPool settings.Preparation.Clips.Trim
    Path.GetFullPath outDir

/// What every fold of a run shares.
type internal RunContext =
    { Options: TrainOptions
      Settings: RunSettings
      Data: PreparedData
      Engine: Engine
      Store: FeatureStore
      OutDir: string }

/// One line describing a fold's rows, for the log.
let private foldLine (ctx: RunContext) (fold: SplitFold) (features: FoldFeatures) (seconds: float) =
    let s = ctx.Settings
    let copies =
        let rows = match s.Copies with 0 -> "no augmented copy" | 1 -> "1 augmented copy" | n -> sprintf "%d augmented copies" n
        if s.AugmentPool > s.Copies then sprintf "%s drawn each epoch from %d versions" rows s.AugmentPool else rows
    sprintf "fold %s: %d training rows (%d recordings, %s), %d validation rows (%d recordings), %d test recordings, rows gathered in %.2f s (%d of %d recordings' rows from the cache %s)"
        fold.Name features.Train.Count fold.Train.Length copies
        (features.Validation |> Option.map (fun v -> v.Count) |> Option.defaultValue 0) fold.Validation.Length fold.Test.Length seconds
        features.CachedRecordings (fold.Train.Length + fold.Validation.Length) ctx.Store.Cache

/// Training's progress as a bar (on a terminal) and one log line per epoch.
let private progressOf (ctx: RunContext) (fold: SplitFold) (rows: int) =
    let s = ctx.Settings
    let batches = (rows + s.BatchSize - 1) / s.BatchSize
    let bar = if ctx.Options.Progress then Progress.create (sprintf "train %s" fold.Name) (s.Epochs * batches) else Progress.silent
    bar,
    function
    | BatchEnd (e, b, n, _) -> bar.Report((e - 1) * n + b)
    | EpochEnd r ->
        ctx.Options.Log (sprintf "fold %s epoch %d/%d: loss %.4f, train accuracy %.4f, validation loss %s, validation accuracy %s (%.1f s)" fold.Name r.Epoch s.Epochs r.TrainLoss r.TrainAccuracy
                             (r.ValidationLoss |> Option.map (sprintf "%.4f") |> Option.defaultValue "-")
                             (r.ValidationAccuracy |> Option.map (sprintf "%.4f") |> Option.defaultValue "-") r.Seconds)

/// Saves a model file `name` in the run folder: the network, the labels, the train-fitted standardisation and every
/// setting of `settings`, with the fold it was trained on.
let private saveModelAs (ctx: RunContext) (name: string) (settings: RunSettings) (foldName: string) (stats: Normalization.Stats) (model: Model) =
    let file = Path.Combine(ctx.OutDir, name)
    ModelFile.save file
        { SchemaFingerprint = settings.Schema.Fingerprint
          Labels = List.ofArray ctx.Data.Dataset.Labels
          Normalization = [ "mean", stats.Mean; "std", stats.Std ]
          Settings =
            ModelSettings.toStored
                { Artefacts.settingsOf settings ctx.Options.Device with
                    Fold = foldName; Grouping = (match stats.Grouping with Normalization.PerColumn -> "column" | _ -> "band") }
          LibraryVersion = "" }
        model
    file

/// Saves a fold's model file: model.hnn for a single split, else model-FOLD.hnn.
let private saveModel (ctx: RunContext) (fold: SplitFold) (stats: Normalization.Stats) (model: Model) =
    let name = if ctx.Data.Folds.Length = 1 && not ctx.Settings.Refit then "model.hnn" else sprintf "model-%s.hnn" (fold.Name.Replace('/', '-'))
    saveModelAs ctx name ctx.Settings fold.Name stats model

/// The batch size a fold trains with when `batchSize` exceeds its `rows` training rows (Some rows, at least 1), else
/// None (the batch size stands).
let batchFor (batchSize: int) (rows: int) : int option =
    if batchSize > rows then Some(max 1 rows) else None

/// One fold of `train`: its feature rows (FeatureStore.foldFeatures), the fitted network (Fit.foldOn, resuming from
/// the fold's checkpoints), the test part's metrics (evaluate) and its model file. Returns the fold's result and the
/// seconds spent gathering rows.
let internal trainFold (ctx: RunContext) (fold: SplitFold) : FoldResult * float =
    let s, log = ctx.Settings, ctx.Options.Log
    let name = fold.Name.Replace('/', '-')
    let gather = Stopwatch.StartNew()
    let work = Path.Combine(ctx.OutDir, "rows", name)
    let features = FeatureStore.foldFeatures ctx.Engine s ctx.Store work fold
    let gatherSeconds = gather.Elapsed.TotalSeconds
    log (foldLine ctx fold features gatherSeconds)
    // A batch cannot hold more rows than the fold has: one batch of all of them per step instead (the model file
    // still records the batch size asked for).
    let s =
        match batchFor s.BatchSize features.Train.Count with
        | Some rows ->
            log (sprintf "fold %s: the batch size %d is larger than its %d training rows; training on batches of %d rows" fold.Name s.BatchSize features.Train.Count rows)
            { s with BatchSize = rows }
        | None -> s
    let bar, callback = progressOf ctx fold features.Train.Count
    let watch = Stopwatch.StartNew()
    let model, fit =
        try Fit.foldOn ctx.Options.Distributed ctx.Engine s ctx.Data.Dataset.Labels.Length features (Some(Path.Combine(ctx.OutDir, "checkpoints", name))) callback
        finally
            for source in features.Train :: Option.toList features.Validation do source.Dispose()
            if Directory.Exists work then Directory.Delete(work, true)
    bar.Finish()
    if fit.ResumedAfterEpochs > 0 then log (sprintf "fold %s: resumed after epoch %d" fold.Name fit.ResumedAfterEpochs)
    if fit.StoppedEarly then log (sprintf "fold %s: stopped early after epoch %d, keeping epoch %d's weights" fold.Name fit.History.Length (defaultArg fit.BestEpoch 0))
    let trainSeconds = watch.Elapsed.TotalSeconds
    let metrics, probabilities = evaluate model ctx.Data.Dataset.Labels s features.Stats fold.Test
    let sources = perSource ctx.Data.Dataset fold.Test probabilities
    for name, n, accuracy in sources do log (sprintf "fold %s: test accuracy on %s %.4f (%d recordings)" fold.Name name accuracy n)
    let file = saveModel ctx fold features.Stats model
    log (sprintf "fold %s: test accuracy %.4f (%d/%d recordings)%s, training %.1f s" fold.Name metrics.Accuracy
             (int (Math.Round(metrics.Accuracy * float metrics.Count))) metrics.Count
             (if s.Preparation.TestSpeeds.IsEmpty then "" else sprintf " averaged over %d speeds" s.Preparation.TestSpeeds.Length) trainSeconds)
    let kept =
        match fit.BestEpoch with
        | Some e when s.EarlyStopping.IsSome -> fit.History |> List.tryFind (fun r -> r.Epoch = e)
        | _ -> List.tryLast fit.History
    { FoldResult.Name = fold.Name; NTrain = fold.Train.Length; NValidation = fold.Validation.Length; NTest = fold.Test.Length
      TestAccuracy = metrics.Accuracy
      TrainAccuracy = (match fit.History with [] -> nan | h -> (List.last h).TrainAccuracy)
      ValidationAccuracy = kept |> Option.bind (fun r -> r.ValidationAccuracy)
      Metrics = metrics; History = fit.History; BestEpoch = (if s.EarlyStopping.IsSome then fit.BestEpoch else None)
      StoppedEarly = fit.StoppedEarly; ResumedAfterEpochs = fit.ResumedAfterEpochs
      TrainSeconds = trainSeconds; PerSource = sources
      TestProbabilities = probabilities; TestLabels = fold.Test |> Array.map (fun i -> i.LabelIndex); ModelFile = file },
    gatherSeconds

/// The refit after cross-validation (`Refit`): a network trained on every recording of the dataset, with no
/// validation part and no early stopping, for CrossValidation.refitEpochs epochs (the run's, or the rounded mean of the
/// folds' best epochs when early stopping chose them), with the run's seed and every other setting; checkpoints in
/// checkpoints/all (so `--resume` continues it), the model in `model.hnn`. Returns what it did.
let internal refit (ctx: RunContext) (folds: FoldResult list) : RefitResult =
    let log = ctx.Options.Log
    let chosen = folds |> List.choose (fun f -> f.BestEpoch)
    let epochs = CrossValidation.refitEpochs ctx.Settings.Epochs chosen
    let s = { ctx.Settings with Epochs = epochs; EarlyStopping = None }
    let all = { SplitFold.Name = "all"; Train = ctx.Data.Dataset.Items; Validation = [||]; Test = [||] }
    log (if chosen.IsEmpty then sprintf "refit: training on all %d recordings for %d epochs" all.Train.Length epochs
         else sprintf "refit: training on all %d recordings for %d epochs (the rounded mean of the folds' best epochs %s)" all.Train.Length epochs
                  (chosen |> List.map string |> String.concat ", "))
    let work = Path.Combine(ctx.OutDir, "rows", "all")
    let features = FeatureStore.foldFeatures ctx.Engine s ctx.Store work all
    let s = match batchFor s.BatchSize features.Train.Count with Some rows -> { s with BatchSize = rows } | None -> s
    let bar, callback = progressOf { ctx with Settings = s } all features.Train.Count
    let watch = Stopwatch.StartNew()
    let model, fit =
        try Fit.foldOn ctx.Options.Distributed ctx.Engine s ctx.Data.Dataset.Labels.Length features (Some(Path.Combine(ctx.OutDir, "checkpoints", "all"))) callback
        finally
            features.Train.Dispose()
            if Directory.Exists work then Directory.Delete(work, true)
    bar.Finish()
    if fit.ResumedAfterEpochs > 0 then log (sprintf "refit: resumed after epoch %d" fit.ResumedAfterEpochs)
    let file = saveModelAs ctx "model.hnn" { s with BatchSize = ctx.Settings.BatchSize } "all" features.Stats model
    let trainAccuracy = match fit.History with [] -> nan | h -> (List.last h).TrainAccuracy
    log (sprintf "refit: train accuracy %.4f, training %.1f s, model %s" trainAccuracy watch.Elapsed.TotalSeconds file)
    { RefitResult.NTrain = all.Train.Length; Epochs = epochs; TrainAccuracy = trainAccuracy; TrainSeconds = watch.Elapsed.TotalSeconds
      ResumedAfterEpochs = fit.ResumedAfterEpochs; ModelFile = file }

/// The run's result from its folds: the mean and sample standard deviation of the folds' test accuracies, and for
/// cross-validation the pooled out-of-fold metrics (CrossValidation.pooled).
let private summarise (ctx: RunContext) (folds: FoldResult list) (extractSeconds: float) (totalSeconds: float) : RunResult =
    let accuracies = folds |> List.map (fun r -> r.TestAccuracy)
    let mean = List.average accuracies
    let std =
        if accuracies.Length < 2 then 0.0
        else sqrt ((accuracies |> List.sumBy (fun a -> (a - mean) ** 2.0)) / float (accuracies.Length - 1))
    let s = ctx.Settings
    { RunResult.Split = Split.format s.Split; Model = s.Recipe.Name; Features = s.Schema.Name; Device = ctx.Engine.Name; DeviceName = ctx.Engine.DeviceName
      Labels = ctx.Data.Dataset.Labels; Clips = ClipPlan.describe s.Preparation.Clips; Folds = folds; TestAccuracy = mean; TestAccuracyStd = std
      Pooled = (if CrossValidation.isCrossValidation s.Split then Some(CrossValidation.pooled folds) else None); Refit = None
      TestSpeeds = s.Preparation.TestSpeeds; ClassWeight = s.ClassWeight; ExtractSeconds = extractSeconds; TrainSeconds = folds |> List.sumBy (fun r -> r.TrainSeconds)
      TotalSeconds = totalSeconds; OutDir = ctx.OutDir; Skipped = ctx.Data.Dataset.Skipped }

/// Trains and evaluates the chosen model on every fold of the split and writes the model file(s) and artefacts, in
/// named steps: prepareData, resolve, outputFolder, FeatureStore.create (feature shards of every recording), then
/// trainFold per fold (FeatureStore.foldFeatures, Fit.foldOn, evaluate, the model file), with `Refit` the refit on all
/// recordings (model.hnn), then Artefacts.write (the pooled out-of-fold report of a cross-validation included). Every
/// run writes run.json and per-fold checkpoints into its folder; with `Resume` the run in that folder continues from
/// its checkpoints with its own settings and ends as an uninterrupted run would. Raises ArgumentException for `Refit`
/// with a split that is not cross-validation, and whatever the steps raise.
let train (options: TrainOptions) : RunResult =
    let total = Stopwatch.StartNew()
    let options =
        match options.Resume with
        | Some dir -> { RunFile.read dir options with Resume = Some dir }
        | None -> options
    let log = options.Log
    // Bad option values are reported before the data is opened.
    Recipes.byName options.Model |> ignore
    options.Split |> Option.iter (Split.parse >> ignore)
    let data = prepareData options
    let settings = resolve options data
    if options.Refit && not (CrossValidation.isCrossValidation settings.Split) then
        invalidArg "refit" (sprintf "--refit needs a cross-validation split (folds, loso or kfold:K), and this run's split is %s: a single split already writes model.hnn" (Split.format settings.Split))
    let outDir = outputFolder options data settings
    use engine = Engines.Create(options.Device, log)
    log (sprintf "device: %s (%s)" engine.Name engine.DeviceName)
    log (sprintf "data: %s (%d recordings, %d labels), split %s, clips: %s" data.Dataset.Root data.Dataset.Items.Length data.Dataset.Labels.Length
             (Split.format settings.Split) (ClipPlan.describe settings.Preparation.Clips))
    if settings.Schema.IsVariant then log (sprintf "features: %s" (settings.Schema.ToString()))
    if settings.Augmentations |> List.exists (function Background _ -> true | _ -> false) then
        log (sprintf "augmentation mixes %d background-noise recordings" data.NoiseFiles.Length)
    let storeWatch = Stopwatch.StartNew()
    // Feature rows are computed once into shards beside the run folders (runs/cache by default), keyed by the schema
    // fingerprint, the clip plan and each file's relative path, size and modification time, so a second run over the
    // same files reads them; recordings are loaded a bounded group at a time, never all at once.
    let cache = Path.Combine(nonNull (Path.GetDirectoryName outDir), "cache")
    let store = FeatureStore.create engine settings cache data.Dataset.Items data.NoiseFiles log
    let storeSeconds = storeWatch.Elapsed.TotalSeconds
    let ctx = { Options = options; Settings = settings; Data = data; Engine = engine; Store = store; OutDir = outDir }
    let folds = [ for fold in data.Folds -> trainFold ctx fold ]
    let refitted = if settings.Refit then Some(refit ctx (List.map fst folds)) else None
    let rowsDir = Path.Combine(outDir, "rows")
    if Directory.Exists rowsDir then Directory.Delete(rowsDir, true)
    let result = summarise ctx (List.map fst folds) (storeSeconds + List.sumBy snd folds) total.Elapsed.TotalSeconds
    let result =
        match refitted with
        | Some r -> { result with Refit = Some r; TrainSeconds = result.TrainSeconds + r.TrainSeconds }
        | None -> result
    Artefacts.write options engine settings data result
    { result with TotalSeconds = total.Elapsed.TotalSeconds }
