namespace Hybrid.Classifier

open System
open System.Text.Json
open Hybrid.Dsp

/// Window arithmetic and shape helpers shared by the layer kinds, Net and model files.
module internal Shapes =
    /// (output length, padding before) of a window of effective size `window` over `input` cells.
    let window (what: string) (padding: Padding) (input: int) (window: int) (stride: int) =
        match padding with
        | Valid ->
            if input < window then
                invalidArg "layers" (sprintf "%s: window of %d does not fit an input of %d with 'valid' padding." what window input)
            (input - window) / stride + 1, 0
        | Same ->
            let out = (input + stride - 1) / stride
            let total = max ((out - 1) * stride + window - input) 0
            out, total / 2

    /// (padding before, padding after) of a window, for ONNX's explicit `pads` (TensorFlow's 'same' puts the odd
    /// extra zero at the end).
    let pads (padding: Padding) (input: int) (window: int) (stride: int) =
        match padding with
        | Valid -> 0, 0
        | Same ->
            let out = (input + stride - 1) / stride
            let total = max ((out - 1) * stride + window - input) 0
            total / 2, total - total / 2

    let describe (shape: int[]) = "[" + String.Join("; ", shape) + "]"

    /// Raises ArgumentException naming `what` unless every value is at least 1.
    let positive what (values: (string * int) list) =
        for name, v in values do
            if v < 1 then invalidArg "layers" (sprintf "%s: %s must be at least 1, was %d." what name v)

    /// Raises ArgumentException naming `what` unless the per-sample input has rank `rank`.
    let needRank what (rank: int) (input: int[]) =
        if input.Length <> rank then
            invalidArg "layers" (sprintf "%s: expected a per-sample input of rank %d, was %s." what rank (describe input))

/// Typed access to one layer's fields in a model file header; every getter raises ModelFileException naming the file
/// and the field when it is missing or of the wrong type.
type internal LayerFields =
    abstract Int: string -> int
    abstract Float: string -> float
    abstract String: string -> string
    /// A ModelFileException naming the file and `problem`.
    abstract Error: problem: string -> exn

module internal LayerFields =
    let padding (f: LayerFields) =
        match f.String "padding" with
        | "same" -> Same
        | "valid" -> Valid
        | other -> raise (f.Error(sprintf "unknown padding '%s' (expected same or valid)." other))

    let paddingName p = match p with Same -> "same" | Valid -> "valid"

    let init (f: LayerFields) =
        match f.String "init" with
        | "glorot_uniform" -> GlorotUniform
        | "glorot_normal" -> GlorotNormal
        | "he_uniform" -> HeUniform
        | "he_normal" -> HeNormal
        | other -> raise (f.Error(sprintf "unknown initialiser '%s'." other))

    let initName i =
        match i with
        | GlorotUniform -> "glorot_uniform"
        | GlorotNormal -> "glorot_normal"
        | HeUniform -> "he_uniform"
        | HeNormal -> "he_normal"

/// Everything about one layer kind, in one place (one implementation per file: Dense.fs, Convolution.fs, ...):
/// its name (the summary's type, the model file's "type", the prefix of its weight names and of its ONNX nodes),
/// shape rule, parameter counts, runtime (forward/backward on an engine), model-file fields and ONNX mapping.
/// Implementations are F# records, so two layers with the same settings are equal.
type internal ILayerKind =
    /// The kind's one name, Keras' class name (e.g. "Conv2D", "BatchNormalization").
    abstract Name: string
    /// Validates the settings against a per-sample input shape and returns the per-sample output shape; raises
    /// ArgumentException whose message starts with `what`.
    abstract Output: what: string * input: int[] -> int[]
    /// (trainable, non-trainable) parameter counts for a per-sample input shape.
    abstract Parameters: input: int[] -> int64 * int64
    /// The executable form on an engine; `name` ("<index>.<lower-case name>") prefixes its weight names.
    abstract Create: engine: Engine * name: string * input: int[] * output: int[] * rng: SplitMix -> LayerRuntime
    /// Writes the settings (every field but "type") into the layer's JSON object.
    abstract Write: writer: Utf8JsonWriter -> unit
    /// Appends the inference-mode ONNX nodes reading value `input` ([batch; input shape]) and returns the output
    /// value; `weight role` gives the trained tensor "<name>.<role>" (e.g. "kernel", "moving_mean").
    abstract ToOnnx: graph: OnnxGraph * name: string * input: string * inShape: int[] * weight: (string -> float32[]) -> string
    /// The same layer with another weight initialiser (layers without weights return themselves).
    abstract WithInit: init: Init -> ILayerKind

/// One layer of a sequential network, a plain value compared by its settings. Per-sample shapes (no batch axis):
/// Dense takes [features]; 1-D layers take [channels; length]; 2-D layers take [channels; height; width] (NCHW).
/// Build layers with the functions of the `Layers` module or the constructors (`Dense(units, init)`, `ReLU`, ...).
[<Sealed>]
type Layer internal (kind: ILayerKind) =
    member internal _.Kind = kind
    /// The layer kind's name, as the summary, model files and ONNX node names show it (Keras' class name).
    member _.TypeName = kind.Name
    override _.Equals(other: obj) =
        match other with
        | :? Layer as l -> kind.Equals(l.Kind)
        | _ -> false
    override _.GetHashCode() = kind.GetHashCode()
    override _.ToString() =
        let fields = (sprintf "%A" kind).Replace("\n", " ")
        let compact = Text.RegularExpressions.Regex.Replace(fields, @"\s+", " ")
        if compact.StartsWith "{" then kind.Name + " " + compact else kind.Name

/// How a layer kind is read back from a model file: the names its "type" field may carry (the kind's name first,
/// then older aliases still read) and the reader of its fields.
type internal LayerRegistration =
    { Names: string list
      Read: string -> LayerFields -> Layer }
