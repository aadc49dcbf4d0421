module Hybrid.FeaturesTests.NormalizationTests

open System
open Expecto
open Hybrid.Features

/// Float32 round-off: absolute 1e-5, relative 1e-4.
let private f32 = { absolute = 1e-5; relative = 1e-4 }

let private columnStats (width: int) (data: float32[]) j =
    let rows = data.Length / width
    let xs = Array.init rows (fun r -> float data.[r * width + j])
    let mean = Array.average xs
    mean, sqrt (xs |> Array.averageBy (fun x -> (x - mean) * (x - mean)))

let private randomRows (seed: int) rows width =
    let rng = Random seed
    Array.init (rows * width) (fun i -> float32 (rng.NextDouble() * 10.0 - 3.0 + float (i % width)))

[<Tests>]
let tests =
    testList "Normalization" [
        testProperty "fitted per-column statistics standardise the training rows" (fun (seed: int) ->
            let rows, width = 17, 5
            let data = randomRows seed rows width
            let stats = Normalization.fit Normalization.PerColumn width data
            Normalization.applyInPlace stats width data
            for j in 0 .. width - 1 do
                let mean, std = columnStats width data j
                Expect.floatClose f32 mean 0.0 (sprintf "column %d mean: expected 0, was %g" j mean)
                Expect.floatClose f32 std 1.0 (sprintf "column %d std: expected 1, was %g" j std))

        test "a constant column gets unit scale and stays finite" {
            let data = [| 1.0f; 7.0f; 2.0f; 7.0f; 3.0f; 7.0f |]
            let stats = Normalization.fit Normalization.PerColumn 2 data
            Expect.equal stats.Std.[1] 1.0f "expected std 1 for a constant column"
            Normalization.applyInPlace stats 2 data
            Expect.isTrue (data |> Array.forall Single.IsFinite) "expected finite values"
            Expect.equal data.[1] 0.0f "expected the constant column centred to 0"
        }

        test "statistics fitted on training rows are applied unchanged to other rows" {
            let train = [| 0.0f; 2.0f; 4.0f |]
            let stats = Normalization.fit Normalization.PerColumn 1 train
            let test = [| 6.0f |]
            Normalization.applyInPlace stats 1 test
            let expected = (6.0 - 2.0) / sqrt (8.0 / 3.0)
            Expect.floatClose f32 (float test.[0]) expected "expected (x - train mean) / train std"
        }

        test "per-band statistics pool each band over its frames" {
            let bands, frames = 2, 3
            let data = [| 1.0f; 2.0f; 3.0f; 10.0f; 10.0f; 10.0f |]
            let stats = Normalization.fit (Normalization.PerBand(bands, frames)) (bands * frames) data
            Expect.equal stats.Mean [| 2.0f; 10.0f |] "expected one mean per band"
        }

        test "per-band grouping refuses rows of the wrong width" {
            Expect.throwsT<ArgumentException> (fun () -> Normalization.fit (Normalization.PerBand(2, 3)) 5 (Array.zeroCreate 10) |> ignore) "width mismatch"
        }

        testProperty "per-utterance normalisation leaves every band with zero mean and unit deviation" (fun (seed: int) ->
            let bands, frames = 4, 9
            let data = randomRows seed 3 (bands * frames)
            Normalization.perUtteranceInPlace bands frames true 1e-5f data
            for r in 0 .. 2 do
                for b in 0 .. bands - 1 do
                    let xs = Array.init frames (fun t -> float data.[r * bands * frames + b * frames + t])
                    let mean = Array.average xs
                    let std = sqrt (xs |> Array.averageBy (fun x -> (x - mean) ** 2.0))
                    Expect.floatClose f32 mean 0.0 "expected zero mean per band"
                    Expect.floatClose f32 std 1.0 "expected unit deviation per band")

        testProperty "a range clamp raises only values below each row's maximum minus the range, and keeps the maximum" (fun (seed: int) ->
            let rows, width = 4, 30
            let rng = Random seed
            let data = Array.init (rows * width) (fun _ -> float32 (rng.NextDouble() * 120.0 - 100.0))
            let before = Array.copy data
            Normalization.clampRangeInPlace width 35.0f data
            for r in 0 .. rows - 1 do
                let row = before.[r * width .. r * width + width - 1]
                let top = Array.max row
                for j in 0 .. width - 1 do
                    let was, now = row.[j], data.[r * width + j]
                    if was >= top - 35.0f then Expect.equal now was "a value within the range is untouched"
                    else Expect.equal now (top - 35.0f) "a value below the range is raised to the floor"
                Expect.equal (Array.max data.[r * width .. r * width + width - 1]) top "the maximum is kept")

        test "a range clamp refuses a non-positive range and ragged rows" {
            Expect.throwsT<ArgumentException> (fun () -> Normalization.clampRangeInPlace 4 0.0f (Array.zeroCreate 8)) "zero range"
            Expect.throwsT<ArgumentException> (fun () -> Normalization.clampRangeInPlace 3 10.0f (Array.zeroCreate 8)) "8 values are not rows of 3"
        }

        testProperty "cepstral smoothing keeping every coefficient changes nothing, and smoothing is a projection" (fun (seed: int) ->
            let bands, frames = 12, 7
            let data = randomRows seed 3 (bands * frames)
            let full = Array.copy data
            Normalization.cepstralSmoothInPlace bands frames bands full
            for i in 0 .. data.Length - 1 do
                Expect.floatClose f32 (float full.[i]) (float data.[i]) "keep = bands is the identity"
            let once = Array.copy data
            Normalization.cepstralSmoothInPlace bands frames 5 once
            let twice = Array.copy once
            Normalization.cepstralSmoothInPlace bands frames 5 twice
            for i in 0 .. data.Length - 1 do
                Expect.floatClose f32 (float twice.[i]) (float once.[i]) "smoothing a smoothed image changes nothing")

        test "cepstral smoothing with one coefficient leaves each frame at its mean over the bands, and dropping the top coefficient removes most of a ripple across bands" {
            let bands, frames = 8, 3
            // frame t: a level of t plus a ripple alternating across bands (the highest cepstral coefficient)
            let data = Array.init (bands * frames) (fun i -> let b, t = i / frames, i % frames in float32 t + (if b % 2 = 0 then 1.0f else -1.0f))
            let flat = Array.copy data
            Normalization.cepstralSmoothInPlace bands frames 1 flat
            for i in 0 .. flat.Length - 1 do
                Expect.floatClose f32 (float flat.[i]) (float (i % frames)) "each band holds the frame's mean"
            let smooth = Array.copy data
            Normalization.cepstralSmoothInPlace bands frames (bands - 1) smooth
            // the alternating sequence puts 82% of its energy in the top coefficient (the rest in the other odd ones)
            let energy = smooth |> Array.mapi (fun i v -> (float v - float (i % frames)) ** 2.0) |> Array.sum
            Expect.isLessThan energy (0.25 * float (bands * frames)) "at least three quarters of the ripple's energy is gone without the top coefficient"
        }
    ]
