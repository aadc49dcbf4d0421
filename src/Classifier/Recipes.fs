namespace Hybrid.Classifier

open System
open Hybrid.Features
open Hybrid.Features.Schemas

/// Per-utterance normalisation of a [bands, frames] feature image, before the train-fitted standardisation (features
/// of other shapes are left as they are).
type PerUtterance =
    /// None.
    | NoNormalization
    /// Each band's mean over the utterance removed (the log-mel form of cepstral mean normalisation): removes the
    /// recording channel's colouring and the level.
    | BandMean
    /// Each band's mean removed and its standard deviation over the utterance scaled to 1 (floored at 1e-3):
    /// cepstral mean and variance normalisation (CMVN), which also evens out how far each band rises above its floor.
    | BandMeanVariance

/// `--per-utterance` and model files' `per_utterance`: none, mean or meanvar.
[<RequireQualifiedAccess>]
module PerUtterance =
    /// The name `--per-utterance` takes and model files record.
    let format (p: PerUtterance) =
        match p with
        | NoNormalization -> "none"
        | BandMean -> "mean"
        | BandMeanVariance -> "meanvar"

    /// Parses none, mean or meanvar (model files written before the choice existed record true for mean and false for
    /// none). Raises ArgumentException naming --per-utterance otherwise.
    let parse (text: string) =
        match text.Trim().ToLowerInvariant() with
        | "none" | "false" -> NoNormalization
        | "mean" | "true" -> BandMean
        | "meanvar" -> BandMeanVariance
        | other -> invalidArg "per-utterance" (sprintf "--per-utterance '%s': expected none, mean or meanvar" other)

/// How a model's input is computed and prepared.
type Recipe =
    { /// CLI name (`--model`).
      Name: string
      /// One line for help and reports.
      Description: string
      /// Default feature schema (`--features` overrides it).
      Schema: string
      /// Run-time parameters of `Schema` for this model (Extraction.variant; the feature options win over them, one by
      /// one; not applied to another schema chosen with `--features`). Recorded in model files like the options.
      FeatureParameters: Extraction.Overrides
      /// Per-utterance normalisation of each band of a [bands, frames] image before the train-fitted standardisation.
      PerUtterance: PerUtterance
      /// Builds the network for an input shape and a class count.
      Build: int list -> int -> Net
      Epochs: int
      BatchSize: int
      LearningRate: float
      /// Default waveform augmentation (Augment.parse syntax; empty for none).
      Augment: string
      /// Augmented copies of each training clip added to the originals (with `Augment`).
      Copies: int
      /// Augmented versions computed of each training clip (at least Copies when there is waveform augmentation): every
      /// epoch, each of a clip's Copies augmented rows is drawn afresh from them (PooledRows), which approximates
      /// augmentation on the fly for the cost of extracting each version once. Equal to Copies: the same copies every epoch.
      AugmentPool: int
      /// Test-time speed averaging: a clip's class probabilities are the normalised, weighted geometric mean of the
      /// model's probabilities over copies of the clip resampled at each (factor, weight) (empty: the clip alone).
      /// Evaluation and `predict` both apply it; model files record it.
      TestSpeeds: (float * float) list
      /// Silence trimming of utterances (one clip per recording of at most 2 s, the median) before they are cut into
      /// clips, at training and prediction time, with its frame and hop given at 8 kHz (Trim.atRate scales them to the
      /// model's rate; None: none; --trim overrides it).
      Trim: Trim option }

