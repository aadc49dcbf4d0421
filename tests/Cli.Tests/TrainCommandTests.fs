module Hybrid.CliTests.TrainCommandTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.TestSupport
open Hybrid.FeaturesTests

let private run = Commands.run

/// Two speakers, every digit, indexes 0-7.
let private withSubset (fsdd: string) (body: string -> unit) = Commands.withFsddSubset fsdd [ "george"; "nicolas" ] [ 0 .. 7 ] body

/// A tiny run shared by the tests below (trained once, on first use): logreg for one epoch with --batch-size 100000 on
/// synthetic FSDD-named tones of digits 1 and 2 (FSDD lists ten digits) by two speakers, indexes 0-6. Returns the
/// data folder, the run folder and the run's standard output.
let private tinyRun =
    lazy (
        let root = Path.Combine(Path.GetTempPath(), "hybrid-tiny-run-" + Guid.NewGuid().ToString("N"))
        AppDomain.CurrentDomain.ProcessExit.Add(fun _ -> try Directory.Delete(root, true) with _ -> ())
        let data = Path.Combine(root, "data")
        DatasetFixtures.writeFsdd data [ 1; 2 ] [ "ann"; "bob" ] [ 0 .. 6 ]
        let out = Path.Combine(root, "run")
        let code, stdout, err =
            run Hybrid.Cli.TrainCommand.run [ "--data"; data; "--model"; "logreg"; "--epochs"; "1"; "--batch-size"; "100000"; "--device"; "managed"; "--no-plots"; "--out"; out ]
        if code <> 0 then failwithf "the tiny run failed with exit code %d: %s" code err
        data, out, stdout)

