/// Exports a model file written by `train` to ONNX (opset 17): the train-fitted preparation (per-utterance mean
/// removal where the recipe does it, then the stored standardisation) as the first nodes, the network in inference
/// form, Softmax last; optionally (`frontend`) the feature extraction too, so the graph takes raw audio, and with it
/// the recording's preparation, windows and test-time speed averaging, so that one whole recording in gives predict's
/// probabilities out.
module Hybrid.Classifier.OnnxExport

open System
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// What `export` wrote.
type Exported =
    { /// The ONNX file.
      Path: string
      /// The graph's input: "features" [batch; schema shape] or, with the front end, "audio": [batch; clip samples], or
      /// [1; samples] (one whole recording) when the graph prepares recordings as predict does.
      Input: string
      /// Per-sample input shape (no batch axis).
      InputShape: int[]
      /// metadata_props, as written.
      Metadata: (string * string) list
      /// What predict does that the graph does not (without the front end: test-time speed averaging, windows averaged
      /// per recording, trimming and levelling), one sentence each; empty when the graph scores recordings as predict
      /// does.
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
/// takes the schema's features ("features" [batch; schema shape], as the library extracts them); with it, raw audio:
/// for a model whose `predict` does more to a recording than cut or pad it to the clip (trimming, levelling, a
/// recording length, windows or test-time speeds), "audio" [1; samples], one whole recording of any length at the
/// model's rate, which the graph prepares exactly as predict does: trimmed and levelled (OnnxRecording.prepare), cut
/// into the plan's windows, each window resampled at every test-time speed and fitted to the clip, the network's
/// probabilities averaged over the speeds (softmax of the weighted mean log-probability) and then over the windows;
/// otherwise "audio" [batch; clip_samples], clips cut or zero-padded as clip_alignment says. Output "probabilities"
/// [batch; classes] ([1; classes] for one recording). metadata_props: labels (comma-separated, output order),
/// schema_fingerprint, feature_schema, feature_parameters, sample_rate, clip_samples, clip_alignment, input,
/// frontend, input_is (recording, clip or prepared clip), trim, loudness, recording_samples, segment, test_speeds,
/// windows_in_graph and speeds_in_graph. Warnings name what predict does that the graph does not (features-only exports). Raises
/// ModelFileException / SchemaMismatchException for an unusable model file, and OnnxExportException when `frontend`
/// is asked for a schema the graph cannot express or a label contains a comma.
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
    let speeds = trained.Preparation.TestSpeeds
    let prepares = plan.Trim.IsSome || plan.Loudness.IsSome
    // The graph takes one whole recording and prepares it as predict does whenever predict does more than fit it
    // to the clip; windows and speeds need a fixed clip length to batch the clips.
    let wholeRecording =
        frontend && clipSamples > 0 && (prepares || plan.RecordingSamples.IsSome || plan.Segment.IsSome || not speeds.IsEmpty)
    let inputName, inputShape, features =
        if frontend then
            let audio = g.AddInput("audio", [| (if clipSamples > 0 && not wholeRecording then int64 clipSamples else -1L) |])
            let clips =
                if wholeRecording then
                    let prepared = OnnxRecording.prepare g plan audio
                    let windows =
                        match plan.Segment with
                        | Some (window, hop) -> OnnxRecording.windows g window hop prepared
                        | None -> prepared
                    // The clips of every speed, speed after speed: [speeds * windows; clip].
                    let perSpeed = (if speeds.IsEmpty then [ 1.0 ] else List.map fst speeds) |> List.map (fun f -> OnnxRecording.fit g clipSamples (OnnxRecording.speed g f windows))
                    match perSpeed with
                    | [ one ] -> one
                    | several -> g.Node("Concat", "speeds.clips", several, [ OnnxAttr.int "axis" 0L ])
                else audio
            match frontEnd g schema clips with
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
    let classes = int64 (Model.classes model)
    let probabilities =
        let p = g.Node("Softmax", (if wholeRecording then "clip_probabilities" else "probabilities"), [ logits ], [ OnnxAttr.int "axis" -1L ])
        if not wholeRecording then p
        else
            // Inference.predictAveraged: the softmax of the weighted mean of log max(p, 1e-30) over the speeds.
            let perWindow =
                if speeds.IsEmpty then p
                else
                    let total = speeds |> List.sumBy snd
                    let bySpeed = g.Node("Reshape", "speeds.rows", [ p; g.Int64s("speeds.shape", [| int64 speeds.Length; -1L; classes |]) ])
                    let logs = g.Node("Log", "speeds.log", [ g.Node("Max", "speeds.floor", [ bySpeed; g.Scalar("speeds.tiny", 1e-30f) ]) ])
                    let weights = g.Constant("speeds.weights", [| int64 speeds.Length; 1L; 1L |], speeds |> List.map (fun (_, w) -> float32 (w / total)) |> Array.ofList)
                    let mean = g.Node("ReduceSum", "speeds.mean", [ g.Node("Mul", "speeds.weighted", [ logs; weights ]); g.Int64s("speeds.axis", [| 0L |]) ], [ OnnxAttr.int "keepdims" 0L ])
                    g.Node("Softmax", (if plan.Segment.IsSome then "speeds.probabilities" else "probabilities"), [ mean ], [ OnnxAttr.int "axis" -1L ])
            // Inference.classify: the windows' probabilities averaged per recording.
            match plan.Segment with
            | Some _ -> g.Node("ReduceMean", "probabilities", [ perWindow ], [ OnnxAttr.ints "axes" [ 0L ]; OnnxAttr.int "keepdims" 1L ])
            | None -> perWindow
    g.AddOutput(probabilities, [| classes |])
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
          "input_is", (if wholeRecording then "recording" elif prepares then "prepared clip" else "clip") ]
        // How predict prepares a recording before its clips, as the model file records it.
        @ (let clips = trained.Preparation.Clips
           [ "test_speeds", TestSpeeds.format trained.Preparation.TestSpeeds
             "recording_samples", (match clips.RecordingSamples with Some n -> string n | None -> "none")
             "segment", (match clips.Segment with Some(w, h) -> sprintf "%d/%d" w h | None -> "none")
             "trim", Trim.format clips.Trim
             "loudness", (match clips.Loudness with Some v -> v.ToString("R", Globalization.CultureInfo.InvariantCulture) | None -> "none") ])
        @ [ "windows_in_graph", (if wholeRecording then "true" else "false")
            "speeds_in_graph", (if wholeRecording then "true" else "false") ]
    let warnings =
        [ if not wholeRecording && not speeds.IsEmpty then
              yield sprintf "predict averages each clip's probabilities over the speeds %s; the graph scores the clip at speed 1 only (metadata 'test_speeds')%s"
                        (TestSpeeds.format speeds) (if frontend then "" else "; export with --frontend to put them in the graph")
          match plan.Segment with
          | Some (w, h) when not wholeRecording ->
              yield sprintf "predict averages the probabilities of windows of %d samples every %d over each recording%s; the graph scores one window (metadata 'segment'%s)%s"
                        w h
                        (match plan.RecordingSamples with Some n -> sprintf " cut or padded to %d samples" n | None -> "")
                        (if plan.RecordingSamples.IsSome then ", 'recording_samples'" else "")
                        (if frontend then "" else "; export with --frontend to put them in the graph")
          | _ -> ()
          if not wholeRecording && prepares then
              yield sprintf "predict trims silence (%s) and sets the level (%s) of each recording before its clip; the graph takes the prepared clip (metadata 'trim', 'loudness')%s"
                        (Trim.format plan.Trim) (match plan.Loudness with Some v -> sprintf "%g dBFS" v | None -> "none")
                        (if frontend then "" else "; export with --frontend to put them in the graph") ]
    OnnxModel.write onnxPath (OnnxModel.wrap g.Graph metadata)
    { Path = IO.Path.GetFullPath onnxPath; Input = inputName; InputShape = inputShape; Metadata = metadata; Warnings = warnings }
