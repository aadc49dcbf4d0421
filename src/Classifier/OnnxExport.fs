/// Exports a model file written by `train` to ONNX (opset 17): the train-fitted preparation (per-utterance mean
/// removal where the recipe does it, then the stored standardisation) as the first nodes, the network in inference
/// form, Softmax last; optionally (`frontend`) the feature extraction too, so the graph takes raw audio.
module Hybrid.Classifier.OnnxExport

open System
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// What `export` wrote.
type Exported =
    { /// The ONNX file.
      Path: string
      /// The graph's input: "features" [batch; schema shape] or, with the front end, "audio" [batch; clip samples].
      Input: string
      /// Per-sample input shape (no batch axis).
      InputShape: int[]
      /// metadata_props, as written.
      Metadata: (string * string) list
      /// What predict does that the graph does not (test-time speed averaging, windows averaged per recording, trimming
      /// without the front end), one sentence each; empty when the graph scores recordings as predict does.
      Warnings: string list }

/// 10 log10 (or 20 log10 with `amplitude`) of max(x, amin) / ref for `x` [batch; rows; frames], floored at each
/// clip's maximum minus top_db when `config` has one: librosa.power_to_db / amplitude_to_db with top_db per clip.
let private decibels (g: OnnxGraph) (config: DbConfig) (amplitude: bool) (x: string) =
    let factor = if amplitude then 20.0 else 10.0
    let clipped = g.Node("Max", "db.clip", [ x; g.Scalar("db.amin", float32 config.Amin) ])
    let ln = g.Node("Log", "db.ln", [ clipped ])
    let scaled = g.Node("Mul", "db.scaled", [ ln; g.Scalar("db.scale", float32 (factor / Math.Log 10.0)) ])
    let db =
        if config.Ref = 1.0 then scaled
        else g.Node("Sub", "db.ref", [ scaled; g.Scalar("db.reference", float32 (factor * Math.Log10 config.Ref)) ])
    if config.TopDb.HasValue then
        let peak = g.Node("ReduceMax", "db.peak", [ db ], [ OnnxAttr.ints "axes" [ 1L; 2L ]; OnnxAttr.int "keepdims" 1L ])
        let floor = g.Node("Sub", "db.floor", [ peak; g.Scalar("db.top_db", float32 config.TopDb.Value) ])
        g.Node("Max", "db.top", [ db; floor ])
    else db

/// The dB mel bands of mel bands `x` by the rule the extraction uses (FeatureParameters.MelDb), so that the graph and
/// training agree at every power: power_to_db at power 2, amplitude_to_db (amin 1e-5) at power 1, power_to_db of
/// x^(2/power) otherwise.
let private melDb (g: OnnxGraph) (p: FeatureParameters) (x: string) =
    let struct (config, amplitude, exponent) = p.MelDb
    let raised = if exponent = 1.0 then x else g.Node("Pow", "db.raise", [ x; g.Scalar("db.exponent", float32 exponent) ])
    decibels g config amplitude raised

