/// What every `hybrid` command shares: Argu parsing with `--help`, and one mapping from the library's exception
/// families to messages and exit codes (0 done, 1 the data, a file or a model could not be used, 2 bad options).
module Hybrid.Cli.Command

open System.IO
open Argu
open Hybrid.Features

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
        0
    | :? ArguParseException as e ->
        error.WriteLine e.Message
        2
    | :? System.ArgumentException as e -> fail 2 e.Message
    | :? DatasetException as e -> fail 1 e.Message
    | :? AudioFormatException as e -> fail 1 e.Message
    | :? FileNotFoundException as e -> fail 1 e.Message
    | :? Hybrid.Classifier.TrainingException as e -> fail 1 e.Message
    | :? Hybrid.Classifier.ModelFileException as e -> fail 1 e.Message
    | :? Hybrid.Classifier.SchemaMismatchException as e -> fail 1 e.Message
    | :? Hybrid.Classifier.OnnxExportException as e -> fail 1 e.Message
    | :? Hybrid.Features.Schemas.SchemaMismatchException as e -> fail 1 e.Message
