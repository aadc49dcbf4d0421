/// The one feature extraction path. `features` (schemas and transforms), `train`, `predict`, the plots and the F#
/// API all extract through here: a feature schema (generated at compile time, a run-time variant of one, or a
/// one-member transform schema) is run by its executor (FeatureSchemaInfo.Extract: one STFT per batch, mel, dB
/// with librosa's rule for the power, MFCC, statistics) on clips shaped by `fit`, the only place clips are cut or
/// padded. A schema's fingerprint (SHA-256 of its canonical parameters and layout, the generator's scheme) names
/// its rows everywhere: model files, caches and exports.
module Hybrid.Features.Extraction

open System
open System.Globalization
open Hybrid.Dsp
open Hybrid.Features.Schemas

/// Shapes one mono clip (at the schema's rate) for a schema: zero-padded or cut to the schema's clip_samples keeping
/// the content centred (Clip.Center), or kept whole when the schema accepts any clip length (clip_samples 0), so
/// that statistics are taken over the whole clip. Returns a new array for fixed lengths, the input otherwise.
let fit (schema: FeatureSchemaInfo) (samples: float32[]) : float32[] =
    if schema.ClipSamples > 0 then Clip.fit schema.ClipSamples Clip.Center samples else samples

/// The schema as a batched extractor on an engine: a batch of equal-length clips [n * samples] is uploaded once (read
/// in place on the managed engine) and run through FeatureSchemaInfo.Extract. ClipSamples is the schema's (0: any length, batches are then computed in
/// runs of equal length). Raises SchemaMismatchException from Extract for clips the schema cannot take.
let extractor (engine: Engine) (schema: FeatureSchemaInfo) : Pipeline.Extractor =
    { Name = schema.Name
      Fingerprint = schema.Fingerprint
      Length = schema.Length
      Shape = Array.ofSeq schema.Shape
      SampleRate = schema.SampleRate
      ClipSamples = schema.ClipSamples
      ExtractBatch =
        fun clips n ->
            let samples = if n = 0 then 0 else clips.Length / n
            // The managed engine reads the batch in place (Extract never writes its input); others get a copy.
            use input =
                match engine with
                | :? Hybrid.Dsp.Managed.ManagedEngine as managed when clips.Length = n * samples -> managed.Wrap(clips, n, samples) :> Tensor
                | _ -> engine.FromHost(ReadOnlySpan clips, n, samples)
            schema.Extract(engine, input) }

/// Streams the rows of `count` items in item order, `batchSize` clips per extraction call: `load i` returns item
/// i's mono samples at the schema's rate, shaped here by `fit`; loading runs in parallel two batches ahead, so memory
/// stays bounded whatever the dataset size. Yields (first item index, rows [n * Length]).
let stream (engine: Engine) (schema: FeatureSchemaInfo) (load: int -> float32[]) (count: int) (batchSize: int) (progress: Progress.Reporter) =
    Pipeline.extractBatches (extractor engine schema) (fun i -> fit schema (load i)) count batchSize 2 progress

/// Row-major feature rows [clips.Length * Length] of in-memory mono clips at the schema's rate (each shaped by `fit`),
/// extracted 256 clips per call. `features` exports, and `train` and `predict` feed the network, exactly these rows.
let rows (engine: Engine) (schema: FeatureSchemaInfo) (clips: float32[][]) : float32[] =
    Pipeline.extractAll (extractor engine schema) (fun i -> fit schema clips.[i]) clips.Length 256 2 Progress.silent

/// Recordings per feature shard (Shards.plan) in `features --cache` and `train`.
let shardSize = 256

/// The shard variant text (Shards.plan) of rows of whole recordings, one clip each shaped by `fit` (centred): what
/// `features --cache` and `train` without windows store, so that the two share shards.
[<Literal>]
let WholeRecordings = "fit-center"

/// Clip length in samples of model files written before clip lengths were recorded: they extracted schemas that
/// accept any clip length on clips cut or padded to 8,192 samples (centred).
let legacyAnyLengthClipSamples = 8192

/// The schema as model files without a recorded feature_parameters setting were trained on: schemas that accept any
/// clip length on clips of 8,192 samples (a run-time variant with clip_samples 8192), others unchanged. Only `predict`
/// uses it, to replay such files; their fingerprint is the declaration's.
let legacy (schema: FeatureSchemaInfo) : FeatureSchemaInfo =
    if schema.ClipSamples > 0 then schema
    else schema.WithParameters(schema.Parameters.With(sprintf "clip_samples=%d" legacyAnyLengthClipSamples))

/// Feature parameters chosen at run time, with librosa's names (the CLI's --sr, --n-fft, --hop-length, --n-mels,
/// --fmin, --fmax, --n-mfcc, and a clip length from train's --duration or features' --length). None keeps the
/// schema's value. A parameter whose declared value is librosa's default derived from another follows that one
/// unless given: hop_length = n_fft / 4, win_length = n_fft, fmax = sr / 2.
type Overrides =
    { /// Sampling rate in Hz the clips are resampled to (librosa's sr).
      Sr: int option
      /// Samples per clip after shaping (librosa's clip length at sr, e.g. round(duration * sr)); for a schema that
      /// accepts any length, None keeps whole clips.
      ClipSamples: int option
      NFft: int option
      HopLength: int option
      WinLength: int option
      NMels: int option
      /// Lowest mel edge in Hz.
      FMin: float option
      /// Highest mel edge in Hz.
      FMax: float option
      NMfcc: int option
      /// Any other parameter by its librosa name (window, center, pad_mode, htk, norm, power, top_db, lifter,
      /// tuning, roll_percent) with its value as FeatureParameters.With reads it (e.g. "top_db", "none").
      Other: (string * string) list }