/// PCEN of mel bands `x` [batch; n_mels; frames] as the extraction computes it (FeatureParameters.Pcen, librosa.pcen
/// of the mel spectrogram scaled by 2^31): the smoothing filter M[t] = b x[t] + (1 - b) M[t - 1] from M[-1] = 1 is
/// linear, so over the clip's fixed frame count it is one MatMul with the lower-triangular matrix
/// K[k, t] = b (1 - b)^(t - k) plus the constant (1 - b)^(t + 1) that the initial state leaves; then
/// (x (eps + M)^-gain + bias)^power - bias^power (log(1 + x (eps + M)^-gain) at power 0). Float32 throughout, where
/// the extraction computes in double precision.
let private pcen (g: OnnxGraph) (p: FeatureParameters) (config: PcenConfig) (frames: int) (x: string) =
    let b = config.Coefficient(p.SampleRate, p.HopLength)
    let a = 1.0 - b
    let kernel = Array.init (frames * frames) (fun i -> let k, t = i / frames, i % frames in if t >= k then float32 (b * Math.Pow(a, float (t - k))) else 0f)
    let initial = Array.init frames (fun t -> float32 (Math.Pow(a, float (t + 1))))
    let scaled = g.Node("Mul", "pcen.scaled", [ x; g.Scalar("pcen.input_scale", float32 config.InputScale) ])
    let filtered = g.Node("MatMul", "pcen.filtered", [ scaled; g.Constant("pcen.kernel", [| int64 frames; int64 frames |], kernel) ])
    let smoothed = g.Node("Add", "pcen.smoothed", [ filtered; g.Constant("pcen.initial", [| int64 frames |], initial) ])
    let floored = g.Node("Add", "pcen.floored", [ smoothed; g.Scalar("pcen.eps", float32 config.Eps) ])
    let gain = g.Node("Pow", "pcen.gain", [ floored; g.Scalar("pcen.minus_gain", float32 -config.Gain) ])
    let normalised = g.Node("Mul", "pcen.normalised", [ scaled; gain ])
    if config.Power = 0.0 then
        let shifted = g.Node("Add", "pcen.shifted", [ normalised; g.Scalar("pcen.one", 1f) ])
        g.Node("Log", "pcen", [ shifted ])
    else
        let biased = g.Node("Add", "pcen.biased", [ normalised; g.Scalar("pcen.bias", float32 config.Bias) ])
        let compressed = g.Node("Pow", "pcen.compressed", [ biased; g.Scalar("pcen.power", float32 config.Power) ])
        g.Node("Sub", "pcen", [ compressed; g.Scalar("pcen.bias_power", float32 (Math.Pow(config.Bias, config.Power))) ])

/// The mel spectrogram [batch; n_mels; frames] of `audio` [batch; samples]: centring pad (zeros or reflection, as the
/// schema says), opset 17 STFT with the schema's periodic window, |X|^power, MatMul with librosa's mel matrix.
let private melSpectrogram (g: OnnxGraph) (p: FeatureParameters) (audio: string) =
    let stft = p.Stft
    let padded =
        if p.Center then
            let half = int64 (stft.NFft / 2)
            let mode =
                match p.PadMode with
                | PadMode.Constant -> "constant"
                | PadMode.Reflect -> "reflect"
                | _ -> "edge"
            g.Node("Pad", "stft.pad", [ audio; g.Int64s("stft.pads", [| 0L; half; 0L; half |]) ], [ OnnxAttr.string "mode" mode ])
        else audio
    let signal = g.Node("Unsqueeze", "stft.signal", [ padded; g.Int64s("stft.axis", [| 2L |]) ])
    let window = g.Constant("stft.window", [| int64 stft.NFft |], Filters.Window(stft.Window, stft.Win, stft.NFft))
    let spectrum =
        g.Node("STFT", "stft", [ signal; g.ConstantInt64("stft.hop", [||], [| int64 stft.Hop |]); window; g.ConstantInt64("stft.n_fft", [||], [| int64 stft.NFft |]) ],
               [ OnnxAttr.int "onesided" 1L ])
    // [batch; frames; bins; 2] -> |X|^2 [batch; frames; bins]
    let squares = g.Node("Mul", "stft.squares", [ spectrum; spectrum ])
    let power = g.Node("ReduceSum", "stft.power", [ squares; g.Int64s("stft.complex_axis", [| 3L |]) ], [ OnnxAttr.int "keepdims" 0L ])
    let spec =
        if p.Power = 2.0 then power
        else g.Node("Sqrt", "stft.magnitude", [ power ])
    let bins = stft.Bins
    let mel = Filters.Mel(p.Mel, stft.NFft)
    let melT = Array.init (bins * p.NMels) (fun i -> mel.[(i % p.NMels) * bins + i / p.NMels])
    let frameMel = g.Node("MatMul", "mel.frames", [ spec; g.Constant("mel.basis", [| int64 bins; int64 p.NMels |], melT) ])
    g.Node("Transpose", "mel", [ frameMel ], [ OnnxAttr.ints "perm" [ 0L; 2L; 1L ] ])

