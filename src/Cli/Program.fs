/// The `hybrid` command: one entry point per build.fsx target.
module Hybrid.Cli.Program

open System
open System.IO
open System.Reflection

let private usage =
    """usage: hybrid <target> [options]   (targets: help, train, predict, evaluate, export, summary, plot, dataset, features, bench, cluster; run with --help for a target's options; --version prints the version)
       features, train, predict, evaluate, export and summary also take --schemas PATH.dll (repeatable): an assembly declaring your own feature schemas"""

/// The targets `hybrid` dispatches to.
let private targets = [ "help"; "train"; "predict"; "evaluate"; "export"; "summary"; "plot"; "dataset"; "features"; "bench"; "cluster" ]

/// The informational version of the `hybrid` executable (e.g. "0.1.0+COMMIT"), else its assembly version.
let version () : string =
    let assembly = typeof<Bench.Result>.Assembly
    match assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>() with
    | null -> string (assembly.GetName().Version)
    | attribute -> attribute.InformationalVersion

let private dispatch (out: TextWriter) (error: TextWriter) (args: string list) =
    match args with
    | [] | [ "help" ] | [ "--help" ] ->
        out.WriteLine usage
        0
    | [ "--version" ] ->
        out.WriteLine(sprintf "hybrid %s" (version ()))
        0
    | "bench" :: rest -> Bench.run out error (Array.ofList rest)
    | "train" :: rest -> TrainCommand.run out error (Array.ofList rest)
    | "predict" :: rest -> PredictCommand.run out error (Array.ofList rest)
    | "evaluate" :: rest -> EvaluateCommand.run out error (Array.ofList rest)
    | "export" :: rest -> ExportCommand.run out error (Array.ofList rest)
    | "summary" :: rest -> SummaryCommand.run out error (Array.ofList rest)
    | "plot" :: rest -> PlotCommand.run out error (Array.ofList rest)
    | "dataset" :: rest -> DatasetCommand.run out error (Array.ofList rest)
    | "features" :: rest -> FeaturesCommand.run out error (Array.ofList rest)
    | "cluster" :: rest -> ClusterCommand.run out error (Array.ofList rest)
    | target :: _ ->
        let hint = Command.closest (targets @ [ "--version" ]) target |> Option.map (sprintf " Did you mean '%s'?") |> Option.defaultValue ""
        error.WriteLine(sprintf "hybrid: unknown target '%s'.%s %s" target hint usage)
        2

/// Runs `hybrid` with its arguments (the target first), writing to `out` and `error`: loads the assemblies given with
/// --schemas (features, train, predict, evaluate, export, summary), then runs the target. Returns the exit code (0 done; `--version`
/// prints the informational version and exits 0; 2 for an unknown target or an invalid HYBRID_SPIN_US).
let run (out: TextWriter) (error: TextWriter) (argv: string[]) : int =
    // `hybrid train help` is `hybrid train --help`, as `dotnet fsi build.fsx train help` is.
    let argv = argv |> Array.mapi (fun i a -> if i = 1 && a = "help" && argv.Length = 2 then "--help" else a)
    let args =
        match List.ofArray argv with
        | target :: rest when List.contains target Command.schemaCommands ->
            Command.loadSchemaAssemblies rest |> Result.map (fun kept -> target :: kept)
        | target :: rest when List.exists (fun (a: string) -> a = "--schemas" || a.StartsWith "--schemas=") rest ->
            Error(2, sprintf "--schemas applies to %s, not to %s" (String.concat ", " Command.schemaCommands) target)
        | all -> Ok all
        |> Result.bind (fun args ->
            // Parallelism reads HYBRID_SPIN_US when it starts and ignores a value it cannot use; the command refuses it.
            match Environment.GetEnvironmentVariable Hybrid.Dsp.Parallelism.SpinVariable with
            | null | "" -> Ok args
            | text when fst (Hybrid.Dsp.Parallelism.TryParseSpinMicroseconds text) -> Ok args
            | text ->
                Error(2, sprintf "%s must be a whole number of microseconds in 0..%d (how long idle worker threads poll for the next parallel loop), was '%s'."
                            Hybrid.Dsp.Parallelism.SpinVariable Hybrid.Dsp.Parallelism.MaxSpinMicroseconds text))
    match args with
    | Error (code, message) ->
        error.WriteLine(sprintf "%s: %s" (Array.tryHead argv |> Option.defaultValue "hybrid") message)
        code
    | Ok args -> dispatch out error args

/// The process entry point: `run` on the console's writers.
[<EntryPoint>]
let main argv = run Console.Out Console.Error argv