/// Test-time speed lists: the `--test-speeds` syntax and the text model files record.
[<RequireQualifiedAccess>]
module TestSpeeds =
    /// Formats test-time speeds as `train --test-speeds` accepts them and model files record them: `0.9*0.5,1,1.1*0.5`
    /// (a factor and its weight, the weight left out when it is 1; `none` when empty).
    let format (speeds: (float * float) list) =
        let r (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
        if speeds.IsEmpty then "none"
        else speeds |> List.map (fun (f, w) -> if w = 1.0 then r f else r f + "*" + r w) |> String.concat ","

    /// Raises ArgumentException unless every factor lies in [0.5, 2] and every weight is positive and finite; `text`
    /// names the speeds in the message.
    let check (text: string) (speeds: (float * float) list) =
        for f, w in speeds do
            if not (f >= 0.5 && f <= 2.0) then invalidArg "test-speeds" (sprintf "test speeds '%s': factor %g is outside [0.5, 2]" text f)
            if not (w > 0.0 && w < Double.PositiveInfinity) then invalidArg "test-speeds" (sprintf "test speeds '%s': weight %g of factor %g is not positive" text w f)
        speeds

    /// Parses test-time speeds: `none`; a comma list of factors with optional weights (`0.9*0.5,1,1.1*0.5`); or a range
    /// with a step (`0.8-1.2:0.05`, equal weights), optionally triangular (`0.7-1.3:0.05:tri`: weight 1 at factor 1,
    /// falling linearly to 0 one step beyond the farther end). Factors must lie in [0.5, 2] (Augment.speed quantises
    /// them to 0.01), weights must be positive; weights are rounded to 4 decimals so that files round-trip.
    let parse (text: string) : (float * float) list =
        let fail fmt = Printf.kprintf (fun m -> invalidArg "test-speeds" m) fmt
        let expected = "expected none, F[*W],F[*W],... or LO-HI:STEP[:tri]"
        let number (t: string) =
            match Double.TryParse(t.Trim(), Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
            | true, v -> v
            | _ -> fail "test speeds '%s': '%s' is not a number; %s" text t expected
        let speeds =
            match text.Trim().ToLowerInvariant() with
            | "" | "none" -> []
            | t when t.Contains ':' ->
                let parts = t.Split ':'
                let triangular =
                    match parts with
                    | [| _; _ |] -> false
                    | [| _; _; "tri" |] -> true
                    | _ -> fail "test speeds '%s': %s" text expected
                let step = number parts.[1]
                let lo, hi =
                    match parts.[0].Split '-' with
                    | [| a; b |] -> number a, number b
                    | _ -> fail "test speeds '%s': %s" text expected
                if not (step > 0.0) || hi < lo then fail "test speeds '%s': need LO <= HI and STEP > 0" text
                let count = int (Math.Floor((hi - lo) / step + 1e-9)) + 1
                if count > 64 then fail "test speeds '%s': %d factors, at most 64" text count
                let reach = max (abs (lo - 1.0)) (abs (hi - 1.0)) + step
                [ for i in 0 .. count - 1 ->
                    let f = Math.Round(lo + float i * step, 4)
                    f, (if triangular then Math.Round(1.0 - abs (f - 1.0) / reach, 4) else 1.0) ]
            | t ->
                [ for item in t.Split ',' ->
                    match item.Split '*' with
                    | [| f |] -> number f, 1.0
                    | [| f; w |] -> number f, number w
                    | _ -> fail "test speeds '%s': '%s' is not F or F*W; %s" text item expected ]
        check text speeds

/// The models `train --model` chooses from: their networks, schemas, training defaults and test-time preparation.
[<RequireQualifiedAccess>]
module Recipes =
    /// Network input shape for a schema's row shape: images get a channel axis, a raw waveform too (Conv1D).
    let inputShape (schemaShape: int[]) (recipe: Recipe) =
        match schemaShape with
        | [| h; w |] -> [ 1; h; w ]
        | [| n |] when recipe.Name = "cnn1d" -> [ 1; n ]
        | s -> List.ofArray s

    /// Batch normalisation with PyTorch's momentum (running statistics keep 90% per step): with Keras' 0.99 the
    /// running statistics of a short training run are still dominated by their initial values at evaluation.
    let private bn = BatchNorm(0.9, 1e-3)

    let private cnn2d (input: int list) classes =
        Net.sequential input
            [ Layers.conv2d 16 (3, 3) Same; bn; Layers.relu; Layers.maxPool2d 2
              Layers.conv2d 32 (3, 3) Same; bn; Layers.relu; Layers.maxPool2d 2
              Layers.conv2d 64 (3, 3) Same; bn; Layers.relu; Layers.maxPool2d 2
              Layers.flatten
              Layers.dropout 0.3
              Layers.dense classes ]

    let private cnn1d (input: int list) classes =
        Net.sequential input
            [ Layers.conv1dWith 16 9 4 1 Same; Layers.batchNorm; Layers.relu; Layers.maxPool1d 4
              Layers.conv1d 32 9 Same; Layers.batchNorm; Layers.relu; Layers.maxPool1d 4
              Layers.conv1d 64 9 Same; Layers.batchNorm; Layers.relu; Layers.maxPool1d 4
              Layers.conv1d 64 9 Same; Layers.batchNorm; Layers.relu
              Layers.globalAvgPool
              Layers.dense 64; Layers.relu; Layers.dropout 0.3
              Layers.dense classes ]

    let private mlp (input: int list) classes =
        Net.sequential input [ Layers.flatten; Layers.dense 256; Layers.relu; Layers.dropout 0.3; Layers.dense 128; Layers.relu; Layers.dropout 0.3; Layers.dense classes ]

    let private logreg (input: int list) classes = Net.sequential input [ Layers.flatten; Layers.dense classes ]

    /// kymatio's spoken-digit classifier: batch normalisation of the log-scattering means, then one softmax layer. The
    /// default features average the log-scattering over each quarter of the clip (scattering-fsdd-parts4) instead of the
    /// whole clip; `--features scattering-fsdd` is the write-up's exact recipe.
    let private scattering (input: int list) classes = Net.sequential input [ Layers.flatten; Layers.batchNorm; Layers.dense classes ]

    /// The recipes' silence trimming of utterances, given at 8 kHz (librosa.effects.trim with top_db 20 over frames of
    /// 256 samples every 64, 32 ms every 8 ms; Trim.atRate scales it to the model's rate): chosen on protocol (a) of
    /// docs/benchmarks.md, where it lifts every recipe's accuracy on other people's recordings (cnn2d from 47% to 83% of
    /// Speech Commands' digits) and keeps FSDD's own test part at 99.6-100%.
    let speechTrim = { TopDb = 20.0; FrameLength = 256; HopLength = 64 }

    /// The models `--model` chooses from; the first is the default.
    let all =
        [ { Name = "cnn2d"; Description = "2-D CNN on a 40-band log-mel image (the spoken-digit write-up): 1.024 s clips of short recordings, the whole clip of environmental sounds, 1.024 s windows averaged per track of music"
            Schema = "logmel-fsdd"; FeatureParameters = { Extraction.noOverrides with NFft = Some 512 }; PerUtterance = BandMean; Build = cnn2d
            Epochs = 12; BatchSize = 64; LearningRate = 3e-3; Augment = "speed:0.85-1.15,shift:0.08,gain:6,snr:10-40"; Copies = 1; AugmentPool = 3
            TestSpeeds = TestSpeeds.parse "0.7-1.3:0.05:tri"; Trim = Some speechTrim }
          { Name = "mlp"; Description = "Dense network on 40 MFCC means (the UrbanSound8K write-up)"
            Schema = "mfcc-mean40"; FeatureParameters = Extraction.noOverrides; PerUtterance = NoNormalization; Build = mlp
            Epochs = 60; BatchSize = 32; LearningRate = 1e-3; Augment = ""; Copies = 0; AugmentPool = 0; TestSpeeds = []; Trim = Some speechTrim }
          { Name = "cnn1d"; Description = "1-D convolutions on the raw 8,192-sample waveform with noise augmentation (the Speech Commands write-up)"
            Schema = "raw8192"; FeatureParameters = Extraction.noOverrides; PerUtterance = NoNormalization; Build = cnn1d
            Epochs = 20; BatchSize = 64; LearningRate = 2e-3; Augment = "noise:0.005,shift:0.08"; Copies = 1; AugmentPool = 1; TestSpeeds = []; Trim = Some speechTrim }
          { Name = "logreg"; Description = "linear softmax on MFCC and spectral statistics (the genre write-up's table)"
            Schema = "genre"; FeatureParameters = Extraction.noOverrides; PerUtterance = NoNormalization; Build = logreg
            Epochs = 100; BatchSize = 64; LearningRate = 1e-2; Augment = ""; Copies = 0; AugmentPool = 0; TestSpeeds = []; Trim = Some speechTrim }
          { Name = "scattering"; Description = "batch normalisation and a softmax layer on log-scattering means over each quarter of the clip, J 8, Q 12 (kymatio's spoken-digit example, whose whole-clip means are --features scattering-fsdd)"
            Schema = "scattering-fsdd-parts4"; FeatureParameters = Extraction.noOverrides; PerUtterance = NoNormalization; Build = scattering
            Epochs = 50; BatchSize = 32; LearningRate = 1e-3; Augment = ""; Copies = 0; AugmentPool = 0; TestSpeeds = []; Trim = Some speechTrim } ]

    /// True when `features` (None: the recipe's default) names `recipe`'s own schema, the one its FeatureParameters are
    /// for. Raises ArgumentException for an unknown schema name.
    let internal ownSchema (recipe: Recipe) (features: string option) =
        Schemas.ByName(defaultArg features recipe.Schema).Name = Schemas.ByName(recipe.Schema).Name

    /// The feature parameters a run of `recipe` applies: on the recipe's own schema (`features` None or naming it) the
    /// options `overrides` over the recipe's FeatureParameters (Extraction.overridesOn), on another schema the options alone.
    /// Raises ArgumentException for an unknown schema name.
    let featureOverrides (recipe: Recipe) (features: string option) (overrides: Extraction.Overrides) : Extraction.Overrides =
        if ownSchema recipe features then
            Extraction.overridesOn recipe.FeatureParameters overrides
        else overrides

    /// The schema a run of `recipe` extracts: `features` (None: the recipe's own schema) as its run-time variant under
    /// the feature options `overrides`, which on the recipe's own schema go over the recipe's FeatureParameters
    /// (Extraction.overridesOn). Raises ArgumentException for an unknown schema or an invalid parameter (naming the option).
    let schemaOf (recipe: Recipe) (features: string option) (overrides: Extraction.Overrides) : FeatureSchemaInfo =
        Extraction.variant (Schemas.ByName(defaultArg features recipe.Schema)) (featureOverrides recipe features overrides)

    /// Looks a recipe up by name.
    let byName (name: string) =
        match all |> List.tryFind (fun r -> r.Name = name.ToLowerInvariant()) with
        | Some r -> r
        | None -> invalidArg "model" (sprintf "unknown model '%s'; expected one of %s" name (all |> List.map (fun r -> r.Name) |> String.concat ", "))
