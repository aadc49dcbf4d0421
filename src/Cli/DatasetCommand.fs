/// `hybrid dataset`: summarise a dataset folder and its split (items per split part, label, speaker and fold,
/// durations, sample rates, every skipped file with its reason), as text or one JSON object.
module Hybrid.Cli.DatasetCommand

open System
open System.IO
open System.Text.Encodings.Web
open System.Text.Json
open Argu
open Hybrid.Features

/// The options of `dataset`.
type DatasetArgs =
    | Data of dir: string
    | Split of spec: string
    | Seed of seed: int
    | Strict
    | Json

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Data _ ->
                "dataset folder (FSDD, folder-per-class) or CSV manifest; without it, FSDD from $HYBRID_FSDD or the user cache, downloaded when absent; `fsdd` or `speech-commands` names a set downloaded into the user cache and verified."
            | Split _ ->
                "official | speaker:NAME[,NAME] | loso | fold:K[,K] | folds | random:RATIO | kfold:K (default: official for FSDD and Speech Commands, folds when the source has folds)."
            | Seed _ -> "with --split random:RATIO or kfold:K: seed of the split, >= 0 (default 0)."
            | Strict -> "fail on the first unusable or truncated file instead of listing it as skipped or warned about."
            | Json -> "print one JSON object instead of text."

/// The option table of `dataset` (OptionRules): only --seed depends on another option.
let private table (spec: SplitSpec option) (arg: DatasetArgs) : OptionRules.Check list =
    match arg with
    | Data _ | Strict | Json -> []
    | Split text ->
        [ OptionRules.split "official, speaker:NAME[,NAME], loso, fold:K[,K], folds, random:RATIO with RATIO in (0, 1) or kfold:K with K >= 2" (fun _ -> true) text ]
    | Seed seed ->
        [ OptionRules.UsedOnly((match spec with Some (StratifiedRandom _ | StratifiedKFold _) -> true | _ -> false), "with --split random:RATIO or kfold:K (the splits it draws)")
          OptionRules.atLeast 0 seed ]

/// What the command reports, computed once for both output forms.
type private Summary =
    { Dataset: Dataset
      SplitName: string option
      Parts: (string * int) list
      Folds: SplitFold[] }

let private countBy (key: Item -> string option) (items: Item[]) =
    items
    |> Array.choose key
    |> Array.countBy id
    |> Array.sortWith (fun (a, _) (b, _) -> String.CompareOrdinal(a, b))

let private defaultSplit (dataset: Dataset) =
    let items = dataset.Items
    if items.Length = 0 then None
    elif dataset.Source = Fsdd || items |> Array.forall (fun i -> i.Subset.IsSome) then Some Official
    elif items |> Array.exists (fun i -> i.Fold.IsSome) then Some PredefinedFolds
    else None

let private summarise (dataset: Dataset) (spec: SplitSpec option) (seed: int) =
    match spec |> Option.orElse (defaultSplit dataset) |> Option.filter (fun _ -> dataset.Items.Length > 0) with
    | None -> { Dataset = dataset; SplitName = None; Parts = []; Folds = [||] }
    | Some spec ->
        let folds = Split.apply seed spec dataset.Items
        let parts =
            match folds with
            | [| single |] ->
                [ "train", single.Train.Length
                  if single.Validation.Length > 0 then "validation", single.Validation.Length
                  "test", single.Test.Length ]
            | many -> [ for f in many -> f.Name, f.Test.Length ]
        { Dataset = dataset; SplitName = Some(Split.format spec); Parts = parts; Folds = folds }

/// The labels that have items: a layout may list more (FSDD's ten digits in a folder holding some of them).
let private labelCount (d: Dataset) = d.Labels.Length - (Dataset.emptyLabels d).Length

let private durations (items: Item[]) =
    let d = items |> Array.map (fun i -> i.Duration) |> Array.sort
    if d.Length = 0 then None
    else
        let median = if d.Length % 2 = 1 then d.[d.Length / 2] else (d.[d.Length / 2 - 1] + d.[d.Length / 2]) / 2.0
        Some(Array.sum d, d.[0], Array.average d, median, d.[d.Length - 1])

let private sourceName =
    function
    | Fsdd -> "fsdd"
    | FolderPerClass -> "folder-per-class"
    | Manifest _ -> "manifest"
    | Merged names -> "merged (" + String.concat ", " names + ")"