/// The model's clip of one recording `audio` [1; samples] (any length, at the model's rate) as ClipPlan.windows and the
/// extraction shape it without windows: silence trimmed (Clip.trimInterval, librosa.effects.trim: frame RMS with
/// zero-padded centred frames by a strided Conv of the squares, dB relative to the loudest frame floored at -100 dB,
/// the first and last loud frames by ArgMax), the level set (Clip.rmsNormalize), then cut or zero-padded, centred, to
/// `clip` samples (Clip.fit Center). Result [1; clip].
let private recordingToClip (g: OnnxGraph) (plan: ClipPlan) (clip: int) (audio: string) =
    let i64 stem (v: int64) = g.ConstantInt64(stem, [||], [| v |])
    let one = g.Int64s("recording.axis1", [| 1L |])
    let length (x: string) stem =
        let shape = g.Node("Shape", stem + ".shape", [ x ])
        g.Node("Gather", stem, [ shape; i64 (stem + ".index") 1L ], [ OnnxAttr.int "axis" 0L ])
    let sliceAxis1 stem (x: string) (start: string) (stop: string) =
        let unsq (v: string) = g.Node("Unsqueeze", stem + ".bound", [ v; g.Int64s(stem + ".bound_axis", [| 0L |]) ])
        g.Node("Slice", stem, [ x; unsq start; unsq stop; one ])
    let trimmed =
        match plan.Trim with
        | None -> audio
        | Some t ->
            let n = length audio "trim.n"
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
            let hop = i64 "trim.hop" (int64 t.HopLength)
            let start = g.Node("Mul", "trim.start", [ first; hop ])
            let stop = g.Node("Min", "trim.stop", [ n; g.Node("Mul", "trim.end", [ g.Node("Add", "trim.last1", [ last; i64 "trim.one" 1L ]); hop ]) ])
            // An empty interval keeps the recording whole, as ClipPlan.windows does.
            let kept = g.Node("Greater", "trim.nonempty", [ stop; start ])
            let start = g.Node("Where", "trim.from", [ kept; start; i64 "trim.zero" 0L ])
            let stop = g.Node("Where", "trim.to", [ kept; stop; n ])
            sliceAxis1 "trim" audio start stop
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
    // Clip.fit Center: zero-padded by (clip - n) / 2 in front when shorter, cut from (n - clip) / 2 when longer.
    let n = length levelled "fit.n"
    let clipLength = i64 "fit.clip" (int64 clip)
    let zero = i64 "fit.zero" 0L
    let two = i64 "fit.two" 2L
    let shortfall = g.Node("Max", "fit.shortfall", [ g.Node("Sub", "fit.difference", [ clipLength; n ]); zero ])
    let front = g.Node("Div", "fit.front", [ shortfall; two ])
    let back = g.Node("Sub", "fit.back", [ shortfall; front ])
    let pads = g.Node("Concat", "fit.pads", [ g.Int64s("fit.batch_front", [| 0L |]); g.Node("Unsqueeze", "fit.front1", [ front; g.Int64s("fit.a0", [| 0L |]) ]); g.Int64s("fit.batch_back", [| 0L |]); g.Node("Unsqueeze", "fit.back1", [ back; g.Int64s("fit.a1", [| 0L |]) ]) ], [ OnnxAttr.int "axis" 0L ])
    let padded = g.Node("Pad", "fit.pad", [ levelled; pads ], [ OnnxAttr.string "mode" "constant" ])
    let excess = g.Node("Max", "fit.excess", [ g.Node("Sub", "fit.over", [ n; clipLength ]); zero ])
    let offset = g.Node("Div", "fit.offset", [ excess; two ])
    sliceAxis1 "fit" padded offset (g.Node("Add", "fit.stop", [ offset; clipLength ]))

