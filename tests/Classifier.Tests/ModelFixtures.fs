/// Model files made in milliseconds, without training: a recipe's network with seeded random weights, saved with the
/// settings `train` records (the recipe's schema and preparation, adjustable), so that what reads model files (the
/// summary, the inference path's windows) is tested without training a model. And seeded synthetic recordings.
module Hybrid.ClassifierTests.ModelFixtures

open System
open System.IO
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.Features

/// The preparation `train` gives `recipe` on short recordings: the recipe's schema (its feature parameters applied),
/// one clip per recording of the schema's length (else 1 s), the recipe's trim at the schema's rate, no test speeds.
let preparation (recipe: string) : Preparation =
    let r = Recipes.byName recipe
    let schema = Recipes.schemaOf r None Extraction.noOverrides
    { Features = schema.Name; FeatureParameters = schema.Variant; PerUtterance = r.PerUtterance; TestSpeeds = []
      Clips =
        { SampleRate = schema.SampleRate; ClipSamples = (if schema.ClipSamples > 0 then schema.ClipSamples else schema.SampleRate)
          RecordingSamples = None; Segment = None; Trim = r.Trim |> Option.map (Trim.atRate schema.SampleRate); Loudness = None } }

/// Writes a model file of `recipe`'s network for `labels` with weights drawn from `seed` and the preparation
/// `prepared`, standardising features with mean 0 and standard deviation `std`. Returns `path`.
let write (path: string) (recipe: string) (labels: string list) (prepared: Preparation) (seed: int) (std: float32) : string =
    let r = Recipes.byName recipe
    let schema = Recipes.schemaOf r None Extraction.noOverrides
    let extraction = Preparation.extractionSchema schema prepared.Clips
    let net = r.Build (Recipes.inputShape (Array.ofSeq extraction.Shape) r) labels.Length
    use engine = new ManagedEngine(1)
    let model = Model.create engine seed net
    let groups =
        match FeatureStore.grouping extraction with
        | Normalization.PerBand (bands, _) -> bands
        | Normalization.PerColumn -> extraction.Length
    ModelFile.save path
        { SchemaFingerprint = schema.Fingerprint
          Labels = labels
          Normalization = [ "mean", Array.zeroCreate groups; "std", Array.create groups std ]
          Settings = ModelSettings.toStored { Preparation.toSettings prepared with Model = recipe; SchemaParameters = Preparation.schemaParameters schema }
          LibraryVersion = "" }
        model
    path

/// A seeded recording of `seconds` at `rate` Hz: bursts of tones at random pitches and levels separated by quiet noise,
/// so that windows over it differ.
let recording (seed: int) (rate: int) (seconds: float) : float32[] =
    let rng = Random seed
    let n = int (seconds * float rate)
    let samples = Array.init n (fun _ -> float32 ((rng.NextDouble() - 0.5) * 0.002))
    let mutable start = rng.Next(rate / 10)
    while start < n do
        let length = min (n - start) (rate / 4 + rng.Next(rate / 2))
        let f = 150.0 + rng.NextDouble() * 1500.0
        let level = 0.05 + rng.NextDouble() * 0.5
        for i in 0 .. length - 1 do
            let t = float i / float rate
            samples.[start + i] <- samples.[start + i] + float32 (level * sin (2.0 * Math.PI * f * t) * sin (Math.PI * float i / float length))
        start <- start + length + rate / 10 + rng.Next(rate / 3)
    samples

/// Writes `recording seed rate seconds` as a 16-bit WAV file at `path`. Returns `path`.
let writeRecording (path: string) (seed: int) (rate: int) (seconds: float) : string =
    Wav.write path SampleFormat.Pcm16 { SampleRate = rate; Samples = [| recording seed rate seconds |] }
    path
