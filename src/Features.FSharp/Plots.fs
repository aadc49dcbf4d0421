/// PNG plots of audio and of training results (ScottPlot 5): waveforms, spectrogram-like heatmaps,
/// curves and confusion matrices. Every function writes one PNG file and returns its path.
module Hybrid.Features.Plots

open System
open System.IO
open ScottPlot

/// Default image size in pixels.
let defaultWidth, defaultHeight = 900, 450

/// A colormap read backwards (so that large counts are dark).
type private Reversed(inner: IColormap) =
    interface IColormap with
        member _.Name = inner.Name + " (reversed)"
        member _.GetColor(position: float) = inner.GetColor(1.0 - position)

let private save (plot: Plot) (path: string) (width: int) (height: int) =
    match Path.GetDirectoryName(Path.GetFullPath path) with
    | null -> ()
    | dir -> Directory.CreateDirectory dir |> ignore
    plot.SavePng(path, width, height) |> ignore
    path

/// Waveform of a mono clip against time in seconds.
let waveform (path: string) (title: string) (sampleRate: int) (samples: float32[]) =
    if sampleRate <= 0 then invalidArg (nameof sampleRate) (sprintf "sample rate must be positive, was %d" sampleRate)
    use plot = new Plot()
    let ys = samples |> Array.map float
    let signal = plot.Add.Signal(ys, 1.0 / float sampleRate)
    signal.LineWidth <- 1.0f
    plot.Title title
    plot.XLabel "time (s)"
    plot.YLabel "amplitude"
    save plot path defaultWidth defaultHeight

/// A heatmap of a [rows, cols] row-major matrix (e.g. bins x frames) with row 0 at the bottom,
/// as librosa.display.specshow draws spectrograms. Axis labels name the row and column units.
let heatmap (path: string) (title: string) (xLabel: string) (yLabel: string) (rows: int) (cols: int) (data: float32[]) =
    if rows <= 0 || cols <= 0 || data.Length <> rows * cols then
        invalidArg (nameof data) (sprintf "expected %d x %d = %d values, was %d" rows cols (rows * cols) data.Length)
    use plot = new Plot()
    // ScottPlot draws row 0 at the top: flip so low frequencies are at the bottom.
    let grid = Array2D.init rows cols (fun r c -> float data.[(rows - 1 - r) * cols + c])
    let map = plot.Add.Heatmap grid
    map.Colormap <- Colormaps.Viridis()
    plot.Add.ColorBar map |> ignore
    plot.Title title
    plot.XLabel xLabel
    plot.YLabel yLabel
    save plot path defaultWidth defaultHeight

/// Line curves sharing an x axis 1..n (e.g. loss per epoch for training and validation).
let curves (path: string) (title: string) (xLabel: string) (yLabel: string) (series: (string * float[]) list) =
    use plot = new Plot()
    for (name, ys) in series do
        if ys.Length > 0 then
            let xs = Array.init ys.Length (fun i -> float (i + 1))
            let line = plot.Add.Scatter(xs, ys)
            line.LegendText <- name
    plot.ShowLegend() |> ignore
    plot.Title title
    plot.XLabel xLabel
    plot.YLabel yLabel
    save plot path defaultWidth defaultHeight

/// A confusion matrix (rows: true label, columns: predicted label) with counts written in each cell.
let confusionMatrix (path: string) (title: string) (labels: string[]) (counts: int[,]) =
    let n = labels.Length
    if Array2D.length1 counts <> n || Array2D.length2 counts <> n then
        invalidArg (nameof counts) (sprintf "expected a %d x %d matrix for %d labels, was %d x %d" n n n (Array2D.length1 counts) (Array2D.length2 counts))
    use plot = new Plot()
    let grid = Array2D.init n n (fun r c -> float counts.[r, c])
    let map = plot.Add.Heatmap grid
    map.Colormap <- Reversed(Colormaps.Blues())
    let peak = max 1 (Seq.max (Seq.cast<int> counts))
    for r in 0 .. n - 1 do
        for c in 0 .. n - 1 do
            // Heatmap cell (r, c) is centred at x = c, y = n - 1 - r.
            let text = plot.Add.Text(string counts.[r, c], float c, float (n - 1 - r))
            text.LabelFontColor <- (if counts.[r, c] * 2 > peak then Colors.White else Colors.Black)
            text.LabelAlignment <- Alignment.MiddleCenter
    let ticks (reverse: bool) =
        labels |> Array.mapi (fun i l -> Tick(float (if reverse then n - 1 - i else i), l))
    plot.Axes.Bottom.TickGenerator <- TickGenerators.NumericManual(ticks false)
    plot.Axes.Left.TickGenerator <- TickGenerators.NumericManual(ticks true)
    plot.Title title
    plot.XLabel "predicted"
    plot.YLabel "true"
    let side = max 420 (60 * n + 160)
    save plot path side side

/// Width, height and the number of distinct colours of a PNG (for checks that a plot is not blank).
let inspectPng (path: string) =
    use bitmap =
        match SkiaSharp.SKBitmap.Decode path with
        | null -> raise (InvalidDataException(sprintf "%s: not a decodable PNG" path))
        | b -> b
    let colours = Collections.Generic.HashSet<uint32>()
    let step = max 1 (bitmap.Width * bitmap.Height / 20000)
    let mutable i = 0
    while i < bitmap.Width * bitmap.Height do
        let p = bitmap.GetPixel(i % bitmap.Width, i / bitmap.Width)
        colours.Add(uint32 p) |> ignore
        i <- i + step
    bitmap.Width, bitmap.Height, colours.Count
