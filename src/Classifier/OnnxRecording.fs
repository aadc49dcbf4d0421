/// Graph pieces that make the model's clips of one whole recording exactly as `predict` does (ClipPlan.windows,
/// Augment.speed, Extraction.fit), with dynamic shapes: the recording [1; samples] is trimmed and levelled, cut to the
/// plan's recording length, cut into windows [windows; samples], resampled per test-time speed and fitted (centred)
/// to the clip length [windows; clip]. OnnxExport puts them before the feature extraction.
module internal Hybrid.Classifier.OnnxRecording

open System
open Hybrid.Features

let private scalar (g: OnnxGraph) (stem: string) (v: int64) = g.ConstantInt64(stem, [||], [| v |])

/// The length of axis 1 of `x`, an int64 scalar.
let private length (g: OnnxGraph) (stem: string) (x: string) =
    let shape = g.Node("Shape", stem + ".shape", [ x ])
    g.Node("Gather", stem, [ shape; scalar g (stem + ".index") 1L ], [ OnnxAttr.int "axis" 0L ])

/// x[:, start:stop] for int64 scalars `start` and `stop`.
let private sliceAxis1 (g: OnnxGraph) (stem: string) (x: string) (start: string) (stop: string) =
    let bound (v: string) = g.Node("Unsqueeze", stem + ".bound", [ v; g.Int64s(stem + ".bound_axis", [| 0L |]) ])
    g.Node("Slice", stem, [ x; bound start; bound stop; g.Int64s(stem + ".axis", [| 1L |]) ])

/// Pads for `Pad` of a [rows; samples] value: `front` and `back` zeros (int64 scalars) on axis 1.
let private padsAxis1 (g: OnnxGraph) (stem: string) (front: string) (back: string) =
    let one (v: string) = g.Node("Unsqueeze", stem + ".one", [ v; g.Int64s(stem + ".one_axis", [| 0L |]) ])
    g.Node("Concat", stem, [ g.Int64s(stem + ".rows_front", [| 0L |]); one front; g.Int64s(stem + ".rows_back", [| 0L |]); one back ],
           [ OnnxAttr.int "axis" 0L ])

