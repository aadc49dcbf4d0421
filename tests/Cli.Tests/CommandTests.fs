/// The one mapping from exception families to exit codes and one-line messages that every command shares.
module Hybrid.CliTests.CommandTests

open System
open System.IO
open Argu
open Expecto
open Hybrid.Cli
open Hybrid.Features

/// A stand-in command's options.
type private ProbeArgs =
    | Flag
    interface IArgParserTemplate with
        member _.Usage = "a flag."

/// One instance of every family Command.families names.
let private instances: exn list =
    [ ArgumentException "bad value" :> exn; DatasetException "no usable audio"; AudioFormatException("a.wav", "not audio")
      FileNotFoundException "no such file"; Hybrid.Classifier.TrainingException "diverged"
      Hybrid.Classifier.ModelFileException("m.hnn", "damaged"); Hybrid.Classifier.SchemaMismatchException("m.hnn", "a", "b")
      Hybrid.Classifier.OnnxExportException("m.hnn", "cannot export"); Hybrid.Features.Schemas.SchemaMismatchException("logmel", "too short")
      Hybrid.Features.Schemas.SchemaNameConflictException("genre", typeof<obj>, typeof<string>, "declared twice")
      Hybrid.Cluster.ClusterException "silo lost"; Shards.ShardException("s.parquet", "checksum mismatch")
      InvalidDataException "not finite"; UnauthorizedAccessException "denied"; IOException "disk full"
      Text.Json.JsonException "not JSON"; OutOfMemoryException() ]