/// The schema's features [batch; schema shape] of `audio` [batch; clip samples] as graph nodes, or the reason the
/// graph cannot express them.
let private frontEnd (g: OnnxGraph) (schema: FeatureSchemaInfo) (audio: string) : Result<string, string> =
    let p = schema.Parameters
    match List.ofSeq schema.Members with
    | [ m ] when m.Kind = FeatureKind.Waveform && m.Statistic = Statistic.TimeSeries -> Ok audio
    | [ m ] when m.Kind = FeatureKind.MelBands && m.Statistic = Statistic.TimeSeries && not m.Pooled ->
        let mel = melSpectrogram g p audio
        match p.Pcen with
        | null -> Ok(if m.Decibels then melDb g p mel else mel)
        | config -> Ok(pcen g p config m.Frames mel)
    | [ m ] when m.Kind = FeatureKind.Mfcc && m.Statistic = Statistic.Mean && not m.Pooled && p.Lifter = 0.0 ->
        let db = decibels g p.Db false (melSpectrogram g p audio)
        let dct = g.Constant("mfcc.dct", [| int64 m.Rows; int64 p.NMels |], Filters.DctOrtho(m.Rows, p.NMels))
        let mfcc = g.Node("MatMul", "mfcc", [ dct; db ])
        Ok(g.Node("ReduceMean", "mfcc.mean", [ mfcc ], [ OnnxAttr.ints "axes" [ 2L ]; OnnxAttr.int "keepdims" 0L ]))
    | members ->
        let described = members |> List.map (fun m -> m.Describe()) |> String.concat "; "
        Error(sprintf "feature schema '%s' (%s) cannot be expressed as an ONNX graph: --frontend supports one log-mel or mel time series, one MFCC mean without lifter, or the raw waveform. Export without --frontend and extract the features in the application." schema.Name described)