[<Tests>]
let tests =
    testSequenced <| testList "TrainCommand" [
        test "--out naming a folder that holds a run is refused with exit code 2 unless --force overwrites it" {
            use temp = new DatasetFixtures.TempFolder()
            // Data that does not exist: a command line that passes the check fails on it with exit code 1.
            let nowhere = temp.Combine "no-such-data"
            for marker in [ "run.json"; "model.hnn"; "model-george.hnn"; "checkpoints" ] do
                let dir = temp.Combine("run-" + marker)
                Directory.CreateDirectory dir |> ignore
                if marker = "checkpoints" then Directory.CreateDirectory(Path.Combine(dir, marker)) |> ignore
                else File.WriteAllText(Path.Combine(dir, marker), "{}")
                let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; nowhere; "--model"; "logreg"; "--out"; dir ]
                Expect.equal code 2 (sprintf "%s: exit code 2 (stderr: %s)" marker err)
                Expect.stringContains err (sprintf "--out %s already holds a run (%s)" dir marker) (sprintf "%s: names the folder and what it holds" marker)
                Expect.stringContains err "--force" (sprintf "%s: and the way out" marker)
                let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; nowhere; "--model"; "logreg"; "--out"; dir; "--force" ]
                Expect.equal code 1 (sprintf "%s: --force passes the check and meets the missing data (stderr: %s)" marker err)
                Expect.isFalse (err.Contains "already holds") (sprintf "%s: no refusal with --force" marker)
            let other = temp.Combine "other"
            Directory.CreateDirectory other |> ignore
            File.WriteAllText(Path.Combine(other, "notes.txt"), "not a run")
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; nowhere; "--model"; "logreg"; "--out"; other ]
            Expect.equal code 1 (sprintf "a folder without a run is used (stderr: %s)" err)
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--resume"; other; "--force" ]
            Expect.equal code 2 "--force with --resume is refused"
            Expect.stringContains err "--force applies only without --resume" "naming why"
            Expect.isTrue (Hybrid.Classifier.RunFile.runContents (temp.Combine "absent")).IsEmpty "an absent folder holds no run"
        }

        test "--labels naming a class without recordings, or --other-label with nothing to fold, is refused with exit code 2" {
            use temp = new DatasetFixtures.TempFolder()
            DatasetFixtures.writeFsdd temp.Path [ 1; 2 ] [ "ann"; "bob" ] [ 0 .. 6 ]
            let common = [ "--data"; temp.Path; "--model"; "logreg"; "--epochs"; "1"; "--device"; "managed"; "--no-plots"; "--out"; temp.Combine "run" ]
            let code, _, err = run Hybrid.Cli.TrainCommand.run (common @ [ "--labels"; "1,3,4" ])
            Expect.equal code 2 (sprintf "exit code 2 (stderr: %s)" err)
            Expect.stringContains err "--labels names classes with no recordings" "the refusal"
            Expect.stringContains err ": 3, 4 (the classes with recordings are 1, 2)" "naming the empty classes and the others"
            let code, _, err = run Hybrid.Cli.TrainCommand.run (common @ [ "--labels"; "1,2"; "--other-label"; "unknown" ])
            Expect.equal code 2 (sprintf "exit code 2 (stderr: %s)" err)
            Expect.stringContains err "--other-label unknown would be a class with no recordings" "an empty other class"
        }

        slow <| test "a batch size above a fold's training rows trains on all of them, saying so; labels without recordings are dropped" {
            let _, out, log = tinyRun.Value
            Expect.stringContains log "data: dropping 8 labels with no recordings: 0, 3, 4, 5, 6, 7, 8, 9" "the dropped labels, named"
            Expect.stringContains log "the batch size 100000 is larger than its" "the clamped batch"
            Expect.stringContains log "training rows; training on batches of" "said once"
            let _, info = Hybrid.Classifier.ModelFile.inspect (Path.Combine(out, "model.hnn"))
            Expect.equal info.Labels [ "1"; "2" ] "a model of the two classes with recordings"
        }

        slow <| test "export says what its graph takes: one whole recording for a trimmed model with --frontend, else a prepared clip, with a warning" {
            let data, _, _ = tinyRun.Value
            use temp = new DatasetFixtures.TempFolder()
            let out = temp.Combine "mlp"
            let code, _, err =
                run Hybrid.Cli.TrainCommand.run [ "--data"; data; "--model"; "mlp"; "--epochs"; "1"; "--device"; "managed"; "--no-plots"; "--out"; out ]
            Expect.equal code 0 (sprintf "the mlp trains (stderr: %s)" err)
            let model = Path.Combine(out, "model.hnn")
            let code, stdout, err = run Hybrid.Cli.ExportCommand.run [ "--model"; model; "--onnx"; temp.Combine "a.onnx"; "--frontend" ]
            Expect.equal code 0 (sprintf "exit code 0 (stderr: %s)" err)
            Expect.stringContains stdout "[1, samples]: one whole recording of any length at 22050 Hz per run" "the summary names the whole-recording input"
            Expect.isFalse (err.Contains "warning:") (sprintf "nothing the graph leaves out (no speeds, no windows): %s" err)
            let code, stdout, err = run Hybrid.Cli.ExportCommand.run [ "--model"; model; "--onnx"; temp.Combine "b.onnx" ]
            Expect.equal code 0 (sprintf "exit code 0 (stderr: %s)" err)
            Expect.stringContains stdout "input 'features' [batch, 40]" "features in batches"
            Expect.stringContains err "warning: predict trims silence" "the trimming it must be given is named"
        }

        slow <| test "predict takes folders (every audio file under them, in path order) mixed with files" {
            let data, out, _ = tinyRun.Value
            use temp = new DatasetFixtures.TempFolder()
            let recordings = Path.Combine(data, "recordings")
            let nested = temp.Combine(Path.Combine("set", "b"))
            Directory.CreateDirectory nested |> ignore
            File.Copy(Path.Combine(recordings, "2_bob_0.wav"), Path.Combine(nested, "z.wav"))
            File.Copy(Path.Combine(recordings, "1_ann_0.wav"), temp.Combine(Path.Combine("set", "a.wav")))
            File.WriteAllText(temp.Combine(Path.Combine("set", "notes.txt")), "not audio")
            let single = Path.Combine(recordings, "1_bob_1.wav")
            let model = Path.Combine(out, "model.hnn")
            let code, stdout, err = run Hybrid.Cli.PredictCommand.run [ "--model"; model; "--device"; "managed"; temp.Combine "set"; single ]
            Expect.equal code 0 (sprintf "exit code 0 (stderr: %s)" err)
            let paths = stdout.Trim().Split('\n') |> Array.map (fun l -> l.Trim().Substring(0, l.Trim().IndexOf ": "))
            Expect.equal paths [| temp.Combine(Path.Combine("set", "a.wav")); Path.Combine(nested, "z.wav"); single |] "the folder's audio files in path order, then the file"
            let empty = temp.Combine "empty"
            Directory.CreateDirectory empty |> ignore
            let code, stdout, err = run Hybrid.Cli.PredictCommand.run [ "--model"; model; "--device"; "managed"; empty; single ]
            Expect.equal code 1 "a folder without audio is a failure"
            Expect.stringContains err (sprintf "predict: %s: no audio file in this folder" empty) "named"
            Expect.equal (stdout.Trim().Split('\n').Length) 1 "the file is still classified"
        }

        slow <| test "a schema mismatch names the schema and the parameter that differs, then both fingerprints" {
            let data, out, _ = tinyRun.Value
            use temp = new DatasetFixtures.TempFolder()
            let path = Path.Combine(out, "model.hnn")
            let _, info = Hybrid.Classifier.ModelFile.inspect path
            use engine = new Hybrid.Dsp.Managed.ManagedEngine()
            let model, _ = Hybrid.Classifier.ModelFile.load engine info.SchemaFingerprint path
            let settings = Hybrid.Classifier.ModelSettings.ofStored path info.Settings
            let features = nonNull settings.Features
            let recorded = nonNull settings.SchemaParameters
            let nFft = Text.RegularExpressions.Regex.Match(recorded, "n_fft=([0-9]+)").Groups.[1].Value
            let changed = recorded.Replace("n_fft=" + nFft + ",", "n_fft=12345,")
            let stale = temp.Combine "stale.hnn"
            Hybrid.Classifier.ModelFile.save stale
                { info with SchemaFingerprint = "0123456789abcdef"
                            Settings = Hybrid.Classifier.ModelSettings.toStored { settings with SchemaParameters = changed } } model
            let audio = Path.Combine(data, "recordings", "1_ann_0.wav")
            let code, _, err = run Hybrid.Cli.PredictCommand.run [ "--model"; stale; "--device"; "managed"; audio ]
            Expect.equal code 1 "exit code 1"
            Expect.stringContains err (sprintf "the model was trained on features '%s'" features) "the schema"
            Expect.stringContains err (sprintf "n_fft 12345 in the model file, %s here" nFft) "the parameter that differs"
            Expect.stringEnds (err.Trim()) (sprintf "(input schema fingerprints: model file 0123456789abcdef, features offered %s)." info.SchemaFingerprint) "the fingerprints last"
            let older = temp.Combine "older.hnn"
            Hybrid.Classifier.ModelFile.save older
                { info with SchemaFingerprint = "0123456789abcdef"
                            Settings = Hybrid.Classifier.ModelSettings.toStored { settings with SchemaParameters = null } } model
            let code, _, err = run Hybrid.Cli.PredictCommand.run [ "--model"; older; "--device"; "managed"; audio ]
            Expect.equal code 1 "exit code 1"
            Expect.stringContains err "records no schema_parameters" "a file without the parameter list says it cannot name one"
        }

        TestData.testWithFsdd "option values outside their domain are refused with exit code 2, naming the option and the range" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let common = [ "--data"; dir; "--device"; "managed"; "--no-plots"; "--out"; Path.Combine(dir, "refused") ]
                for flags, expected in
                    [ [ "--model"; "logreg"; "--lr"; "-1" ], "--lr must be a finite number > 0, i.e. in (0, inf), was -1"
                      [ "--model"; "logreg"; "--lr"; "0" ], "--lr must be a finite number > 0, i.e. in (0, inf), was 0"
                      [ "--model"; "cnn2d"; "--features"; "genre" ], "model 'cnn2d' cannot take features 'genre' of shape [26]"
                      [ "--model"; "logreg"; "--augment"; "freq-mask:4" ], "freq-mask, time-mask and vtlp act on [bands, frames] features; 'genre' has shape [26]"
                      [ "--model"; "cnn2d"; "--augment"; "time-mask:2.5" ], "--augment"
                      [ "--model"; "cnn2d"; "--duration"; "2" ], "--duration 2 applies to schema 'logmel-fsdd' (clips of 8192 samples) only for environmental clips (median recording 2-5 s)" ] do
                    let code, _, err = run Hybrid.Cli.TrainCommand.run (common @ flags)
                    Expect.equal code 2 (sprintf "%A: exit code 2 (stderr: %s)" flags err)
                    Expect.stringContains err expected (sprintf "%A: the message" flags)
                    Expect.isFalse (err.Contains "features " && err.Contains "%)") (sprintf "%A: refused before any extraction (stderr: %s)" flags err)))

        test "an explicitly requested GPU engine that cannot be used is exit code 2; only auto falls back" {
            if not (Seq.contains "cuda" (Hybrid.Dsp.Engines.Available())) then
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeFsdd temp.Path [ 1; 2 ] [ "ann"; "bob" ] [ 0; 1; 2; 3; 4; 5; 6 ]
                let code, _, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; temp.Path; "--model"; "logreg"; "--epochs"; "1"; "--device"; "cuda"; "--no-plots"; "--out"; temp.Combine "run" ]
                Expect.equal code 2 (sprintf "exit code (stderr: %s)" err)
                Expect.stringContains err "engine 'cuda' is unavailable" "names the engine"
                Expect.stringContains err "use 'auto'" "and the fallback"
        }

        slow <| TestData.testWithFsdd "--json ends with one line holding the split, sizes, accuracy and timings" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let code, out, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "3"; "--device"; "managed"; "--no-plots"; "--out"; Path.Combine(dir, "run"); "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                let last = out.Trim().Split('\n') |> Array.last
                use doc = JsonDocument.Parse last
                let root = doc.RootElement
                for key in [ "split"; "model"; "device"; "n_train"; "n_test"; "test_accuracy"; "train_seconds"; "total_seconds"; "per_speaker" ] do
                    Expect.isTrue (fst (root.TryGetProperty key)) (sprintf "expected key %s" key)
                Expect.equal (root.GetProperty("n_train").GetInt32()) 60 "indexes 5-7 of 20 digit-speaker pairs"
                Expect.equal (root.GetProperty("n_test").GetInt32()) 100 "indexes 0-4"
                Expect.equal (root.GetProperty("model").GetString()) "logreg" "model"))

        slow <| TestData.testWithFsdd "--split loso reports every held-out speaker" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let code, out, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "2"; "--split"; "loso"; "--device"; "managed"; "--no-plots"; "--out"; Path.Combine(dir, "loso"); "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                use doc = JsonDocument.Parse(out.Trim().Split('\n') |> Array.last)
                let perSpeaker = doc.RootElement.GetProperty "per_speaker"
                Expect.equal [ for p in perSpeaker.EnumerateObject() -> p.Name ] [ "george"; "nicolas" ] "one accuracy per speaker"
                Expect.isTrue (File.Exists(Path.Combine(dir, "loso", "model-george.hnn"))) "one model per fold"))

        slow <| TestData.testWithFsdd "feature options train on a schema variant that the model file records" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let out = Path.Combine(dir, "variant")
                let code, _, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "2"; "--n-fft"; "1024"; "--n-mfcc"; "13"; "--device"; "managed"; "--no-plots"; "--out"; out ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                let _, info = Hybrid.Classifier.ModelFile.inspect (Path.Combine(out, "model.hnn"))
                let settings = Hybrid.Classifier.ModelSettings.ofStored "model.hnn" info.Settings
                Expect.equal settings.FeatureParameters "n_fft=1024,hop_length=256,win_length=1024,n_mfcc=13" "the variant's parameters"
                let schema = Hybrid.Features.Extraction.replay "genre" "n_fft=1024,hop_length=256,win_length=1024,n_mfcc=13"
                Expect.equal info.SchemaFingerprint schema.Fingerprint "the variant's fingerprint"
                Expect.equal schema.Length 19 "6 spectral statistics and 13 MFCC means"))

        test "an invalid feature option is a usage error naming the option and its range" {
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--model"; "mlp"; "--n-mfcc"; "0"; "--data"; "." ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "an integer >= 1, was 0" "the range"
            Expect.stringContains err "--n-mfcc" "the option"
        }

        testList "layouts" [
            slow <| test "Speech Commands: the official split uses the list files, --labels folds the rest into unknown, background noise feeds snr" {
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeSpeechCommands temp.Path [ "go"; "no"; "stop"; "yes" ] 4 3 1 |> ignore
                let out = temp.Combine "run"
                let code, stdout, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; temp.Path; "--labels"; "yes,no"; "--other-label"; "unknown"; "--epochs"; "2"; "--device"; "managed"; "--no-plots"; "--out"; out; "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                use doc = JsonDocument.Parse(stdout.Trim().Split('\n') |> Array.last)
                let root = doc.RootElement
                Expect.equal (root.GetProperty("split").GetString()) "official" "the dataset's own split"
                Expect.equal [ for l in root.GetProperty("labels").EnumerateArray() -> l.GetString() ] [ "yes"; "no"; "unknown" ] "kept labels, then the other label"
                // 4 words x 4 speakers x 3 takes: speaker 3 tests, speaker 2 validates, speakers 0-1 train.
                Expect.equal (root.GetProperty("n_train").GetInt32(), root.GetProperty("n_validation").GetInt32(), root.GetProperty("n_test").GetInt32()) (24, 12, 12) "train / validation (validation_list.txt) / test (testing_list.txt)"
                Expect.stringContains err "augmentation mixes 2 background-noise recordings" "the _background_noise_ files are the snr noise"
                Expect.equal (root.GetProperty("model").GetString()) "cnn2d" "the default model"
                Expect.isTrue (File.Exists(Path.Combine(out, "model.hnn"))) "model file"
            }

            slow <| test "UrbanSound8K: mixed rates, depths and channels all open; --split folds reports every fold, the mean and the standard deviation" {
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeUrbanSound8K temp.Path [ "dog_bark"; "siren"; "drilling" ] 3 4 2 |> ignore
                let code, stdout, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; temp.Path; "--model"; "mlp"; "--split"; "folds"; "--epochs"; "3"; "--device"; "managed"; "--no-plots"; "--out"; temp.Combine "folds"; "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                Expect.stringContains err "standard deviation" "the summary (on stderr with --json) gives the spread over folds"
                use doc = JsonDocument.Parse(stdout.Trim().Split('\n') |> Array.last)
                let root = doc.RootElement
                Expect.equal (root.GetProperty("skipped").GetInt32()) 0 "8/16/24-bit, float, stereo and 11-96 kHz files are all read"
                let folds = [ for f in root.GetProperty("folds").EnumerateArray() -> f.GetProperty("name").GetString(), f.GetProperty("n_test").GetInt32() ]
                Expect.equal folds [ "fold1", 12; "fold2", 12; "fold3", 12 ] "one fold per predefined fold"
                let accuracies = [ for f in root.GetProperty("folds").EnumerateArray() -> f.GetProperty("test_accuracy").GetDouble() ]
                let mean = List.average accuracies
                Expect.floatClose Accuracy.veryHigh (root.GetProperty("test_accuracy").GetDouble()) mean "the mean over folds"
                let sd = sqrt ((accuracies |> List.sumBy (fun a -> (a - mean) ** 2.0)) / 2.0)
                Expect.floatClose Accuracy.veryHigh (root.GetProperty("test_accuracy_std").GetDouble()) sd "the sample standard deviation"
                let code, stdout, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; temp.Path; "--model"; "mlp"; "--split"; "fold:2,3"; "--epochs"; "2"; "--device"; "managed"; "--no-plots"; "--out"; temp.Combine "held"; "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                use doc = JsonDocument.Parse(stdout.Trim().Split('\n') |> Array.last)
                let fold = doc.RootElement.GetProperty("folds").[0]
                Expect.equal (fold.GetProperty("name").GetString()) "fold2+3" "two folds held out together"
                Expect.equal (fold.GetProperty("n_test").GetInt32()) 24 "folds 2 and 3 are the test part"
                Expect.equal (fold.GetProperty("n_train").GetInt32() + fold.GetProperty("n_validation").GetInt32()) 12 "fold 1 trains and validates"
            }

            slow <| test "GTZAN: long tracks are cut into windows, accuracy is per track, and predict averages windows the same way" {
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeGtzan temp.Path [ "blues"; "metal"; "reggae" ] 5 6.0 3 |> ignore
                let out = temp.Combine "run"
                let code, stdout, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; temp.Path; "--split"; "random:0.4"; "--epochs"; "4"; "--test-speeds"; "none"; "--device"; "managed"; "--no-plots"; "--out"; out; "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                use doc = JsonDocument.Parse(stdout.Trim().Split('\n') |> Array.last)
                let root = doc.RootElement
                Expect.stringContains (nonNull (root.GetProperty("clips").GetString())) "averaged per recording" "windows by default for 6 s tracks"
                Expect.equal [ for l in root.GetProperty("labels").EnumerateArray() -> l.GetString() ] [ "blues"; "metal"; "reggae" ] "the genres under genres/"
                Expect.equal (root.GetProperty("n_test").GetInt32()) 6 "two tracks per genre, counted as tracks"
                use metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "metrics.json")))
                let confusion = metrics.RootElement.GetProperty("folds").[0].GetProperty("confusion")
                let counted = [ for r in confusion.EnumerateArray() do for c in r.EnumerateArray() -> c.GetInt32() ] |> List.sum
                Expect.equal counted 6 "the confusion matrix counts tracks, not windows"
                let tracks = Directory.GetFiles(Path.Combine(temp.Path, "genres"), "*.wav", SearchOption.AllDirectories) |> Array.sort
                let predictions = Hybrid.Classifier.Inference.predict "managed" ignore (Path.Combine(out, "model.hnn")) (List.ofArray tracks)
                Expect.equal predictions.Length tracks.Length "one prediction per track"
                for p in predictions do
                    Expect.floatClose { absolute = 1e-4; relative = 0.0 } (p.Probabilities |> List.sumBy snd) 1.0 "averaged probabilities sum to 1"
            }

            slow <| test "UrbanSound8K with the default model: one log-mel image of the whole clip, replayed by predict" {
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeUrbanSound8K temp.Path [ "dog_bark"; "siren" ] 2 3 7 |> ignore
                let out = temp.Combine "run"
                let code, stdout, err =
                    run Hybrid.Cli.TrainCommand.run [ "--data"; temp.Path; "--split"; "fold:2"; "--epochs"; "1"; "--duration"; "4"; "--test-speeds"; "none"; "--device"; "managed"; "--no-plots"; "--out"; out; "--json" ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                use doc = JsonDocument.Parse(stdout.Trim().Split('\n') |> Array.last)
                Expect.equal (doc.RootElement.GetProperty("clips").GetString()) "8000 Hz, clips of 4 s" "one 4 s clip per recording (--duration 4), no windows"
                let wavs = Directory.GetFiles(Path.Combine(temp.Path, "audio"), "*.wav", SearchOption.AllDirectories) |> Array.sort
                let predictions = Hybrid.Classifier.Inference.predict "managed" ignore (Path.Combine(out, "model.hnn")) [ wavs.[0]; wavs.[1] ]
                Expect.equal predictions.Length 2 "predict replays the whole-clip variant"
            }

            test "validation and test parts are disjoint and the test part is never seen in training" {
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeUrbanSound8K temp.Path [ "a"; "b" ] 2 5 4 |> ignore
                let data = Hybrid.Classifier.Experiment.prepareData { Hybrid.Classifier.Experiment.defaults with Data = [ temp.Path ]; Split = Some "fold:2"; Validation = 0.2 }
                let fold = data.Folds.[0]
                let keys (items: Hybrid.Features.Item[]) = items |> Array.map (fun i -> i.Key) |> Set.ofArray
                Expect.isEmpty (Set.intersect (keys fold.Train) (keys fold.Validation)) "train and validation disjoint"
                Expect.isEmpty (Set.intersect (keys (Array.append fold.Train fold.Validation)) (keys fold.Test)) "test apart from both"
                Expect.equal fold.Validation.Length 2 "20% of each label's 5 training clips"
                Expect.isTrue (fold.Test |> Array.forall (fun i -> i.Fold = Some 2)) "fold 2 is the test part"
            }

            slow <| test "--resume continues an interrupted run and ends with the same model as an uninterrupted one" {
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeUrbanSound8K temp.Path [ "a"; "b"; "c" ] 2 4 5 |> ignore
                let options out =
                    { Hybrid.Classifier.Experiment.defaults with
                        Data = [ temp.Path ]; Split = Some "fold:2"; Model = "mlp"; Epochs = Some 4; EarlyStopping = Some 10; Validation = 0.25
                        Device = "managed"; Out = Some out; Progress = false; Plots = false }
                let whole = Hybrid.Classifier.Experiment.train (options (temp.Combine "whole"))
                let interrupted = temp.Combine "interrupted"
                let stopAt (line: string) = if line.Contains "epoch 2/4" then raise (OperationCanceledException "interrupted")
                Expect.throwsT<OperationCanceledException> (fun () -> Hybrid.Classifier.Experiment.train { options interrupted with Log = stopAt } |> ignore) "interrupted after epoch 2"
                Expect.isFalse (File.Exists(Path.Combine(interrupted, "model.hnn"))) "no model yet"
                let resumed = Hybrid.Classifier.Experiment.train { Hybrid.Classifier.Experiment.defaults with Resume = Some interrupted; Progress = false; Plots = false }
                Expect.equal resumed.Folds.Head.ResumedAfterEpochs 2 "resumed after the checkpoint of epoch 2"
                Expect.equal resumed.TestAccuracy whole.TestAccuracy "same accuracy"
                Expect.equal (File.ReadAllBytes(Path.Combine(interrupted, "model.hnn"))) (File.ReadAllBytes(Path.Combine(temp.Combine "whole", "model.hnn"))) "bit-identical model files"
            }

            slow <| test "--resume replays the run's feature parameters (a schema variant) and ends as the uninterrupted run; only a conflicting option is refused" {
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeUrbanSound8K temp.Path [ "a"; "b"; "c" ] 2 4 5 |> ignore
                let variant = { Hybrid.Features.Extraction.noOverrides with NFft = Some 1024; NMfcc = Some 20 }
                let options out =
                    { Hybrid.Classifier.Experiment.defaults with
                        Data = [ temp.Path ]; Split = Some "fold:2"; Model = "mlp"; Epochs = Some 4; Validation = 0.25
                        Device = "managed"; Out = Some out; Progress = false; Plots = false; FeatureParameters = variant }
                let whole = Hybrid.Classifier.Experiment.train (options (temp.Combine "whole"))
                let modelText dir = Text.Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(dir, "model.hnn")))
                Expect.stringContains (modelText (temp.Combine "whole")) "n_mfcc=20" "the run trained on the variant"
                let interrupted = temp.Combine "interrupted"
                let stopAt (line: string) = if line.Contains "epoch 2/4" then raise (OperationCanceledException "interrupted")
                Expect.throwsT<OperationCanceledException> (fun () -> Hybrid.Classifier.Experiment.train { options interrupted with Log = stopAt } |> ignore) "interrupted after epoch 2"
                let recorded = File.ReadAllText(Path.Combine(interrupted, Hybrid.Classifier.RunFile.FileName))
                Expect.stringContains recorded "\"n_mfcc\": 20" "run.json records the variant's parameters"
                // Options that repeat the recorded values (or the defaults the run left in place) are no conflict.
                let given = { Hybrid.Classifier.Experiment.defaults with Model = "mlp"; Epochs = Some 4; FeatureParameters = { Hybrid.Features.Extraction.noOverrides with NMfcc = Some 20; NMels = Some 128 } }
                Expect.isEmpty (Hybrid.Classifier.RunFile.resumeConflicts interrupted given [ "--model"; "--epochs"; "--n-mfcc"; "--n-mels" ]) "agreeing options"
                let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--resume"; interrupted; "--n-mfcc"; "13"; "--epochs"; "4" ]
                Expect.equal code 2 (sprintf "a conflicting --n-mfcc exits 2 (stderr: %s)" err)
                for part in [ "--n-mfcc 13"; "records 20"; "run.json" ] do
                    Expect.stringContains err part "the message names the option, the given and the recorded value"
                Expect.isFalse (err.Contains "--epochs") "the agreeing --epochs is not named"
                let resumed = Hybrid.Classifier.Experiment.train { Hybrid.Classifier.Experiment.defaults with Resume = Some interrupted; Progress = false; Plots = false }
                Expect.equal resumed.Folds.Head.ResumedAfterEpochs 2 "resumed after the checkpoint of epoch 2"
                Expect.stringContains (modelText interrupted) "n_mfcc=20" "the resumed run trained on the same variant"
                Expect.equal (File.ReadAllBytes(Path.Combine(interrupted, "model.hnn"))) (File.ReadAllBytes(Path.Combine(temp.Combine "whole", "model.hnn"))) "bit-identical model files"
            }

            test "a missing --data folder is an error saying where each dataset comes from" {
                let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; Path.Combine(Path.GetTempPath(), "no-such-dataset-" + Guid.NewGuid().ToString("N")) ]
                Expect.equal code 1 "exit code 1"
                for name in [ "folder not found"; "Speech Commands"; "UrbanSound8K"; "GTZAN" ] do
                    Expect.stringContains err name (sprintf "mentions %s" name)
            }

            slow <| test "a fresh run into a used folder trains afresh instead of continuing its checkpoints" {
                use temp = new DatasetFixtures.TempFolder()
                DatasetFixtures.writeUrbanSound8K temp.Path [ "a"; "b" ] 2 3 6 |> ignore
                let options epochs =
                    { Hybrid.Classifier.Experiment.defaults with
                        Data = [ temp.Path ]; Split = Some "fold:2"; Model = "mlp"; Epochs = Some epochs; Validation = 0.4
                        Device = "managed"; Out = Some(temp.Combine "run"); Progress = false; Plots = false }
                Hybrid.Classifier.Experiment.train (options 3) |> ignore
                let second = Hybrid.Classifier.Experiment.train (options 2)
                Expect.equal second.Folds.Head.ResumedAfterEpochs 0 "nothing resumed"
                Expect.equal second.Folds.Head.History.Length 2 "two epochs of its own"
            }

            test "--resume checks every option run.json records: the run's own values agree, another value conflicts naming both" {
                use temp = new DatasetFixtures.TempFolder()
                let recipe = Hybrid.Classifier.Recipes.byName "cnn2d"
                let o =
                    { Hybrid.Classifier.Experiment.defaults with
                        Data = [ temp.Combine "a"; temp.Combine "b" ]; LabelMap = [ "zero", "0"; "one", "1" ]; Split = Some "kfold:3"
                        Model = "cnn2d"; LearningRate = Some 0.002; Labels = Some [ "0"; "1" ]; OtherLabel = Some "rest"; Segment = Some 1.0
                        SegmentHop = Some 0.25; Loudness = Some -20.0; Noise = Some(temp.Combine "noise"); Device = "managed"; Seed = 3
                        Out = Some temp.Path
                        FeatureParameters = { Hybrid.Features.Extraction.noOverrides with NMels = Some 32; Other = [ "top_db", "60" ] } }
                Hybrid.Classifier.RunFile.write temp.Path o.Data o recipe.AugmentPool recipe.Trim
                // Every option train passes to the check with --resume (all but the ones that do not change the result).
                let unrecorded = set [ "--resume"; "--force"; "--no-plots"; "--strict"; "--json"; "--cluster"; "--workers"; "--certificate"; "--threads" ]
                let flags =
                    [ for case in Argu.ArgumentParser.Create<Hybrid.Cli.TrainCommand.TrainArgs>().GetArgumentCases() do
                        let flag = List.head case.CommandLineNames.Value
                        if not (unrecorded.Contains flag) then flag ]
                Expect.isGreaterThan flags.Length 30 "the options of train"
                Expect.isEmpty (Hybrid.Classifier.RunFile.resumeConflicts temp.Path o flags) "the run's own values, defaults included, agree"
                let changed =
                    { o with SegmentHop = Some 0.5; LearningRate = None; LabelMap = [ "zero", "0" ]
                             FeatureParameters = { o.FeatureParameters with Other = [ "top_db", "80" ] } }
                Expect.equal (Hybrid.Classifier.RunFile.resumeConflicts temp.Path changed flags)
                    [ "--label-map", "zero=0,one=1", "zero=0"; "--top-db", "60", "80"; "--lr", "0.002", string recipe.LearningRate; "--segment-hop", "0.25", "0.5" ]
                    "each changed option, with the recorded value and the given one (the recipe's learning rate where it is left out)"
            }

            test "--resume of a folder that holds no run is an error naming run.json" {
                use temp = new DatasetFixtures.TempFolder()
                let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--resume"; temp.Path ]
                Expect.equal code 1 "exit code 1"
                Expect.stringContains err "run.json" "names the missing file"
            }
        ]

        slow <| TestData.testWithFsdd "train lists a truncated recording as a warning and uses it; --strict refuses it, naming the file" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let cut = Path.Combine(dir, "recordings", "3_george_7.wav")
                let whole = File.ReadAllBytes cut
                File.WriteAllBytes(cut, whole.[.. whole.Length - 1001])
                let args = [ "--data"; dir; "--model"; "logreg"; "--epochs"; "1"; "--device"; "managed"; "--no-plots"; "--out"; Path.Combine(dir, "run") ]
                let code, out, err = run Hybrid.Cli.TrainCommand.run args
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                Expect.stringContains out (sprintf "warning %s: truncated file" cut) "the warning is listed"
                // A folder of its own: the first run's folder now holds a run, which --out refuses to overwrite.
                let code, _, err = run Hybrid.Cli.TrainCommand.run (args @ [ "--strict"; "--out"; Path.Combine(dir, "strict") ])
                Expect.equal code 1 (sprintf "--strict exits 1 (stderr: %s)" err)
                Expect.stringContains err "3_george_7.wav" "naming the refused file"
                Expect.stringContains err "truncated file" "and why"))

        test "an unknown model is a usage error naming the valid models" {
            let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--model"; "transformer"; "--data"; "." ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "cnn2d" "expected the valid names"
        }

        slow <| TestData.testWithFsdd "predict with several files gives a result per readable file and an error per bad one, then exits 1" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let runDir = Path.Combine(dir, "run")
                let code, _, err = run Hybrid.Cli.TrainCommand.run [ "--data"; dir; "--model"; "logreg"; "--epochs"; "1"; "--device"; "managed"; "--no-plots"; "--out"; runDir ]
                Expect.equal code 0 (sprintf "training exit code (stderr: %s)" err)
                let model = Path.Combine(runDir, "model.hnn")
                let good1 = Path.Combine(dir, "recordings", "0_george_0.wav")
                let good2 = Path.Combine(dir, "recordings", "5_nicolas_3.wav")
                let nanFile = Path.Combine(dir, "nan.wav")
                Hybrid.Features.Wav.write nanFile Hybrid.Features.SampleFormat.Float32 { SampleRate = 8000; Samples = [| [| 0.1f; nanf; 0.2f |] |] }
                let missing = Path.Combine(dir, "missing.wav")
                let cut = Path.Combine(dir, "cut.wav")
                let whole = File.ReadAllBytes good2
                File.WriteAllBytes(cut, whole.[.. whole.Length - 1001])
                let files = [ good1; nanFile; missing; cut; good2 ]
                let code, out, err = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed" ] @ files)
                Expect.equal code 1 "exit code 1: some files could not be read"
                let lines = out.Trim().Split('\n') |> Array.map (fun l -> l.Trim())
                Expect.equal (lines |> Array.map (fun l -> l.Substring(0, l.IndexOf ": "))) [| good1; cut; good2 |] "a result line per readable file, in order"
                Expect.stringContains err (sprintf "predict: %s: non-finite samples: NaN at frame 1, channel 0" nanFile) "an error line naming the NaN file and why"
                Expect.stringContains err (sprintf "predict: %s: no such file" missing) "an error line naming the missing file, once"
                let empty = Path.Combine(dir, "empty.wav")
                Hybrid.Features.Wav.write empty Hybrid.Features.SampleFormat.Pcm16 { SampleRate = 8000; Samples = [| [||] |] }
                let emptyCode, emptyOut, emptyErr = run Hybrid.Cli.PredictCommand.run [ "--model"; model; "--device"; "managed"; empty; good1 ]
                Expect.equal emptyCode 1 "a recording without frames is not classified"
                Expect.stringContains emptyErr (sprintf "predict: %s: holds no audio frames" empty) "its error line says why, as the dataset scan does"
                Expect.equal (emptyOut.Trim().Split('\n').Length) 1 "the other file still gets its result"
                Expect.stringContains err (sprintf "predict: warning %s: truncated file" cut) "the truncated file's warning"
                let code, out, _ = run Hybrid.Cli.PredictCommand.run ([ "--model"; model; "--device"; "managed"; "--json" ] @ files)
                Expect.equal code 1 "--json: exit code 1 too"
                let items = out.Trim().Split('\n') |> Array.map (fun l -> JsonDocument.Parse(l).RootElement)
                Expect.equal (items |> Array.map (fun e -> e.GetProperty("path").GetString() |> nonNull)) (Array.ofList files) "one object per file, in order"
                Expect.equal (items |> Array.map (fun e -> fst (e.TryGetProperty "error"))) [| false; true; true; false; false |] "an error field exactly for the bad files"
                Expect.stringStarts (items.[1].GetProperty("error").GetString() |> nonNull) "non-finite samples" "the NaN file's error"
                Expect.equal (items |> Array.map (fun e -> fst (e.TryGetProperty "label"))) [| true; false; false; true; true |] "a label for every readable file"
                Expect.equal (items.[3].GetProperty("warning").ValueKind) JsonValueKind.String "the truncated file carries its warning"
                let code, out, _ = run Hybrid.Cli.PredictCommand.run [ "--model"; model; "--device"; "managed"; good1; good2 ]
                Expect.equal code 0 "exit code 0 when every file was classified"
                Expect.equal (out.Trim().Split('\n').Length) 2 "two results"))

        test "predict without files is a usage error" {
            let code, _, err = run Hybrid.Cli.PredictCommand.run [ "--model"; "missing.hnn" ]
            Expect.equal code 2 "exit code 2"
            Expect.stringContains err "WAV file" "expected what is missing"
        }
    ]
