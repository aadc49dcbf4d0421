namespace Hybrid.Classifier

open System
open System.IO
open System.Text.Json
open Hybrid.Features
open Hybrid.Features.Schemas

/// run.json: the options a training run was started with, written into its folder and read back by `--resume`.
[<RequireQualifiedAccess>]
module RunFile =
    /// The name of a run folder's settings file.
    [<Literal>]
    let FileName = "run.json"

    /// The version `run.json` files are written with: 2 since `feature_parameters` holds the model recipe's own feature
    /// parameters too (files without `run_file_version` are version 1), 3 since `augment_pool` records the augment pool
    /// (an earlier run drew no augmented row from a pool, so it resumes with a pool of 1), 4 since `trim` records the
    /// silence trimming in force (an earlier run trimmed nothing, so it resumes without trimming); since 4 `data` is the
    /// list of folders (a string before) and `label_map` the label map.
    [<Literal>]
    let Version = 4

    /// Feature parameters as run.json records them (null: the schema's own); `other` holds [name, value] pairs.
    [<CLIMutable>]
    type FeatureParametersRecord =
        { Sr: Nullable<int>; ClipSamples: Nullable<int>; NFft: Nullable<int>; HopLength: Nullable<int>; WinLength: Nullable<int>
          NMels: Nullable<int>; Fmin: Nullable<float>; Fmax: Nullable<float>; NMfcc: Nullable<int>; Other: string[][] | null }

    /// run.json, read and written by System.Text.Json with snake_case names: the options a run was started with
    /// (null where an option was left out), with `data` the list of folders (a single string in versions 1-3).
    [<CLIMutable>]
    type Record =
        { RunFileVersion: Nullable<int>
          Data: JsonElement
          LabelMap: string[][] | null
          Split: string | null
          Model: string | null
          Features: string | null
          Epochs: Nullable<int>
          BatchSize: Nullable<int>
          LearningRate: Nullable<float>
          Augment: string | null
          AugmentPool: Nullable<int>
          TestSpeeds: string | null
          Labels: string | null
          OtherLabel: string | null
          Validation: Nullable<float>
          EarlyStopping: Nullable<int>
          /// "none" or "balanced" (null in files written before --class-weight: none).
          ClassWeight: string | null
          /// True for a cross-validation that refits on all data (null in files written before --refit: false).
          Refit: Nullable<bool>
          Sr: Nullable<int>
          Duration: Nullable<float>
          Segment: Nullable<float>
          SegmentHop: Nullable<float>
          Trim: string | null
          PerUtterance: string | null
          Loudness: Nullable<float>
          Noise: string | null
          Device: string | null
          Seed: Nullable<int>
          FeatureParameters: FeatureParametersRecord | null }

    /// What in `dir` shows that a training run wrote there: `model.hnn` or `model-FOLD.hnn` files, `run.json` and the
    /// `checkpoints` folder, as names relative to `dir` in that order (empty when `dir` is absent or holds none).
    /// `train` refuses to start a fresh run in such a folder unless told to overwrite it (`--force`) or to continue it
    /// (`--resume`).
    let runContents (dir: string) : string list =
        if not (Directory.Exists dir) then []
        else
            [ yield! Directory.GetFiles(dir, "model*.hnn")
                     |> Array.map (fun f -> nonNull (Path.GetFileName f))
                     |> Array.filter (fun n -> n = "model.hnn" || n.StartsWith("model-", StringComparison.Ordinal))
                     |> Array.sort
              if File.Exists(Path.Combine(dir, FileName)) then FileName
              if Directory.Exists(Path.Combine(dir, "checkpoints")) then "checkpoints" ]

    let private json = JsonSerializerOptions(PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true)

    let private pairs (p: string[][] | null) (what: string) =
        match p with
        | null -> []
        | p ->
            [ for pair in p ->
                match pair with
                | [| a; b |] when not (isNull (box a)) && not (isNull (box b)) -> a, b
                | _ -> raise (JsonException(sprintf "%s holds a pair that is not [name, value]" what)) ]

    /// Writes the options that decide a run's result into `dir/run.json` (`folders`: the resolved data folders), the
    /// run-time feature parameters (`feature_parameters`: each override as given or as the model's recipe sets it, null
    /// where the schema's own applies, so a resumed run keeps them if the recipe changes) included, and `augmentPool`,
    /// the augment pool in force (RunSettings.AugmentPool; 0, written as null, without waveform augmentation), and
    /// `trim`, the silence trimming in force (the clip plan's, Trim.format).
    let private recordOf (folders: string list) (o: TrainOptions) (augmentPool: int) (trim: Trim option) : Record =
        let f = Recipes.featureOverrides (Recipes.byName o.Model) o.Features o.FeatureParameters
        let record: Record =
            { RunFileVersion = Nullable Version
              Data = JsonSerializer.SerializeToElement(Array.ofList folders)
              LabelMap = [| for from, into in o.LabelMap -> [| from; into |] |]
              Split = Option.toObj o.Split; Model = o.Model; Features = Option.toObj o.Features
              Epochs = Option.toNullable o.Epochs; BatchSize = Option.toNullable o.BatchSize; LearningRate = Option.toNullable o.LearningRate
              Augment = Option.toObj o.Augment
              AugmentPool = (if augmentPool = 0 then Nullable() else Nullable augmentPool)
              TestSpeeds = o.TestSpeeds |> Option.map TestSpeeds.format |> Option.toObj
              Labels = o.Labels |> Option.map (String.concat ",") |> Option.toObj; OtherLabel = Option.toObj o.OtherLabel
              Validation = Nullable o.Validation; EarlyStopping = Option.toNullable o.EarlyStopping
              ClassWeight = ClassWeighting.format o.ClassWeight; Refit = Nullable o.Refit; Sr = Option.toNullable o.SampleRate
              Duration = Option.toNullable o.Duration; Segment = Option.toNullable o.Segment; SegmentHop = Option.toNullable o.SegmentHop
              Trim = Trim.format trim
              PerUtterance = o.PerUtterance |> Option.map PerUtterance.format |> Option.toObj
              Loudness = Option.toNullable o.Loudness; Noise = o.Noise |> Option.map Path.GetFullPath |> Option.toObj
              Device = o.Device; Seed = Nullable o.Seed
              FeatureParameters =
                  { Sr = Option.toNullable f.Sr; ClipSamples = Option.toNullable f.ClipSamples; NFft = Option.toNullable f.NFft
                    HopLength = Option.toNullable f.HopLength; WinLength = Option.toNullable f.WinLength; NMels = Option.toNullable f.NMels
                    Fmin = Option.toNullable f.FMin; Fmax = Option.toNullable f.FMax; NMfcc = Option.toNullable f.NMfcc
                    Other = [| for name, value in f.Other -> [| name; value |] |] } }
        record

    let write (dir: string) (folders: string list) (o: TrainOptions) (augmentPool: int) (trim: Trim option) =
        File.WriteAllText(Path.Combine(dir, FileName), JsonSerializer.Serialize(recordOf folders o augmentPool trim, json))

    /// The recorded feature parameters of a version 1 run file (written before recipes had feature parameters of their
    /// own): such a run extracted the declared value of every parameter its options left out, so each parameter that the
    /// recipe now sets on its own schema is pinned to the declared value unless recorded.
    let private pinDeclared (r: Recipe) (features: string option) (recorded: Extraction.Overrides) : Extraction.Overrides =
        if not (Recipes.ownSchema r features) then recorded
        else
            let p = Schemas.ByName(r.Schema).Parameters
            let f = r.FeatureParameters
            let at (set: 'a option) (value: 'b) = set |> Option.map (fun _ -> value)
            Extraction.overridesOn
                { Sr = at f.Sr p.SampleRate; ClipSamples = at f.ClipSamples p.ClipSamples; NFft = at f.NFft p.NFft
                  HopLength = at f.HopLength p.HopLength; WinLength = at f.WinLength p.WinLength; NMels = at f.NMels p.NMels
                  FMin = at f.FMin p.FMin; FMax = at f.FMax p.FMax; NMfcc = at f.NMfcc p.NMfcc
                  Other = [ for name, _ in f.Other -> name, p.ValueText name ] }
                recorded

    /// The options of the run in `dir` (its run.json), with `caller`'s logging, progress and plot choices and `dir`
    /// as the output folder. Files of earlier versions read as the runs that wrote them trained: without feature
    /// parameters (version 1: the declared values, pinDeclared), without an augment pool (before 3: a pool of 1),
    /// without trimming (before 4). Raises FileNotFoundException when `dir` holds no run.json, DatasetException when it
    /// is not a run file.
    let read (dir: string) (caller: TrainOptions) : TrainOptions =
        let path = Path.Combine(dir, FileName)
        if not (File.Exists path) then
            raise (FileNotFoundException(sprintf "%s: no %s, so %s is not a run folder written by train (nothing to resume)" path FileName dir, path))
        try
            let r =
                match JsonSerializer.Deserialize<Record>(File.ReadAllText path, json) with
                | null -> raise (JsonException "the file holds null")
                | r -> r
            let text (s: string | null) = match s with null -> None | s -> Some s
            let version = if r.RunFileVersion.HasValue then r.RunFileVersion.Value else 1
            let features =
                match r.FeatureParameters with
                // Run files written before feature parameters were recorded have none: the schema as declared.
                | null -> Extraction.noOverrides
                | p ->
                    { Sr = Option.ofNullable p.Sr; ClipSamples = Option.ofNullable p.ClipSamples; NFft = Option.ofNullable p.NFft
                      HopLength = Option.ofNullable p.HopLength; WinLength = Option.ofNullable p.WinLength; NMels = Option.ofNullable p.NMels
                      FMin = Option.ofNullable p.Fmin; FMax = Option.ofNullable p.Fmax; NMfcc = Option.ofNullable p.NMfcc
                      Other = pairs p.Other "feature_parameters.other" }
            let model = defaultArg (text r.Model) caller.Model
            let features = if version >= 2 then features else pinDeclared (Recipes.byName model) (text r.Features) features
            { caller with
                Data =
                    (match r.Data.ValueKind with
                     | JsonValueKind.Array -> [ for d in r.Data.EnumerateArray() -> nonNull (d.GetString()) ]
                     | JsonValueKind.String -> [ nonNull (r.Data.GetString()) ]
                     | _ -> [])
                LabelMap = pairs r.LabelMap "label_map"
                Split = text r.Split; Model = model; Features = text r.Features
                Epochs = Option.ofNullable r.Epochs; BatchSize = Option.ofNullable r.BatchSize; LearningRate = Option.ofNullable r.LearningRate
                Augment = text r.Augment
                AugmentPool = (if r.AugmentPool.HasValue then Some r.AugmentPool.Value elif version < 3 then Some 1 else None)
                TestSpeeds = text r.TestSpeeds |> Option.map TestSpeeds.parse
                Labels = text r.Labels |> Option.map (fun l -> l.Split ',' |> List.ofArray); OtherLabel = text r.OtherLabel
                Validation = (if r.Validation.HasValue then r.Validation.Value else caller.Validation); EarlyStopping = Option.ofNullable r.EarlyStopping
                ClassWeight = (match text r.ClassWeight with Some w -> ClassWeighting.parse w | None -> Unweighted)
                Refit = r.Refit.HasValue && r.Refit.Value
                SampleRate = Option.ofNullable r.Sr; Duration = Option.ofNullable r.Duration; Segment = Option.ofNullable r.Segment
                SegmentHop = Option.ofNullable r.SegmentHop
                Trim = Some(match text r.Trim with Some t -> Trim.parse t | None -> None)
                PerUtterance = text r.PerUtterance |> Option.map PerUtterance.parse
                Loudness = Option.ofNullable r.Loudness; Noise = text r.Noise
                Device = defaultArg (text r.Device) caller.Device; Seed = (if r.Seed.HasValue then r.Seed.Value else caller.Seed)
                FeatureParameters = features; Out = Some dir; Resume = None }
        with
        | :? JsonException as e -> raise (DatasetException(sprintf "%s: not a run file (%s)" path e.Message))
        | :? InvalidOperationException as e -> raise (DatasetException(sprintf "%s: not a run file (%s)" path e.Message))
        | :? NotSupportedException as e -> raise (DatasetException(sprintf "%s: not a run file (%s)" path e.Message))

    /// run.json's record of `o` with the recipe's and the schema's defaults resolved where an option is left out (every
    /// feature parameter of the run-time schema variant, folders as full paths, the split in its canonical form), so
    /// that a value equal to the default agrees with a run that left the option out.
    let private resolved (o: TrainOptions) : JsonElement =
        let r = Recipes.byName o.Model
        let folder (d: string) = Path.TrimEndingDirectorySeparator(Path.GetFullPath d)
        let p = (Recipes.schemaOf r o.Features o.FeatureParameters).Parameters
        let full =
            { o with
                Data = List.map folder o.Data; Split = o.Split |> Option.map (Split.parse >> Split.format); Model = r.Name
                Features = Some(defaultArg o.Features r.Schema); Epochs = Some(defaultArg o.Epochs r.Epochs)
                BatchSize = Some(defaultArg o.BatchSize r.BatchSize); LearningRate = Some(defaultArg o.LearningRate r.LearningRate)
                Augment = Some(defaultArg o.Augment r.Augment); TestSpeeds = Some(defaultArg o.TestSpeeds r.TestSpeeds)
                PerUtterance = Some(defaultArg o.PerUtterance r.PerUtterance); Noise = Option.map folder o.Noise
                FeatureParameters =
                    { Extraction.noOverrides with
                        NFft = Some p.NFft; HopLength = Some p.HopLength; NMels = Some p.NMels; FMin = Some p.FMin; FMax = Some p.FMax
                        NMfcc = Some p.NMfcc; Other = [ for name in [ "top_db"; "pcen" ] -> name, p.ValueText name ] } }
        JsonSerializer.SerializeToElement(recordOf full.Data full (defaultArg o.AugmentPool r.AugmentPool) (defaultArg o.Trim r.Trim), json)

    /// The value of the `train` option `flag` (e.g. "--batch-size") in a resolved record, as text for messages: the
    /// run.json field of the flag's name in snake case (`batch_size`), at the top or among `feature_parameters` (or
    /// their `other` pairs); `--lr` is `learning_rate`. Raises ArgumentException for an option run.json does not record.
    let private optionValue (record: JsonElement) (flag: string) : string =
        let name = if flag = "--lr" then "learning_rate" else flag.TrimStart('-').Replace('-', '_')
        let rec text (e: JsonElement) =
            match e.ValueKind with
            | JsonValueKind.String -> nonNull (e.GetString())
            | JsonValueKind.Null -> "none"
            | JsonValueKind.Array when e.GetArrayLength() = 0 -> "none"
            // The label map's [FROM, TO] pairs as --label-map takes them, the data folders joined as the summary shows them.
            | JsonValueKind.Array when e[0].ValueKind = JsonValueKind.Array ->
                [ for pair in e.EnumerateArray() -> [ for x in pair.EnumerateArray() -> text x ] |> String.concat "=" ] |> String.concat ","
            | JsonValueKind.Array -> [ for x in e.EnumerateArray() -> text x ] |> String.concat " + "
            | _ -> e.GetRawText()
        let features = record.GetProperty "feature_parameters"
        let mutable v = Unchecked.defaultof<JsonElement>
        if record.TryGetProperty(name, &v) || features.TryGetProperty(name, &v) then text v
        else
            match [ for pair in features.GetProperty("other").EnumerateArray() do
                        if pair[0].GetString() = name then yield text pair[1] ] with
            | value :: _ -> value
            | [] -> invalidArg "option" (sprintf "%s is not an option that run.json records" flag)

    /// The options given together with `--resume DIR` that contradict the run recorded in DIR's run.json: for each
    /// option named in `given` (command-line flags, e.g. "--n-fft") whose value in `options` differs from the recorded
    /// one, (option, recorded value, given value). An option that repeats the recorded value (or its default, when the
    /// run left it out) is no conflict. Raises FileNotFoundException when DIR holds no run.json, DatasetException when it
    /// is not a run file, ArgumentException for an option run.json does not record.
    let resumeConflicts (dir: string) (options: TrainOptions) (given: string list) : (string * string * string) list =
        let recorded = read dir options
        let folder (o: TrainOptions) = o.Out |> Option.map (fun d -> Path.TrimEndingDirectorySeparator(Path.GetFullPath d)) |> Option.defaultValue "none"
        let before, now = lazy (resolved recorded), lazy (resolved options)
        [ for option in given do
            // --out is the run folder itself, which run.json does not record.
            let before, now = if option = "--out" then folder recorded, folder options else optionValue before.Value option, optionValue now.Value option
            if before <> now then yield option, before, now ]
