namespace Hybrid.Classifier

open System
open Hybrid.Dsp
open Hybrid.Features
open Hybrid.Features.Schemas

/// How recordings become a model's input: written into model files (Preparation.toSettings) and read back typed.
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

/// Writing and reading Preparation as model-file settings (ModelSettings).
[<RequireQualifiedAccess>]
module Preparation =
    /// The preparation part of a model file's settings (the rest empty): features, feature_parameters, per_utterance,
    /// test_speeds, sample_rate, clip_samples, recording_samples, segment (window and hop in samples), trim and loudness.
    let toSettings (p: Preparation) : ModelSettings =
        { ModelSettings.empty with
            Features = p.Features; FeatureParameters = p.FeatureParameters; PerUtterance = PerUtterance.format p.PerUtterance
            TestSpeeds = TestSpeeds.format p.TestSpeeds; SampleRate = Nullable p.Clips.SampleRate; ClipSamples = Nullable p.Clips.ClipSamples
            RecordingSamples = Option.toNullable p.Clips.RecordingSamples
            Segment = (match p.Clips.Segment with Some(w, h) -> { Window = w; Hop = h } | None -> null)
            Trim = Trim.format p.Clips.Trim; Loudness = Option.toNullable p.Clips.Loudness }

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
    /// test speeds predict from the clip alone, files without trim keep recordings whole. Raises ModelFileException
    /// naming the file and the bad setting (per_utterance missing or unknown, a sample_rate outside AudioLimits, a
    /// length beyond maxClipSamples, a loudness outside [-100, 0] dBFS, test speeds or a trim that do not parse).
    let ofSettings (path: string) (schema: FeatureSchemaInfo) (s: ModelSettings) : Preparation =
        let bad field (value: string) why = raise (ModelFileException(path, sprintf "training setting '%s' = '%s' %s" (ModelSettings.key field) value why))
        let bounded field (value: Nullable<int>) fallback (most: int) what =
            if not value.HasValue then fallback
            elif value.Value > 0 && value.Value <= most then value.Value
            else bad field (string value.Value) (sprintf "is not %s (1 .. %d)" what most)
        let samples field value fallback = bounded field value fallback maxClipSamples "a length in samples"
        let parsed field (text: string | null) parse fallback =
            match text with
            | null -> fallback
            | text -> try parse text with :? ArgumentException as e -> bad field text ("is invalid: " + e.Message)
        { Preparation.Features = schema.Name; FeatureParameters = schema.Variant
          PerUtterance =
            match s.PerUtterance with
            | null -> raise (ModelFileException(path, sprintf "training setting '%s' is missing" (ModelSettings.key (nameof s.PerUtterance))))
            | v -> try PerUtterance.parse v with :? ArgumentException -> bad (nameof s.PerUtterance) v "is not none, mean or meanvar"
          TestSpeeds = parsed (nameof s.TestSpeeds) s.TestSpeeds TestSpeeds.parse []
          Clips =
            { ClipPlan.SampleRate = bounded (nameof s.SampleRate) s.SampleRate schema.SampleRate AudioLimits.MaxSampleRate "a sample rate in Hz"
              ClipSamples = samples (nameof s.ClipSamples) s.ClipSamples (if schema.ClipSamples > 0 then schema.ClipSamples else Extraction.legacyAnyLengthClipSamples)
              RecordingSamples = (if s.RecordingSamples.HasValue then Some(samples (nameof s.RecordingSamples) s.RecordingSamples 0) else None)
              Segment =
                match s.Segment with
                | null -> None
                | g when g.Window > 0 && g.Hop > 0 && g.Window <= maxClipSamples && g.Hop <= maxClipSamples -> Some(g.Window, g.Hop)
                | g -> bad (nameof s.Segment) (sprintf "%d/%d" g.Window g.Hop) (sprintf "is not WINDOW/HOP in samples (1 .. %d)" maxClipSamples)
              Trim = parsed (nameof s.Trim) s.Trim Trim.parse None
              Loudness =
                if not s.Loudness.HasValue then None
                elif s.Loudness.Value >= -100.0 && s.Loudness.Value <= 0.0 then Some s.Loudness.Value
                else bad (nameof s.Loudness) (s.Loudness.Value.ToString("R", Globalization.CultureInfo.InvariantCulture)) "is not a level in [-100, 0] dBFS" } }

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

