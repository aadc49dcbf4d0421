/// What every `hybrid` command shares: Argu parsing with `--help`, and one mapping from the library's exception
/// families to messages and exit codes (0 done, 1 the data, a file or a model could not be used, 2 bad options):
/// `families` lists them, and the tests raise each one through `run`.
module Hybrid.Cli.Command

open System.IO
open Argu
open Hybrid.Features

/// The commands that take `--schemas PATH.dll` (repeatable): user assemblies whose feature schemas register by name
/// when loaded, so that `--schema`, `--features` and model files can name them.
let schemaCommands = [ "features"; "train"; "predict"; "evaluate"; "export"; "summary" ]

/// Every exception family a command can meet and its exit code (Argu's parse errors and ArgumentException: 2; the
/// library's data, audio, model, schema, training, export, shard and cluster families, I/O and access errors,
/// malformed JSON and running out of memory: 1).
let families: (System.Type * int) list =
    [ typeof<ArguParseException>, 2; typeof<System.ArgumentException>, 2
      typeof<DatasetException>, 1; typeof<AudioFormatException>, 1; typeof<FileNotFoundException>, 1
      typeof<Hybrid.Classifier.TrainingException>, 1; typeof<Hybrid.Classifier.ModelFileException>, 1
      typeof<Hybrid.Classifier.SchemaMismatchException>, 1; typeof<Hybrid.Classifier.OnnxExportException>, 1
      typeof<Hybrid.Features.Schemas.SchemaMismatchException>, 1; typeof<Hybrid.Features.Schemas.SchemaNameConflictException>, 1
      typeof<Hybrid.Cluster.ClusterException>, 1
      typeof<Shards.ShardException>, 1; typeof<InvalidDataException>, 1; typeof<System.UnauthorizedAccessException>, 1
      typeof<IOException>, 1; typeof<System.Text.Json.JsonException>, 1; typeof<System.OutOfMemoryException>, 1 ]

/// The Levenshtein distance between two strings (insertions, deletions and substitutions cost 1 each).
let editDistance (a: string) (b: string) : int =
    let previous = Array.init (b.Length + 1) id
    let current = Array.zeroCreate<int> (b.Length + 1)
    for i in 1 .. a.Length do
        current.[0] <- i
        for j in 1 .. b.Length do
            let cost = if a.[i - 1] = b.[j - 1] then 0 else 1
            current.[j] <- min (min (previous.[j] + 1) (current.[j - 1] + 1)) (previous.[j - 1] + cost)
        Array.blit current 0 previous 0 current.Length
    previous.[b.Length]

/// The name among `candidates` closest to `given` by edit distance (ties: the first), when it is close enough to be a
/// likely typo: at most 2 edits, or a third of the longer name's length for long names.
let closest (candidates: string seq) (given: string) : string option =
    candidates
    |> Seq.map (fun c -> c, editDistance given c)
    |> Seq.filter (fun (c, d) -> d > 0 && d <= max 2 (max c.Length given.Length / 3))
    |> Seq.sortBy snd
    |> Seq.tryHead
    |> Option.map fst

/// The lines printed for a command line Argu cannot parse (instead of Argu's message and the whole usage): Argu's
/// one-line error, for an unknown option the closest option of the command (`did you mean --epochs?`), and where to
/// find the options (`hybrid NAME --help`). `options` are the command's option names (e.g. "--epochs").
let parseErrorLines (name: string) (options: string list) (message: string) : string list =
    let first = message.Split('\n') |> Array.map (fun l -> l.Trim()) |> Array.tryFind (fun l -> l <> "") |> Option.defaultValue message
    let first = if first.StartsWith("ERROR: ", System.StringComparison.Ordinal) then first.Substring 7 else first
    let unknown =
        let m = System.Text.RegularExpressions.Regex.Match(first, "unrecognized argument: '([^']*)'")
        if m.Success then Some(m.Groups.[1].Value.Split('=').[0]) else None
    [ sprintf "%s: %s" name first
      match unknown |> Option.filter (fun u -> u.StartsWith "-") |> Option.bind (closest options) with
      | Some option -> sprintf "did you mean %s?" option
      | None -> ()
      sprintf "run 'hybrid %s --help' for its options (through the build script: dotnet fsi build.fsx %s help)" name name ]

