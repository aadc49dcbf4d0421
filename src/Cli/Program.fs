/// The `hybrid` command: one entry point per build.fsx target.
module Hybrid.Cli.Program

open System

let private usage =
    """usage: hybrid <target> [options]   (targets: help, train, predict, evaluate, export, plot, dataset, features, bench, cluster; run with --help for a target's options)
       features, train, predict, evaluate and export also take --schemas PATH.dll (repeatable): an assembly declaring your own feature schemas"""

let private dispatch (args: string list) =
    match args with
    | [] | [ "help" ] | [ "--help" ] ->
        printfn "%s" usage
        0
    | "bench" :: rest -> Bench.run Console.Out Console.Error (Array.ofList rest)
    | "train" :: rest -> TrainCommand.run Console.Out Console.Error (Array.ofList rest)
    | "predict" :: rest -> PredictCommand.run Console.Out Console.Error (Array.ofList rest)
    | "evaluate" :: rest -> EvaluateCommand.run Console.Out Console.Error (Array.ofList rest)
    | "export" :: rest -> ExportCommand.run Console.Out Console.Error (Array.ofList rest)
    | "plot" :: rest -> PlotCommand.run Console.Out Console.Error (Array.ofList rest)
    | "dataset" :: rest -> DatasetCommand.run Console.Out Console.Error (Array.ofList rest)
    | "features" :: rest -> FeaturesCommand.run Console.Out Console.Error (Array.ofList rest)
    | "cluster" :: rest -> ClusterCommand.run Console.Out Console.Error (Array.ofList rest)
    | target :: _ ->
        eprintfn "hybrid: unknown target '%s'. %s" target usage
        2

/// Loads the assemblies given with --schemas (features, train, predict, export), then runs the target.
[<EntryPoint>]
let main argv =
    // `hybrid train help` is `hybrid train --help`, as `dotnet fsi build.fsx train help` is.
    let argv = argv |> Array.mapi (fun i a -> if i = 1 && a = "help" && argv.Length = 2 then "--help" else a)
    let args =
        match List.ofArray argv with
        | target :: rest when List.contains target Command.schemaCommands ->
            Command.loadSchemaAssemblies rest |> Result.map (fun kept -> target :: kept)
        | target :: rest when List.exists (fun (a: string) -> a = "--schemas" || a.StartsWith "--schemas=") rest ->
            Error(2, sprintf "--schemas applies to %s, not to %s" (String.concat ", " Command.schemaCommands) target)
        | all -> Ok all
    match args with
    | Error (code, message) ->
        eprintfn "%s: %s" (Array.tryHead argv |> Option.defaultValue "hybrid") message
        code
    | Ok args -> dispatch args
