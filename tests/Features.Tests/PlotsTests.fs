module Hybrid.FeaturesTests.PlotsTests

open System
open System.IO
open Expecto
open Hybrid.Features

let private tempPng name =
    Path.Combine(Path.GetTempPath(), sprintf "hybrid-plots-%s-%s.png" name (Guid.NewGuid().ToString("N")))

let private expectPicture (path: string) minWidth minHeight =
    let w, h, colours = Plots.inspectPng path
    Expect.isGreaterThanOrEqual w minWidth (sprintf "expected width >= %d, was %d" minWidth w)
    Expect.isGreaterThanOrEqual h minHeight (sprintf "expected height >= %d, was %d" minHeight h)
    Expect.isGreaterThan colours 8 (sprintf "expected a non-blank picture (more than 8 colours), was %d colours" colours)
    File.Delete path

[<Tests>]
let tests =
    testList "Plots" [
        test "a waveform plot is a non-blank PNG of the default size" {
            let sr = 8000
            let samples = Array.init 4000 (fun i -> float32 (sin (2.0 * Math.PI * 440.0 * float i / float sr)))
            let path = Plots.waveform (tempPng "wave") "tone" sr samples
            expectPicture path Plots.defaultWidth Plots.defaultHeight
        }
        test "a heatmap plot draws a bins x frames matrix" {
            let rows, cols = 40, 65
            let data = Array.init (rows * cols) (fun i -> float32 ((i / cols) * (i % cols)))
            let path = Plots.heatmap (tempPng "heat") "mel" "frame" "mel band" rows cols data
            expectPicture path Plots.defaultWidth Plots.defaultHeight
        }
        test "a heatmap refuses data whose size does not match its shape" {
            Expect.throwsT<ArgumentException> (fun () -> Plots.heatmap (tempPng "bad") "x" "x" "y" 3 4 (Array.zeroCreate 11) |> ignore) "size mismatch"
        }
        test "training curves plot every series" {
            let path = Plots.curves (tempPng "curves") "loss" "epoch" "loss" [ "train", [| 2.0; 1.0; 0.5 |]; "validation", [| 2.2; 1.3; 0.9 |] ]
            expectPicture path Plots.defaultWidth Plots.defaultHeight
        }
        test "a confusion matrix plot is square and non-blank" {
            let labels = Array.init 10 string
            let counts = Array2D.init 10 10 (fun r c -> if r = c then 25 else (r + c) % 3)
            let path = Plots.confusionMatrix (tempPng "cm") "confusion" labels counts
            let w, h, _ = Plots.inspectPng path
            Expect.equal w h "expected a square image"
            expectPicture path 420 420
        }
        test "a confusion matrix must match its labels" {
            Expect.throwsT<ArgumentException> (fun () -> Plots.confusionMatrix (tempPng "bad") "x" [| "a"; "b" |] (Array2D.zeroCreate 3 3) |> ignore) "shape mismatch"
        }
    ]
