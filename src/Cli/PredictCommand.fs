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
    | Json
    | [<MainCommand; Last>] Files of path: string list

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Model _ -> "model file written by train (model.hnn)."
            | Device _ -> "auto (default), managed, cuda, opencl or ilgpu-cpu."
            | Json -> "print one JSON object per file (path, label, probabilities) instead of text."
            | Files _ -> "WAV files to classify."

/// Runs the command. Exit codes: 0 done; 1 a file or the model could not be used; 2 bad options.
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    Command.run<PredictArgs> "predict" out error argv (fun args ->
        let files = args.GetResult(Files, defaultValue = [])
        if files.IsEmpty then invalidArg "files" "give at least one WAV file to classify"
        let predictions = Experiment.predict (args.GetResult(Device, defaultValue = "auto")) (fun l -> error.WriteLine("predict: " + l)) (args.GetResult Model) files
        for p in predictions do
            if args.Contains Json then
                out.WriteLine(JsonSerializer.Serialize({| path = p.Path; label = p.Label; probabilities = dict p.Probabilities |}))
            else
                let top = p.Probabilities |> List.sortByDescending snd |> List.truncate 3 |> List.map (fun (l, v) -> sprintf "%s %.3f" l v) |> String.concat ", "
                out.WriteLine(sprintf "%s: %s (%s)" p.Path p.Label top)
        0)