/// An ArgumentException's message without the " (Parameter 'name')" that .NET appends to it.
let argumentMessage (e: System.ArgumentException) : string =
    if isNull e.ParamName then e.Message else e.Message.Replace(sprintf " (Parameter '%s')" e.ParamName, "")

/// The option names of an Argu union, as the command line spells them (e.g. "--epochs"), --help included.
let optionNames (parser: ArgumentParser<'Args>) : string list =
    "--help" :: [ for case in parser.GetArgumentCases() do yield! case.CommandLineNames.Value ]

/// Parses `argv` for command `name` and runs `body`; prints usage for --help and `name: message` for errors.
let run<'Args when 'Args :> IArgParserTemplate> (name: string) (out: TextWriter) (error: TextWriter) (argv: string[]) (body: ParseResults<'Args> -> int) : int =
    let parser = ArgumentParser.Create<'Args>(programName = "hybrid " + name)
    let fail code (message: string) =
        error.WriteLine(sprintf "%s: %s" name message)
        code
    try
        body (parser.ParseCommandLine(argv, raiseOnUsage = true))
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText ->
        out.WriteLine(parser.PrintUsage())
        if List.contains name schemaCommands then
            out.WriteLine "    --schemas <path.dll>  (repeatable) load an assembly declaring your own feature schemas first, so that"
            out.WriteLine "                          their names work wherever a schema is named (and in model files)."
        0
    | :? ArguParseException as e ->
        for line in parseErrorLines name (optionNames parser) e.Message do error.WriteLine line
        2
    | :? System.ArgumentException as e -> fail 2 (argumentMessage e)
    | :? DatasetException as e -> fail 1 e.Message
    | :? AudioFormatException as e -> fail 1 e.Message
    | :? FileNotFoundException as e -> fail 1 e.Message
    | :? Hybrid.Classifier.TrainingException as e -> fail 1 e.Message
    | :? Hybrid.Classifier.ModelFileException as e -> fail 1 e.Message
    | :? Hybrid.Classifier.SchemaMismatchException as e -> fail 1 e.Message
    | :? Hybrid.Classifier.OnnxExportException as e -> fail 1 e.Message
    | :? Hybrid.Features.Schemas.SchemaMismatchException as e -> fail 1 e.Message
    | :? Hybrid.Features.Schemas.SchemaNameConflictException as e -> fail 1 e.Message
    | :? Hybrid.Cluster.ClusterException as e -> fail 1 e.Message
    | :? Shards.ShardException as e -> fail 1 e.Message
    | :? InvalidDataException as e -> fail 1 e.Message
    | :? System.UnauthorizedAccessException as e -> fail 1 e.Message
    | :? IOException as e -> fail 1 e.Message
    | :? System.Text.Json.JsonException as e -> fail 1 e.Message
    | :? System.OutOfMemoryException -> fail 1 "out of memory: the data or the options ask for more memory than this machine has (try a smaller --batch-size or fewer recordings)"

/// Removes every `--schemas PATH` (or `--schemas=PATH`) from a command's arguments and loads each assembly
/// (Schemas.LoadAssembly). Returns the remaining arguments, or `Error (code, message)` when an assembly cannot be
/// used (exit code 1) or the option has no value (exit code 2).
let loadSchemaAssemblies (argv: string list) : Result<string list, int * string> =
    let rec strip kept paths =
        function
        | "--schemas" :: path :: rest when not (path.StartsWith "--") -> strip kept (path :: paths) rest
        | [ "--schemas" ] | "--schemas" :: _ -> Error(2, "--schemas needs the path of an assembly that declares feature schemas")
        | (arg: string) :: rest when arg.StartsWith "--schemas=" -> strip kept (arg.Substring("--schemas=".Length) :: paths) rest
        | arg :: rest -> strip (arg :: kept) paths rest
        | [] -> Ok(List.rev kept, List.rev paths)
    match strip [] [] argv with
    | Error e -> Error e
    | Ok (kept, paths) ->
        try
            for path in paths do
                Hybrid.Features.Schemas.Schemas.LoadAssembly path |> ignore
            Ok kept
        with
        | :? System.ArgumentException as e -> Error(1, argumentMessage e)
        | :? System.InvalidOperationException as e -> Error(1, e.Message)

