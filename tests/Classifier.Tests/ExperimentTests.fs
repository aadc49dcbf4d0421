module Hybrid.ClassifierTests.ExperimentTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Classifier
open Hybrid.Features
open Hybrid.TestSupport

/// A small FSDD-shaped folder: every digit of two speakers, indexes 0-11 (official split: 0-4 test).
let private withSubset (fsdd: string) (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-experiment-" + Guid.NewGuid().ToString("N"))
    let recordings = Path.Combine(dir, "recordings")
    Directory.CreateDirectory recordings |> ignore
    try
        for digit in 0 .. 9 do
            for speaker in [ "jackson"; "theo" ] do
                for index in 0 .. 11 do
                    let name = sprintf "%d_%s_%d.wav" digit speaker index
                    File.Copy(Path.Combine(fsdd, "recordings", name), Path.Combine(recordings, name))
        body dir
    finally
        Directory.Delete(dir, true)

let private options dir out =
    { Experiment.defaults with
        Data = [ dir ]; Model = "mlp"; Epochs = Some 15; Device = "managed"; Out = Some out; Progress = false }

/// Runs `body` on a new temporary folder and a function that writes its run.json with the given text; deletes the
/// folder after.
let private withRunFileDir (body: string -> (string -> unit) -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-runfile-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try body dir (fun json -> File.WriteAllText(Path.Combine(dir, RunFile.FileName), json))
    finally Directory.Delete(dir, true)

[<Tests>]
let tests =
    testSequenced <| testList "Experiment" [
        slow <| TestData.testWithFsdd "a training run leaves the model, metrics, confusion matrix, curves, examples and report" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let out = Path.Combine(dir, "run")
                let r = Experiment.train (options dir out)
                Expect.equal r.Folds.Length 1 "one fold for the official split"
                let fold = r.Folds.Head
                Expect.equal (fold.NTrain + fold.NValidation, fold.NTest) (140, 100) "indexes 5-11 train and validate, 0-4 test"
                Expect.equal fold.NValidation 20 "one of each digit-speaker pair's seven training clips validates"
                Expect.isGreaterThan fold.TestAccuracy 0.5 "well above chance (0.1) after 15 epochs"
                for f in [ "model.hnn"; "metrics.json"; "confusion.csv"; "report.html"; "plots/confusion.png"; "plots/loss.png"; "plots/accuracy.png"
                           "plots/example-0-waveform.png"; "plots/example-9-mfcc.png" ] do
                    Expect.isTrue (File.Exists(Path.Combine(out, f))) (sprintf "expected %s" f)
                let _, _, colours = Plots.inspectPng (Path.Combine(out, "plots", "loss.png"))
                Expect.isGreaterThan colours 8 "the loss curves are not blank"
                use metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "metrics.json")))
                Expect.floatClose Accuracy.veryHigh (metrics.RootElement.GetProperty("test_accuracy").GetDouble()) fold.TestAccuracy "metrics.json holds the test accuracy"
                let confusion = File.ReadAllLines(Path.Combine(out, "confusion.csv"))
                Expect.equal confusion.Length 11 "header and one row per label"
                let counted = confusion.[1..] |> Array.sumBy (fun l -> l.Split(',').[1..] |> Array.sumBy int)
                Expect.equal counted 100 "the confusion matrix counts every test clip"
                let html = File.ReadAllText(Path.Combine(out, "report.html"))
                Expect.stringContains html "plots/confusion.png" "the report shows the confusion matrix"
                // predict applies the same preprocessing: its labels match the evaluation's accuracy.
                let testFiles = Directory.GetFiles(Path.Combine(dir, "recordings")) |> Array.filter (fun f -> (Dataset.tryParseFsddName (nonNull (Path.GetFileName f))) |> Option.exists (fun (_, _, i) -> i < 5)) |> Array.sort
                let predictions = Inference.predict "managed" ignore (Path.Combine(out, "model.hnn")) (List.ofArray testFiles)
                let correct = predictions |> List.filter (fun p -> (nonNull (Path.GetFileName p.Path)).StartsWith(p.Label + "_")) |> List.length
                Expect.floatClose Accuracy.veryHigh (float correct / float testFiles.Length) fold.TestAccuracy "predict agrees with the evaluation"
                for p in predictions do
                    Expect.floatClose { absolute = 1e-4; relative = 0.0 } (p.Probabilities |> List.sumBy snd) 1.0 "probabilities sum to 1"))

        slow <| TestData.testWithFsdd "the same seed gives the same accuracy and weights" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let a = Experiment.train { options dir (Path.Combine(dir, "a")) with Epochs = Some 4; Plots = false }
                let b = Experiment.train { options dir (Path.Combine(dir, "b")) with Epochs = Some 4; Plots = false }
                Expect.equal a.TestAccuracy b.TestAccuracy "same accuracy"
                let bytes name = File.ReadAllBytes(Path.Combine(dir, name, "model.hnn"))
                // The header records no paths or times, so identical weights give identical files.
                Expect.equal (bytes "a") (bytes "b") "bit-identical model files"))

        slow <| TestData.testWithFsdd "an augment pool: every version extracted, the log, run.json and model file say so, and a resumed run ends as an uninterrupted one" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let lines = Collections.Concurrent.ConcurrentQueue<string>()
                let pooled out = { options dir out with Model = "cnn1d"; Epochs = Some 3; AugmentPool = Some 2; Plots = false; Log = lines.Enqueue }
                let whole = Experiment.train (pooled (Path.Combine(dir, "whole")))
                Expect.exists lines (fun l -> l.Contains "1 augmented copy drawn each epoch from 2 versions") "the fold's log line names the pool"
                let _, info = ModelFile.inspect (Path.Combine(dir, "whole", "model.hnn"))
                let settings = ModelSettings.ofStored "model.hnn" info.Settings
                Expect.equal settings.AugmentPool (Nullable 2) "the model file records the pool"
                Expect.equal settings.Copies (Nullable 1) "and the rows per clip"
                Expect.stringContains (File.ReadAllText(Path.Combine(dir, "whole", RunFile.FileName))) "\"augment_pool\": 2" "run.json records it"
                Experiment.train { pooled (Path.Combine(dir, "fixed")) with AugmentPool = Some 1; Log = ignore } |> ignore
                let _, fixedInfo = ModelFile.inspect (Path.Combine(dir, "fixed", "model.hnn"))
                Expect.equal (ModelSettings.ofStored "model.hnn" fixedInfo.Settings).AugmentPool (Nullable 1) "--augment-pool 1: the same copy every epoch"
                Expect.notEqual (File.ReadAllBytes(Path.Combine(dir, "fixed", "model.hnn"))) (File.ReadAllBytes(Path.Combine(dir, "whole", "model.hnn")))
                    "drawing from two versions trains another model than one fixed copy"
                let interrupted = Path.Combine(dir, "interrupted")
                let stopAt (line: string) = if line.Contains "epoch 2/3" then raise (OperationCanceledException "interrupted")
                Expect.throwsT<OperationCanceledException> (fun () -> Experiment.train { pooled interrupted with Log = stopAt } |> ignore) "interrupted after epoch 2"
                let resumed = Experiment.train { Experiment.defaults with Resume = Some interrupted; Progress = false; Plots = false }
                Expect.equal resumed.Folds.Head.ResumedAfterEpochs 2 "resumed after the checkpoint of epoch 2"
                Expect.equal resumed.TestAccuracy whole.TestAccuracy "same accuracy"
                Expect.equal (File.ReadAllBytes(Path.Combine(interrupted, "model.hnn"))) (File.ReadAllBytes(Path.Combine(dir, "whole", "model.hnn"))) "bit-identical model files"))

        test "pool choices: each augmented slot draws among the same recording window in every version that has it" {
            // Item 0 has one window and item 1 two; augmentation gave version 2 two windows of item 0 and one of item 1.
            let items = [| 0; 1; 1;   0; 1; 1;   0; 0; 1 |]
            let part : PartRows =
                { File = ""; RowLength = 1; Physical = [| 0 .. 8 |]; Labels = Array.map (fun i -> i * 3) items; Items = items; Blocks = [| 0; 3; 6; 9 |] }
            Expect.equal (FeatureStore.poolChoices part 1 2) [| [| 0 |]; [| 1 |]; [| 2 |]; [| 3; 6 |]; [| 4; 8 |]; [| 5 |] |]
                "the clips as they are, then version 1's slots, each with its window in either version"
            Expect.equal (FeatureStore.poolChoices part 2 2) [| [| 0 |]; [| 1 |]; [| 2 |]; [| 3; 6 |]; [| 4; 8 |]; [| 5 |]; [| 3; 6 |]; [| 7 |]; [| 4; 8 |] |]
                "two slots per clip: laid out as versions 1 and 2"
            for choices in FeatureStore.poolChoices part 2 2 do
                Expect.equal (choices |> Array.map (fun r -> items.[r]) |> Array.distinct |> Array.length) 1 "one recording (one label) per slot"
            Expect.throwsT<ArgumentException> (fun () -> FeatureStore.poolChoices part 1 3 |> ignore) "three versions, two blocks"
            Expect.throwsT<ArgumentException> (fun () -> FeatureStore.poolChoices part 3 2 |> ignore) "more slots than versions"
        }

        TestData.testWithFsdd "the augment pool is refused without waveform augmentation, and kept to the copies with --cluster" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let o = { options dir (Path.Combine(dir, "run")) with Model = "cnn2d" }
                let data = Experiment.prepareData o
                Expect.equal (Experiment.resolve o data).AugmentPool 3 "cnn2d's own pool"
                Expect.equal (Experiment.resolve { o with AugmentPool = Some 5 } data).AugmentPool 5 "--augment-pool 5"
                let none = Expect.throwsC (fun () -> Experiment.resolve { o with Augment = Some ""; AugmentPool = Some 2 } data |> ignore) id
                Expect.stringContains none.Message "no waveform augmentation" "a pool with nothing to draw"
                Expect.equal (Experiment.resolve { o with Augment = Some "" } data).AugmentPool 0 "no augmentation, no pool"
                Expect.equal (Experiment.resolve { o with Augment = Some ""; AugmentPool = Some 1 } data).AugmentPool 0 "--augment-pool 1 asks for nothing"
                Expect.throwsT<ArgumentException> (fun () -> Experiment.resolve { o with AugmentPool = Some 0 } data |> ignore) "a pool of 0"
                let lines = ResizeArray<string>()
                let clustered = Experiment.resolve { o with Distributed = Some ignore; Log = lines.Add } data
                Expect.equal (clustered.Copies, clustered.AugmentPool) (1, 1) "--cluster: the workers read one fixed copy"
                Expect.exists lines (fun l -> l.Contains "--cluster") "and the log says why"
                Expect.equal (Experiment.resolve { o with Model = "cnn1d" } data).AugmentPool 1 "cnn1d keeps one copy"))

        slow <| TestData.testWithFsdd "predict refuses a model whose schema fingerprint differs from its extractor" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let out = Path.Combine(dir, "run")
                Experiment.train { options dir out with Epochs = Some 1; Plots = false } |> ignore
                let path = Path.Combine(out, "model.hnn")
                let _, info = ModelFile.inspect path
                let model, _ = ModelFile.load (new Hybrid.Dsp.Managed.ManagedEngine()) info.SchemaFingerprint path
                let stale = Path.Combine(out, "stale.hnn")
                ModelFile.save stale { info with SchemaFingerprint = "0123456789abcdef" } model
                let file = Directory.GetFiles(Path.Combine(dir, "recordings")).[0]
                Expect.throwsT<SchemaMismatchException> (fun () -> Inference.predict "managed" ignore stale [ file ] |> ignore) "fingerprint mismatch"))

        slow <| TestData.testWithFsdd "predict replays test-time speed averaging: its log-loss equals the evaluation's" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let out = Path.Combine(dir, "run")
                let r = Experiment.train { options dir out with Epochs = Some 6; Plots = false; TestSpeeds = Some [ 0.9, 0.5; 1.0, 1.0; 1.1, 0.5 ] }
                Expect.equal r.TestSpeeds [ 0.9, 0.5; 1.0, 1.0; 1.1, 0.5 ] "the run reports its speeds"
                let path = Path.Combine(out, "model.hnn")
                let _, info = ModelFile.inspect path
                let settings = ModelSettings.ofStored path info.Settings
                Expect.equal settings.TestSpeeds "0.9*0.5,1,1.1*0.5" "the model file records the speeds"
                let testFiles = Directory.GetFiles(Path.Combine(dir, "recordings")) |> Array.filter (fun f -> (Dataset.tryParseFsddName (nonNull (Path.GetFileName f))) |> Option.exists (fun (_, _, i) -> i < 5)) |> Array.sort
                let logLoss (predictions: Prediction list) =
                    predictions
                    |> List.averageBy (fun p ->
                        let label = (nonNull (Path.GetFileName p.Path)).Substring(0, 1)
                        -log (max 1e-15 (p.Probabilities |> List.find (fun (l, _) -> l = label) |> snd)))
                let averaged = Inference.predict "managed" ignore path (List.ofArray testFiles)
                Expect.floatClose { absolute = 1e-4; relative = 1e-4 } (logLoss averaged) r.Folds.Head.Metrics.LogLoss "predict's log-loss is the evaluation's"
                // The same weights without the setting predict from the clips alone: different probabilities, so the
                // agreement above cannot hold when predict skips the averaging.
                let plain = Path.Combine(out, "plain.hnn")
                let model, _ = ModelFile.load (new Hybrid.Dsp.Managed.ManagedEngine()) info.SchemaFingerprint path
                ModelFile.save plain { info with Settings = ModelSettings.toStored { settings with TestSpeeds = null } } model
                let single = Inference.predict "managed" ignore plain (List.ofArray testFiles)
                Expect.isGreaterThan (abs (logLoss single - logLoss averaged)) 1e-3 "averaging changes the probabilities"))

        // Model files written before the single extraction path (fixtures trained and run with that code: logreg on the
        // genre table, which then cut any-length clips to 8,192 samples, and logreg on logmel-fsdd) still load and
        // predict the probabilities that code predicted for the same four recordings.
        TestData.testWithFsdd "model files written before feature parameters were recorded predict as they did" (fun fsdd ->
            let root = TestData.repositoryRoot () |> Option.defaultWith (fun () -> failtest "repository root not found")
            let fixtures = Path.Combine(root, "tests", "Classifier.Tests", "fixtures")
            // Made by the build before feature parameters were recorded (8c1a265): an any-length schema (cut to 8,192
            // samples then) and a fixed-length one. (The genre schema changed since: chroma estimates its tuning.)
            for name in [ "legacy-mfcc-mean40-logreg"; "legacy-logmel-fsdd-logreg" ] do
                let expected =
                    File.ReadAllLines(Path.Combine(fixtures, name + ".predictions.jsonl"))
                    |> Array.map (fun line ->
                        use doc = JsonDocument.Parse line
                        let file = nonNull (Path.GetFileName(nonNull (doc.RootElement.GetProperty("path").GetString())))
                        file, [ for p in doc.RootElement.GetProperty("probabilities").EnumerateObject() -> p.Name, p.Value.GetDouble() ])
                let model = Path.Combine(fixtures, name + ".hnn")
                let _, info = ModelFile.inspect model
                Expect.isNull (ModelSettings.ofStored model info.Settings).FeatureParameters "a file from before feature parameters were recorded"
                let files = [ for file, _ in expected -> Path.Combine(fsdd, "recordings", file) ]
                let predictions = Inference.predict "managed" ignore model files
                for (file, probabilities), p in Array.zip expected (Array.ofList predictions) do
                    for (label, e), (label', a) in List.zip probabilities p.Probabilities do
                        Expect.equal label' label "label order"
                        Expect.floatClose { absolute = 1e-6; relative = 1e-5 } a e (sprintf "%s: %s's P(%s)" name file label))

        slow <| TestData.testWithFsdd "feature parameters derive a schema variant that the model file records and predict replays" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let out = Path.Combine(dir, "run")
                let overrides = { Extraction.noOverrides with NFft = Some 1024; NMels = Some 64; NMfcc = Some 24; FMax = Some 8000.0 }
                let r = Experiment.train { options dir out with Epochs = Some 10; Plots = false; FeatureParameters = overrides }
                let path = Path.Combine(out, "model.hnn")
                let _, info = ModelFile.inspect path
                let schema = Extraction.variant (Hybrid.Features.Schemas.Schemas.ByName "mfcc-mean40") overrides
                Expect.isTrue schema.IsVariant "a variant"
                Expect.sequenceEqual schema.Shape [ 24 ] "24 MFCC means"
                Expect.equal info.SchemaFingerprint schema.Fingerprint "the file carries the variant's fingerprint"
                Expect.notEqual info.SchemaFingerprint Hybrid.Features.Schemas.MfccMean40Features.Fingerprint "not the declaration's"
                Expect.equal (ModelSettings.ofStored path info.Settings).FeatureParameters "n_fft=1024,hop_length=256,win_length=1024,n_mels=64,fmax=8000,n_mfcc=24" "recorded parameters"
                let testFiles = Directory.GetFiles(Path.Combine(dir, "recordings")) |> Array.filter (fun f -> (Dataset.tryParseFsddName (nonNull (Path.GetFileName f))) |> Option.exists (fun (_, _, i) -> i < 5)) |> Array.sort
                let predictions = Inference.predict "managed" ignore path (List.ofArray testFiles)
                let logLoss =
                    predictions
                    |> List.averageBy (fun p ->
                        let label = (nonNull (Path.GetFileName p.Path)).Substring(0, 1)
                        -log (max 1e-15 (p.Probabilities |> List.find (fun (l, _) -> l = label) |> snd)))
                Expect.floatClose { absolute = 1e-4; relative = 1e-4 } logLoss r.Folds.Head.Metrics.LogLoss "predict's log-loss is the evaluation's"))

        slow <| TestData.testWithFsdd "a second run reads every row from the existing shard folder and trains the same model" (fun fsdd ->
            withSubset fsdd (fun dir ->
                let runWith name =
                    let lines = Collections.Concurrent.ConcurrentQueue<string>()
                    let r = Experiment.train { options dir (Path.Combine(dir, name)) with Epochs = Some 2; Plots = false; Log = lines.Enqueue }
                    r, List.ofSeq lines
                let r, first = runWith "a"
                // Silence the second half of every recording, keeping its size and modification time: rows extracted
                // again would differ, so identical training and validation curves show that every training and
                // validation row came from the shards (the test part is classified from the recordings themselves,
                // through the one inference path that predict uses).
                for file in Directory.GetFiles(Path.Combine(dir, "recordings")) do
                    let stamp = File.GetLastWriteTimeUtc file
                    let bytes = File.ReadAllBytes file
                    Array.fill bytes (bytes.Length / 2) (bytes.Length - bytes.Length / 2) 0uy
                    File.WriteAllBytes(file, bytes)
                    File.SetLastWriteTimeUtc(file, stamp)
                let r2, second = runWith "b"
                let curves (r: RunResult) = [ for e in r.Folds.Head.History -> e.TrainLoss, e.TrainAccuracy, e.ValidationLoss, e.ValidationAccuracy ]
                Expect.equal (curves r2) (curves r) "the same training and validation curves from the shards' rows"
                Expect.isFalse (Directory.Exists(Path.Combine(dir, "b", "rows"))) "the run's row files are removed when it ends"
                let cacheLine (lines: string list) = lines |> List.find (fun l -> l.Contains "rows from the cache")
                let fold = r.Folds.Head
                let n = fold.NTrain + fold.NValidation
                Expect.stringContains (cacheLine first) (sprintf "(0 of %d recordings' rows from the cache" n) "the first run extracts"
                Expect.stringContains (cacheLine second) (sprintf "(%d of %d recordings' rows from the cache" n n) "the second run reads the cache"
                Expect.isGreaterThan (Directory.GetFiles(Path.Combine(dir, "cache"), "shard-*.parquet", SearchOption.AllDirectories).Length) 0 "shards under the cache folder beside the runs"
                let bytes name = File.ReadAllBytes(Path.Combine(dir, name, "model.hnn"))
                Expect.equal (bytes "b") (bytes "a") "the shards' rows train the same model"))

        // On the FSDD folder given to the tests (without --data, train would download FSDD first).
        TestData.testWithFsdd "an invalid feature parameter is refused naming the option and its range" (fun fsdd ->
            let e =
                Expect.throwsC
                    (fun () ->
                        let parameters = { Extraction.noOverrides with HopLength = Some 4096 }
                        Experiment.train { Experiment.defaults with Data = [ fsdd ]; Model = "mlp"; Progress = false; Plots = false; FeatureParameters = parameters } |> ignore)
                    id
            Expect.stringContains e.Message "--hop-length" "the option"
            Expect.stringContains e.Message "must not exceed n_fft (2048)" "the valid range")

        test "test speeds parse from lists and ranges and format back" {
            let factors = List.map fst
            Expect.equal (TestSpeeds.parse "0.8-1.2:0.05" |> factors) [ 0.8; 0.85; 0.9; 0.95; 1.0; 1.05; 1.1; 1.15; 1.2 ] "range with a step, both ends included"
            Expect.isTrue (TestSpeeds.parse "0.8-1.2:0.05" |> List.forall (fun (_, w) -> w = 1.0)) "a plain range weighs every factor equally"
            Expect.equal (TestSpeeds.parse "0.9-1.1:0.1:tri") [ 0.9, 0.5; 1.0, 1.0; 1.1, 0.5 ] "triangular: 1 at factor 1, 0 one step beyond the ends"
            Expect.equal (TestSpeeds.parse " 0.9*0.25, 1,1.1 ") [ 0.9, 0.25; 1.0, 1.0; 1.1, 1.0 ] "comma list with optional weights"
            Expect.equal (TestSpeeds.parse "none") [] "none"
            Expect.equal (TestSpeeds.format [ 0.9, 0.5; 1.0, 1.0; 1.1, 1.0 ]) "0.9*0.5,1,1.1" "format leaves out weights of 1"
            Expect.equal (TestSpeeds.format []) "none" "format of none"
            let cnn2d = (Recipes.byName "cnn2d").TestSpeeds
            Expect.equal (TestSpeeds.parse (TestSpeeds.format cnn2d)) cnn2d "the default's speeds round-trip through their text"
            for bad in [ "0.3,1"; "fast"; "1.2-0.8:0.1"; "0.8-1.2:0"; "0.8-1.2"; "0.5-2:0.001"; "1*0"; "0.9-1.1:0.1:box"; "1*2*3" ] do
                let e = Expect.throwsC (fun () -> TestSpeeds.parse bad |> ignore) id
                Expect.stringContains e.Message bad (sprintf "the error for '%s' quotes it" bad)
        }

        testPropertyWithConfig Properties.defaults "speed averaging with one factor of 1 is the model's own prediction" <| fun (seed: int) ->
            let model = Model.create (new Hybrid.Dsp.Managed.ManagedEngine()) seed (Net.sequential [ 8 ] [ Layers.dense 3 ])
            let rng = Random(seed)
            let clips = Array.init 4 (fun _ -> Array.init 8 (fun _ -> float32 (rng.NextDouble() - 0.5)))
            let inputsOf (cs: float32[][]) = Array.concat cs
            let plain = Model.predict model (inputsOf clips)
            let averaged = Inference.predictAveraged model inputsOf [ 1.0, 0.7 ] clips
            for i in 0 .. 3 do
                for j in 0 .. 2 do
                    Expect.floatClose { absolute = 1e-6; relative = 1e-5 } (float averaged.[i, j]) (float plain.[i, j]) "same probabilities"

        test "windows cover a recording to its end; without segments the recording is its own clip" {
            let plan: ClipPlan = { SampleRate = 10; ClipSamples = 4; RecordingSamples = None; Segment = Some(4, 2); Trim = None; Loudness = None }
            let x = Array.init 11 float32
            let windows = ClipPlan.windows plan x
            Expect.equal (windows |> Array.map (fun w -> w.[0])) [| 0.0f; 2.0f; 4.0f; 6.0f; 7.0f |] "starts every hop, the last ending at the end"
            Expect.isTrue (windows |> Array.forall (fun w -> w.Length = 4)) "window length"
            Expect.equal (ClipPlan.windows plan [| 1.0f; 2.0f |]) [| [| 1.0f; 2.0f |] |] "a short recording is one window"
            let whole = { plan with Segment = None }
            Expect.isTrue (obj.ReferenceEquals((ClipPlan.windows whole x).[0], x)) "the recording itself"
            let cut = { plan with RecordingSamples = Some 6 }
            Expect.equal (ClipPlan.windows cut x |> Array.map (fun w -> w.[0])) [| 0.0f; 2.0f |] "cut to 6 samples first"
        }

        test "trimming keeps the utterance between its first and last loud frame (librosa.effects.trim), then the level is set" {
            // 0.2 s of silence, 0.3 s of a tone, 0.5 s of faint noise at 8 kHz.
            let rate = 8000
            let x = Array.init rate (fun i -> if i < 1600 then 0.0f elif i < 4000 then 0.5f * float32 (sin (float i * 0.3)) else 1e-4f * float32 (sin (float i * 1.7)))
            let plan: ClipPlan = { SampleRate = rate; ClipSamples = 8192; RecordingSamples = None; Segment = None; Trim = Some { TopDb = 20.0; FrameLength = 256; HopLength = 64 }; Loudness = None }
            let trimmed = (ClipPlan.windows plan x).[0]
            let start, stop = Clip.trimInterval 20.0 256 64 x
            Expect.equal trimmed x.[start .. stop - 1] "the samples Clip.trimInterval keeps"
            Expect.isTrue (start >= 1600 - 256 && start <= 1600) (sprintf "starts at the tone (%d)" start)
            Expect.isTrue (stop >= 4000 && stop <= 4000 + 256) (sprintf "ends after the tone (%d)" stop)
            let levelled = (ClipPlan.windows { plan with Loudness = Some -20.0 } x).[0]
            Expect.floatClose { absolute = 1e-4; relative = 1e-4 } (Clip.rms levelled) 0.1 "-20 dBFS RMS"
            Expect.equal (ClipPlan.windows plan (Array.zeroCreate 100)).[0].Length 100 "a silent recording is kept whole"
        }

        test "the model's trimming applies to utterances, not to environmental clips or windows of long recordings" {
            let item seconds rate : Item =
                { Path = ""; Key = string seconds; Label = "a"; LabelIndex = 0; Speaker = None; Fold = None; Index = None; Subset = None
                  SampleRate = rate; Channels = 1; Frames = int64 (seconds * float rate) }
            let trimmed = { Recipes.byName "cnn2d" with Trim = Some { TopDb = 20.0; FrameLength = 256; HopLength = 64 } }
            let settingsFor (items: Item[]) (options: TrainOptions) =
                let folds = [| { Name = "train/test"; Train = items; Validation = [||]; Test = items } |]
                let data = { Dataset = { Root = "r"; Source = FolderPerClass; Labels = [| "a"; "b" |]; Items = items; Skipped = [||]; Warnings = [||]; NoiseFiles = [||]; SpeakerInfo = Map.empty }
                             Folders = [ "r" ]; Split = StratifiedRandom 0.2; Folds = folds; NoiseFiles = [||] }
                Experiment.resolveWith trimmed options data
            let digits = [| item 0.5 8000; item 0.6 8000; item 0.7 8000 |]
            Expect.isSome (settingsFor digits Experiment.defaults).Preparation.Clips.Trim "short recordings: one clip each, trimmed"
            Expect.isNone (settingsFor [| item 4.0 22050; item 3.5 22050 |] Experiment.defaults).Preparation.Clips.Trim "environmental clips: the whole clip"
            Expect.isNone (settingsFor [| item 30.0 22050; item 30.0 22050 |] Experiment.defaults).Preparation.Clips.Trim "music: windows"
            Expect.isSome (settingsFor [| item 30.0 22050 |] { Experiment.defaults with Trim = Some trimmed.Trim }).Preparation.Clips.Trim "unless --trim asks"
            Expect.isNone (settingsFor digits { Experiment.defaults with Trim = Some None }).Preparation.Clips.Trim "--trim none"
            let statistics = { Recipes.byName "mlp" with Trim = trimmed.Trim }
            let settingsOf (recipe: Recipe) (items: Item[]) =
                let folds = [| { Name = "train/test"; Train = items; Validation = [||]; Test = items } |]
                let data = { Dataset = { Root = "r"; Source = FolderPerClass; Labels = [| "a"; "b" |]; Items = items; Skipped = [||]; Warnings = [||]; NoiseFiles = [||]; SpeakerInfo = Map.empty }
                             Folders = [ "r" ]; Split = StratifiedRandom 0.2; Folds = folds; NoiseFiles = [||] }
                Experiment.resolveWith recipe { Experiment.defaults with Model = "mlp" } data
            Expect.isNone (settingsOf statistics [| item 4.0 22050; item 3.5 22050 |]).Preparation.Clips.Trim "MFCC means of 4 s environmental clips: whole"
            Expect.isSome (settingsOf statistics [| item 0.5 22050; item 0.8 22050 |]).Preparation.Clips.Trim "MFCC means of spoken words: trimmed"
        }

        test "the clip plan follows the data: windows for long recordings, one clip for short ones, any-length schemas take the duration" {
            let item seconds rate : Item =
                { Path = ""; Key = string seconds; Label = "a"; LabelIndex = 0; Speaker = None; Fold = None; Index = None; Subset = None
                  SampleRate = rate; Channels = 1; Frames = int64 (seconds * float rate) }
            let logmel = Hybrid.Features.Schemas.Schemas.ByName "logmel-fsdd"
            let short = ClipPlan.resolve logmel None None None None None [| item 0.5 8000; item 2.3 8000; item 0.6 8000 |]
            Expect.equal short.Segment None "digit clips (median 0.6 s) are one clip each"
            let music = ClipPlan.resolve logmel None None None None None [| item 30.0 22050; item 30.0 22050 |]
            Expect.equal music.Segment (Some(8192, 4096)) "30 s tracks: windows of the schema's clip, half overlapping"
            Expect.equal music.SampleRate 8000 "the schema's rate"
            let asked = ClipPlan.resolve logmel None None (Some 2.0) (Some 0.5) None [| item 30.0 22050 |]
            Expect.equal asked.Segment (Some(16000, 4000)) "--segment 2 --segment-hop 0.5"
            let mfcc = Hybrid.Features.Schemas.Schemas.ByName "mfcc-mean40"
            let env = ClipPlan.resolve mfcc None None None None None [| item 4.0 44100; item 0.5 11025; item 7.0 48000 |]
            Expect.equal env.ClipSamples (5 * 22050) "the longest clip, at most 5 s"
            let given = ClipPlan.resolve mfcc None (Some 1.5) None None None [| item 4.0 44100 |]
            Expect.equal given.ClipSamples 33075 "--duration 1.5"
            let windowed = ClipPlan.resolve mfcc None None (Some 3.0) None None [| item 30.0 22050 |]
            Expect.equal (windowed.ClipSamples, windowed.Segment) (66150, Some(66150, 33075)) "any-length schemas take the window's length"
            Expect.throwsT<ArgumentException> (fun () -> ClipPlan.resolve logmel (Some 16000) None None None None [| item 1.0 16000 |] |> ignore) "a rate the schema is not defined at"
            Expect.throwsT<ArgumentException> (fun () -> ClipPlan.resolve mfcc None None None (Some 1.0) None [| item 1.0 16000 |] |> ignore) "--segment-hop without --segment"
            let longer = Expect.throwsC (fun () -> ClipPlan.resolve logmel None None (Some 100.0) None None [| item 0.8 8000; item 0.6 8000 |] |> ignore) id
            Expect.stringContains longer.Message "longest recording (0.8 s)" "--segment longer than every recording is refused, naming the limit"
            let cut = Expect.throwsC (fun () -> ClipPlan.resolve mfcc None (Some 0.2) (Some 0.5) None None [| item 4.0 44100 |] |> ignore) id
            Expect.stringContains cut.Message "--duration" "--segment longer than --duration is refused"
        }

        test "a recipe's feature parameters apply to its own schema, under the feature options" {
            let cnn2d = Recipes.byName "cnn2d"
            let declared = Hybrid.Features.Schemas.Schemas.ByName "logmel-fsdd"
            let own = Recipes.schemaOf cnn2d None Extraction.noOverrides
            Expect.equal (own.Parameters.NFft, own.Parameters.WinLength, own.Parameters.HopLength, own.Parameters.NMels) (512, 512, 128, 40)
                "cnn2d: n_fft 512 (win_length follows it), hop 128 and 40 bands as declared"
            Expect.equal (List.ofSeq own.Shape) [ 40; 65 ] "the image keeps its shape"
            Expect.notEqual own.Fingerprint declared.Fingerprint "a variant of its own"
            Expect.equal (Recipes.schemaOf cnn2d (Some "logmel-fsdd") Extraction.noOverrides).Fingerprint own.Fingerprint
                "--features naming the recipe's own schema: the same variant"
            Expect.equal (Recipes.schemaOf cnn2d None { Extraction.noOverrides with NFft = Some 256 }).Fingerprint declared.Fingerprint
                "--n-fft 256 gives the declaration back"
            let mels = Recipes.schemaOf cnn2d None { Extraction.noOverrides with NMels = Some 64 }
            Expect.equal (mels.Parameters.NFft, mels.Parameters.NMels) (512, 64) "another option keeps the recipe's n_fft"
            let mfcc = Hybrid.Features.Schemas.Schemas.ByName "mfcc-mean40"
            Expect.equal (Recipes.schemaOf cnn2d (Some "mfcc-mean40") Extraction.noOverrides).Fingerprint mfcc.Fingerprint
                "another schema chosen with --features: not the recipe's parameters"
            Expect.equal (Recipes.schemaOf (Recipes.byName "mlp") None Extraction.noOverrides).Fingerprint mfcc.Fingerprint
                "a recipe without parameters: its schema as declared"
        }

        test "a run file written before recipes had feature parameters resumes with the declared ones; a version 2 file with what it records" {
            withRunFileDir (fun dir runJson ->
                let write (version: string) (nFft: string) =
                    runJson (sprintf "{ %s\"data\": \"/data/fsdd\", \"model\": \"cnn2d\", \"seed\": 0, \"feature_parameters\": { \"n_fft\": %s, \"n_mels\": null } }" version nFft)
                let now = { Experiment.defaults with Model = "cnn2d" }
                write "" "null"
                Expect.equal (RunFile.resumeConflicts dir now [ "--n-fft"; "--n-mels" ]) [ "--n-fft", "256", "512" ]
                    "version 1, n_fft not recorded: the run extracted the declared 256, which today's default 512 contradicts"
                Expect.isEmpty (RunFile.resumeConflicts dir { now with FeatureParameters = { Extraction.noOverrides with NFft = Some 256 } } [ "--n-fft" ])
                    "--n-fft 256 repeats it"
                write "" "1024"
                Expect.isEmpty (RunFile.resumeConflicts dir { now with FeatureParameters = { Extraction.noOverrides with NFft = Some 1024 } } [ "--n-fft" ])
                    "version 1 with n_fft recorded: the record"
                write (sprintf "\"run_file_version\": %d, " RunFile.Version) "512"
                Expect.isEmpty (RunFile.resumeConflicts dir now [ "--n-fft"; "--n-mels" ]) "version 2 and later record the recipe's 512")
        }

        test "a run file written before the augment pool resumes with one version per clip; a version 3 file with the pool it records" {
            withRunFileDir (fun dir runJson ->
                let write (fields: string) =
                    runJson (sprintf "{ %s\"data\": \"/data/fsdd\", \"model\": \"cnn2d\", \"seed\": 0, \"feature_parameters\": { \"n_fft\": 512 } }" fields)
                let now = { Experiment.defaults with Model = "cnn2d" }
                Expect.equal (Recipes.byName "cnn2d").AugmentPool 3 "cnn2d draws from three versions per clip"
                write "\"run_file_version\": 2, "
                Expect.equal (RunFile.resumeConflicts dir now [ "--augment-pool" ]) [ "--augment-pool", "1", "3" ]
                    "version 2: the run trained on one fixed augmented copy, which today's pool of 3 contradicts"
                Expect.isEmpty (RunFile.resumeConflicts dir { now with AugmentPool = Some 1 } [ "--augment-pool" ]) "--augment-pool 1 repeats it"
                write ""
                Expect.equal (RunFile.resumeConflicts dir now [ "--augment-pool" ]) [ "--augment-pool", "1", "3" ] "version 1 likewise"
                write (sprintf "\"run_file_version\": %d, \"augment_pool\": 3, " RunFile.Version)
                Expect.isEmpty (RunFile.resumeConflicts dir now [ "--augment-pool" ]) "version 3 records the pool in force"
                write (sprintf "\"run_file_version\": %d, \"augment_pool\": 5, " RunFile.Version)
                Expect.equal (RunFile.resumeConflicts dir now [ "--augment-pool" ]) [ "--augment-pool", "5", "3" ] "a recorded pool of 5"
                write (sprintf "\"run_file_version\": %d, \"augment\": \"none\", \"augment_pool\": null, " RunFile.Version)
                Expect.isEmpty (RunFile.resumeConflicts dir { now with Augment = Some "none" } [ "--augment-pool" ])
                    "no waveform augmentation: no pool recorded, none compared")
        }

        test "environmental clips give the default image schema one image of the whole clip; digits, music and explicit choices keep it" {
            let item seconds rate : Item =
                { Path = ""; Key = string seconds; Label = "a"; LabelIndex = 0; Speaker = None; Fold = None; Index = None; Subset = None
                  SampleRate = rate; Channels = 1; Frames = int64 (seconds * float rate) }
            let logmel = Hybrid.Features.Schemas.Schemas.ByName "logmel-fsdd"
            let o = Experiment.defaults
            let urban = [| item 4.0 44100; item 0.5 11025; item 3.2 48000; item 4.0 22050; item 2.6 16000 |]
            let env = Experiment.wholeClip o urban logmel
            Expect.equal (env.ClipSamples, List.ofSeq env.Shape) (32000, [ 40; 251 ]) "4 s at 8 kHz: 40 bands x 251 frames"
            let plan = ClipPlan.resolve env None None None None None urban
            Expect.equal (plan.ClipSamples, plan.Segment) (32000, None) "one clip per recording, no windows"
            Expect.equal (Experiment.wholeClip { o with Duration = Some 2.5 } urban logmel).ClipSamples 20000 "--duration 2.5"
            let esc = Array.init 5 (fun _ -> item 5.0 44100)
            Expect.equal (Experiment.wholeClip o esc logmel).ClipSamples 40000 "ESC-50's 5 s clips"
            for what, items, options in
                [ "digits", [| item 0.5 8000; item 0.7 8000; item 0.6 8000 |], o
                  "music", [| item 30.0 22050; item 30.0 22050 |], o
                  "--segment", urban, { o with Segment = Some 1.0 }
                  "--features", urban, { o with Features = Some "logmel-fsdd" } ] do
                Expect.isTrue (obj.ReferenceEquals(Experiment.wholeClip options items logmel, logmel)) what
            let mfcc = Hybrid.Features.Schemas.Schemas.ByName "mfcc-mean40"
            Expect.isTrue (obj.ReferenceEquals(Experiment.wholeClip o urban mfcc, mfcc)) "statistics over the clip are not images"
        }

        test "preparation settings round-trip through model-file settings, typed; older files get the old defaults" {
            let schema = Hybrid.Features.Schemas.Schemas.ByName "logmel-fsdd"
            let p: Preparation =
                { Features = schema.Name; FeatureParameters = ""; PerUtterance = BandMean; TestSpeeds = [ 0.9, 0.5; 1.0, 1.0 ]
                  Clips = { SampleRate = 8000; ClipSamples = 8192; RecordingSamples = Some 80000; Segment = Some(8192, 4096); Trim = None; Loudness = None } }
            Expect.equal (Preparation.ofSettings "m.hnn" schema (Preparation.toSettings p)) p "round trip"
            let q = { p with PerUtterance = BandMeanVariance; Clips = { p.Clips with Trim = Some { TopDb = 20.0; FrameLength = 256; HopLength = 64 } } }
            Expect.equal (Preparation.ofSettings "m.hnn" schema (Preparation.toSettings q)) q "round trip: meanvar and a trim"
            let legacy pairs = Preparation.ofSettings "m.hnn" schema (ModelSettings.ofPairs "m.hnn" pairs)
            let old = legacy [ "features", "logmel-fsdd"; "per_utterance", "True" ]
            Expect.equal old.Clips { SampleRate = 8000; ClipSamples = 8192; RecordingSamples = None; Segment = None; Trim = None; Loudness = None } "older files: the schema's rate and clip, no windows"
            Expect.equal old.PerUtterance BandMean "True as older files wrote it: the band mean"
            Expect.throwsT<ModelFileException> (fun () -> legacy [ "per_utterance", "yes" ] |> ignore) "a bad value names the setting"
            Expect.throwsT<ModelFileException> (fun () -> legacy [ "per_utterance", "true"; "segment", "8192" ] |> ignore) "a bad segment"
            for key, value in [ "sample_rate", "768001"; "sample_rate", "0"; "clip_samples", "16777217"; "recording_samples", "-5"; "segment", "16777217/8" ] do
                let e = Expect.throwsC (fun () -> legacy [ "per_utterance", "true"; key, value ] |> ignore) id
                Expect.isTrue (e :? ModelFileException && e.Message.Contains key) (sprintf "%s = %s is refused naming the setting (%s)" key value e.Message)
            let p768 = legacy [ "per_utterance", "true"; "sample_rate", "768000"; "clip_samples", "16777216" ]
            Expect.equal (p768.Clips.SampleRate, p768.Clips.ClipSamples) (768000, 16777216) "the bounds themselves are accepted"
        }

        test "an unknown model name lists the valid ones" {
            let e = Expect.throwsC (fun () -> Recipes.byName "transformer" |> ignore) id
            Expect.stringContains e.Message "cnn2d" "expected the valid names"
        }
    ]
