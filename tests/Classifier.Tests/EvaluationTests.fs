/// Evaluation (the `evaluate` command's library side) and training on several datasets at once.
module Hybrid.ClassifierTests.EvaluationTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Classifier
open Hybrid.Features
open Hybrid.TestSupport

let private words = [| "zero"; "one"; "two"; "three"; "four"; "five"; "six"; "seven"; "eight"; "nine" |]
let private digitMap = [ for d in 0 .. 9 -> words.[d], string d ]

/// A Speech Commands-shaped folder (WORD/SPEAKER_nohash_N.wav) of FSDD recordings: digits 0-9 of george and nicolas
/// (indexes 0-3) under their digit words, as Speech Commands speakers 9e0f0a01 and 1c2b3a4d, nicolas's clips in
/// testing_list.txt; plus `extra` recordings of a word the FSDD models do not know ("cat", george's 9s) and, with
/// `broken`, a file that is not audio.
let private speechCommandsLike (fsdd: string) (extra: bool) (broken: bool) =
    let dir = TrainedModels.scratch "sc-like"
    let testing = Collections.Generic.List<string>()
    for digit in 0 .. 9 do
        for speaker in [ "george"; "nicolas" ] do
            for index in 0 .. 3 do
                let key = sprintf "%s/%s_nohash_%d.wav" words.[digit] (if speaker = "george" then "9e0f0a01" else "1c2b3a4d") index
                Directory.CreateDirectory(Path.Combine(dir, words.[digit])) |> ignore
                File.Copy(Path.Combine(fsdd, "recordings", sprintf "%d_%s_%d.wav" digit speaker index), Path.Combine(dir, key))
                if speaker = "nicolas" then testing.Add key
    if extra then
        Directory.CreateDirectory(Path.Combine(dir, "cat")) |> ignore
        for index in 0 .. 2 do
            File.Copy(Path.Combine(fsdd, "recordings", sprintf "9_george_%d.wav" index), Path.Combine(dir, "cat", sprintf "9e0f0a01_nohash_%d.wav" index))
    if broken then File.WriteAllText(Path.Combine(dir, "one", "ffff0000_nohash_0.wav"), "RIFF but not a recording")
    File.WriteAllLines(Path.Combine(dir, "testing_list.txt"), testing)
    File.WriteAllLines(Path.Combine(dir, "validation_list.txt"), [||])
    dir

let private options model data : EvaluationOptions =
    { Model = model; Data = data; LabelMap = digitMap; Labels = None; Part = None; Seed = 0; Device = "managed"
      Strict = false; Out = None; Plots = false; Log = ignore }