let private writeJson (out: TextWriter) (s: Summary) =
    let items = s.Dataset.Items
    use stream = new MemoryStream()
    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping))
        let counts (name: string) (pairs: (string * int) seq) =
            w.WriteStartObject name
            for (k, v) in pairs do
                w.WriteNumber(k, v)
            w.WriteEndObject()
        w.WriteStartObject()
        w.WriteString("root", s.Dataset.Root)
        w.WriteString("source", sourceName s.Dataset.Source)
        w.WriteNumber("items", items.Length)
        w.WriteStartArray "skipped"
        for k in s.Dataset.Skipped do
            w.WriteStartObject()
            w.WriteString("path", k.Path)
            w.WriteString("reason", k.Reason)
            w.WriteEndObject()
        w.WriteEndArray()
        w.WriteStartArray "warnings"
        for k in s.Dataset.Warnings do
            w.WriteStartObject()
            w.WriteString("path", k.Path)
            w.WriteString("warning", k.Reason)
            w.WriteEndObject()
        w.WriteEndArray()
        match s.SplitName with
        | Some name -> w.WriteString("split", name)
        | None -> w.WriteNull "split"
        counts "splits" s.Parts
        counts "labels" (countBy (fun i -> Some i.Label) items)
        counts "speakers" (countBy (fun i -> i.Speaker) items)
        counts "folds" (countBy (fun i -> i.Fold |> Option.map string) items)
        counts "sample_rates" (countBy (fun i -> Some(string i.SampleRate)) items)
        counts "channels" (countBy (fun i -> Some(string i.Channels)) items)
        w.WriteStartObject "duration_seconds"
        match durations items with
        | Some (total, low, mean, median, high) ->
            w.WriteNumber("total", total)
            w.WriteNumber("min", low)
            w.WriteNumber("mean", mean)
            w.WriteNumber("median", median)
            w.WriteNumber("max", high)
        | None -> ()
        w.WriteEndObject()
        w.WriteNumber("noise_files", s.Dataset.NoiseFiles.Length)
        w.WriteEndObject()
    out.WriteLine(Text.Encoding.UTF8.GetString(stream.ToArray()))

let private writeText (out: TextWriter) (s: Summary) =
    let d = s.Dataset
    let table (title: string) (pairs: (string * int) seq) =
        let pairs = Array.ofSeq pairs
        if pairs.Length > 0 then
            out.WriteLine(sprintf "%s:" title)
            for (k, v) in pairs do
                out.WriteLine(sprintf "  %-24s %6d" k v)
    out.WriteLine(sprintf "dataset %s (%s): %d items, %d skipped, %d labels" d.Root (sourceName d.Source) d.Items.Length d.Skipped.Length (labelCount d))
    match Dataset.emptyLabels d with
    | [] -> ()
    | empty -> out.WriteLine(sprintf "labels without recordings (not counted; train drops them): %s" (String.concat ", " empty))
    match s.SplitName with
    | Some name -> table (sprintf "split %s" name) s.Parts
    | None -> out.WriteLine "split: none (pass --split)"
    table "labels" (countBy (fun i -> Some i.Label) d.Items)
    table "speakers" (countBy (fun i -> i.Speaker) d.Items)
    table "folds" (countBy (fun i -> i.Fold |> Option.map (sprintf "fold %d")) d.Items)
    table "sample rates (Hz)" (countBy (fun i -> Some(string i.SampleRate)) d.Items)
    table "channels" (countBy (fun i -> Some(string i.Channels)) d.Items)
    match durations d.Items with
    | Some (total, low, mean, median, high) ->
        out.WriteLine(sprintf "duration (s): total %.1f, min %.3f, mean %.3f, median %.3f, max %.3f" total low mean median high)
    | None -> ()
    if d.NoiseFiles.Length > 0 then out.WriteLine(sprintf "background-noise files: %d" d.NoiseFiles.Length)
    if d.Skipped.Length > 0 then
        out.WriteLine(sprintf "skipped files (%d):" d.Skipped.Length)
        for k in d.Skipped do
            out.WriteLine(sprintf "  %s: %s" k.Path k.Reason)
    if d.Warnings.Length > 0 then
        out.WriteLine(sprintf "used with warnings (%d):" d.Warnings.Length)
        for k in d.Warnings do
            out.WriteLine(sprintf "  %s: %s" k.Path k.Reason)

