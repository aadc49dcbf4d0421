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
                Data = Some(subset fsdd); Model = recipe; Epochs = Some 2; Device = "managed"; Out = Some out
                Progress = false; Plots = false; TestSpeeds = Some [] }
        |> ignore
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
