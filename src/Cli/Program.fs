/// The `hybrid` command: one entry point per build.fsx target.
module Hybrid.Cli.Program

open System

let private usage =
    """usage: hybrid <target> [options]   (targets: help, train, predict, export, plot, dataset, features, bench; run with --help for a target's options)"""

[<EntryPoint>]
let main argv =
    match List.ofArray argv with
    | [] | [ "help" ] | [ "--help" ] ->
        printfn "%s" usage
        0
    | "bench" :: rest -> Bench.run (Array.ofList rest)
    | "train" :: rest -> TrainCommand.run Console.Out Console.Error (Array.ofList rest)
    | "predict" :: rest -> PredictCommand.run Console.Out Console.Error (Array.ofList rest)
    | "export" :: rest -> ExportCommand.run Console.Out Console.Error (Array.ofList rest)
    | "plot" :: rest -> PlotCommand.run Console.Out Console.Error (Array.ofList rest)
    | "dataset" :: rest -> DatasetCommand.run Console.Out Console.Error (Array.ofList rest)
    | "features" :: rest -> FeaturesCommand.run Console.Out Console.Error (Array.ofList rest)
    | target :: _ ->
        eprintfn "hybrid: unknown target '%s'. %s" target usage
        2
