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
    plot.XLabel "Time (s)"
    plot.YLabel "Amplitude"
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

/// The vertical axis of a spectral plot (librosa.display.specshow's y_axis).
type SpectralAxis =
    /// Linear frequency (y_axis='linear'): row k is FFT bin k, centred at k * sampleRate / nFft Hz; the axis shows
    /// 0 to `limit` Hz, ticks in Hz.
    | LinearHz of sampleRate: int * nFft: int * limit: float
    /// Mel bands (y_axis='mel'): rows equally spaced in mels between fMin and fMax Hz (Slaney's scale, or HTK's),
    /// ticks at powers of two in Hz placed on the mel scale.
    | MelHz of fMin: float * fMax: float * htk: bool
    /// Row index from 0, integer ticks (MFCC: y_axis=None), under the given axis title.
    | Index of title: string
    /// The 12 pitch classes C to B (y_axis='chroma').
    | PitchClasses

/// Pitch class names of chroma rows 0..11.
let pitchClasses = [| "C"; "C#"; "D"; "D#"; "E"; "F"; "F#"; "G"; "G#"; "A"; "A#"; "B" |]

let private invariant = Globalization.CultureInfo.InvariantCulture

/// Tick label of a frequency in Hz ("0", "512", "4096").
let private hzText (hz: float) = Math.Round(hz).ToString("0", invariant)

/// A [rows, cols] row-major matrix of frames (e.g. bins x frames, hop `hopLength` samples at `sampleRate` Hz)
/// laid out as librosa.display.specshow draws it: x in seconds (frame t spans t * hop / sr to (t + 1) * hop / sr,
/// axis title "Time (s)"), y per `yAxis` with row 0 at the bottom, and a colour bar titled `colourTitle` (e.g. "dB").
/// Returns the plot; the caller disposes it (save it with `spectral`). Raises ArgumentException when the data
/// does not hold rows x cols values or a rate, hop or frequency range is not positive.
let spectralPlot (title: string) (sampleRate: int) (hopLength: int) (yAxis: SpectralAxis) (colourTitle: string) (rows: int) (cols: int) (data: float32[]) =
    if rows <= 0 || cols <= 0 || data.Length <> rows * cols then
        invalidArg (nameof data) (sprintf "expected %d x %d = %d values, was %d" rows cols (rows * cols) data.Length)
    if sampleRate <= 0 || hopLength <= 0 then
        invalidArg (nameof hopLength) (sprintf "sample rate and hop length must be positive, were %d and %d" sampleRate hopLength)
    match yAxis with
    | LinearHz (sr, nFft, limit) when sr <= 0 || nFft <= 0 || not (limit > 0.0) ->
        invalidArg (nameof yAxis) (sprintf "linear axis: sample rate, n_fft and limit must be positive, were %d, %d and %g" sr nFft limit)
    | MelHz (fMin, fMax, _) when not (fMax > fMin) || fMin < 0.0 ->
        invalidArg (nameof yAxis) (sprintf "mel axis: expected 0 <= fmin < fmax, were %g and %g" fMin fMax)
    | PitchClasses when rows <> 12 -> invalidArg (nameof rows) (sprintf "chroma has 12 rows, was %d" rows)
    | _ -> ()
    let automatic (integers: bool) (format: float -> string) =
        TickGenerators.NumericAutomatic(IntegerTicksOnly = integers, LabelFormatter = Func<float, string>(format))
    let plot = new Plot()
    // ScottPlot draws row 0 at the top: flip so low frequencies are at the bottom.
    let grid = Array2D.init rows cols (fun r c -> float data.[(rows - 1 - r) * cols + c])
    let map = plot.Add.Heatmap grid
    map.Colormap <- Colormaps.Viridis()
    let seconds = float cols * float hopLength / float sampleRate
    // Cell edges on the y axis, the range shown, the axis title and its ticks.
    let (yLow, yHigh), (shownLow, shownHigh), yTitle, (ticks: ITickGenerator) =
        match yAxis with
        | LinearHz (sr, nFft, limit) ->
            // Bin k is centred at k * sr / n_fft.
            let binHz = float sr / float nFft
            let top = (float rows - 0.5) * binHz
            (-0.5 * binHz, top), (0.0, min limit top), "Hz", automatic false hzText
        | MelHz (fMin, fMax, htk) ->
            // Band k is centred at mel(fMin) + (k + 1) * step, step = (mel(fMax) - mel(fMin)) / (rows + 1).
            let low, high = Hybrid.Dsp.Filters.HzToMel(fMin, htk), Hybrid.Dsp.Filters.HzToMel(fMax, htk)
            let step = (high - low) / float (rows + 1)
            let bottom, top = low + 0.5 * step, high - 0.5 * step
            let placed =
                0.0 :: [ for k in 5 .. 16 -> 2.0 ** float k ]
                |> List.map (fun hz -> hz, Hybrid.Dsp.Filters.HzToMel(hz, htk))
                |> List.filter (fun (_, m) -> m >= bottom && m <= top)
            // Keep ticks at least 6% of the axis apart, from the top down (low powers of two crowd on the mel scale).
            let minGap = 0.06 * (top - bottom)
            let kept =
                placed |> List.rev |> List.fold (fun acc (hz, m) -> match acc with (_, last) :: _ when last - m < minGap -> acc | _ -> (hz, m) :: acc) []
            (bottom, top), (bottom, top), "Hz (mel scale)", TickGenerators.NumericManual([| for hz, m in kept -> Tick(m, hzText hz) |])
        | Index axisTitle ->
            let edges = -0.5, float rows - 0.5
            edges, edges, axisTitle, automatic true (fun v -> v.ToString("0", invariant))
        | PitchClasses ->
            (-0.5, 11.5), (-0.5, 11.5), "Pitch class", TickGenerators.NumericManual(pitchClasses |> Array.mapi (fun i name -> Tick(float i, name)))
    map.Extent <- Nullable(CoordinateRect(0.0, seconds, yLow, yHigh))
    plot.Axes.Left.TickGenerator <- ticks
    plot.Axes.Bottom.TickGenerator <- automatic false (fun v -> v.ToString("0.###", invariant))
    let bar = plot.Add.ColorBar map
    bar.Label <- colourTitle
    plot.Title title
    plot.XLabel "Time (s)"
    plot.YLabel yTitle
    plot.Axes.SetLimits(0.0, seconds, shownLow, shownHigh)
    plot

