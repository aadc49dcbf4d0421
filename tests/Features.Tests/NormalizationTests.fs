module Hybrid.FeaturesTests.NormalizationTests

open System
open Expecto
open Hybrid.TestSupport
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
        testPropertyWithConfig Properties.defaults "fitted per-column statistics standardise the training rows" (fun (seed: int) ->
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

        testPropertyWithConfig Properties.defaults "per-utterance normalisation leaves every band with zero mean and unit deviation" (fun (seed: int) ->
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
    ]
