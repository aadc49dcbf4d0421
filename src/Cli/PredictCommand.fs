/// `hybrid predict`: the label and class probabilities of each recording (or of each window of it, `--windows`) under a
/// model file written by `train`.
module Hybrid.Cli.PredictCommand

open System
open System.IO
open System.Text.Json
open Argu
open Hybrid.Classifier
open Hybrid.Features
open Hybrid.Features.Schemas

/// The options of `predict`.
type PredictArgs =
    | [<Mandatory>] Model of file: string
    | Device of name: string
    | Windows
    | Threads of count: int
    | Json
    | Csv
    | [<MainCommand; Last>] Files of path: string list

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Model _ -> "model file written by train (model.hnn)."
            | Device _ -> "auto (default), managed, cuda, opencl or ilgpu-cpu."
            | Windows -> "one result per window of each recording (index, start and end in seconds): the model's own windows, or windows of its clip length every half clip."
            | Threads _ -> "threads one parallel step may use, 1..4 x the logical processors (default: all of them): the managed engine, feature extraction and loading, training."
            | Json -> "print one JSON object per file (path, label, probabilities), or per window with --windows, instead of text."
            | Csv -> "print CSV instead of text: a header, then one row per file (per window with --windows) with every class's probability."
            | Files _ -> "audio files to classify (WAV, AIFF, .au, FLAC, MP3, Ogg), or folders: every audio file under one (sub-folders included), in path order."

/// The option table of `predict` (OptionRules): --device must name an engine; --json and --csv exclude each other.
let private table (args: ParseResults<PredictArgs>) (arg: PredictArgs) : OptionRules.Check list =
    match arg with
    | Model _ | Windows | Json | Files _ -> []
    | Csv -> [ OptionRules.UsedOnly(not (args.Contains Json), "without --json (one output format at a time)") ]
    | Device name -> [ OptionRules.engine name ]
    | Threads n -> [ OptionRules.threads n ]

/// Why a file could not be read, without the path the line already names.
let private reasonOf (e: exn) =
    match e with
    | :? AudioFormatException as a -> a.Problem
    | :? FileNotFoundException -> "no such file"
    | e -> e.Message

/// The files `paths` name, in order: a folder stands for every file under it (sub-folders included) that
/// AudioFile.isSupported takes, sorted by path (ordinal); any other path is kept as given (a missing or unreadable
/// file is then reported by the prediction). Returns the files and the folders that hold no audio file.
let filesOf (paths: string list) : string list * string list =
    let expanded =
        [ for path in paths ->
            if Directory.Exists path then
                let files =
                    Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    |> Seq.filter AudioFile.isSupported
                    |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b))
                    |> List.ofSeq
                path, files, files.IsEmpty
            else path, [ path ], false ]
    [ for _, files, _ in expanded do yield! files ], [ for path, _, empty in expanded do if empty then path ]

/// The three likeliest labels with their probabilities, e.g. "7 0.912, 1 0.041, 9 0.020".
let private topOf (probabilities: (string * float) list) =
    probabilities |> List.sortByDescending snd |> List.truncate 3 |> List.map (fun (l, v) -> sprintf "%s %.3f" l v) |> String.concat ", "

/// A number in invariant round-trip form, for CSV.
let private number (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)

/// Seconds with millisecond precision, e.g. "1.024".
let private seconds (v: float) = v.ToString("0.000", Globalization.CultureInfo.InvariantCulture)

/// One result of the output: a recording, or one window of it (with --windows).
type private Row =
    { Path: string
      Window: WindowPrediction option
      Label: string
      Probabilities: (string * float) list }

/// The rows of a classified file: the recording, or each of its windows.
let private rowsOf (windows: bool) (p: Prediction) : Row list =
    if windows then [ for w in p.Windows -> { Path = p.Path; Window = Some w; Label = w.Label; Probabilities = w.Probabilities } ]
    else [ { Path = p.Path; Window = None; Label = p.Label; Probabilities = p.Probabilities } ]

/// The probability of a row's own label.
let private confidence (r: Row) = r.Probabilities |> List.find (fun (l, _) -> l = r.Label) |> snd

/// A row's cells before the probabilities: the path, and with windows the index, start and end.
let private lead (r: Row) =
    match r.Window with
    | Some w -> [ r.Path; string w.Index; seconds w.Start; seconds w.End ]
    | None -> [ r.Path ]

