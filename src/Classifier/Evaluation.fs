namespace Hybrid.Classifier

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Hybrid.Dsp
open Hybrid.Features

/// What `Evaluation.evaluate` scores and where it writes (the `evaluate` command's options).
type EvaluationOptions =
    { /// Model file written by `train`.
      Model: string
      /// Labelled dataset folder or manifest in any layout Dataset.openFolder detects.
      Data: string
      /// Dataset labels read as model labels (FROM, TO), e.g. ("zero", "0"); other labels are kept as they are.
      LabelMap: (string * string) list
      /// Classes to score, among the mapped names (None: every class of the data).
      Labels: string list option
      /// Which part of the data: None scores every recording; Some (split, part) the named part ("train",
      /// "validation" or "test") of a single-fold split in Split.parse's syntax ("official": the dataset's own lists).
      Part: (string * string) option
      /// Seed of seeded splits and of the validation part carved out of the training part.
      Seed: int
      Device: string
      /// Refuse the dataset at its first unusable or truncated file (else such files are skipped and reported).
      Strict: bool
      /// Folder for evaluation.json, predictions.csv, confusion.csv and (with Plots) confusion.png (None: no files).
      Out: string option
      Plots: bool
      /// Receives progress lines and warnings.
      Log: string -> unit }

/// Accuracy over a group of recordings (a class or a speaker).
type GroupScore =
    { Name: string
      Count: int
      Correct: int
      Accuracy: float }

/// What `Evaluation.evaluate` measured.
type EvaluationResult =
    { ModelFile: string
      /// The dataset's root folder.
      Data: string
      /// "all", or "SPLIT PART" (e.g. "official test").
      Part: string
      /// The model's labels: the rows and columns of Metrics.Confusion.
      Labels: string[]
      /// Recordings scored: readable, of a class the model knows.
      Count: int
      Correct: int
      /// Correct / Count (NaN when nothing was scored).
      Accuracy: float
      /// Over the scored recordings, in the model's label space.
      Metrics: Metrics
      /// Accuracy per class of the data the model knows (mapped names), in the model's label order.
      PerClass: GroupScore list
      /// Accuracy per speaker, where the layout names speakers (ordinal order).
      PerSpeaker: GroupScore list
      /// Classes of the data (after the label map) the model does not know, with their recording counts: listed,
      /// never scored as errors.
      UnknownClasses: (string * int) list
      /// Files the dataset scan set aside, and why.
      Skipped: SkippedFile[]
      /// Files the scan read only in part (truncated), scored with a warning.
      Warnings: SkippedFile[]
      /// Files that could not be classified (unreadable, or non-finite probabilities), and why.
      Failed: (string * string) list
      /// Per scored recording: path, true label, predicted label, its probability.
      Predictions: (string * string * string * float) list
      Seconds: float
      /// The folder the files were written to, when asked.
      OutDir: string option }

