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

/// The major ticks of an axis after a render: (pixel-free position, label).
let private majorTicks (axis: #ScottPlot.IAxis) =
    axis.TickGenerator.Ticks |> Array.filter (fun t -> t.IsMajor) |> Array.map (fun t -> t.Position, t.Label)

/// Renders a plot at a size (so that its layout, ticks and label rectangles are computed).
let private render (plot: ScottPlot.Plot) (width: int) (height: int) =
    use image = plot.GetImage(width, height)
    plot.RenderManager.LastRender.DataRect

let private number (label: string) =
    match Double.TryParse(label, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
    | true, v -> v
    | _ -> failwithf "expected a tick label that is a number, was '%s'" label

/// The corners of a rectangle turned by `degrees` (screen coordinates, y down) about a pivot.
let private turned (rect: ScottPlot.PixelRect) (pivotX: float32) (pivotY: float32) (degrees: float32) =
    let a = float degrees * Math.PI / 180.0
    [| rect.Left, rect.Top; rect.Right, rect.Top; rect.Right, rect.Bottom; rect.Left, rect.Bottom |]
    |> Array.map (fun (x, y) ->
        let dx, dy = float (x - pivotX), float (y - pivotY)
        float pivotX + dx * cos a - dy * sin a, float pivotY + dx * sin a + dy * cos a)

/// Whether two convex polygons overlap by more than `slack` pixels (separating axis theorem).
let private overlap (slack: float) (a: (float * float)[]) (b: (float * float)[]) =
    let axes (p: (float * float)[]) =
        p |> Array.mapi (fun i (x, y) -> let nx, ny = p.[(i + 1) % p.Length] in let ex, ey = nx - x, ny - y in let l = sqrt (ex * ex + ey * ey) in -ey / l, ex / l)
    Array.append (axes a) (axes b)
    |> Array.forall (fun (ax, ay) ->
        let project (p: (float * float)[]) = p |> Array.map (fun (x, y) -> x * ax + y * ay)
        let pa, pb = project a, project b
        min (Array.max pa) (Array.max pb) - max (Array.min pa) (Array.min pb) > slack)

let private box (r: ScottPlot.PixelRect) =
    [| float r.Left, float r.Top; float r.Right, float r.Top; float r.Right, float r.Bottom; float r.Left, float r.Bottom |]

let private urbanSound =
    [| "air_conditioner"; "car_horn"; "children_playing"; "dog_bark"; "drilling"; "engine_idling"; "gun_shot"; "jackhammer"; "siren"; "street_music" |]

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
        test "a spectral plot's x axis is in seconds and its linear y axis in Hz up to the limit" {
            let sr, nFft, hop, frames = 16000, 2048, 512, 100
            let bins = nFft / 2 + 1
            let data = Array.init (bins * frames) (fun i -> float32 (-(i / frames % 80)))
            use plot = Plots.spectralPlot "chirp" sr hop (Plots.LinearHz(sr, nFft, 5000.0)) "dB" bins frames data
            render plot Plots.defaultWidth Plots.defaultHeight |> ignore
            Expect.equal plot.Axes.Bottom.Label.Text "Time (s)" "x axis title"
            Expect.equal plot.Axes.Left.Label.Text "Hz" "y axis title"
            let limits = plot.Axes.GetLimits()
            Expect.floatClose Accuracy.high limits.Right (float (frames * hop) / float sr) "x runs to frames * hop / sr seconds"
            Expect.floatClose Accuracy.high limits.Top 5000.0 "y runs to the limit in Hz"
            Expect.floatClose Accuracy.high limits.Bottom 0.0 "y starts at 0 Hz"
            let seconds = majorTicks plot.Axes.Bottom |> Array.map (snd >> number)
            Expect.isGreaterThanOrEqual seconds.Length 3 "several time ticks"
            Expect.isTrue (seconds |> Array.forall (fun s -> s >= 0.0 && s <= 3.2)) (sprintf "time ticks within the 3.2 s clip, were %A" seconds)
            let hz = majorTicks plot.Axes.Left |> Array.map (snd >> number)
            Expect.contains hz 0.0 "a 0 Hz tick"
            Expect.isTrue (hz |> Array.forall (fun f -> f >= 0.0 && f <= 5000.0 && f = Math.Round f)) (sprintf "whole Hz ticks in 0..5000, were %A" hz)
            Expect.isGreaterThanOrEqual (Array.max hz) 4000.0 "ticks reach the top of the axis"
            let path = Plots.spectral (tempPng "spec") "chirp" sr hop (Plots.LinearHz(sr, nFft, 5000.0)) "dB" bins frames data
            expectPicture path Plots.defaultWidth Plots.defaultHeight
        }
        test "a mel axis labels powers of two in Hz at their mel-scale positions" {
            let rows, frames = 40, 30
            use plot = Plots.spectralPlot "mel" 8000 128 (Plots.MelHz(0.0, 4000.0, false)) "dB" rows frames (Array.init (rows * frames) float32)
            render plot Plots.defaultWidth Plots.defaultHeight |> ignore
            Expect.equal plot.Axes.Left.Label.Text "Hz (mel scale)" "y axis title"
            let ticks = majorTicks plot.Axes.Left
            Expect.isGreaterThanOrEqual ticks.Length 4 (sprintf "expected at least 4 Hz ticks, were %A" ticks)
            for position, label in ticks do
                let hz = number label
                Expect.isTrue (hz = 0.0 || Math.Log2 hz = Math.Round(Math.Log2 hz)) (sprintf "expected a power of two in Hz, was %s" label)
                Expect.floatClose Accuracy.high position (Hybrid.Dsp.Filters.HzToMel(hz, false)) (sprintf "tick %s Hz placed at its mel value" label)
            Expect.contains (ticks |> Array.map snd) "2048" "a 2048 Hz tick"
        }
        test "MFCC rows are numbered and chroma rows named by pitch class" {
            let frames = 20
            use mfcc = Plots.spectralPlot "mfcc" 22050 512 (Plots.Index "MFCC coefficient") "" 13 frames (Array.init (13 * frames) float32)
            render mfcc Plots.defaultWidth Plots.defaultHeight |> ignore
            Expect.equal mfcc.Axes.Left.Label.Text "MFCC coefficient" "MFCC axis title"
            let rows = majorTicks mfcc.Axes.Left |> Array.map (snd >> number)
            Expect.isTrue (rows |> Array.forall (fun r -> r = Math.Round r && r >= 0.0 && r <= 12.0)) (sprintf "integer coefficient ticks in 0..12, were %A" rows)
            use chroma = Plots.spectralPlot "chroma" 22050 512 Plots.PitchClasses "" 12 frames (Array.init (12 * frames) float32)
            render chroma Plots.defaultWidth Plots.defaultHeight |> ignore
            Expect.equal (majorTicks chroma.Axes.Left) (Plots.pitchClasses |> Array.mapi (fun i name -> float i, name)) "C to B at rows 0 to 11"
            Expect.equal chroma.Axes.Bottom.Label.Text "Time (s)" "chroma x axis title"
            Expect.throwsT<ArgumentException> (fun () -> Plots.spectralPlot "x" 22050 512 Plots.PitchClasses "" 13 frames (Array.zeroCreate (13 * frames)) |> ignore) "chroma needs 12 rows"
        }
        test "training curves plot every series" {
            let path = Plots.curves (tempPng "curves") "loss" "epoch" "loss" [ "train", [| 2.0; 1.0; 0.5 |]; "validation", [| 2.2; 1.3; 0.9 |] ]
            expectPicture path Plots.defaultWidth Plots.defaultHeight
        }
        test "training curves put ticks on whole epochs only, even for two epochs" {
            for epochs in [ 2; 3; 12; 100 ] do
                use plot = Plots.curvesPlot "loss" "epoch" "loss" [ "train", Array.init epochs (fun i -> 1.0 / float (i + 1)) ]
                render plot Plots.defaultWidth Plots.defaultHeight |> ignore
                let ticks = majorTicks plot.Axes.Bottom |> Array.map fst
                Expect.isNonEmpty ticks (sprintf "%d epochs: ticks" epochs)
                for t in ticks do
                    Expect.equal t (Math.Round t) (sprintf "%d epochs: tick %g is a whole epoch" epochs t)
        }
        test "a confusion matrix plot of ten digits is non-blank and its data area square" {
            let labels = Array.init 10 string
            let counts = Array2D.init 10 10 (fun r c -> if r = c then 25 else (r + c) % 3)
            let path = Plots.confusionMatrix (tempPng "cm") "confusion" labels counts
            let plot, w, h = Plots.confusionMatrixPlot "confusion" labels counts
            use plot = plot
            let area = render plot w h
            Expect.floatClose Accuracy.low (float area.Width) (float area.Height) "expected square cells"
            Expect.equal (Plots.inspectPng path |> fun (pw, ph, _) -> pw, ph) (w, h) "expected the PNG at the laid-out size"
            expectPicture path 300 300
        }
        test "the UrbanSound8K class names of a confusion matrix neither overlap nor leave the picture" {
            let n = urbanSound.Length
            let counts = Array2D.init n n (fun r c -> if r = c then 812 else (r * 7 + c * 3) % 40)
            let plot, w, h = Plots.confusionMatrixPlot "confusion matrix, test fold10" urbanSound counts
            use plot = plot
            let area = render plot w h
            Expect.equal plot.Axes.Bottom.Label.Text "predicted" "x axis title"
            Expect.equal plot.Axes.Left.Label.Text "true" "y axis title"
            Expect.equal (majorTicks plot.Axes.Bottom |> Array.map snd) urbanSound "every predicted name, in order"
            Expect.equal (majorTicks plot.Axes.Left |> Array.sortByDescending fst |> Array.map snd) urbanSound "every true name, top to bottom"
            Expect.equal plot.Axes.Bottom.TickLabelStyle.Rotation -45f "predicted names rotated 45 degrees"
            // Each name's rectangle is the last drawn one's, moved to its tick; the predicted names turn about their
            // right-middle point, as ScottPlot draws them.
            let lastBottom, lastLeft = plot.Axes.Bottom.TickLabelStyle.LastRenderPixelRect, plot.Axes.Left.TickLabelStyle.LastRenderPixelRect
            let px (x: float) (y: float) = plot.GetPixel(ScottPlot.Coordinates(x, y))
            let bottomTicks = majorTicks plot.Axes.Bottom
            let lastX = (px (fst bottomTicks.[n - 1]) 0.0).X
            let predicted =
                bottomTicks |> Array.map (fun (position, _) ->
                    let r = lastBottom.WithPan((px position 0.0).X - lastX, 0f)
                    turned r r.Right r.VerticalCenter -45f)
            let leftTicks = majorTicks plot.Axes.Left
            let lastY = (px 0.0 (fst leftTicks.[n - 1])).Y
            let actual = leftTicks |> Array.map (fun (position, _) -> box (lastLeft.WithPan(0f, (px 0.0 position).Y - lastY)))
            for i in 0 .. n - 2 do
                Expect.isFalse (overlap 0.5 predicted.[i] predicted.[i + 1]) (sprintf "predicted names %s and %s overlap" urbanSound.[i] urbanSound.[i + 1])
                Expect.isFalse (overlap 0.5 actual.[i] actual.[i + 1]) (sprintf "true names %s and %s overlap" urbanSound.[i] urbanSound.[i + 1])
            let title = box plot.Axes.Bottom.Label.LastRenderPixelRect
            for i, corners in Array.indexed (Array.append predicted actual) do
                let name = urbanSound.[i % n]
                for x, y in corners do
                    Expect.isTrue (x >= 0.0 && x <= float w && y >= 0.0 && y <= float h) (sprintf "name %s reaches (%.0f, %.0f), outside the %d x %d picture" name x y w h)
                Expect.isFalse (overlap 0.5 corners title) (sprintf "name %s overlaps the axis title" name)
                Expect.isFalse (overlap 0.5 corners (box area)) (sprintf "name %s overlaps the matrix" name)
            let widest = urbanSound |> Array.maxBy String.length
            Expect.isGreaterThan w (int area.Width + 100) (sprintf "expected room left of the matrix for '%s'" widest)
        }
        test "a long class name is shortened on the picture, never on the axis of a short one" {
            Expect.equal (Plots.shortClassName "children_playing") "children_playing" "a short name is kept"
            let long = String.replicate 5 "abcdefghij"
            let short = Plots.shortClassName long
            Expect.equal short.Length Plots.maxClassNameChars "cut to the maximum length"
            Expect.isTrue (short.EndsWith "...") (sprintf "expected an ellipsis, was '%s'" short)
            let plot, w, h = Plots.confusionMatrixPlot "x" [| "yes"; long |] (array2D [ [ 3; 1 ]; [ 0; 5 ] ])
            use plot = plot
            render plot w h |> ignore
            Expect.equal (plot.Axes.Bottom.TickGenerator.Ticks |> Array.map (fun t -> t.Label)) [| "yes"; short |] "the shortened name on the axis"
        }
        test "a confusion matrix's long title stays inside the picture however few its classes" {
            for labels in [ [| "yes"; "no" |]; Array.init 5 string ] do
                let title = "confusion matrix, out-of-fold predictions of 5 folds pooled, every recording once"
                let n = labels.Length
                let plot, w, h = Plots.confusionMatrixPlot title labels (Array2D.init n n (fun r c -> if r = c then 9 else 1))
                use plot = plot
                render plot w h |> ignore
                let r = plot.Axes.Title.Label.LastRenderPixelRect
                Expect.isGreaterThan r.Width 300f "the title was drawn"
                Expect.isTrue (r.Left >= 0f && r.Right <= float32 w)
                    (sprintf "%d classes: the title spans %.0f .. %.0f px of a %d px wide picture" n r.Left r.Right w)
        }
        test "a confusion matrix must match its labels" {
            Expect.throwsT<ArgumentException> (fun () -> Plots.confusionMatrix (tempPng "bad") "x" [| "a"; "b" |] (Array2D.zeroCreate 3 3) |> ignore) "shape mismatch"
        }
    ]
