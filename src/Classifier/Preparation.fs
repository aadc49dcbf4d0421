namespace Hybrid.Classifier

open System
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// and read back typed.
type Preparation =
    { /// Feature schema name.
      Features: string
      /// The schema's run-time parameter differences (FeatureSchemaInfo.Variant; empty for the declaration).
      FeatureParameters: string
      /// Per-utterance normalisation of image bands.
      PerUtterance: PerUtterance
      /// Test-time speeds and weights (see Recipe.TestSpeeds).
      TestSpeeds: (float * float) list
      Clips: ClipPlan }

/// Writing and reading Preparation as model-file settings.
[<RequireQualifiedAccess>]
module Preparation =
    /// The settings: features, per_utterance (true/false), test_speeds, sample_rate, clip_samples,
    /// recording_samples, segment (`WINDOW/HOP` in samples, or `none`), trim (Trim.format) and loudness (dBFS or none).
    let toSettings (p: Preparation) =
        [ "features", p.Features; "feature_parameters", p.FeatureParameters; "per_utterance", PerUtterance.format p.PerUtterance
          "test_speeds", TestSpeeds.format p.TestSpeeds; "sample_rate", string p.Clips.SampleRate
          "clip_samples", string p.Clips.ClipSamples
          "recording_samples", (match p.Clips.RecordingSamples with Some n -> string n | None -> "none")
          "segment", (match p.Clips.Segment with Some (w, h) -> sprintf "%d/%d" w h | None -> "none")
          "trim", Trim.format p.Clips.Trim
          "loudness", (match p.Clips.Loudness with Some v -> v.ToString("R", Globalization.CultureInfo.InvariantCulture) | None -> "none") ]

    /// Every parameter of `schema` as model files record it (`schema_parameters`): "name=value" for each librosa name
    /// of FeatureParameters.Names, joined by commas (e.g. "sr=8000,clip_samples=8192,n_fft=256,..."), so that a file
    /// whose schema no longer matches can say which parameter changed.
    let schemaParameters (schema: FeatureSchemaInfo) : string =
        FeatureParameters.Names |> Seq.map (fun n -> n + "=" + schema.Parameters.ValueText n) |> String.concat ","

    /// The parameters whose value in `recorded` (schemaParameters' text) differs from `schema`'s: (name, recorded
    /// value, schema's value) in the order of `recorded`; names this library does not know and malformed pairs are
    /// skipped.
    let parameterDifferences (recorded: string) (schema: FeatureSchemaInfo) : (string * string * string) list =
        [ for pair in recorded.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) do
            match pair.Split('=', 2) with
            | [| name; value |] when Seq.contains name FeatureParameters.Names ->
                let today = schema.Parameters.ValueText name
                if today <> value then yield name, value, today
            | _ -> () ]

    /// The longest clip, window or recording cut (in samples) a model file may declare: 2^24, 35 minutes at 8 kHz, so a
    /// forged file cannot make inference allocate without bound.
    [<Literal>]
    let maxClipSamples = 16777216

    /// Reads the settings back. Files written before clip plans were recorded give the schema's rate, its clip
    /// length (else 8,192 samples, what those versions used for any-length schemas) and no windows; files without
    /// test speeds predict from the clip alone, files without trim keep recordings whole. Raises ModelFileException naming the file and the bad setting (a
    /// sample_rate outside AudioLimits, a length beyond maxClipSamples).
    let ofSettings (path: string) (schema: FeatureSchemaInfo) (settings: (string * string) list) : Preparation =
        let find key = settings |> List.tryFind (fun (k, _) -> k = key) |> Option.map snd
        let bad key (value: string) why = raise (ModelFileException(path, sprintf "training setting '%s' = '%s' %s" key value why))
        let bounded key fallback (most: int) what =
            match find key with
            | None -> fallback
            | Some v ->
                match Int32.TryParse(v, Globalization.NumberStyles.Integer, Globalization.CultureInfo.InvariantCulture) with
                | true, n when n > 0 && n <= most -> n
                | _ -> bad key v (sprintf "is not %s (1 .. %d)" what most)
        let samples key fallback = bounded key fallback maxClipSamples "a length in samples"
        let optionalSamples key =
            match find key with
            | None | Some "none" -> None
            | Some v -> Some(samples key 0)
        let segment =
            match find "segment" with
            | None | Some "none" -> None
            | Some v ->
                match v.Split '/' with
                | [| w; h |] ->
                    match Int32.TryParse w, Int32.TryParse h with
                    | (true, w), (true, h) when w > 0 && h > 0 && w <= maxClipSamples && h <= maxClipSamples -> Some(w, h)
                    | _ -> bad "segment" v "is not WINDOW/HOP in samples"
                | _ -> bad "segment" v "is not WINDOW/HOP in samples"
        let speeds =
            match find "test_speeds" with
            | Some v ->
                try TestSpeeds.parse v with :? ArgumentException as e -> bad "test_speeds" v ("is invalid: " + e.Message)
            | None -> []
        let perUtterance =
            match find "per_utterance" with
            | Some v -> try PerUtterance.parse v with :? ArgumentException -> bad "per_utterance" v "is not none, mean or meanvar"
            | None -> raise (ModelFileException(path, "training setting 'per_utterance' is missing"))
        { Preparation.Features = schema.Name; FeatureParameters = schema.Variant; PerUtterance = perUtterance; TestSpeeds = speeds
          Clips =
            { ClipPlan.SampleRate = bounded "sample_rate" schema.SampleRate AudioLimits.MaxSampleRate "a sample rate in Hz"
              ClipSamples = samples "clip_samples" (if schema.ClipSamples > 0 then schema.ClipSamples else Extraction.legacyAnyLengthClipSamples)
              RecordingSamples = optionalSamples "recording_samples"
              Segment = segment
              Trim =
                match find "trim" with
                | None -> None
                | Some v -> try Trim.parse v with :? ArgumentException as e -> bad "trim" v ("is invalid: " + e.Message)
              Loudness =
                match find "loudness" with
                | None | Some "none" -> None
                | Some v ->
                    match Double.TryParse(v, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
                    | true, d when d >= -100.0 && d <= 0.0 -> Some d
                    | _ -> bad "loudness" v "is not a level in [-100, 0] dBFS" } }

/// Every setting of a run, resolved and typed (`resolve` fills it from TrainOptions and the dataset).

    /// The schema clips are extracted with under a clip plan: the schema itself when it has a clip length, else its
    /// run-time variant at the plan's clip length (schemas of statistics over any length take the plan's duration).
    let extractionSchema (schema: FeatureSchemaInfo) (plan: ClipPlan) : FeatureSchemaInfo =
        if schema.ClipSamples > 0 then schema
        else Extraction.variant schema { Extraction.noOverrides with ClipSamples = Some plan.ClipSamples }

    /// Per-utterance normalisation of feature rows [rows * schema length] in place when the schema's rows are
    /// [bands, frames] images (Normalization.perUtteranceInPlace: each band's mean over the utterance removed, and with
    /// BandMeanVariance its standard deviation scaled to 1, floored at 1e-3); other rows are returned as they are.
    /// Returns `values`.
    let perUtterance (schema: FeatureSchemaInfo) (mode: PerUtterance) (values: float32[]) : float32[] =
        if schema.Shape.Count = 2 then
            match mode with
            | NoNormalization -> ()
            | BandMean -> Normalization.perUtteranceInPlace schema.Shape.[0] schema.Shape.[1] false 1e-3f values
            | BandMeanVariance -> Normalization.perUtteranceInPlace schema.Shape.[0] schema.Shape.[1] true 1e-3f values
        values

    /// Feature rows [clips.Length * schema length] of raw clips at the schema's rate through the one extraction path
    /// (Extraction.rows: each clip shaped by Extraction.fit, then the schema's executor; the rows `features` exports),
    /// then `perUtterance`. Training (through the feature store's shards), evaluation and prediction all make their
    /// rows here.
    let rows (engine: Engine) (schema: FeatureSchemaInfo) (mode: PerUtterance) (clips: float32[][]) : float32[] =
        perUtterance schema mode (Extraction.rows engine schema clips)

