/// Tuning estimation (librosa.estimate_tuning through piptrack) on the managed engine.
module Hybrid.DspKernelsTests.TuningTests

open System
open Expecto
open Hybrid.Dsp
open Hybrid.DspKernelsTests.Reference

/// A sum of equal-tempered tones around A4, detuned by `tuning` bins, at 22,050 Hz for one second.
let detuned (tuning: float) =
    let sr = 22050.0
    let notes = [ -9.0; -5.0; 0.0; 3.0; 7.0 ]
    Array.init 22050 (fun i ->
        notes
        |> List.sumBy (fun semitones -> 0.2 * sin (2.0 * Math.PI * 440.0 * 2.0 ** ((semitones + tuning) / 12.0) * float i / sr))
        |> float32)

[<Tests>]
let tests =
    testList
        "Tuning"
        [ testCase "detuned chords give back their detuning within 0.02 bins, per clip" (fun () ->
              let tunings = [ 0.0; 0.25; -0.2 ]
              let x = tunings |> List.map detuned |> Array.concat
              let estimates = Tuning.Estimate(engine, tensor x [ tunings.Length; 22050 ], 22050)
              for (expected, actual) in List.zip tunings (List.ofArray estimates) do
                  Expect.floatClose { absolute = 0.02; relative = 0.0 } (float actual) expected "tuning")

          testCase "the harmonic test signal is the one the librosa reference was made from" (fun () ->
              let r = chromaReference.Value.GetProperty "signal"
              let _, y = harmonicSignal.Value
              let first = [| for v in r.GetProperty("first").EnumerateArray() -> float32 (v.GetDouble()) |]
              Expect.equal y.[0..3] first "first samples"
              Expect.floatClose { absolute = 0.0; relative = 1e-6 } (y |> Array.sumBy (fun v -> abs (float v))) (r.GetProperty("sum_abs").GetDouble()) "sum of |y|")

          testCase "estimate_tuning of a 30 s harmonic signal equals librosa's, from the signal and from its power spectrogram" (fun () ->
              let sr, y = harmonicSignal.Value
              let reference = chromaReference.Value
              let fromY = Tuning.Estimate(engine, tensor y [ 1; y.Length ], sr)
              Expect.floatClose { absolute = 1e-6; relative = 0.0 } (float fromY.[0]) (reference.GetProperty("estimate_tuning_y").GetDouble()) "estimate_tuning(y=y)"
              let config = StftConfig(2048)
              let frames = config.FrameCount y.Length
              use power = zeros [ 1; config.Bins; frames ]
              dsp.Stft(config, tensor y [ 1; y.Length ], power, SpectrumKind.Power)
              let fromS = Tuning.EstimateFromSpectrogram(ReadOnlySpan(power.ToArray()), config.Bins, frames, sr)
              Expect.floatClose { absolute = 1e-6; relative = 0.0 } (float fromS) (reference.GetProperty("estimate_tuning_power_spectrogram").GetDouble()) "estimate_tuning(S=power)")

          testCase "chroma_stft with estimated tuning matches librosa within 0.5% (mean and per-bin means over 30 s)" (fun () ->
              let sr, y = harmonicSignal.Value
              let reference = chromaReference.Value
              let config = StftConfig(2048)
              let frames = config.FrameCount y.Length
              Expect.equal frames (reference.GetProperty("frames").GetInt32()) "frames"
              use power = zeros [ 1; config.Bins; frames ]
              dsp.Stft(config, tensor y [ 1; y.Length ], power, SpectrumKind.Power)
              use chroma = zeros [ 1; 12; frames ]
              let tunings = Tuning.ChromaStft(engine, power, sr, 2048, 12, chroma)
              Expect.floatClose { absolute = 1e-6; relative = 0.0 } (float tunings.[0]) (reference.GetProperty("estimate_tuning_power_spectrogram").GetDouble()) "tuning used"
              let c = chroma.ToArray()
              let mean = c |> Array.averageBy float
              let expected = reference.GetProperty("chroma_stft_mean").GetDouble()
              printfn "chroma_stft mean %.6f, librosa %.6f (%.3f%%)" mean expected (100.0 * abs (mean - expected) / expected)
              Expect.floatClose { absolute = 0.0; relative = 0.005 } mean expected "mean chroma"
              let binMeans = Array.init 12 (fun b -> Array.averageBy float c.[b * frames .. (b + 1) * frames - 1])
              let expectedBins = [| for v in reference.GetProperty("chroma_stft_bin_means").EnumerateArray() -> v.GetDouble() |]
              for b in 0..11 do
                  Expect.floatClose { absolute = 1e-3; relative = 0.005 } binMeans.[b] expectedBins.[b] (sprintf "mean of chroma bin %d" b)
              // With the tuning fixed at 0 (the old behaviour) the same signal is several percent off.
              use fixed0 = zeros [ 1; 12; frames ]
              dsp.Chroma(sr, 2048, 12, 0.0f, power, fixed0)
              let mean0 = fixed0.ToArray() |> Array.averageBy float
              Expect.floatClose { absolute = 0.0; relative = 0.005 } mean0 (reference.GetProperty("chroma_stft_tuning0_mean").GetDouble()) "tuning 0 matches librosa's tuning=0.0"
              Expect.isGreaterThan (abs (mean0 - expected) / expected) 0.02 "and differs from the estimated-tuning chroma")

          testCase "chroma_stft of a batch on the managed engine (in place, clips in parallel) is each clip's own estimate and chroma, bit for bit" (fun () ->
              // Clips of several tunings (and one silent clip) with 44 frames each, so the eight-frame maximum has a tail.
              let tunings = [ 0.0; 0.25; -0.2; 0.1; 0.0 ]
              let clips = tunings |> List.mapi (fun i t -> if i = 3 then Array.zeroCreate 22050 else detuned t) |> Array.concat
              let config = StftConfig(2048)
              let frames = config.FrameCount 22050
              use power = zeros [ tunings.Length; config.Bins; frames ]
              dsp.Stft(config, tensor clips [ tunings.Length; 22050 ], power, SpectrumKind.Power)
              use chroma = zeros [ tunings.Length; 12; frames ]
              let estimated = Tuning.ChromaStft(engine, power, 22050, 2048, 12, chroma)
              let p = power.ToArray()
              let c = chroma.ToArray()
              for i in 0 .. tunings.Length - 1 do
                  let own = Tuning.EstimateFromSpectrogram(ReadOnlySpan(p, i * config.Bins * frames, config.Bins * frames), config.Bins, frames, 22050)
                  Expect.equal estimated.[i] own (sprintf "clip %d: the tuning of its own spectrogram" i)
                  use single = tensor p.[i * config.Bins * frames .. (i + 1) * config.Bins * frames - 1] [ 1; config.Bins; frames ]
                  use expected = zeros [ 1; 12; frames ]
                  dsp.Chroma(22050, 2048, 12, own, single, expected)
                  Expect.equal c.[i * 12 * frames .. (i + 1) * 12 * frames - 1] (expected.ToArray()) (sprintf "clip %d: chroma with that tuning" i)
              Expect.equal estimated.[3] 0.0f "the silent clip has tuning 0"
              Expect.isTrue (estimated.[1] <> estimated.[2]) "clips of different tunings get their own")

          testCase "silence has no peaks and gives a tuning of 0" (fun () ->
              let estimates = Tuning.Estimate(engine, tensor (Array.zeroCreate 8192) [ 1; 8192 ], 22050)
              Expect.equal estimates [| 0.0f |] "silence") ]