/// The recording `audio` [1; samples] (any length, at the model's rate) as ClipPlan.windows prepares it before its
/// windows: silence trimmed (Clip.trimInterval, librosa.effects.trim: frame RMS with zero-padded centred frames by a
/// strided Conv of the squares, dB relative to the loudest frame floored at -100 dB, the first and last loud frames by
/// ArgMax; nothing loud keeps the recording whole), the level set (Clip.rmsNormalize), then cut or zero-padded at
/// its end to the plan's recording length (Clip.fit Start). Result [1; samples].
let prepare (g: OnnxGraph) (plan: ClipPlan) (audio: string) : string =
    let trimmed =
        match plan.Trim with
        | None -> audio
        | Some t ->
            let n = length g "trim.n" audio
            let half = int64 (t.FrameLength / 2)
            let squares = g.Node("Mul", "trim.squares", [ audio; audio ])
            let padded = g.Node("Pad", "trim.pad", [ squares; g.Int64s("trim.pads", [| 0L; half; 0L; half |]) ], [ OnnxAttr.string "mode" "constant" ])
            let channel = g.Node("Unsqueeze", "trim.channel", [ padded; g.Int64s("trim.channel_axis", [| 1L |]) ])
            let kernel = g.Constant("trim.mean_kernel", [| 1L; 1L; int64 t.FrameLength |], Array.create t.FrameLength (1.0f / float32 t.FrameLength))
            let meanSquares = g.Node("Conv", "trim.mean_squares", [ channel; kernel ], [ OnnxAttr.ints "strides" [ int64 t.HopLength ] ])
            let floored = g.Node("Max", "trim.floor", [ meanSquares; g.Scalar("trim.amin", 1e-10f) ])
            let db = g.Node("Mul", "trim.db", [ g.Node("Log", "trim.ln", [ floored ]); g.Scalar("trim.db_scale", float32 (10.0 / Math.Log 10.0)) ])
            let reference = g.Node("ReduceMax", "trim.reference", [ db ], [ OnnxAttr.int "keepdims" 1L ])
            let threshold = g.Node("Sub", "trim.threshold", [ reference; g.Scalar("trim.top_db", float32 t.TopDb) ])
            let loud = g.Node("Cast", "trim.loud", [ g.Node("Greater", "trim.above", [ db; threshold ]) ], [ OnnxAttr.int "to" 1L ])
            let frames = g.Node("Reshape", "trim.frames", [ loud; g.Int64s("trim.flat", [| -1L |]) ])
            let first = g.Node("ArgMax", "trim.first", [ frames ], [ OnnxAttr.int "axis" 0L; OnnxAttr.int "keepdims" 0L ])
            let last = g.Node("ArgMax", "trim.last", [ frames ], [ OnnxAttr.int "axis" 0L; OnnxAttr.int "keepdims" 0L; OnnxAttr.int "select_last_index" 1L ])
            let hop = scalar g "trim.hop" (int64 t.HopLength)
            let start = g.Node("Mul", "trim.start", [ first; hop ])
            let stop = g.Node("Min", "trim.stop", [ n; g.Node("Mul", "trim.end", [ g.Node("Add", "trim.last1", [ last; scalar g "trim.one" 1L ]); hop ]) ])
            // An empty interval keeps the recording whole, as ClipPlan.windows does.
            let kept = g.Node("Greater", "trim.nonempty", [ stop; start ])
            let start = g.Node("Where", "trim.from", [ kept; start; scalar g "trim.zero" 0L ])
            let stop = g.Node("Where", "trim.to", [ kept; stop; n ])
            sliceAxis1 g "trim" audio start stop
    let levelled =
        match plan.Loudness with
        | None -> trimmed
        | Some dbfs ->
            let squares = g.Node("Mul", "loudness.squares", [ trimmed; trimmed ])
            let rms = g.Node("Sqrt", "loudness.rms", [ g.Node("ReduceMean", "loudness.mean", [ squares ], [ OnnxAttr.int "keepdims" 1L ]) ])
            let silent = g.Node("Equal", "loudness.silent", [ rms; g.Scalar("loudness.zero", 0.0f) ])
            let gain = g.Node("Div", "loudness.ratio", [ g.Scalar("loudness.target", float32 (Math.Pow(10.0, dbfs / 20.0))); rms ])
            let gain = g.Node("Where", "loudness.gain", [ silent; g.Scalar("loudness.unit", 1.0f); gain ])
            g.Node("Mul", "loudness", [ trimmed; gain ])
    match plan.RecordingSamples with
    | None -> levelled
    | Some samples ->
        // Clip.fit Start: zeros after a shorter recording, the start of a longer one.
        let n = length g "cut.n" levelled
        let target = scalar g "cut.samples" (int64 samples)
        let zero = scalar g "cut.zero" 0L
        let back = g.Node("Max", "cut.shortfall", [ g.Node("Sub", "cut.difference", [ target; n ]); zero ])
        let padded = g.Node("Pad", "cut.pad", [ levelled; padsAxis1 g "cut.pads" zero back ], [ OnnxAttr.string "mode" "constant" ])
        sliceAxis1 g "cut" padded zero target

/// The windows of a prepared recording `x` [1; samples] as ClipPlan.windows cuts them, [windows; window]: windows of
/// `window` samples every `hop` samples, the last one ending at the recording's end, or the whole recording
/// [1; samples] when it is no longer than one window. Window w starts at min(w hop, samples - window), and there are
/// 1 + ceil((samples - window) / hop) of them; one Gather of the [windows; window] indices cuts them all.
let windows (g: OnnxGraph) (window: int) (hop: int) (x: string) : string =
    let n = length g "windows.n" x
    let w = scalar g "windows.length" (int64 window)
    let one = scalar g "windows.one" 1L
    let zero = scalar g "windows.zero" 0L
    let long = g.Node("Greater", "windows.long", [ n; w ])
    // Samples per window: the window, or the whole (short) recording.
    let size = g.Node("Where", "windows.size", [ long; w; n ])
    let beyond = g.Node("Max", "windows.beyond", [ g.Node("Sub", "windows.excess", [ n; w ]); zero ])
    let h = scalar g "windows.hop" (int64 hop)
    let steps = g.Node("Div", "windows.steps", [ g.Node("Add", "windows.rounded", [ beyond; scalar g "windows.hop_less_one" (int64 (hop - 1)) ]); h ])
    let count = g.Node("Add", "windows.count", [ steps; one ])
    let index = g.Node("Range", "windows.index", [ zero; count; one ])
    let last = g.Node("Sub", "windows.last_start", [ n; size ])
    let starts = g.Node("Min", "windows.starts", [ g.Node("Mul", "windows.hops", [ index; h ]); last ])
    let offsets = g.Node("Range", "windows.offsets", [ zero; size; one ])
    let positions =
        g.Node("Add", "windows.positions",
               [ g.Node("Unsqueeze", "windows.starts_column", [ starts; g.Int64s("windows.column", [| 1L |]) ])
                 g.Node("Unsqueeze", "windows.offsets_row", [ offsets; g.Int64s("windows.row", [| 0L |]) ]) ])
    let gathered = g.Node("Gather", "windows.gathered", [ x; positions ], [ OnnxAttr.int "axis" 1L ])
    g.Node("Squeeze", "windows", [ gathered; g.Int64s("windows.recording_axis", [| 0L |]) ])

