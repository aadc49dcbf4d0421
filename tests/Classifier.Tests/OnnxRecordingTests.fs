/// OnnxExport with the front end, whole recordings in: the graph trims, levels, cuts windows, averages over the
/// test-time speeds and over the windows as `predict` does, so ONNX Runtime's probabilities of one whole recording
/// per run equal predict's for each recipe's preparation: windows of a GTZAN-layout stand-in, the whole clip of an
/// UrbanSound8K-layout stand-in, and the default speed-averaged FSDD model.
module Hybrid.ClassifierTests.OnnxRecordingTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport.Speed
open Hybrid.Dsp
open Hybrid.Classifier
open Hybrid.Features
open Hybrid.TestSupport
open Hybrid.FeaturesTests
open Hybrid.ClassifierTests.OnnxTests

/// ONNX Runtime's probabilities of each of `files` (one whole recording per run, read at the model's rate as predict
/// reads it) against predict's: the export must say that the graph does everything (no warning, input_is
/// recording), the probabilities must depend on the recording, and the two must agree within `tolerance`. Returns
/// the metadata for further checks.
let private parityOnRecordings (name: string) (modelPath: string) (files: string list) (tolerance: float) =
    let expected =
        let rows = Inference.predict "managed" ignore modelPath files |> Array.ofList
        Array2D.init rows.Length rows[0].Probabilities.Length (fun i j -> float32 (snd rows[i].Probabilities[j]))
    let onnx = Path.Combine(TrainedModels.scratch name, "model.onnx")
    let exported = OnnxExport.export modelPath onnx true
    let meta = dict exported.Metadata
    Expect.isEmpty exported.Warnings "the graph does everything predict does"
    Expect.equal meta["input_is"] "recording" "one whole recording in"
    Expect.equal meta["windows_in_graph"] "true" "windows in the graph"
    Expect.equal meta["speeds_in_graph"] "true" "speeds in the graph"
    use engine = Engines.Create("managed", ignore)
    let trained = Inference.load engine modelPath
    let plan = trained.Preparation.Clips
    let loaded = files |> List.toArray |> Array.map (ClipPlan.load plan)
    let actual = loaded |> Array.collect (fun recording -> runOnnx onnx exported.Input [| recording.Length |] recording)
    let d = maxDifference expected actual
    // The comparison can tell: without speeds and windows (the recording's one clip at speed 1) predict differs.
    let plain =
        let simpler = { trained.Preparation with TestSpeeds = []; Clips = { plan with Segment = None; RecordingSamples = None } }
        Inference.classify { trained with Preparation = simpler } loaded |> Seq.cast<float32> |> Array.ofSeq
    let shortcut = maxDifference expected plain
    let n, k = expected.GetLength 0, expected.GetLength 1
    let spread = Seq.max (seq { for j in 0 .. k - 1 -> (Seq.max (seq { for i in 0 .. n - 1 -> expected[i, j] })) - (Seq.min (seq { for i in 0 .. n - 1 -> expected[i, j] })) })
    let top (score: int -> float32) = [ 0 .. k - 1 ] |> List.maxBy score
    let agree = [ for i in 0 .. n - 1 do if top (fun j -> expected[i, j]) = top (fun j -> actual[i * k + j]) then 1 ] |> List.length
    eprintfn "onnx whole-recording parity %s: max |ONNX Runtime - predict| = %.3g over %d x %d probabilities, same label for %d of %d (segment %s, test_speeds %s, largest spread %.3f; predict without speeds and windows differs by %.3g)"
        name d n k agree n meta["segment"] meta["test_speeds"] spread shortcut
    Expect.isGreaterThan spread 0.01f "the probabilities depend on the recording"
    Expect.isLessThan d tolerance (sprintf "max |ONNX Runtime - predict| = %g" d)
    Expect.isGreaterThan shortcut (100.0 * tolerance) "the speeds and windows change the probabilities far more than the tolerance"
    meta