/// Keras' `model.evaluate` on new data: a model file scored on any labelled dataset through the one inference path
/// (Inference.classifyFiles), with per-class and per-speaker accuracy, the confusion matrix, the recordings it could
/// not read and the data's classes the model does not know.
[<RequireQualifiedAccess>]
module Evaluation =
    /// The items to score: the dataset (labels mapped, then selected), or one part of a single-fold split of it.
    let internal itemsOf (options: EvaluationOptions) (dataset: Dataset) : Item[] * string =
        match options.Part with
        | None -> dataset.Items, "all"
        | Some (split, part) ->
            let spec = Split.parse split
            match Split.apply options.Seed spec dataset.Items with
            | [| fold |] ->
                let fold = if part = "validation" then Split.withValidation options.Seed 0.1 fold else fold
                (match part with
                 | "train" -> fold.Train
                 | "validation" -> fold.Validation
                 | "test" -> fold.Test
                 | other -> invalidArg "part" (sprintf "--part '%s': expected all, train, validation or test" other)),
                sprintf "%s %s" (Split.format spec) part
            | folds -> invalidArg "split" (sprintf "--split %s makes %d folds; evaluate scores one part of a single split (e.g. official, speaker:NAME, fold:K, random:0.2)" split folds.Length)

    /// Accuracy per group of (group, correct) pairs, groups in ordinal order.
    let private scores (pairs: (string * bool) seq) : GroupScore list =
        pairs
        |> Seq.groupBy fst
        |> Seq.map (fun (key, group) ->
            let count = Seq.length group
            let correct = group |> Seq.filter snd |> Seq.length
            { Name = key; Count = count; Correct = correct; Accuracy = float correct / float count })
        |> Seq.sortWith (fun a b -> String.CompareOrdinal(a.Name, b.Name))
        |> List.ofSeq

    /// The result as the JSON object `evaluate --json` prints and evaluation.json holds (per-file predictions are in
    /// predictions.csv): accuracy (null when nothing was scored), count, correct, log_loss, per_class, per_speaker,
    /// confusion (rows: true label, columns: predicted, in `labels` order), unknown_classes, failed, skipped, warnings.
    let json (r: EvaluationResult) =
        {| model = r.ModelFile; data = r.Data; part = r.Part; labels = r.Labels
           accuracy = (if r.Count = 0 then Nullable() else Nullable r.Accuracy); count = r.Count; correct = r.Correct
           log_loss = (if r.Count = 0 then Nullable() else Nullable r.Metrics.LogLoss)
           per_class = [ for c in r.PerClass -> {| label = c.Name; count = c.Count; correct = c.Correct; accuracy = c.Accuracy |} ]
           per_speaker = [ for s in r.PerSpeaker -> {| speaker = s.Name; count = s.Count; correct = s.Correct; accuracy = s.Accuracy |} ]
           confusion = [ for i in 0 .. r.Labels.Length - 1 -> [ for j in 0 .. r.Labels.Length - 1 -> r.Metrics.Confusion.[i, j] ] ]
           unknown_classes = [ for label, n in r.UnknownClasses -> {| label = label; count = n |} ]
           failed = [ for path, reason in r.Failed -> {| path = path; reason = reason |} ]
           skipped = [ for s in r.Skipped -> {| path = s.Path; reason = s.Reason |} ]
           warnings = [ for s in r.Warnings -> {| path = s.Path; reason = s.Reason |} ]
           seconds = r.Seconds; out = Option.toObj r.OutDir |}

    /// Writes evaluation.json, predictions.csv, confusion.csv and (with plots) confusion.png into `dir`.
    let private write (dir: string) (plots: bool) (r: EvaluationResult) =
        Directory.CreateDirectory dir |> ignore
        Artefacts.writeConfusionCsv (Path.Combine(dir, "confusion.csv")) r.Labels r.Metrics.Confusion
        if plots && r.Count > 0 then
            Plots.confusionMatrix (Path.Combine(dir, "confusion.png")) (sprintf "confusion matrix, %s (%s)" (Path.GetFileName r.Data) r.Part) r.Labels r.Metrics.Confusion |> ignore
        let quote = Export.csvField
        File.WriteAllLines(Path.Combine(dir, "predictions.csv"),
            [| yield "path,label,predicted,probability"
               for path, label, predicted, p in r.Predictions ->
                   sprintf "%s,%s,%s,%s" (quote path) (quote label) (quote predicted) (p.ToString("R", Globalization.CultureInfo.InvariantCulture)) |])
        File.WriteAllText(Path.Combine(dir, "evaluation.json"), JsonSerializer.Serialize(json r, JsonSerializerOptions(WriteIndented = true)))

    /// Scores the model file on the dataset: opens it (files it cannot use are skipped and listed), maps its labels
    /// (LabelMap), keeps the classes asked for (Labels, among the mapped names), takes the part asked for, classifies
    /// every recording of a class the model knows through Inference.classifyFiles, and reports accuracy overall, per
    /// class and per speaker, the confusion matrix in the model's labels, the files that could not be classified and
    /// the data's classes the model does not know (counted, not scored). Writes the files when Out is given. Raises
    /// DatasetException for a folder without usable audio or a bad label map or selection, ArgumentException for a
    /// bad split or part, and what Inference.load raises for an unusable model file.
    let evaluate (options: EvaluationOptions) : EvaluationResult =
        let watch = Stopwatch.StartNew()
        let dataset = Dataset.openFolder options.Strict options.Data
        for s in dataset.Skipped do options.Log (sprintf "skipped %s: %s" s.Path s.Reason)
        for s in dataset.Warnings do options.Log (sprintf "warning %s: %s" s.Path s.Reason)
        if dataset.Items.Length = 0 then
            raise (DatasetException(sprintf "%s holds no usable audio (expected FSDD recordings, class sub-folders, a CSV manifest or Speech Commands)" dataset.Root))
        let dataset = if options.LabelMap.IsEmpty then dataset else Dataset.mapLabels options.LabelMap dataset
        let dataset =
            match options.Labels with
            | Some labels -> Dataset.selectLabels labels None dataset
            | None -> dataset
        let items, part = itemsOf options dataset
        use engine = Engines.Create(options.Device, options.Log)
        let trained = Inference.load engine options.Model
        let index = trained.Labels |> Array.mapi (fun i l -> l, i) |> dict
        let known, unknown = items |> Array.partition (fun i -> index.ContainsKey i.Label)
        let unknownClasses =
            unknown |> Array.countBy (fun i -> i.Label) |> Array.sortWith (fun (a, _) (b, _) -> String.CompareOrdinal(a, b)) |> List.ofArray
        for label, n in unknownClasses do
            options.Log (sprintf "class '%s' (%d recordings) is not one of the model's labels (%s): not scored" label n (String.Join(", ", trained.Labels)))
        let outcomes = Inference.classifyFiles trained [ for i in known -> i.Path ]
        let scored =
            [ for item, outcome in Seq.zip known outcomes do
                match outcome with
                | Predicted p -> yield item, p
                | Failed _ -> () ]
        let failed =
            [ for outcome in outcomes do
                match outcome with
                | Failed (path, e) -> yield path, (match e with :? AudioFormatException as a -> a.Problem | e -> e.Message)
                | Predicted _ -> () ]
        for path, reason in failed do options.Log (sprintf "could not classify %s: %s" path reason)
        let k = trained.Labels.Length
        let probabilities = Array2D.init scored.Length k (fun r j -> float32 (snd (snd scored.[r]).Probabilities.[j]))
        let metrics = Metrics.compute probabilities [| for item, _ in scored -> index.[item.Label] |]
        let correct = scored |> List.filter (fun (item, p) -> p.Label = item.Label) |> List.length
        let perClass =
            let byLabel = scores [ for item, p in scored -> item.Label, p.Label = item.Label ] |> List.map (fun s -> s.Name, s) |> dict
            [ for label in trained.Labels do
                match byLabel.TryGetValue label with
                | true, s -> yield s
                | _ -> () ]
        let result =
            { ModelFile = Path.GetFullPath options.Model; Data = dataset.Root; Part = part; Labels = trained.Labels
              Count = scored.Length; Correct = correct; Accuracy = (if scored.IsEmpty then nan else float correct / float scored.Length)
              Metrics = metrics; PerClass = perClass
              PerSpeaker = scores [ for item, p in scored do match item.Speaker with Some s -> yield s, p.Label = item.Label | None -> () ]
              UnknownClasses = unknownClasses; Skipped = dataset.Skipped; Warnings = dataset.Warnings; Failed = failed
              Predictions = [ for item, p in scored -> item.Path, item.Label, p.Label, snd (p.Probabilities |> List.find (fun (l, _) -> l = p.Label)) ]
              Seconds = 0.0; OutDir = options.Out |> Option.map Path.GetFullPath }
        let result = { result with Seconds = watch.Elapsed.TotalSeconds }
        options.Out |> Option.iter (fun dir -> write dir options.Plots result)
        result
