/// `train` after cross-validation: the pooled out-of-fold report (summary, --json, metrics.json, confusion CSV and
/// PNG, report.html), `--refit` (model.hnn trained on all data) and `--class-weight`.
module Hybrid.CliTests.TrainCrossValidationTests

open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.TestSupport
open Hybrid.FeaturesTests

let private run = Commands.run

/// The cells of a confusion CSV (header row and label column left out).
let private csvCounts (path: string) =
    File.ReadAllLines path |> Array.skip 1 |> Array.collect (fun line -> line.Split(',') |> Array.skip 1 |> Array.map int)

[<Tests>]
let tests =
    testSequenced <| testList "TrainCommand cross-validation" [
        test "--refit with a single split is refused with exit code 2, naming the cross-validation splits" {
            use temp = new DatasetFixtures.TempFolder()
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; temp.Combine "none"; "--model"; "logreg"; "--split"; "random:0.2"; "--refit" ]
            Expect.equal code 2 (sprintf "exit code (stderr: %s)" err)
            Expect.stringContains err "--refit" "names the option"
            Expect.stringContains err "folds, loso or kfold:K" "and the splits it needs"
            // Without --split the dataset's own split decides: FSDD's official split is a single split.
            DatasetFixtures.writeFsdd (temp.Combine "fsdd") [ 1; 2 ] [ "ann" ] [ 0 .. 5 ]
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; temp.Combine "fsdd"; "--model"; "logreg"; "--refit"; "--no-plots"; "--out"; temp.Combine "run" ]
            Expect.equal code 2 (sprintf "the default split (stderr: %s)" err)
            Expect.stringContains err "--refit needs a cross-validation split" "says why"
            Expect.isFalse (File.Exists(temp.Combine "run/model.hnn")) "nothing trained"
        }

        test "--class-weight takes none or balanced" {
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; "."; "--model"; "logreg"; "--class-weight"; "auto" ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "--class-weight" "names the option"
            Expect.stringContains err "none or balanced" "and its values"
        }

        slow <| test "--split loso --refit --class-weight balanced: the pooled report everywhere, model.hnn on all data, the weighting recorded" {
            use temp = new DatasetFixtures.TempFolder()
            let data = temp.Combine "data"
            // Unbalanced: digit 1 has 4 recordings per speaker, digit 2 two.
            DatasetFixtures.writeFsdd data [ 1 ] [ "ann"; "bob"; "cat" ] [ 0 .. 3 ]
            DatasetFixtures.writeFsdd data [ 2 ] [ "ann"; "bob"; "cat" ] [ 0 .. 1 ]
            let out = temp.Combine "run"
            let code, stdout, err =
                run Hybrid.Cli.TrainCommand.run [ "--data"; data; "--model"; "logreg"; "--epochs"; "2"; "--split"; "loso"; "--refit"; "--class-weight"; "balanced"
                                                  "--device"; "managed"; "--out"; out; "--json" ]
            Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
            use doc = JsonDocument.Parse(stdout.Trim().Split('\n') |> Array.last)
            let root = doc.RootElement
            let pooled = root.GetProperty "pooled"
            Expect.equal (pooled.GetProperty("n_test").GetInt32()) 18 "every recording once, out of fold"
            let folds = [ for f in root.GetProperty("folds").EnumerateArray() -> f.GetProperty("n_test").GetInt32(), f.GetProperty("test_accuracy").GetDouble() ]
            Expect.equal (folds |> List.map fst) [ 6; 6; 6 ] "one fold per speaker"
            let correct = folds |> List.sumBy (fun (n, a) -> a * float n)
            Expect.floatClose Accuracy.high (pooled.GetProperty("accuracy").GetDouble()) (correct / 18.0) "pooled accuracy: correct recordings of every fold over all"
            Expect.floatClose Accuracy.veryHigh (pooled.GetProperty("fold_accuracy_mean").GetDouble()) (root.GetProperty("test_accuracy").GetDouble()) "the mean of the folds"
            let confusion = [ for r in pooled.GetProperty("confusion").EnumerateArray() -> [ for c in r.EnumerateArray() -> c.GetInt32() ] ]
            Expect.equal (confusion |> List.map List.sum) [ 12; 6 ] "rows: the recordings of each digit"
            let support = [ for c in pooled.GetProperty("per_class").EnumerateArray() -> c.GetProperty("label").GetString(), c.GetProperty("support").GetInt32() ]
            Expect.equal support [ "1", 12; "2", 6 ] "support per class"
            let refit = root.GetProperty "refit"
            Expect.equal (refit.GetProperty("n_train").GetInt32(), refit.GetProperty("epochs").GetInt32(), refit.GetProperty("model_file").GetString()) (18, 2, "model.hnn") "the refit"
            // The summary (on stderr with --json), the files and the report.
            Expect.stringContains err "pooled out-of-fold predictions: 18 recordings" "the summary's pooled line"
            Expect.stringContains err "refit:" "the summary's refit line"
            Expect.stringContains err "class weights: balanced" "the summary names the weighting"
            Expect.equal (root.GetProperty("class_weight").GetString()) "balanced" "--json names the weighting"
            Expect.equal (csvCounts (Path.Combine(out, "confusion-pooled.csv")) |> Array.toList) (List.concat confusion) "confusion-pooled.csv"
            Expect.isTrue (File.Exists(Path.Combine(out, "plots", "confusion-pooled.png"))) "the pooled confusion matrix plot"
            let report = File.ReadAllText(Path.Combine(out, "report.html"))
            Expect.stringContains report "Per-class metrics, out-of-fold predictions pooled" "report.html's per-class table"
            Expect.stringContains report "confusion-pooled.png" "and its plot"
            use metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "metrics.json")))
            Expect.equal (metrics.RootElement.GetProperty("pooled").GetProperty("n_test").GetInt32()) 18 "metrics.json"
            for name in [ "model-ann.hnn"; "model-bob.hnn"; "model-cat.hnn"; "model.hnn" ] do
                Expect.isTrue (File.Exists(Path.Combine(out, name))) name
            let _, info = Hybrid.Classifier.ModelFile.inspect (Path.Combine(out, "model.hnn"))
            let settings = Hybrid.Classifier.ModelSettings.ofStored "model.hnn" info.Settings
            Expect.equal (settings.Fold, settings.ClassWeight, settings.Refit, settings.Epochs) ("all", "balanced", System.Nullable true, System.Nullable 2) "the refit model's settings"
            let recordings = Directory.GetFiles(Path.Combine(data, "recordings")) |> Array.sort |> List.ofArray
            let predictions = Hybrid.Classifier.Inference.predict "managed" ignore (Path.Combine(out, "model.hnn")) recordings
            Expect.equal predictions.Length 18 "predict takes the refit model"
            use runFile = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "run.json")))
            Expect.equal (runFile.RootElement.GetProperty("class_weight").GetString()) "balanced" "run.json records the weighting"
            Expect.isTrue (runFile.RootElement.GetProperty("refit").GetBoolean()) "and the refit"
            // A resume repeating the options finds every fold and the refit done, and agrees.
            let code, stdout, err = run Hybrid.Cli.TrainCommand.run [ "--resume"; out; "--class-weight"; "balanced"; "--refit"; "--no-plots"; "--json" ]
            Expect.equal code 0 (sprintf "resume (stderr: %s)" err)
            use again = JsonDocument.Parse(stdout.Trim().Split('\n') |> Array.last)
            Expect.equal (again.RootElement.GetProperty("pooled").GetProperty("accuracy").GetDouble()) (pooled.GetProperty("accuracy").GetDouble()) "the same pooled accuracy"
            Expect.equal (again.RootElement.GetProperty("refit").GetProperty("resumed_after_epochs").GetInt32()) 2 "the refit restored from its checkpoint"
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--resume"; out; "--class-weight"; "none" ]
            Expect.equal code 2 "a resume contradicting the recorded weighting"
            Expect.stringContains err "--class-weight none conflicts" "names the conflict"
        }
    ]
