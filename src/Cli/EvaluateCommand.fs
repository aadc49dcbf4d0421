/// `hybrid evaluate`: a trained model scored on any labelled dataset (Keras' `model.evaluate` on new data).
module Hybrid.Cli.EvaluateCommand

open System
open System.IO
open System.Text.Json
open Argu
open Hybrid.Classifier
open Hybrid.Features

/// The options of `evaluate`.
type EvaluateArgs =
    | [<Mandatory>] Model of file: string
    | [<Mandatory>] Data of dir: string
    | Label_Map of map: string
    | Labels of list: string
    | Split of spec: string
    | Part of name: string
    | Seed of seed: int
    | Device of name: string
    | Threads of count: int
    | Out of dir: string
    | No_Plots
    | Strict
    | Json

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Model _ -> "model file written by train (model.hnn)."
            | Data _ -> "labelled dataset folder or manifest, in any layout `dataset` opens (FSDD, class folders, Speech Commands, a CSV manifest)."
            | Label_Map _ -> "read the data's labels as the model's: FROM=TO,... (e.g. zero=0,one=1,...,nine=9); other labels are kept."
            | Labels _ -> "score only these classes of the data (names after --label-map), comma-separated."
            | Split _ -> "with --part: the split whose part is scored, in train's syntax (default: the dataset's own, e.g. Speech Commands' lists)."
            | Part _ -> "all (default), train, validation or test: the part of the split to score."
            | Seed _ -> "with --part: seed of seeded splits (default 0)."
            | Device _ -> "auto (default), managed, cuda, opencl or ilgpu-cpu."
            | Threads _ -> "threads one parallel step may use, 1..4 x the logical processors (default: all of them): the managed engine, feature extraction and loading, training."
            | Out _ -> "write evaluation.json, predictions.csv, confusion.csv and confusion.png into this folder."
            | No_Plots -> "with --out: no confusion.png."
            | Strict -> "refuse the dataset at its first unusable or truncated file (else such files are skipped and listed)."
            | Json -> "print one JSON object (accuracy, count, per_class, per_speaker, confusion, unknown_classes, failed, skipped)."

/// The option table of `evaluate` (OptionRules): --split and --seed only with a part, --no-plots only with --out.
let private table (args: ParseResults<EvaluateArgs>) (arg: EvaluateArgs) : OptionRules.Check list =
    let part = args.TryGetResult Part |> Option.filter (fun p -> p <> "all")
    match arg with
    | Model _ | Data _ | Strict | Json | Out _ -> []
    | Label_Map text -> [ OptionRules.parsed "FROM=TO,FROM=TO,..." Dataset.parseLabelMap text ]
    | Labels text ->
        [ OptionRules.InDomain(text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries).Length > 0, "a comma-separated list of class names", text) ]
    | Split spec -> [ OptionRules.UsedOnly(part.IsSome, "with --part train, validation or test"); OptionRules.parsed "a split such as official, speaker:NAME, fold:K or random:0.2" Split.parse spec ]
    | Part name -> [ OptionRules.oneOf [ "all"; "train"; "validation"; "test" ] name ]
    | Seed seed -> [ OptionRules.UsedOnly(part.IsSome, "with --part train, validation or test"); OptionRules.atLeast 0 seed ]
    | Device name -> [ OptionRules.engine name ]
    | Threads n -> [ OptionRules.threads n ]
    | No_Plots -> [ OptionRules.UsedOnly(args.Contains Out, "with --out (the plot it leaves out)") ]

/// The text report: overall accuracy, per class, per speaker (the ten weakest when there are many), unknown classes,
/// files that could not be classified.
let private writeText (out: TextWriter) (r: EvaluationResult) =
    out.WriteLine(sprintf "accuracy:      %s (%d/%d recordings of %s, %s)" (if r.Count = 0 then "-" else sprintf "%.4f" r.Accuracy) r.Correct r.Count r.Data r.Part)
    if r.Count > 0 then out.WriteLine(sprintf "log-loss:      %.4f" r.Metrics.LogLoss)
    out.WriteLine "per class:"
    for c in r.PerClass do
        out.WriteLine(sprintf "  %-12s %.4f (%d/%d)" c.Name c.Accuracy c.Correct c.Count)
    if not r.PerSpeaker.IsEmpty then
        let shown = r.PerSpeaker |> List.sortBy (fun s -> s.Accuracy, s.Name) |> List.truncate 10
        out.WriteLine(sprintf "per speaker (%d speakers%s):" r.PerSpeaker.Length (if r.PerSpeaker.Length > 10 then ", the ten weakest" else ""))
        for s in shown do
            out.WriteLine(sprintf "  %-12s %.4f (%d/%d)" s.Name s.Accuracy s.Correct s.Count)
    for label, n in r.UnknownClasses do
        out.WriteLine(sprintf "not scored:    class '%s' (%d recordings) is not one of the model's labels" label n)
    if not r.Failed.IsEmpty then out.WriteLine(sprintf "not classified: %d files (listed on the error output)" r.Failed.Length)
    if r.Skipped.Length > 0 then out.WriteLine(sprintf "skipped:       %d files the dataset scan could not use (listed on the error output)" r.Skipped.Length)
    out.WriteLine(sprintf "time:          %.1f s" r.Seconds)
    r.OutDir |> Option.iter (fun d -> out.WriteLine(sprintf "output:        %s" d))

/// Runs the command. Exit codes: 0 every recording of a known class was classified; 1 the model or the data could
/// not be used, or (after every file was tried) a file could not be classified; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<EvaluateArgs> "evaluate" out error argv (fun args ->
        OptionRules.enforce args (table args)
        use _ = OptionRules.threadScope (args.TryGetResult Threads)
        let part = args.GetResult(Part, defaultValue = "all")
        let options =
            { EvaluationOptions.Model = args.GetResult Model
              Data = args.GetResult Data
              LabelMap = args.TryGetResult Label_Map |> Option.map Dataset.parseLabelMap |> Option.defaultValue []
              Labels = args.TryGetResult Labels |> Option.map (fun l -> l.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> List.ofArray)
              Part = (if part = "all" then None else Some(args.GetResult(Split, defaultValue = "official"), part))
              Seed = args.GetResult(Seed, defaultValue = 0)
              Device = args.GetResult(Device, defaultValue = "auto")
              Strict = args.Contains Strict
              Out = args.TryGetResult Out
              Plots = not (args.Contains No_Plots)
              Log = fun line -> error.WriteLine("evaluate: " + line) }
        let r = Evaluation.evaluate options
        if args.Contains Json then out.WriteLine(JsonSerializer.Serialize(Evaluation.json r))
        else writeText out r
        if r.Failed.IsEmpty then 0 else 1)