[<Tests>]
let tests =
    testList "Command" [
        test "every exception family a command can meet has its exit code and one line, never a stack trace" {
            let families = Command.families |> List.map (fun (t, _) -> nonNull t.FullName) |> Set.ofList
            // Argu's parse errors have no public constructor: an unknown option raises one below.
            let covered = instances |> List.map (fun e -> nonNull (e.GetType().FullName)) |> Set.ofList |> Set.add (nonNull typeof<ArguParseException>.FullName)
            Expect.equal covered families "the test raises one instance of every family Command.families lists"
            do
                use out = new StringWriter()
                use err = new StringWriter()
                let code = Command.run<ProbeArgs> "probe" out err [| "--nope" |] (fun _ -> 0)
                Expect.equal code 2 "an unknown option: exit code 2"
            for e in instances do
                use out = new StringWriter()
                use err = new StringWriter()
                let code = Command.run<ProbeArgs> "probe" out err [||] (fun _ -> raise e)
                let expected = Command.families |> List.find (fun (t, _) -> t = e.GetType()) |> snd
                Expect.equal code expected (sprintf "%s: exit code" (e.GetType().Name))
                let lines = err.ToString().Trim().Split('\n')
                Expect.equal lines.Length 1 (sprintf "%s: one line, was: %s" (e.GetType().Name) (err.ToString()))
                Expect.isFalse (err.ToString().Contains "   at ") (sprintf "%s: no stack trace" (e.GetType().Name))
        }

        test "an unknown option prints Argu's error, the closest option and where the options are, not the whole usage" {
            for name, command, args, expected in
                [ "train", TrainCommand.run, [ "--epoch"; "3" ], "did you mean --epochs?"
                  "dataset", DatasetCommand.run, [ "--splt"; "loso" ], "did you mean --split?"
                  "bench", Bench.run, [ "--run"; "1" ], "did you mean --runs?" ] do
                use out = new StringWriter()
                use err = new StringWriter()
                let code = command out err (Array.ofList args)
                Expect.equal code 2 (sprintf "%A: exit code 2" args)
                let lines = err.ToString().Trim().Split('\n') |> Array.map (fun l -> l.Trim())
                Expect.stringContains lines.[0] (sprintf "%s: unrecognized argument: '%s'" name args.Head) (sprintf "%A: Argu's error first" args)
                Expect.equal lines.[1] expected (sprintf "%A: the closest option" args)
                Expect.equal lines.[2] (sprintf "run 'hybrid %s --help' for its options (through the build script: dotnet fsi build.fsx %s help)" name name) (sprintf "%A: where the options are" args)
                Expect.equal lines.Length 3 (sprintf "%A: three lines, no usage, was: %s" args (err.ToString()))
                Expect.equal (out.ToString()) "" (sprintf "%A: nothing on standard output" args)
        }

        test "an ArgumentException's line carries its message without .NET's (Parameter 'name')" {
            use out = new StringWriter()
            use err = new StringWriter()
            let code = Command.run<ProbeArgs> "probe" out err [||] (fun _ -> invalidArg "files" "give at least one file")
            Expect.equal code 2 "exit code 2"
            Expect.equal (err.ToString().Trim()) "probe: give at least one file" "the message alone"
            Expect.equal (Command.argumentMessage (ArgumentOutOfRangeException("fmax", "fmax must lie below sr / 2"))) "fmax must lie below sr / 2" "ArgumentOutOfRangeException too"
            Expect.equal (Command.argumentMessage (ArgumentException "no parameter")) "no parameter" "a message without a parameter is kept"
        }
        test "closest suggests a name within a few edits and nothing for an unrelated word" {
            let options = [ "--epochs"; "--early-stopping"; "--split"; "--seed"; "--model" ]
            Expect.equal (Command.closest options "--epoch") (Some "--epochs") "one deletion"
            Expect.equal (Command.closest options "--sedd") (Some "--seed") "one substitution"
            Expect.equal (Command.closest options "--early-stoping") (Some "--early-stopping") "one deletion in a long name"
            Expect.equal (Command.closest options "--frobnicate") None "nothing close"
            Expect.equal (Command.editDistance "kitten" "sitting") 3 "Levenshtein's example"
        }

        test "hybrid --version prints the informational version and exits 0" {
            use out = new StringWriter()
            use err = new StringWriter()
            let code = Program.run out err [| "--version" |]
            Expect.equal code 0 "exit code 0"
            let text = out.ToString().Trim()
            Expect.stringStarts text "hybrid 0.1.0" "the version of Directory.Build.props"
            Expect.equal text ("hybrid " + Program.version ()) "the informational version"
            Expect.equal (err.ToString()) "" "no error"
            use out2 = new StringWriter()
            use err2 = new StringWriter()
            Expect.equal (Program.run out2 err2 [| "trian" |]) 2 "an unknown target is exit code 2"
            Expect.stringContains (err2.ToString()) "Did you mean 'train'?" "with the closest target"
        }

        // Sequenced: the environment variable is the process's, and other commands run meanwhile would meet it.
        testSequenced <| test "an invalid HYBRID_SPIN_US is refused with exit code 2 before the target runs, naming the variable and the range" {
            let before = Environment.GetEnvironmentVariable "HYBRID_SPIN_US"
            try
                for bad in [ "fast"; "-5"; "2000000" ] do
                    Environment.SetEnvironmentVariable("HYBRID_SPIN_US", bad)
                    use out = new StringWriter()
                    use err = new StringWriter()
                    Expect.equal (Program.run out err [| "--version" |]) 2 (sprintf "'%s' refused" bad)
                    Expect.stringContains (err.ToString()) "HYBRID_SPIN_US" "names the variable"
                    Expect.stringContains (err.ToString()) "0..1000000" "and the range"
                    Expect.equal (out.ToString()) "" "the target did not run"
                Environment.SetEnvironmentVariable("HYBRID_SPIN_US", "0")
                use out = new StringWriter()
                use err = new StringWriter()
                Expect.equal (Program.run out err [| "--version" |]) 0 "0 accepted"
            finally
                Environment.SetEnvironmentVariable("HYBRID_SPIN_US", before)
        }

        test "a subclass of a family gets its family's code (DirectoryNotFoundException is an I/O error)" {
            use out = new StringWriter()
            use err = new StringWriter()
            let code = Command.run<ProbeArgs> "probe" out err [||] (fun _ -> raise (DirectoryNotFoundException "no folder"))
            Expect.equal code 1 "exit code 1"
        }
    ]
