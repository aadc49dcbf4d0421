// Explore one recording: read it, look at its samples, compute librosa-style features on an engine.
// Run: dotnet fsi scripts/explore-recording.fsx [FILE]   (any format AudioFile reads; after `dotnet fsi build.fsx build`)
#load "_references.fsx"
open System
open System.IO
open Hybrid.Dsp
open Hybrid.Features

let file =
    match fsi.CommandLineArgs |> Array.tryItem 1 with
    | Some f -> f
    | None -> Path.Combine(_references.fsddFolder (), "recordings", "7_jackson_3.wav")

// librosa.load(file, sr=None, mono=True), with the header: one channel at the file's own rate.
let info, audio = AudioFile.readWithInfo AudioFile.defaults file
printfn "%s: %s %s, %d Hz, %d channel(s), %d frames (%.3f s)" (Path.GetFileName file) info.Container info.Encoding info.SampleRate info.Channels info.Frames info.Duration
let samples = audio.Samples.[0]
printfn "peak %.3f, RMS %.4f" (samples |> Array.map abs |> Array.max) (Clip.rms samples)
let start, stop = Clip.trimInterval 30.0 256 64 samples
printfn "speech (30 dB below the peak frame) from sample %d to %d" start stop

use engine = Engines.Create("managed")
let settings =
    { Transforms.defaults audio.SampleRate with
        Stft = StftConfig(NFft = 256, HopLength = 128)
        Mel = MelConfig(SampleRate = audio.SampleRate, NMels = 40)
        NMfcc = 13 }
for kind in [ Transforms.LogMel; Transforms.Mfcc; Transforms.Centroid; Transforms.Zcr ] do
    let ex = Transforms.extractor engine settings kind samples.Length
    let row = ex.ExtractBatch samples 1
    printfn "%-10s shape %-8s min %9.3f  max %9.3f" (Transforms.kindName kind) (String.Join("x", ex.Shape)) (Array.min row) (Array.max row)