/// Writes spectralPlot's picture (defaultWidth x defaultHeight) to `path` and returns the path.
let spectral (path: string) (title: string) (sampleRate: int) (hopLength: int) (yAxis: SpectralAxis) (colourTitle: string) (rows: int) (cols: int) (data: float32[]) =
    use plot = spectralPlot title sampleRate hopLength yAxis colourTitle rows cols data
    save plot path defaultWidth defaultHeight

/// Line curves sharing an x axis 1..n (e.g. loss per epoch for training and validation), with ticks on whole x
/// values only (an epoch 1.5 does not exist). Returns the plot; the caller disposes it.
let curvesPlot (title: string) (xLabel: string) (yLabel: string) (series: (string * float[]) list) =
    let plot = new Plot()
    for (name, ys) in series do
        if ys.Length > 0 then
            let xs = Array.init ys.Length (fun i -> float (i + 1))
            let line = plot.Add.Scatter(xs, ys)
            line.LegendText <- name
    plot.ShowLegend() |> ignore
    plot.Title title
    plot.XLabel xLabel
    plot.YLabel yLabel
    plot.Axes.Bottom.TickGenerator <- TickGenerators.NumericAutomatic(IntegerTicksOnly = true)
    plot

/// Writes curvesPlot's picture (defaultWidth x defaultHeight) to `path` and returns the path.
let curves (path: string) (title: string) (xLabel: string) (yLabel: string) (series: (string * float[]) list) =
    use plot = curvesPlot title xLabel yLabel series
    save plot path defaultWidth defaultHeight

/// The longest class name a confusion matrix draws; longer names are cut to this many characters ending in "..."
/// (the CSV beside the picture keeps full names).
let maxClassNameChars = 24

/// A class name as a confusion matrix draws it (see maxClassNameChars).
let shortClassName (name: string) =
    if name.Length <= maxClassNameChars then name else name.Substring(0, maxClassNameChars - 3) + "..."

/// Pixels between a tick mark's end and its label, and the length of ScottPlot's major tick marks.
let private tickGap = 12f