/// Writes `modelPath` (a model file written by `train`) as an ONNX model at `onnxPath`. Without `frontend` the graph
/// takes the schema's features ("features" [batch; schema shape], as the library extracts them); with it, raw audio
/// ("audio" [batch; clip_samples] at the model's rate, cut or zero-padded as clip_alignment says; for a model that trims
/// silence or sets the level of its recordings without windows, "audio" [1; samples]: one whole recording of any
/// length, which the graph trims, levels and fits to the clip as predict does). Output "probabilities" [batch;
/// classes]. metadata_props: labels (comma-separated, output order), schema_fingerprint, feature_schema, sample_rate,
/// clip_samples, clip_alignment, input, frontend, trim, loudness, segment, test_speeds and input_is (recording, clip
/// or prepared clip). Test-time speed averaging and windows are not in the graph: Warnings says so. Raises ModelFileException / SchemaMismatchException for an unusable model file, and
/// OnnxExportException when `frontend` is asked for a schema the graph cannot express or a label contains a comma.
let export (modelPath: string) (onnxPath: string) (frontend: bool) : Exported =
    use engine = Engines.Create("managed", ignore)
    let trained = Inference.load engine modelPath
    // The schema the model's clips are extracted with (its fingerprint is checked on the recorded one).
    let schema = trained.Extraction
    let model, stats = trained.Model, trained.Stats
    match trained.Labels |> Array.tryFind (fun l -> l.Contains ',') with
    | Some label -> raise (OnnxExportException(modelPath, sprintf "label '%s' contains a comma; metadata_props 'labels' is comma-separated." label))
    | None -> ()
    let shape = Array.ofSeq schema.Shape
    // 0 for schemas that take the whole recording: the audio input's length axis is then dynamic ("samples").
    let clipSamples = schema.ClipSamples
    let g = OnnxGraph "hybrid"
    let plan = trained.Preparation.Clips
    // Trimming and levelling act on whole recordings: the graph then takes one recording of any length and makes the
    // model's clip of it (windows are not in the graph: such models take their clips).
    let wholeRecording = frontend && clipSamples > 0 && plan.Segment.IsNone && (plan.Trim.IsSome || plan.Loudness.IsSome)
    let inputName, inputShape, features =
        if frontend then
            let audio = g.AddInput("audio", [| (if clipSamples > 0 && not wholeRecording then int64 clipSamples else -1L) |])
            let clip = if wholeRecording then recordingToClip g plan clipSamples audio else audio
            match frontEnd g schema clip with
            | Ok f -> "audio", [| (if wholeRecording then 0 else clipSamples) |], f
            | Error problem -> raise (OnnxExportException(modelPath, problem))
        else
            let f = g.AddInput("features", shape |> Array.map int64)
            "features", shape, f
    // Per-utterance normalisation over frames (images only), as the preparation does (Preparation.perUtterance): the
    // band's mean removed, and with meanvar its deviation over frames scaled to 1 (floored at 1e-3).
    let centred =
        match trained.Preparation.PerUtterance with
        | BandMean | BandMeanVariance when shape.Length = 2 ->
            let mean = g.Node("ReduceMean", "utterance.mean", [ features ], [ OnnxAttr.ints "axes" [ 2L ]; OnnxAttr.int "keepdims" 1L ])
            let centred = g.Node("Sub", "utterance", [ features; mean ])
            if trained.Preparation.PerUtterance = BandMean then centred
            else
                let squares = g.Node("Mul", "utterance.squares", [ centred; centred ])
                let variance = g.Node("ReduceMean", "utterance.variance", [ squares ], [ OnnxAttr.ints "axes" [ 2L ]; OnnxAttr.int "keepdims" 1L ])
                let deviation = g.Node("Max", "utterance.deviation", [ g.Node("Sqrt", "utterance.sqrt", [ variance ]); g.Scalar("utterance.floor", 1e-3f) ])
                g.Node("Div", "utterance.scaled", [ centred; deviation ])
        | _ -> features
    // The train-fitted standardisation: (x - mean) * (1 / std) per band or per column.
    let groupDims =
        match stats.Grouping with
        | Normalization.PerBand (bands, _) -> [| int64 bands; 1L |]
        | Normalization.PerColumn -> shape |> Array.map int64
    let inverse = stats.Std |> Array.map (fun s -> 1.0f / s)
    let shifted = g.Node("Sub", "standardise.shift", [ centred; g.Constant("standardise.mean", groupDims, stats.Mean) ])
    let standard = g.Node("Mul", "standardise", [ shifted; g.Constant("standardise.inverse_std", groupDims, inverse) ])
    let netInput = g.Node("Reshape", "input", [ standard; g.Int64s("input.shape", Array.append [| -1L |] (model.Net.InputShape |> Array.map int64)) ])
    let logits = OnnxModel.appendNetwork g model netInput
    let probabilities = g.Node("Softmax", "probabilities", [ logits ], [ OnnxAttr.int "axis" -1L ])
    g.AddOutput(probabilities, [| int64 (Model.classes model) |])
    let metadata =
        [ "labels", String.Join(",", trained.Labels)
          "schema_fingerprint", schema.Fingerprint
          "feature_schema", schema.Name
          "feature_parameters", schema.Variant
          "sample_rate", string schema.SampleRate
          "clip_samples", string clipSamples
          "clip_alignment", "center"
          "input", inputName
          "frontend", (if frontend then "true" else "false")
          "input_is", (if wholeRecording then "recording" elif plan.Trim.IsSome || plan.Loudness.IsSome then "prepared clip" else "clip") ]
        // How predict prepares a recording before its clips, as the model file records it.
        @ (Preparation.toSettings trained.Preparation |> List.filter (fun (k, _) -> List.contains k [ "trim"; "loudness"; "segment"; "test_speeds" ]))
    let warnings =
        [ if not trained.Preparation.TestSpeeds.IsEmpty then
              yield sprintf "predict averages each recording's probabilities over the speeds %s; the graph scores the clip at speed 1 only (metadata 'test_speeds')" (TestSpeeds.format trained.Preparation.TestSpeeds)
          match plan.Segment with
          | Some (w, h) ->
              yield sprintf "predict averages the probabilities of windows of %d samples every %d over each recording; the graph scores one window (metadata 'segment')" w h
          | None -> ()
          if not wholeRecording && (plan.Trim.IsSome || plan.Loudness.IsSome) then
              yield sprintf "predict trims silence (%s) and sets the level (%s) of each recording before its clip; the graph takes the prepared clip (metadata 'trim', 'loudness')%s"
                        (Trim.format plan.Trim) (match plan.Loudness with Some v -> sprintf "%g dBFS" v | None -> "none")
                        (if frontend then "" else "; export with --frontend to put them in the graph") ]
    OnnxModel.write onnxPath (OnnxModel.wrap g.Graph metadata)
    { Path = IO.Path.GetFullPath onnxPath; Input = inputName; InputShape = inputShape; Metadata = metadata; Warnings = warnings }