/// Rows `x` [rows; samples] played `factor` times faster as Augment.speed does it (Resample.resample from
/// 80 round(100 factor) to 8,000 Hz; the rows themselves when the factor rounds to 1), [rows; ceil(samples L / M)].
/// The polyphase filter of the reduced ratio L/M is one strided Conv: output sample q L + r (block q, phase r) reads
/// input samples from q M + floor(r M / L) - (K - 1) on with phase (r M mod L)'s taps, so output channel r holds those
/// taps shifted by floor(r M / L) and the Conv's stride is M; the zero padding in front (K - 1) and behind the taps'
/// span covers every output, and the channels interleaved (Transpose, Reshape) are cut to ceil(samples L / M).
let speed (g: OnnxGraph) (factor: float) (x: string) : string =
    match Augment.speedRates factor with
    | None -> x
    | Some (fromRate, toRate) ->
        let l, m, phases = Resample.polyphase fromRate toRate
        let taps = phases.[0].Length
        let k = taps / 2
        let shift r = int (int64 r * int64 m / int64 l)
        let span = shift (l - 1) + taps
        let weights = Array.zeroCreate<float32> (l * span)
        for r in 0 .. l - 1 do
            let phase = phases.[int (int64 r * int64 m % int64 l)]
            Array.blit phase 0 weights (r * span + shift r) taps
        let stem = sprintf "speed%d" (int (Math.Round(factor * 100.0)))
        let channel = g.Node("Unsqueeze", stem + ".channel", [ x; g.Int64s(stem + ".channel_axis", [| 1L |]) ])
        let padded =
            g.Node("Pad", stem + ".pad", [ channel; g.Int64s(stem + ".pads", [| 0L; 0L; int64 (k - 1); 0L; 0L; int64 span |]) ],
                   [ OnnxAttr.string "mode" "constant" ])
        let filter = g.Constant(stem + ".filter", [| int64 l; 1L; int64 span |], weights)
        let phased = g.Node("Conv", stem + ".phases", [ padded; filter ], [ OnnxAttr.ints "strides" [ int64 m ] ])
        let blocks = g.Node("Transpose", stem + ".blocks", [ phased ], [ OnnxAttr.ints "perm" [ 0L; 2L; 1L ] ])
        let interleaved = g.Node("Reshape", stem + ".interleaved", [ blocks; g.Int64s(stem + ".rows", [| 0L; -1L |]) ])
        let n = length g (stem + ".n") x
        let outputs =
            g.Node("Div", stem + ".outputs",
                   [ g.Node("Add", stem + ".rounded", [ g.Node("Mul", stem + ".scaled", [ n; scalar g (stem + ".l") (int64 l) ]); scalar g (stem + ".m_less_one") (int64 (m - 1)) ])
                     scalar g (stem + ".m") (int64 m) ])
        sliceAxis1 g stem interleaved (scalar g (stem + ".zero") 0L) outputs

/// Rows `x` [rows; samples] (any length) cut or zero-padded, centred, to `clip` samples as Extraction.fit does
/// (Clip.fit Center: floor((clip - n) / 2) zeros in front of a shorter row, the middle of a longer one). [rows; clip].
let fit (g: OnnxGraph) (clip: int) (x: string) : string =
    let n = length g "fit.n" x
    let clipLength = scalar g "fit.clip" (int64 clip)
    let zero = scalar g "fit.zero" 0L
    let two = scalar g "fit.two" 2L
    let shortfall = g.Node("Max", "fit.shortfall", [ g.Node("Sub", "fit.difference", [ clipLength; n ]); zero ])
    let front = g.Node("Div", "fit.front", [ shortfall; two ])
    let back = g.Node("Sub", "fit.back", [ shortfall; front ])
    let padded = g.Node("Pad", "fit.pad", [ x; padsAxis1 g "fit.pads" front back ], [ OnnxAttr.string "mode" "constant" ])
    let excess = g.Node("Max", "fit.excess", [ g.Node("Sub", "fit.over", [ n; clipLength ]); zero ])
    let offset = g.Node("Div", "fit.offset", [ excess; two ])
    sliceAxis1 g "fit" padded offset (g.Node("Add", "fit.stop", [ offset; clipLength ]))
