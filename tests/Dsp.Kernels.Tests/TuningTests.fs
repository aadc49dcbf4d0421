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

          testCase "silence has no peaks and gives a tuning of 0" (fun () ->
              let estimates = Tuning.Estimate(engine, tensor (Array.zeroCreate 8192) [ 1; 8192 ], 22050)
              Expect.equal estimates [| 0.0f |] "silence") ]
