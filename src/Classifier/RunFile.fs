namespace Hybrid.Classifier

open System
open System.IO
open System.Text.Json
open Hybrid.Features
open Hybrid.Features.Schemas

/// run.json: the options a training run was started with, written into its folder and read back by `--resume`.
[<RequireQualifiedAccess>]
module RunFile =
    [<Literal>]
    let FileName = "run.json"

    /// The version `run.json` files are written with: 2 since `feature_parameters` holds the model recipe's own feature
    /// parameters too (files without `run_file_version` are version 1), 3 since `augment_pool` records the augment pool
    /// (an earlier run drew no augmented row from a pool, so it resumes with a pool of 1), 4 since `trim` records the
    /// silence trimming in force (an earlier run trimmed nothing, so it resumes without trimming); since 4 `data` is the
    /// list of folders (a string before) and `label_map` the label map.
    [<Literal>]
    let Version = 4

    /// Writes the options that decide a run's result into `dir/run.json` (`folders`: the resolved data folders), the run-time
    /// feature parameters (`feature_parameters`: each override as given or as the model's recipe sets it, null where the
    /// schema's own applies, so a resumed run keeps them if the recipe changes) included, and `augmentPool`, the augment
    /// pool in force (RunSettings.AugmentPool; 0, written as null, without waveform augmentation), and `trim`, the
    /// silence trimming in force (the clip plan's, Trim.format).
    let write (dir: string) (folders: string list) (o: TrainOptions) (augmentPool: int) (trim: Trim option) =
        let f = Recipes.featureOverrides (Recipes.byName o.Model) o.Features o.FeatureParameters
        let json =
            {| run_file_version = Version
               data = Array.ofList folders
               label_map = [| for from, into in o.LabelMap -> [| from; into |] |]
               split = Option.toObj o.Split; model = o.Model; features = Option.toObj o.Features
               epochs = Option.toNullable o.Epochs; batch_size = Option.toNullable o.BatchSize; learning_rate = Option.toNullable o.LearningRate
               augment = Option.toObj o.Augment
               augment_pool = (if augmentPool = 0 then Nullable() else Nullable augmentPool)
               test_speeds = o.TestSpeeds |> Option.map TestSpeeds.format |> Option.toObj
               labels = o.Labels |> Option.map (String.concat ",") |> Option.toObj; other_label = Option.toObj o.OtherLabel
               validation = o.Validation; early_stopping = Option.toNullable o.EarlyStopping; sr = Option.toNullable o.SampleRate
               duration = Option.toNullable o.Duration; segment = Option.toNullable o.Segment; segment_hop = Option.toNullable o.SegmentHop
               trim = Trim.format trim
               device = o.Device; seed = o.Seed
               feature_parameters =
                   {| sr = Option.toNullable f.Sr; clip_samples = Option.toNullable f.ClipSamples; n_fft = Option.toNullable f.NFft
                      hop_length = Option.toNullable f.HopLength; win_length = Option.toNullable f.WinLength; n_mels = Option.toNullable f.NMels
                      fmin = Option.toNullable f.FMin; fmax = Option.toNullable f.FMax; n_mfcc = Option.toNullable f.NMfcc
                      other = [| for name, value in f.Other -> [| name; value |] |] |} |}
        File.WriteAllText(Path.Combine(dir, FileName), JsonSerializer.Serialize(json, JsonSerializerOptions(WriteIndented = true)))

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
    /// as the output folder. Raises FileNotFoundException when `dir` holds no run.json, DatasetException when it is
    /// not a run file.
    let read (dir: string) (caller: TrainOptions) : TrainOptions =
        let path = Path.Combine(dir, FileName)
        if not (File.Exists path) then
            raise (FileNotFoundException(sprintf "%s: no %s, so %s is not a run folder written by train (nothing to resume)" path FileName dir, path))
        try
            use doc = JsonDocument.Parse(File.ReadAllText path)
            let root = doc.RootElement
            let prop name =
                match root.TryGetProperty(name: string) with
                | true, v when v.ValueKind <> JsonValueKind.Null -> Some v
                | _ -> None
            let str name = prop name |> Option.map (fun v -> nonNull (v.GetString()))
            let int name = prop name |> Option.map (fun v -> v.GetInt32())
            let num name = prop name |> Option.map (fun v -> v.GetDouble())
            // Run files written before feature parameters were recorded have none: the schema as declared.
            let features =
                match prop "feature_parameters" with
                | None -> Extraction.noOverrides
                | Some p ->
                    let field name =
                        match p.TryGetProperty(name: string) with
                        | true, v when v.ValueKind <> JsonValueKind.Null -> Some v
                        | _ -> None
                    let fint name = field name |> Option.map (fun v -> v.GetInt32())
                    let fnum name = field name |> Option.map (fun v -> v.GetDouble())
                    { Sr = fint "sr"; ClipSamples = fint "clip_samples"; NFft = fint "n_fft"; HopLength = fint "hop_length"
                      WinLength = fint "win_length"; NMels = fint "n_mels"; FMin = fnum "fmin"; FMax = fnum "fmax"; NMfcc = fint "n_mfcc"
                      Other =
                        match field "other" with
                        | None -> []
                        | Some o ->
                            [ for pair in o.EnumerateArray() ->
                                if pair.GetArrayLength() <> 2 then raise (JsonException "feature_parameters.other holds a pair that is not [name, value]")
                                nonNull (pair.[0].GetString()), nonNull (pair.[1].GetString()) ] }
            let model = defaultArg (str "model") caller.Model
            let version = defaultArg (int "run_file_version") 1
            let features = if version >= 2 then features else pinDeclared (Recipes.byName model) (str "features") features
            { caller with
                Data =
                    (match prop "data" with
                     | Some v when v.ValueKind = JsonValueKind.Array -> [ for d in v.EnumerateArray() -> nonNull (d.GetString()) ]
                     | Some v -> [ nonNull (v.GetString()) ]
                     | None -> [])
                LabelMap =
                    (match prop "label_map" with
                     | Some v ->
                        [ for pair in v.EnumerateArray() ->
                            if pair.GetArrayLength() <> 2 then raise (JsonException "label_map holds a pair that is not [from, to]")
                            nonNull (pair.[0].GetString()), nonNull (pair.[1].GetString()) ]
                     | None -> [])
                Split = str "split"; Model = model; Features = str "features"
                Epochs = int "epochs"; BatchSize = int "batch_size"; LearningRate = num "learning_rate"; Augment = str "augment"
                AugmentPool = (match int "augment_pool" with Some k -> Some k | None when version < 3 -> Some 1 | None -> None)
                TestSpeeds = str "test_speeds" |> Option.map TestSpeeds.parse
                Labels = str "labels" |> Option.map (fun l -> l.Split ',' |> List.ofArray); OtherLabel = str "other_label"
                Validation = defaultArg (num "validation") caller.Validation; EarlyStopping = int "early_stopping"
                SampleRate = int "sr"; Duration = num "duration"; Segment = num "segment"; SegmentHop = num "segment_hop"
                Trim = (match str "trim" with Some t -> Some(Trim.parse t) | None -> Some None)
                Device = defaultArg (str "device") caller.Device; Seed = defaultArg (int "seed") caller.Seed
                FeatureParameters = features; Out = Some dir; Resume = None }
        with
        | :? JsonException as e -> raise (DatasetException(sprintf "%s: not a run file (%s)" path e.Message))
        | :? InvalidOperationException as e -> raise (DatasetException(sprintf "%s: not a run file (%s)" path e.Message))

    /// The value an option of `train` stands for in `o`, as text for messages: the recipe's and the schema's defaults
    /// resolved where the option is left out (e.g. `--n-fft` of the run-time schema variant), so that a value equal to
    /// the default agrees with a run that left the option out. Raises ArgumentException for an unknown option.
    let private optionValue (o: TrainOptions) (option: string) : string =
        let r = Recipes.byName o.Model
        let real (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
        let orNone f = function Some v -> f v | None -> "none"
        let folder (d: string) = Path.TrimEndingDirectorySeparator(Path.GetFullPath d)
        let parameters () = (Recipes.schemaOf r o.Features o.FeatureParameters).Parameters
        match option with
        | "--data" -> (match o.Data with [] -> "none" | folders -> folders |> List.map folder |> String.concat " + ")
        | "--label-map" -> (match o.LabelMap with [] -> "none" | map -> map |> List.map (fun (a, b) -> a + "=" + b) |> String.concat ",")
        | "--split" -> orNone (Split.parse >> Split.format) o.Split
        | "--model" -> r.Name
        | "--features" -> defaultArg o.Features r.Schema
        | "--n-fft" -> string (parameters ()).NFft
        | "--hop-length" -> string (parameters ()).HopLength
        | "--n-mels" -> string (parameters ()).NMels
        | "--fmin" -> real (parameters ()).FMin
        | "--fmax" -> real (parameters ()).FMax
        | "--n-mfcc" -> string (parameters ()).NMfcc
        | "--top-db" -> (parameters ()).ValueText "top_db"
        | "--epochs" -> string (defaultArg o.Epochs r.Epochs)
        | "--batch-size" -> string (defaultArg o.BatchSize r.BatchSize)
        | "--lr" -> real (defaultArg o.LearningRate r.LearningRate)
        | "--augment" -> (match defaultArg o.Augment r.Augment with "" -> "none" | a -> a)
        | "--augment-pool" -> string (defaultArg o.AugmentPool r.AugmentPool)
        | "--test-speeds" -> (match defaultArg o.TestSpeeds r.TestSpeeds with [] -> "none" | s -> TestSpeeds.format s)
        | "--labels" -> orNone (String.concat ",") o.Labels
        | "--other-label" -> orNone id o.OtherLabel
        | "--validation" -> real o.Validation
        | "--early-stopping" -> orNone string o.EarlyStopping
        | "--sr" -> orNone string o.SampleRate
        | "--duration" -> orNone real o.Duration
        | "--segment" -> orNone real o.Segment
        | "--segment-hop" -> orNone real o.SegmentHop
        | "--trim" -> Trim.format (defaultArg o.Trim r.Trim)
        | "--device" -> o.Device
        | "--seed" -> string o.Seed
        | "--out" -> orNone folder o.Out
        | other -> invalidArg "option" (sprintf "%s is not an option that run.json records" other)

    /// The options given together with `--resume DIR` that contradict the run recorded in DIR's run.json: for each
    /// option named in `given` (command-line flags, e.g. "--n-fft") whose value in `options` differs from the recorded
    /// one, (option, recorded value, given value). An option that repeats the recorded value (or its default, when the
    /// run left it out) is no conflict. Raises FileNotFoundException when DIR holds no run.json, DatasetException when it
    /// is not a run file, ArgumentException for an option run.json does not record.
    let resumeConflicts (dir: string) (options: TrainOptions) (given: string list) : (string * string * string) list =
        let recorded = read dir options
        [ for option in given do
            let before = optionValue recorded option
            let now = optionValue options option
            if before <> now then yield option, before, now ]