/// No override: the schema as declared.
let noOverrides =
    { Sr = None; ClipSamples = None; NFft = None; HopLength = None; WinLength = None; NMels = None; FMin = None; FMax = None
      NMfcc = None; Other = [] }

/// `given` over `defaults`, parameter by parameter: each parameter `given` sets wins, the others come from `defaults`
/// (a recipe's own run-time parameters under the ones a user chose). Other parameters merge by name.
let overridesOn (defaults: Overrides) (given: Overrides) : Overrides =
    let pick (g: 'a option) (d: 'a option) = match g with Some _ -> g | None -> d
    { Sr = pick given.Sr defaults.Sr; ClipSamples = pick given.ClipSamples defaults.ClipSamples
      NFft = pick given.NFft defaults.NFft; HopLength = pick given.HopLength defaults.HopLength
      WinLength = pick given.WinLength defaults.WinLength; NMels = pick given.NMels defaults.NMels
      FMin = pick given.FMin defaults.FMin; FMax = pick given.FMax defaults.FMax; NMfcc = pick given.NMfcc defaults.NMfcc
      Other = given.Other @ (defaults.Other |> List.filter (fun (name, _) -> not (given.Other |> List.exists (fun (n, _) -> n = name)))) }

/// The command-line option of a librosa parameter name, for messages.
let optionOf (librosaName: string) =
    match librosaName with
    | "sr" -> "--sr"
    | "clip_samples" -> "the clip length (--duration / --length)"
    | name -> "--" + name.Replace('_', '-')

/// Samples of a clip of `seconds` at `sr` Hz (rounded to the nearest sample); raises ArgumentException unless the
/// duration is positive and finite and gives at least one sample.
let clipSamplesOf (sr: int) (seconds: float) =
    if not (seconds > 0.0 && seconds < 1e6) then invalidArg "duration" (sprintf "--duration must be a positive number of seconds, was %g" seconds)
    let n = int (Math.Round(seconds * float sr))
    if n < 1 then invalidArg "duration" (sprintf "--duration %g s at %d Hz gives no samples" seconds sr)
    n

/// The "name=value,..." text of the overrides that differ from `p`, with the follow rules applied.
let private settingsText (p: FeatureParameters) (o: Overrides) =
    let real (v: float) = v.ToString("R", CultureInfo.InvariantCulture)
    let sr = defaultArg o.Sr p.SampleRate
    let nFft = defaultArg o.NFft p.NFft
    let hop =
        match o.HopLength with
        | Some h -> h
        | None when p.HopLength = max 1 (p.NFft / 4) -> max 1 (nFft / 4)
        | None -> p.HopLength
    let win =
        match o.WinLength with
        | Some w -> w
        | None when p.WinLength = p.NFft -> nFft
        | None -> p.WinLength
    let fMax =
        match o.FMax with
        | Some f -> f
        | None when p.FMax = float p.SampleRate / 2.0 -> float sr / 2.0
        | None -> p.FMax
    [ yield "sr", string sr
      match o.ClipSamples with
      | Some n -> yield "clip_samples", string n
      | None -> ()
      yield "n_fft", string nFft
      yield "hop_length", string hop
      yield "win_length", string win
      match o.NMels with
      | Some n -> yield "n_mels", string n
      | None -> ()
      match o.FMin with
      | Some f -> yield "fmin", real f
      | None -> ()
      yield "fmax", real fMax
      match o.NMfcc with
      | Some n -> yield "n_mfcc", string n
      | None -> ()
      yield! o.Other ]
    |> List.map (fun (k, v) -> k + "=" + v)
    |> String.concat ","

/// Rethrows a schema's parameter error with the command-line option it came from.
let private withOption (f: unit -> 'T) : 'T =
    try f ()
    with
    | :? ArgumentException as e when (match e.ParamName with null -> false | name -> Seq.contains name FeatureParameters.Names) ->
        let name = nonNull e.ParamName
        let text = e.Message.Replace(sprintf " (Parameter '%s')" name, "")
        raise (ArgumentException(sprintf "%s (option %s)" text (optionOf name), e))
    | :? FormatException as e -> raise (ArgumentException(e.Message, e))

/// The run-time variant of `schema` with the overrides (FeatureSchemaInfo.WithParameters: the same members with other
/// parameters, its own fingerprint, column names and shape); the schema itself when nothing changes. Raises
/// ArgumentException naming the option and the valid range for an invalid value, worded as the generator's
/// diagnostics (e.g. "Feature schema 'genre': top_db must be positive (or none to keep everything), was -5. (option
/// --top-db)").
let variant (schema: FeatureSchemaInfo) (overrides: Overrides) : FeatureSchemaInfo =
    withOption (fun () -> schema.WithParameters(schema.Parameters.With(settingsText schema.Parameters overrides)))

/// The schema a model file's settings describe: the declaration named `features` with the recorded parameter
/// differences (`feature_parameters`, FeatureSchemaInfo.Variant) applied. Raises ArgumentException for an unknown
/// schema name or invalid recorded parameters.
let replay (features: string) (featureParameters: string) : FeatureSchemaInfo =
    let declared = Schemas.ByName features
    withOption (fun () -> declared.WithParameters(declared.Parameters.With featureParameters))
