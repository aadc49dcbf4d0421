/// Mel, dB, MFCC, deltas and spectral features on the managed engine: closed-form cases (pure tones, flat
/// spectra, polynomials), per-clip top_db, error messages and batch consistency.
module Hybrid.DspKernelsTests.SpectralTests

open System
open Expecto
open FsCheck
open Hybrid.Dsp
open Hybrid.TestSupport
open Hybrid.DspKernelsTests.Reference

let sr = 8000

/// A sine of `hz` Hz lasting `samples` samples at 8 kHz.
let tone (hz: float) (samples: int) = Array.init samples (fun i -> float32 (0.5 * sin (2.0 * Math.PI * hz * float i / float sr)))

/// Magnitude spectrogram [1, bins, frames] of one clip (n_fft 1024, hop 256).
let magnitude (x: float32[]) =
    let c = StftConfig(1024, 256)
    let frames = c.FrameCount x.Length
    let s = zeros [ 1; c.Bins; frames ]
    dsp.Stft(c, tensor x [ 1; x.Length ], s, SpectrumKind.Magnitude)
    s, frames

let perFrame frames (f: Tensor -> unit) =
    let out = zeros [ 1; frames ]
    f out
    out.ToArray()

/// The frames away from the clip's edges (the centred frames there see zero padding).
let interior (a: float32[]) = a.[4 .. a.Length - 5]

let config = Properties.config 25