/// Recordings of `seconds` each at `rate` Hz (DatasetFixtures.synth of class `label`) written under `dir`.
let private recordings (dir: string) (rate: int) (label: int) (seconds: float list) =
    let rng = Random 5
    seconds |> List.mapi (fun i s ->
        let path = Path.Combine(dir, sprintf "track%d.wav" i)
        DatasetFixtures.writeAudio path SampleFormat.Pcm16 rate 1 (DatasetFixtures.synth rng rate s label true)
        path)

let private train (options: TrainOptions) =
    Experiment.train { options with Device = "managed"; Progress = false; Plots = false } |> ignore
    Path.Combine(Option.get options.Out, "model.hnn")

[<Tests>]
let tests =
    testSequenced << slow <| testList "OnnxExport of whole recordings" [
        TestData.testWithFsdd "the default FSDD cnn2d: test-time speed averaging over 13 speeds in the graph" (fun fsdd ->
            let modelPath = TrainedModels.variant fsdd "recipe-speeds"
            let meta = parityOnRecordings "fsdd-speeds" modelPath (TrainedModels.heldOut fsdd |> List.truncate 20) 1e-5
            Expect.equal (TestSpeeds.parse meta["test_speeds"]).Length 13 "the recipe's 13 speeds")

        TestData.testWithFsdd "an FSDD cnn2d on trimmed recordings cut into windows of 0.5 s every 0.25 s" (fun fsdd ->
            let modelPath = TrainedModels.variant fsdd "windowed"
            let meta = parityOnRecordings "fsdd-windows" modelPath (TrainedModels.heldOut fsdd |> List.truncate 20) 1e-5
            Expect.equal meta["segment"] "4000/2000" "windows of 0.5 s every 0.25 s")

        test "a GTZAN-layout model: tracks cut to 3 s, windows of 1 s every 0.4 s averaged per track, at 13 speeds, tracks longer and shorter than a window" {
            use temp = new DatasetFixtures.TempFolder()
            DatasetFixtures.writeGtzan temp.Path [ "blues"; "metal"; "reggae" ] 4 3.5 3 |> ignore
            let modelPath =
                train { Experiment.defaults with
                          Data = [ temp.Path ]; Model = "cnn2d"; Epochs = Some 2; Out = Some(temp.Combine "run")
                          Split = Some "random:0.34"; Segment = Some 1.0; SegmentHop = Some 0.4; Duration = Some 3.0 }
            let tracks = Directory.GetFiles(Path.Combine(temp.Path, "genres"), "*.wav", SearchOption.AllDirectories) |> Array.sort |> List.ofArray
            // Lengths that end a window on the recording's end, leave a partial hop, equal one window and fall short of it.
            let others = recordings (temp.Combine "other") 22050 1 [ 4.1; 2.3; 1.0; 0.6 ]
            let meta = parityOnRecordings "gtzan" modelPath (tracks @ others) 1e-5
            Expect.equal meta["segment"] "8000/3200" "windows of 1 s every 0.4 s at 8 kHz"
            Expect.equal meta["recording_samples"] "24000" "tracks cut (or padded) to 3 s before their windows"
            Expect.equal meta["clip_samples"] "8192" "each window fitted to the schema's clip"
            Expect.notEqual meta["test_speeds"] "none" "the recipe's speeds"
        }

        test "an UrbanSound8K-layout model: the whole clip as one image, at 13 speeds, without trimming" {
            use temp = new DatasetFixtures.TempFolder()
            DatasetFixtures.writeUrbanSound8K temp.Path [ "dog_bark"; "siren" ] 2 3 7 |> ignore
            let modelPath =
                train { Experiment.defaults with
                          Data = [ temp.Path ]; Model = "cnn2d"; Epochs = Some 2; Out = Some(temp.Combine "run")
                          Split = Some "fold:2"; Duration = Some 4.0 }
            let clips = Directory.GetFiles(Path.Combine(temp.Path, "audio"), "*.wav", SearchOption.AllDirectories) |> Array.sort |> List.ofArray
            let meta = parityOnRecordings "us8k" modelPath clips 1e-5
            Expect.equal meta["segment"] "none" "no windows"
            Expect.equal meta["trim"] "none" "environmental clips are not trimmed"
            Expect.equal meta["clip_samples"] "32000" "the whole 4 s clip at 8 kHz"
        }
    ]