/// The summary drawn on a terminal: a grid of the dataset's facts, a table per count (split parts, labels, speakers,
/// folds, sample rates, channels) and tables of skipped and warned-about files.
let private drawText (console: Spectre.Console.IAnsiConsole) (s: Summary) =
    let d = s.Dataset
    let counts (title: string) (name: string) (pairs: (string * int) seq) =
        let pairs = Array.ofSeq pairs
        if pairs.Length > 0 then
            console.Write(Terminal.table (Some title) [ name; "items" ] [ for (k, v) in pairs -> [ k; string v ] ])
    console.Write(
        Terminal.grid
            [ "dataset", sprintf "%s (%s)" d.Root (sourceName d.Source)
              "items", sprintf "%d, %d skipped, %d labels" d.Items.Length d.Skipped.Length (labelCount d)
              match Dataset.emptyLabels d with
              | [] -> ()
              | empty -> "labels without recordings", String.concat ", " empty
              "split", (s.SplitName |> Option.defaultValue "none (pass --split)")
              match durations d.Items with
              | Some (total, low, mean, median, high) -> "duration (s)", sprintf "total %.1f, min %.3f, mean %.3f, median %.3f, max %.3f" total low mean median high
              | None -> ()
              if d.NoiseFiles.Length > 0 then "background-noise files", string d.NoiseFiles.Length ])
    s.SplitName |> Option.iter (fun name -> counts (sprintf "split %s" name) "part" s.Parts)
    counts "labels" "label" (countBy (fun i -> Some i.Label) d.Items)
    counts "speakers" "speaker" (countBy (fun i -> i.Speaker) d.Items)
    counts "folds" "fold" (countBy (fun i -> i.Fold |> Option.map (sprintf "fold %d")) d.Items)
    counts "sample rates" "Hz" (countBy (fun i -> Some(string i.SampleRate)) d.Items)
    counts "channels" "channels" (countBy (fun i -> Some(string i.Channels)) d.Items)
    let files (title: string) (entries: SkippedFile[]) =
        if entries.Length > 0 then
            console.Write(Terminal.textTable (Some(sprintf "%s (%d)" title entries.Length)) [ "file"; "reason" ] [ for k in entries -> [ k.Path; k.Reason ] ])
    files "skipped files" d.Skipped
    files "used with warnings" d.Warnings

/// Runs `dataset` with its arguments (without the target name), writing the summary to `out` and errors to
/// `error`. Exit codes: 0 done; 1 when --strict met an unusable file or the folder holds no usable audio;
/// 2 for bad options or a split that does not fit the dataset.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    let parser = ArgumentParser.Create<DatasetArgs>(programName = "hybrid dataset")
    try
        let args = parser.ParseCommandLine(argv, raiseOnUsage = true)
        let strict = args.Contains Strict
        let parsed = args.TryGetResult Split |> Option.bind (fun text -> try Some(Split.parse text) with :? DatasetException -> None)
        OptionRules.enforce args (table parsed)
        let spec = args.TryGetResult Split |> Option.map Split.parse
        let seed = args.GetResult(Seed, defaultValue = 0)
        let folder = Download.resolveData (args.TryGetResult Data)
        let dataset =
            try
                Ok(Dataset.openFolder strict folder)
            with :? DatasetException as e when strict -> Error e.Message
        match dataset with
        | Error message ->
            error.WriteLine(sprintf "dataset: %s" message)
            1
        | Ok dataset ->
            let summary = summarise dataset spec seed
            match args.Contains Json, Terminal.consoleOf out with
            | true, _ -> writeJson out summary
            | false, Some console -> drawText console summary
            | false, None -> writeText out summary
            if dataset.Items.Length = 0 then
                error.WriteLine(sprintf "dataset: %s holds no usable audio" dataset.Root)
                1
            else 0
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText ->
        out.WriteLine(parser.PrintUsage())
        0
    | :? ArguParseException as e ->
        for line in Command.parseErrorLines "dataset" (Command.optionNames parser) e.Message do error.WriteLine line
        2
    | :? DatasetException as e ->
        error.WriteLine(sprintf "dataset: %s" e.Message)
        2
    | :? ArgumentException as e ->
        error.WriteLine(sprintf "dataset: %s" e.Message)
        2
