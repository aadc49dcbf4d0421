namespace Hybrid.Classifier

open System
open System.IO
open Hybrid.Features.Schemas

/// One layer of a model summary (a row of Keras' `model.summary()`).
type LayerSummary =
    { /// Position in the network, from 0.
      Index: int
      /// Keras' name of the layer (Net.layerNames: conv2d, conv2d_1, ...).
      Name: string
      /// The layer kind, Keras' class name (e.g. "Conv2D", "BatchNormalization").
      Kind: string
      /// Per-sample output shape (no batch axis).
      OutputShape: int[]
      /// Parameters updated by training.
      Trainable: int64
      /// Parameters not updated by gradients (BatchNorm's running mean and variance).
      NonTrainable: int64 }

/// How a model file says its input is made from a recording (the preparation `predict` replays).
type InputSummary =
    { /// Rate every recording is resampled to, in Hz.
      SampleRate: int
      /// Samples of one model input clip at SampleRate.
      ClipSamples: int
      /// The feature schema's name.
      Features: string
      /// The schema's run-time parameters that differ from its declaration ("" for none), as model files record them.
      FeatureParameters: string
      /// Shape of one clip's feature row ([bands; frames] for images, [n] for vectors).
      FeatureShape: int[]
      /// Per-utterance normalisation of image bands: none, mean or meanvar.
      PerUtterance: string
      /// Silence trimming: `none` or TOP_DB:FRAME_LENGTH:HOP_LENGTH at SampleRate (Trim.format).
      Trim: string
      /// RMS level each recording is set to, in dBFS (None: kept).
      Loudness: float option
      /// Recordings padded or cut to this many seconds before windowing (None: kept whole).
      RecordingSeconds: float option
      /// (window, hop) in seconds that long recordings are cut into, their probabilities averaged (None: one clip).
      Segment: (float * float) option
      /// Test-time speeds and their weights (empty: the clip alone).
      TestSpeeds: (float * float) list }

/// A model file described as Keras' `model.summary()` describes a model, plus what it was trained on.
type ModelSummary =
    { /// The model file.
      Path: string
      /// Its size in bytes.
      FileBytes: int64
      /// The Hybrid version that wrote it.
      LibraryVersion: string
      /// The training recipe (`train --model`), when recorded.
      Recipe: string option
      /// Per-sample input shape of the network.
      InputShape: int[]
      /// The layers, first to last.
      Layers: LayerSummary list
      /// Trainable parameters of all layers.
      Trainable: int64
      /// Non-trainable parameters of all layers.
      NonTrainable: int64
      /// Class names, in the order of the network's outputs.
      Labels: string list
      /// Fingerprint of the feature schema the model was trained on.
      SchemaFingerprint: string
      /// How recordings become the network's input; None when it cannot be read back (see InputProblem).
      Input: InputSummary option
      /// Why Input is None: e.g. the schema is declared in an assembly that is not loaded (`--schemas`).
      InputProblem: string option
      /// The settings object the file records (ModelSettings; a format 1 file's name/value strings as an object).
      Settings: Text.Json.JsonElement }

/// Summaries of model files (`hybrid summary`).
[<RequireQualifiedAccess>]
module ModelSummary =
    /// The rows of `net`'s layers: Keras' names, kinds, per-sample output shapes and parameter counts.
    let layers (net: Net) : LayerSummary list =
        List.zip3 net.Layers (Net.layerNames net) (Net.layerParameters net)
        |> List.mapi (fun i ((layer: Layer), name, (trainable, nonTrainable)) ->
            { Index = i; Name = name; Kind = layer.TypeName; OutputShape = net.LayerOutputShapes.[i]
              Trainable = trainable; NonTrainable = nonTrainable })

    let private inputOf (plan: ClipPlan) (schema: FeatureSchemaInfo) (preparation: Preparation) : InputSummary =
        let seconds (samples: int) = float samples / float plan.SampleRate
        { SampleRate = plan.SampleRate; ClipSamples = plan.ClipSamples; Features = schema.Name
          FeatureParameters = preparation.FeatureParameters
          FeatureShape = Array.ofSeq (Preparation.extractionSchema schema plan).Shape
          PerUtterance = PerUtterance.format preparation.PerUtterance; Trim = Trim.format plan.Trim; Loudness = plan.Loudness
          RecordingSeconds = plan.RecordingSamples |> Option.map seconds
          Segment = plan.Segment |> Option.map (fun (w, h) -> seconds w, seconds h)
          TestSpeeds = preparation.TestSpeeds }

    /// Reads and validates the model file at `path` (ModelFile.inspect: checksum, header, labels, finite values) and
    /// summarises it: one row per layer, parameter totals, the file's size, and its input as `predict` prepares it.
    /// The input is left out (Input None, InputProblem saying why) when the file's preparation settings cannot be read
    /// back, e.g. a schema declared in an assembly that is not loaded. Raises ModelFileException for a missing,
    /// damaged or invalid file (a checkpoint included).
    let ofFile (path: string) : ModelSummary =
        let net, info = ModelFile.inspect path
        let settings, input, problem =
            try
                let settings = ModelSettings.ofStored path info.Settings
                try
                    let schema, preparation = Inference.preparationOf path settings
                    Some settings, Some(inputOf preparation.Clips schema preparation), None
                with :? ModelFileException as e -> Some settings, None, Some e.Problem
            with :? ModelFileException as e -> None, None, Some e.Problem
        let trainable, nonTrainable = Net.parameterCounts net
        { Path = path; FileBytes = FileInfo(path).Length; LibraryVersion = info.LibraryVersion
          Recipe = settings |> Option.bind (fun s -> Option.ofObj s.Model)
          InputShape = net.InputShape; Layers = layers net; Trainable = trainable; NonTrainable = nonTrainable
          Labels = info.Labels; SchemaFingerprint = info.SchemaFingerprint; Input = input; InputProblem = problem
          Settings = ModelSettings.json info.Settings }
