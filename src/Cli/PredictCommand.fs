/// `hybrid predict`: the label and class probabilities of each recording under a model file written by `train`.
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
    | Threads of count: int
    | Json
    | [<MainCommand; Last>] Files of path: string list

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Model _ -> "model file written by train (model.hnn)."
            | Device _ -> "auto (default), managed, cuda, opencl or ilgpu-cpu."
            | Threads _ -> "threads one parallel step may use, 1..4 x the logical processors (default: all of them): the managed engine, feature extraction and loading, training."
            | Json -> "print one JSON object per file (path, label, probabilities) instead of text."
            | Files _ -> "audio files to classify (WAV, AIFF, .au, FLAC, MP3, Ogg), or folders: every audio file under one (sub-folders included), in path order."

/// The option table of `predict` (OptionRules): every option applies; --device must name an engine.
let private table (arg: PredictArgs) : OptionRules.Check list =
    match arg with
    | Model _ | Json | Files _ -> []
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
let private topOf (p: Prediction) =
    p.Probabilities |> List.sortByDescending snd |> List.truncate 3 |> List.map (fun (l, v) -> sprintf "%s %.3f" l v) |> String.concat ", "

/// Runs the command. Every file is tried: a result line (JSON: an object with path, label, probabilities and
/// warning) per readable file, one error line per unreadable one (text: `predict: FILE: REASON` on the error
/// output; JSON: an object with path and error). Exit codes: 0 every file classified; 1 the model could not be
/// used, or, after all files were tried, at least one could not be read or a folder given held no audio file; 2 bad
/// options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<PredictArgs> "predict" out error argv (fun args ->
        OptionRules.enforce args table
        use _ = OptionRules.threadScope (args.TryGetResult Threads)
        let given = args.GetResult(Files, defaultValue = [])
        if given.IsEmpty then invalidArg "files" "give at least one WAV file (or a folder of them) to classify"
        let files, emptyFolders = filesOf given
        for folder in emptyFolders do error.WriteLine(sprintf "predict: %s: no audio file in this folder" folder)
        if files.IsEmpty then raise (FileNotFoundException(sprintf "no audio file to classify in %s" (String.concat ", " given)))
        let json = args.Contains Json
        let outcomes = Inference.predictFiles (args.GetResult(Device, defaultValue = "auto")) (fun l -> error.WriteLine("predict: " + l)) (args.GetResult Model) files
        match Terminal.consoleOf out with
        | Some console when not json ->
            // On a terminal: one table row per classified file (its label and top three probabilities); unreadable
            // files and warnings still go to the error output, one line each.
            let rows =
                [ for outcome in outcomes do
                    match outcome with
                    | Predicted p ->
                        yield [ p.Path; p.Label; topOf p ]
                    | Failed _ -> () ]
            if not rows.IsEmpty then
                console.Write(Terminal.textTable None [ "file"; "label"; "top probabilities" ] rows)
            for outcome in outcomes do
                match outcome with
                | Predicted p -> p.Warning |> Option.iter (fun w -> error.WriteLine(sprintf "predict: warning %s: %s" p.Path w))
                | Failed (path, e) -> error.WriteLine(sprintf "predict: %s: %s" path (reasonOf e))
        | _ ->
            for outcome in outcomes do
                match outcome with
                | Predicted p ->
                    if json then
                        out.WriteLine(JsonSerializer.Serialize({| path = p.Path; label = p.Label; probabilities = dict p.Probabilities; warning = Option.toObj p.Warning |}))
                    else
                        out.WriteLine(sprintf "%s: %s (%s)" p.Path p.Label (topOf p))
                        p.Warning |> Option.iter (fun w -> error.WriteLine(sprintf "predict: warning %s: %s" p.Path w))
                | Failed (path, e) ->
                    if json then out.WriteLine(JsonSerializer.Serialize({| path = path; error = reasonOf e |}))
                    else error.WriteLine(sprintf "predict: %s: %s" path (reasonOf e))
        if not emptyFolders.IsEmpty || outcomes |> List.exists (function Failed _ -> true | _ -> false) then 1 else 0)