[<Tests>]
let tests =
    testSequenced << slow <| testList "Evaluation" [
        TestData.testWithFsdd "a label map scores the data's words as the model's digits; unknown classes and unreadable files are listed, not scored" (fun fsdd ->
            let model = TrainedModels.model fsdd "cnn2d"
            let data = speechCommandsLike fsdd true true
            let out = TrainedModels.scratch "evaluation"
            let r = Evaluation.evaluate { options model data with Out = Some out; Plots = true }
            Expect.equal r.Count 80 "every digit recording is scored"
            Expect.equal r.UnknownClasses [ "cat", 3 ] "the word the model does not know, with its count"
            Expect.equal (r.Skipped |> Array.map (fun s -> nonNull (Path.GetFileName s.Path))) [| "ffff0000_nohash_0.wav" |] "the unreadable file is listed"
            Expect.equal r.Correct (r.Predictions |> List.filter (fun (_, label, predicted, _) -> label = predicted) |> List.length) "correct counts the predictions that match"
            Expect.floatClose Accuracy.veryHigh r.Accuracy (float r.Correct / 80.0) "accuracy = correct / count"
            Expect.equal (r.PerClass |> List.map (fun c -> c.Name)) [ for d in 0 .. 9 -> string d ] "per class in the model's label order"
            Expect.equal (r.PerClass |> List.sumBy (fun c -> c.Count)) 80 "per-class counts add up"
            Expect.equal (r.PerSpeaker |> List.map (fun s -> s.Name, s.Count)) [ "1c2b3a4d", 40; "9e0f0a01", 40 ] "per speaker"
            Expect.equal (Seq.sum (Seq.cast<int> r.Metrics.Confusion)) 80 "the confusion matrix holds every scored recording"
            for file in [ "evaluation.json"; "predictions.csv"; "confusion.csv"; "confusion.png" ] do
                Expect.isTrue (File.Exists(Path.Combine(out, file))) (sprintf "%s written" file)
            use json = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "evaluation.json")))
            Expect.floatClose Accuracy.veryHigh (json.RootElement.GetProperty("accuracy").GetDouble()) r.Accuracy "evaluation.json has the overall accuracy"
            Expect.equal (File.ReadAllLines(Path.Combine(out, "predictions.csv")).Length) 81 "a header and one line per scored recording")

        TestData.testWithFsdd "without a label map the words are all unknown classes and nothing is scored; --labels and --part narrow the data" (fun fsdd ->
            let model = TrainedModels.model fsdd "cnn2d"
            let data = speechCommandsLike fsdd false false
            let r = Evaluation.evaluate { options model data with LabelMap = [] }
            Expect.equal r.Count 0 "nothing scored"
            Expect.isTrue (Double.IsNaN r.Accuracy) "no accuracy without scored recordings"
            Expect.equal (r.UnknownClasses |> List.sumBy snd) 80 "every recording is of an unknown class"
            let some = Evaluation.evaluate { options model data with Labels = Some [ "3"; "7" ] }
            Expect.equal some.Count 16 "two classes of 8 recordings"
            let test = Evaluation.evaluate { options model data with Part = Some("official", "test") }
            Expect.equal test.Count 40 "the testing list: nicolas's recordings"
            Expect.equal (test.PerSpeaker |> List.map (fun s -> s.Name)) [ "1c2b3a4d" ] "only the test speaker"
            Expect.throwsT<DatasetException> (fun () -> Evaluation.evaluate { options model data with LabelMap = [ "ten", "10" ] } |> ignore) "a label map entry the data does not have")

        TestData.testWithFsdd "several datasets train as one: labels mapped, each split on its own, test accuracy per dataset, sources recorded" (fun fsdd ->
            let sc = speechCommandsLike fsdd true false
            let scName = nonNull (Path.GetFileName sc)
            let out = TrainedModels.scratch "merged"
            let options =
                { Experiment.defaults with
                    Data = [ TrainedModels.subset fsdd; sc ]; LabelMap = digitMap; Labels = Some [ for d in 0 .. 9 -> string d ]
                    Model = "logreg"; Features = Some "mfcc-mean40"; Epochs = Some 3; Device = "managed"; Out = Some out; Progress = false; Plots = false }
            let data = Experiment.prepareData options
            Expect.equal data.Dataset.Labels [| for d in 0 .. 9 -> string d |] "the mapped digits, the unknown word dropped by --labels"
            let fold = data.Folds |> Array.exactlyOne
            let names (items: Item[]) = items |> Array.map (fun i -> i.Key.Substring(0, i.Key.IndexOf '/')) |> Array.distinct |> Array.sort
            Expect.equal (names fold.Test) [| "data"; scName |] "both datasets have a test part"
            let scTest = fold.Test |> Array.filter (fun i -> i.Key.StartsWith(scName + "/"))
            Expect.isTrue (scTest |> Array.forall (fun i -> i.Speaker = Some(scName + ":1c2b3a4d"))) "Speech Commands' own test list, speakers prefixed by the dataset"
            Expect.equal scTest.Length 40 "every clip of its testing list"
            let fsddTest = fold.Test |> Array.filter (fun i -> i.Key.StartsWith "data/")
            Expect.isTrue (fsddTest |> Array.forall (fun i -> i.Index |> Option.exists (fun x -> x < 5))) "FSDD's official test part"
            let r = Experiment.train options
            let perSource = r.Folds.Head.PerSource
            Expect.equal (perSource |> List.map (fun (name, n, _) -> name, n)) [ "data", fsddTest.Length; scName, 40 ] "test accuracy per dataset"
            let _, info = ModelFile.inspect r.Folds.Head.ModelFile
            let settings = ModelSettings.ofStored r.Folds.Head.ModelFile info.Settings
            Expect.exists (nonNull settings.Data) (fun d -> d.Contains scName) "the model file records the datasets"
            Expect.contains (nonNull settings.LabelMap |> Array.map List.ofArray) [ "zero"; "0" ] "and the label map"
            use metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "metrics.json")))
            Expect.equal (metrics.RootElement.GetProperty("folds").[0].GetProperty("per_source").GetArrayLength()) 2 "metrics.json has the per-dataset accuracies")
    ]