/// A confusion matrix (rows: true label, columns: predicted label) with counts written in each cell, laid out for
/// its class names: predicted names are rotated 45 degrees, cells are square and at least one text line apart along
/// the rotated names, and the margins are measured from the longest (shortened, see shortClassName) name. Returns
/// the plot (the caller disposes it) and its image width and height in pixels. Raises ArgumentException when
/// `counts` is not labels x labels.
let confusionMatrixPlot (title: string) (labels: string[]) (counts: int[,]) =
    let n = labels.Length
    if Array2D.length1 counts <> n || Array2D.length2 counts <> n then
        invalidArg (nameof counts) (sprintf "expected a %d x %d matrix for %d labels, was %d x %d" n n n (Array2D.length1 counts) (Array2D.length2 counts))
    let plot = new Plot()
    let grid = Array2D.init n n (fun r c -> float counts.[r, c])
    let map = plot.Add.Heatmap grid
    map.Colormap <- Reversed(Colormaps.Blues())
    let peak = max 1 (Seq.max (Seq.cast<int> counts))
    let names = labels |> Array.map shortClassName
    let tickStyle = plot.Axes.Bottom.TickLabelStyle
    use paint = Paint.NewDisposablePaint()
    let measure (text: string) = tickStyle.Measure(text, paint)
    let widest = names |> Array.map (fun l -> (measure l).Width) |> Array.fold max 0f
    let lineHeight = (measure "Ag").Height
    let countWidth = (measure (string peak)).Width
    // Square cells wide enough for the counts and for neighbouring rotated names to stay a line apart:
    // names rotated 45 degrees are cell * sin 45 apart across their baselines.
    let cell = int (Math.Ceiling(float (max (countWidth + 16f) (lineHeight * 1.6f * sqrt 2f)))) |> max 40 |> max (int (Math.Ceiling(300.0 / float (max 1 n))))
    let rotated = (widest + lineHeight) * sqrt 0.5f
    for r in 0 .. n - 1 do
        for c in 0 .. n - 1 do
            // Heatmap cell (r, c) is centred at x = c, y = n - 1 - r.
            let text = plot.Add.Text(string counts.[r, c], float c, float (n - 1 - r))
            text.LabelFontColor <- (if counts.[r, c] * 2 > peak then Colors.White else Colors.Black)
            text.LabelAlignment <- Alignment.MiddleCenter
    let ticks (reverse: bool) =
        names |> Array.mapi (fun i l -> Tick(float (if reverse then n - 1 - i else i), l))
    plot.Axes.Bottom.TickGenerator <- TickGenerators.NumericManual(ticks false)
    plot.Axes.Left.TickGenerator <- TickGenerators.NumericManual(ticks true)
    tickStyle.Rotation <- -45f
    tickStyle.Alignment <- Alignment.MiddleRight
    plot.Title title
    plot.XLabel "predicted"
    plot.YLabel "true"
    plot.Axes.SetLimits(-0.5, float n - 0.5, -0.5, float n - 0.5)
    // ScottPlot spaces the axis title by the unrotated label height: move it below the rotated names.
    let below = max 0f (rotated - lineHeight + tickGap)
    match plot.Axes.Bottom with
    | :? AxisPanels.AxisBase as axis -> axis.PaddingBetweenTickAndAxisLabels <- PixelPadding(0f, 0f, below, 0f)
    | _ -> ()
    // Fixed margins: the rotated names and the axis title below, the widest name and the axis title on the left.
    let left = int (Math.Ceiling(float (widest + tickGap + 2f * lineHeight + 24f)))
    let bottom = int (Math.Ceiling(float (rotated + tickGap + 2f * lineHeight + 24f)))
    // The title is centred over the matrix: where it is wider, the margins on both sides make room for its overhang.
    let titleWidth = plot.Axes.Title.Label.Measure(title, paint).Width
    let overhang = int (Math.Ceiling(float ((titleWidth - float32 (n * cell)) / 2f))) + 12
    let left, top, right = max left overhang, 50, max 30 overhang
    plot.Layout.Fixed(PixelPadding(float32 left, float32 right, float32 bottom, float32 top))
    plot, left + n * cell + right, top + n * cell + bottom

/// Writes confusionMatrixPlot's picture to `path` and returns the path.
let confusionMatrix (path: string) (title: string) (labels: string[]) (counts: int[,]) =
    let plot, width, height = confusionMatrixPlot title labels counts
    use plot = plot
    save plot path width height

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
