/// Tiny models of every recipe, trained once per test run on a small FSDD subset (two epochs), shared by the ONNX
/// export, prediction façade and sample-application tests; and 50 held-out FSDD clips to classify.
module Hybrid.ClassifierTests.TrainedModels

open System
open System.Collections.Concurrent
open System.IO
open Hybrid.Classifier
open Hybrid.Features

let private root = lazy (
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-trained-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    AppDomain.CurrentDomain.ProcessExit.Add(fun _ -> try Directory.Delete(dir, true) with _ -> ())
    dir)

let private subsets = ConcurrentDictionary<string, Lazy<string>>()

/// A folder holding every digit of jackson and theo, indexes 0-9 (official split: 0-4 test): 200 clips.
let subset (fsdd: string) =
    subsets.GetOrAdd(fsdd, fun _ -> lazy (
        let dir = Path.Combine(root.Value, "data")
        let recordings = Path.Combine(dir, "recordings")
        Directory.CreateDirectory recordings |> ignore
        for digit in 0 .. 9 do
            for speaker in [ "jackson"; "theo" ] do
                for index in 0 .. 9 do
                    let name = sprintf "%d_%s_%d.wav" digit speaker index
                    File.Copy(Path.Combine(fsdd, "recordings", name), Path.Combine(recordings, name), true)
        dir)).Value

let private models = ConcurrentDictionary<string, Lazy<string>>()

/// The model file of `recipe` trained on the subset on the managed engine without test-time speed averaging (trained
/// once per run): two epochs.
let model (fsdd: string) (recipe: string) =
    models.GetOrAdd(recipe, fun _ -> lazy (
        let out = Path.Combine(root.Value, recipe)
        Experiment.train
            { Experiment.defaults with
                Data = [ subset fsdd ]; Model = recipe; Epochs = Some 2; Device = "managed"; Out = Some out
                Progress = false; Plots = false; TestSpeeds = Some [] }
        |> ignore
        Path.Combine(out, "model.hnn"))).Value

let private variants = ConcurrentDictionary<string, Lazy<string>>()

/// Models trained once per run on the subset (two epochs, managed engine) with the one inference path's other
/// preparations: "windowed" (cnn2d on windows of 0.5 s every 0.25 s, averaged per recording), "speeds" (cnn2d with
/// test-time speeds 0.9, 1 and 1.1 weighted 1:2:1), "recipe-speeds" (cnn2d with the recipe's own test-time speeds,
/// 0.7 to 1.3 in steps of 0.05 weighted by a triangle, as `train` makes it by default), "trimmed" (cnn2d with its own silence trimming, top_db 30 over
/// 200-sample frames every 50, and every recording set to -20 dBFS), "untrimmed" (cnn2d keeping recordings whole),
/// "power1" (cnn2d on a magnitude mel spectrogram, power 1: amplitude_to_db), "meanvar" (cnn2d with per-utterance mean
/// and variance normalisation) and "pcen" (cnn2d with PCEN in place of power_to_db, librosa's defaults).
let variant (fsdd: string) (name: string) =
    variants.GetOrAdd(name, fun _ -> lazy (
        let out = Path.Combine(root.Value, "variant-" + name)
        let options =
            { Experiment.defaults with
                Data = [ subset fsdd ]; Model = "cnn2d"; Epochs = Some 2; Device = "managed"; Out = Some out
                Progress = false; Plots = false; TestSpeeds = Some [] }
        let options =
            match name with
            | "windowed" -> { options with Segment = Some 0.5; SegmentHop = Some 0.25 }
            | "speeds" -> { options with TestSpeeds = Some(TestSpeeds.parse "0.9,1*2,1.1") }
            | "recipe-speeds" -> { options with TestSpeeds = None }
            | "trimmed" -> { options with Trim = Some(Trim.parse "30:200:50"); Loudness = Some -20.0 }
            | "untrimmed" -> { options with Trim = Some None }
            | "meanvar" -> { options with PerUtterance = Some BandMeanVariance }
            | "power1" -> { options with FeatureParameters = { Extraction.noOverrides with Other = [ "power", "1" ] } }
            | "pcen" -> { options with FeatureParameters = { Extraction.noOverrides with Other = [ "pcen", "true" ] } }
            | other -> failwithf "no model variant '%s'" other
        Experiment.train options |> ignore
        Path.Combine(out, "model.hnn"))).Value

/// 50 FSDD recordings of speakers the models never saw (george, nicolas, yweweler; every digit).
let heldOut (fsdd: string) =
    [ for speaker in [ "george"; "nicolas"; "yweweler" ] do
          for digit in 0 .. 9 do
              for index in 0 .. 1 -> Path.Combine(fsdd, "recordings", sprintf "%d_%s_%d.wav" digit speaker index) ]
    |> List.truncate 50

/// A scratch folder for one test.
let scratch (name: string) =
    let dir = Path.Combine(root.Value, name + "-" + Guid.NewGuid().ToString("N").Substring(0, 8))
    Directory.CreateDirectory dir |> ignore
    dir
