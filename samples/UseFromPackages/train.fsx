// Train a small classifier on your own schema, entirely from the Hybrid packages.
// Run after `dotnet build SchemaApp -c Release`: dotnet fsi train.fsx RECORDINGS_FOLDER
// The packages come from the folder nuget.config beside this script names (the repository's artifacts/).
#r "nuget: Hybrid.Classifier, 0.1.0"

open System
open System.IO
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas
open Hybrid.Classifier

// Load the assembly that declares the schema: its schemas register themselves by name.
let app = Path.Combine(__SOURCE_DIRECTORY__, "SchemaApp", "bin", "Release", "net10.0", "SchemaApp.dll")
Schemas.LoadAssembly app |> ignore
let schema = Schemas.ByName "digit-timbre"
let clipSamples = schema.Parameters.ClipSamples

// One speaker's recordings: utterances 0-4 of each digit for test, the rest for training (FSDD's official rule).
let folder = fsi.CommandLineArgs.[1]
let files = Directory.GetFiles(folder, "*_theo_*.wav") |> Array.sort
let digit (f: string) = int (Path.GetFileName(f).Split('_').[0])
let index (f: string) = int (Path.GetFileNameWithoutExtension(f).Split('_').[2])

let engine = Engines.Create "managed"
let extract (fs: string[]) =
    let batch = Array.zeroCreate<float32> (fs.Length * clipSamples)
    fs |> Array.iteri (fun i f ->
        let s = (AudioFile.read AudioFile.defaults f).Samples.[0]
        Array.blit s 0 batch (i * clipSamples) (min s.Length clipSamples))
    use clips = engine.FromHost(ReadOnlySpan batch, fs.Length, clipSamples)
    schema.Extract(engine, clips)

let train, test = files |> Array.partition (fun f -> index f >= 5)
let xTrain, xTest = extract train, extract test
// Standardise each column with the training part's mean and standard deviation.
let width = schema.Length
let stats = Array.init width (fun c ->
    let v = Array.init train.Length (fun i -> float xTrain.[i * width + c])
    let m = Array.average v
    m, max 1e-6 (sqrt (v |> Array.averageBy (fun x -> (x - m) ** 2.0))))
let standardise (x: float32[]) = x |> Array.mapi (fun i v -> let m, s = stats.[i % width] in float32 ((float v - m) / s))

let net = Net.sequential [ width ] [ Layers.dense 64; Layers.relu; Layers.dense 10 ]
let model = Model.create engine 0 net
Training.fit { FitOptions.defaults with Epochs = 60; BatchSize = 32; Optimizer = Optimizer.adam 3e-3 } model
    { Inputs = standardise xTrain; Labels = Array.map digit train } None |> ignore
let metrics = Model.evaluate model { Inputs = standardise xTest; Labels = Array.map digit test }
printfn "%s: %d training and %d test clips, test accuracy %.4f" schema.Name train.Length test.Length metrics.Accuracy