[<Tests>]
let tests =
    testList
        "Spectral"
        [ testPropertyWithConfig config "a pure tone gives its frequency as centroid and 2f/sr as zero-crossing rate" (fun (pick: int) ->
              let hz = 200.0 + float (abs pick % 3000)
              let x = tone hz 8000
              let s, frames = magnitude x
              let centroid = perFrame frames (fun o -> dsp.SpectralCentroid(sr, 1024, s, o)) |> interior
              for c in centroid do
                  Expect.floatClose { absolute = 15.0; relative = 0.01 } (float c) hz "centroid"
              let zFrames = 1 + (8000 + 2 * 512 - 1024) / 256
              let zcr = zeros [ 1; zFrames ]
              dsp.ZeroCrossingRate(1024, 256, true, tensor x [ 1; 8000 ], zcr)
              for z in interior (zcr.ToArray()) do
                  Expect.floatClose { absolute = 2.0 / 1024.0; relative = 0.0 } (float z) (2.0 * hz / float sr) "zero-crossing rate")

          testCase "a tone's bandwidth is narrow, its rolloff near the tone and its flatness far below white noise's" (fun () ->
              let x = tone 1000.0 8000
              let s, frames = magnitude x
              let bw = perFrame frames (fun o -> dsp.SpectralBandwidth(sr, 1024, 2.0f, s, o)) |> interior
              Expect.isLessThan (Array.max bw) 100.0f "bandwidth of a 1 kHz tone"
              let rolloff = perFrame frames (fun o -> dsp.SpectralRolloff(sr, 1024, 0.85f, s, o)) |> interior
              for r in rolloff do
                  Expect.floatClose { absolute = 40.0; relative = 0.0 } (float r) 1000.0 "rolloff"
              let flatTone = perFrame frames (fun o -> dsp.SpectralFlatness(1e-10f, 2.0f, s, o)) |> interior
              let n, _ = magnitude (noise 3 8000)
              let flatNoise = perFrame frames (fun o -> dsp.SpectralFlatness(1e-10f, 2.0f, n, o)) |> interior
              Expect.isLessThan (Array.max flatTone) 0.01f "tone flatness"
              Expect.isGreaterThan (Array.min flatNoise) 0.2f "white noise flatness")

          testCase "RMS of a sine of amplitude a is a / sqrt 2 away from the edges" (fun () ->
              let x = tone 440.0 8000
              let out = zeros [ 1; 1 + 8000 / 256 ]
              dsp.Rms(1024, 256, true, PadMode.Constant, tensor x [ 1; 8000 ], out)
              for r in interior (out.ToArray()) do
                  Expect.floatClose { absolute = 0.005; relative = 0.0 } (float r) (0.5 / sqrt 2.0) "rms")

          testCase "chroma of an A tone peaks at pitch class A" (fun () ->
              let x = tone 440.0 8000
              let c = StftConfig(1024, 256)
              let frames = c.FrameCount 8000
              let power = zeros [ 1; c.Bins; frames ]
              dsp.Stft(c, tensor x [ 1; 8000 ], power, SpectrumKind.Power)
              let chroma = zeros [ 1; 12; frames ]
              dsp.Chroma(sr, 1024, 12, 0.0f, power, chroma)
              let a = chroma.ToArray()
              for t in 4 .. frames - 5 do
                  Expect.equal a.[9 * frames + t] 1.0f "A is the strongest class, normalised to 1")

          testCase "power_to_db applies top_db per clip, never across the batch" (fun () ->
              let loud = Array.create 4 1.0f
              let quiet = [| 1e-4f; 1e-6f; 1e-12f; 0.0f |]
              let out = zeros [ 2; 4 ]
              dsp.PowerToDb(DbConfig(1.0, 1e-10, Nullable 30.0), tensor (Array.append loud quiet) [ 2; 4 ], out)
              let y = out.ToArray()
              Expect.sequenceEqual y.[0..3] [| 0.0f; 0.0f; 0.0f; 0.0f |] "loud clip"
              Assertions.allClose 0.0 1e-4 [| -40.0f; -60.0f; -70.0f; -70.0f |] y.[4..7] "quiet clip floored 30 dB under its own maximum")

          testCase "amplitude_to_db is 20 log10 of |x| over ref, with amin on amplitudes" (fun () ->
              let out = zeros [ 1; 3 ]
              dsp.AmplitudeToDb(DbConfig(2.0, 1e-5, Nullable()), tensor [| 2.0f; -0.2f; 0.0f |] [ 1; 3 ], out)
              Assertions.allClose 0.0 1e-4 [| 0.0f; -20.0f; float32 (20.0 * log10 (1e-5 / 2.0)) |] (out.ToArray()) "dB")

          testCase "mel of a spectrogram is the filter bank times the spectrogram" (fun () ->
              let c = MelConfig(8000, 20, 100.0, Nullable 3500.0, true, MelNorm.None)
              let bins, frames = 129, 11
              let s = noise 5 (bins * frames) |> Array.map abs
              let out = zeros [ 1; 20; frames ]
              dsp.Mel(c, 256, tensor s [ 1; bins; frames ], out)
              let w = Filters.Mel(c, 256)
              let expected = Array.init (20 * frames) (fun i -> let m, t = i / frames, i % frames in Seq.sum (seq { for k in 0 .. bins - 1 -> w.[m * bins + k] * s.[k * frames + t] }))
              Assertions.allClose 1e-5 1e-6 expected (out.ToArray()) "mel")

          testCase "MFCC is the DCT-II ortho of each frame, scaled by the sinusoidal lifter" (fun () ->
              let nMels, frames, nMfcc, lifter = 26, 5, 13, 22.0f
              let logMel = noise 6 (nMels * frames)
              let out = zeros [ 1; nMfcc; frames ]
              dsp.Mfcc(nMfcc, lifter, tensor logMel [ 1; nMels; frames ], out)
              let expected =
                  Array.init (nMfcc * frames) (fun i ->
                      let k, t = i / frames, i % frames
                      let norm = sqrt ((if k = 0 then 1.0 else 2.0) / float nMels)
                      let dct = Seq.sum (seq { for m in 0 .. nMels - 1 -> float logMel.[m * frames + t] * cos (Math.PI * float k * (2.0 * float m + 1.0) / (2.0 * float nMels)) })
                      float32 (norm * dct * (1.0 + float lifter / 2.0 * sin (Math.PI * float (k + 1) / float lifter))))
              Assertions.allClose 1e-5 1e-5 expected (out.ToArray()) "mfcc")

          testCase "delta of a quadratic gives its exact first and second derivatives on every frame" (fun () ->
              let frames = 20
              let row = Array.init frames (fun t -> float32 (1.0 + 0.5 * float t + 0.25 * float t * float t))
              for width in [ 3; 5; 9 ] do
                  let d1 = zeros [ 1; 1; frames ]
                  let d2 = zeros [ 1; 1; frames ]
                  dsp.Delta(width, 1, tensor row [ 1; 1; frames ], d1)
                  dsp.Delta(width, 2, tensor row [ 1; 1; frames ], d2)
                  // Order 1 fits a line: on a quadratic the interior slope is exact (symmetric window).
                  let interiorSlope = d1.ToArray().[width / 2 .. frames - 1 - width / 2]
                  let expectedSlope = Array.init frames (fun t -> float32 (0.5 + 0.5 * float t))
                  Assertions.allClose 1e-4 1e-4 expectedSlope.[width / 2 .. frames - 1 - width / 2] interiorSlope (sprintf "slope width %d" width)
                  Assertions.allClose 1e-4 1e-4 (Array.create frames 0.5f) (d2.ToArray()) (sprintf "curvature width %d" width))

          testCase "delta rejects clips shorter than its width" (fun () ->
              Expect.throwsT<ArgumentException> (fun () -> dsp.Delta(9, 1, tensor (Array.zeroCreate 5) [ 1; 1; 5 ], zeros [ 1; 1; 5 ])) "width 9 over 5 frames")

          testPropertyWithConfig config "spectral features of a batch equal those of its clips one by one" (fun (Properties.BatchSize batch) (seed: int) ->
              let bins, frames = 129, 17
              let s = noise seed (batch * bins * frames) |> Array.map abs
              let run (b: int) (data: float32[]) (f: Tensor -> Tensor -> unit) =
                  let o = zeros [ b; frames ]
                  f (tensor data [ b; bins; frames ]) o
                  o.ToArray()
              let ops: (string * (Tensor -> Tensor -> unit)) list =
                  [ "centroid", fun s o -> dsp.SpectralCentroid(sr, 256, s, o)
                    "bandwidth", fun s o -> dsp.SpectralBandwidth(sr, 256, 1.5f, s, o)
                    "rolloff", fun s o -> dsp.SpectralRolloff(sr, 256, 0.9f, s, o)
                    "flatness", fun s o -> dsp.SpectralFlatness(1e-10f, 2.0f, s, o) ]
              for (name, f) in ops do
                  let all = run batch s f
                  for b in 0 .. batch - 1 do
                      Expect.sequenceEqual all.[b * frames .. (b + 1) * frames - 1] (run 1 s.[b * bins * frames .. (b + 1) * bins * frames - 1] f) (sprintf "%s clip %d" name b)) ]