/// Runs the command. Every file is tried: a result line (JSON: an object with path, label, probabilities and
/// warning; CSV: a row) per readable file, or per window of it with --windows, and one error line per unreadable
/// one (text and CSV: `predict: FILE: REASON` on the error output; JSON: an object with path and error). Exit codes: 0
/// every file classified; 1 the model could not be used, or, after all files were tried, at least one could not be
/// read or a folder given held no audio file; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<PredictArgs> "predict" out error argv (fun args ->
        OptionRules.enforce args (table args)
        use _ = OptionRules.threadScope (args.TryGetResult Threads)
        let given = args.GetResult(Files, defaultValue = [])
        if given.IsEmpty then invalidArg "files" "give at least one WAV file (or a folder of them) to classify"
        let files, emptyFolders = filesOf given
        for folder in emptyFolders do error.WriteLine(sprintf "predict: %s: no audio file in this folder" folder)
        if files.IsEmpty then raise (FileNotFoundException(sprintf "no audio file to classify in %s" (String.concat ", " given)))
        let json, csv, windows = args.Contains Json, args.Contains Csv, args.Contains Windows
        let predict = if windows then Inference.predictWindows else Inference.predictFiles
        let outcomes = predict (args.GetResult(Device, defaultValue = "auto")) (fun l -> error.WriteLine("predict: " + l)) (args.GetResult Model) files
        let rows = [ for outcome in outcomes do match outcome with Predicted p -> yield! rowsOf windows p | Failed _ -> () ]
        let reportFailures () =
            for outcome in outcomes do
                match outcome with
                | Predicted p -> p.Warning |> Option.iter (fun w -> error.WriteLine(sprintf "predict: warning %s: %s" p.Path w))
                | Failed (path, e) -> error.WriteLine(sprintf "predict: %s: %s" path (reasonOf e))
        let leadHeaders = if windows then [ "file"; "window"; "start (s)"; "end (s)" ] else [ "file" ]
        match Terminal.consoleOf out with
        | Some console when not json && not csv ->
            // On a terminal: one table row per classified file or window (its label and top three probabilities);
            // unreadable files and warnings still go to the error output, one line each.
            if not rows.IsEmpty then
                console.Write(Terminal.textTable None (leadHeaders @ [ "label"; "top probabilities" ]) [ for r in rows -> lead r @ [ r.Label; topOf r.Probabilities ] ])
            reportFailures ()
        | _ when csv ->
            let labels = outcomes |> List.tryPick (function Predicted p -> Some(List.map fst p.Probabilities) | Failed _ -> None) |> Option.defaultValue []
            let header = (if windows then [ "path"; "window"; "start"; "end" ] else [ "path" ]) @ [ "label"; "probability" ] @ labels
            out.WriteLine(header |> List.map Export.csvField |> String.concat ",")
            for r in rows do
                let cells = lead r @ [ r.Label; number (confidence r) ] @ [ for _, v in r.Probabilities -> number v ]
                out.WriteLine(cells |> List.map Export.csvField |> String.concat ",")
            reportFailures ()
        | _ ->
            for outcome in outcomes do
                match outcome with
                | Predicted p ->
                    for r in rowsOf windows p do
                        match json, r.Window with
                        | true, Some w ->
                            out.WriteLine(JsonSerializer.Serialize({| path = r.Path; window = w.Index; start = w.Start; ``end`` = w.End; label = r.Label
                                                                      probability = confidence r; probabilities = dict r.Probabilities; warning = Option.toObj p.Warning |}))
                        | true, None ->
                            out.WriteLine(JsonSerializer.Serialize({| path = p.Path; label = p.Label; probabilities = dict p.Probabilities; warning = Option.toObj p.Warning |}))
                        | false, Some w -> out.WriteLine(sprintf "%s [%d] %s-%s s: %s (%s)" r.Path w.Index (seconds w.Start) (seconds w.End) r.Label (topOf r.Probabilities))
                        | false, None -> out.WriteLine(sprintf "%s: %s (%s)" r.Path r.Label (topOf r.Probabilities))
                    if not json then p.Warning |> Option.iter (fun w -> error.WriteLine(sprintf "predict: warning %s: %s" p.Path w))
                | Failed (path, e) ->
                    if json then out.WriteLine(JsonSerializer.Serialize({| path = path; error = reasonOf e |}))
                    else error.WriteLine(sprintf "predict: %s: %s" path (reasonOf e))
        if not emptyFolders.IsEmpty || outcomes |> List.exists (function Failed _ -> true | _ -> false) then 1 else 0)
