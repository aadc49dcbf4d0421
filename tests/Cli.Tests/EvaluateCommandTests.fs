/// `hybrid evaluate`: options checked before anything is read, the JSON line, the files and the exit codes.
module Hybrid.CliTests.EvaluateCommandTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.TestSupport

let private run = Commands.run

/// Two speakers, every digit, indexes 0-7, and a logreg model trained on them (official split).
let private withModel (fsdd: string) (body: string -> string -> unit) =
    Commands.withFsddSubset fsdd [ "george"; "nicolas" ] [ 0 .. 7 ] (fun dir ->
        let code, _, err =
            run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "3"; "--device"; "managed"; "--no-plots"; "--out"; Path.Combine(dir, "run") ]
        Expect.equal code 0 (sprintf "training the model (stderr: %s)" err)
        body dir (Path.Combine(dir, "run", "model.hnn")))

[<Tests>]
let tests =
    testSequenced <| testList "EvaluateCommand" [
        test "bad options are refused with exit code 2 before anything is read" {
            for args, fragment in
                [ [ "--model"; "none.hnn"; "--data"; "none"; "--part"; "heldout" ], "--part"
                  [ "--model"; "none.hnn"; "--data"; "none"; "--split"; "loso" ], "--split applies only with --part"
                  [ "--model"; "none.hnn"; "--data"; "none"; "--no-plots" ], "--no-plots applies only with --out"
                  [ "--model"; "none.hnn"; "--data"; "none"; "--label-map"; "zero" ], "--label-map"
                  [ "--model"; "none.hnn"; "--data"; "none"; "--device"; "tpu" ], "--device" ] do
                let code, _, err = run Hybrid.Cli.EvaluateCommand.run args
                Expect.equal code 2 (sprintf "%A: exit code (stderr: %s)" args err)
                Expect.stringContains err fragment (sprintf "%A: names the option" args)
        }

        slow <| TestData.testWithFsdd "--json prints one object with the accuracy, per class and per speaker; --out writes the files; a missing model is exit 1" (fun fsdd ->
            withModel fsdd (fun dir model ->
                let out = Path.Combine(dir, "evaluation")
                let code, stdout, err = run Hybrid.Cli.EvaluateCommand.run [ "--model"; model; "--data"; dir; "--part"; "test"; "--device"; "managed"; "--json"; "--out"; out ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                use json = JsonDocument.Parse(stdout.Trim())
                let root = json.RootElement
                Expect.equal (root.GetProperty("count").GetInt32()) 100 "the official test part: indexes 0-4"
                let accuracy = root.GetProperty("accuracy").GetDouble()
                Expect.isTrue (accuracy >= 0.0 && accuracy <= 1.0) "an overall accuracy"
                Expect.equal (root.GetProperty("per_class").GetArrayLength()) 10 "ten classes"
                Expect.equal (root.GetProperty("per_speaker").GetArrayLength()) 2 "two speakers"
                Expect.equal (root.GetProperty("part").GetString()) "official test" "the part scored"
                Expect.isTrue (File.Exists(Path.Combine(out, "confusion.png"))) "the confusion matrix plot"
                let code, _, err = run Hybrid.Cli.EvaluateCommand.run [ "--model"; Path.Combine(dir, "missing.hnn"); "--data"; dir; "--device"; "managed" ]
                Expect.equal code 1 "a missing model file"
                Expect.stringContains err "missing.hnn" "names the file"
                let code, text, _ = run Hybrid.Cli.EvaluateCommand.run [ "--model"; model; "--data"; dir; "--device"; "managed" ]
                Expect.equal code 0 "text report"
                Expect.stringContains text "accuracy:" "the overall accuracy line"
                Expect.stringContains text "per class:" "per class"))
    ]
