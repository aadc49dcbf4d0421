namespace Hybrid.Classifier

open System
open System.Globalization
open System.Text.Json
open System.Text.Json.Serialization.Metadata

/// The windows of a clip plan as model files record them: recordings cut into windows of `Window` samples, one every
/// `Hop` samples (ClipPlan.Segment).
[<CLIMutable>]
type SegmentSettings =
    { /// Window length in samples at the model's rate.
      Window: int
      /// Samples between window starts.
      Hop: int }

/// What `train` records in a model file besides the network: the header's "settings" object, written and read by
/// System.Text.Json with snake_case names (`segment`, `per_utterance`, ...; ModelSettings.key), null where a setting
/// is not recorded. The preparation part (features to loudness) is read back typed and range-checked by
/// Preparation.ofSettings; the rest documents the run (summary, report). Model files of format 1 held the same names
/// with string values (ModelSettings.ofPairs).
[<CLIMutable>]
type ModelSettings =
    { /// The data folders (several: merged).
      Data: string[] | null
      /// Dataset labels read as other names, [FROM, TO] pairs.
      LabelMap: string[][] | null
      /// The recipe (`--model`).
      Model: string | null
      /// The split, in Split.parse's syntax.
      Split: string | null
      Epochs: Nullable<int>
      BatchSize: Nullable<int>
      LearningRate: Nullable<float>
      /// The augmentation list (Augment.format; empty for none).
      Augment: string | null
      /// Augmented copies of each training clip per epoch.
      Copies: Nullable<int>
      /// Augmented versions each epoch's copies are drawn from.
      AugmentPool: Nullable<int>
      Validation: Nullable<float>
      EarlyStopping: Nullable<int>
      /// ClassWeighting.format.
      ClassWeight: string | null
      Refit: Nullable<bool>
      Seed: Nullable<int>
      /// The engine the model was trained on.
      Device: string | null
      /// The fold whose training part the model was trained on.
      Fold: string | null
      /// How the standardisation groups features: "band" or "column".
      Grouping: string | null
      /// The feature schema's name.
      Features: string | null
      /// The schema's run-time parameter differences (FeatureSchemaInfo.Variant; empty for the declaration).
      FeatureParameters: string | null
      /// Every schema parameter (Preparation.schemaParameters), so that a changed schema can name what changed.
      SchemaParameters: string | null
      /// The assembly file declaring a schema that is not predefined.
      SchemaAssembly: string | null
      /// Per-utterance normalisation (PerUtterance.format; true/false in older files).
      PerUtterance: string | null
      /// Test-time speeds and weights (TestSpeeds.format).
      TestSpeeds: string | null
      /// Rate recordings are resampled to, in Hz.
      SampleRate: Nullable<int>
      /// Samples per clip.
      ClipSamples: Nullable<int>
      /// Samples each recording is cut or padded to before its windows (null: kept whole).
      RecordingSamples: Nullable<int>
      /// Windows per recording (null: one clip per recording).
      Segment: SegmentSettings | null
      /// Silence trimming (Trim.format).
      Trim: string | null
      /// RMS level in dBFS recordings are scaled to (null: kept at their level).
      Loudness: Nullable<float> }

/// Writing and reading ModelSettings: the one place their JSON form is defined.
[<RequireQualifiedAccess>]
module ModelSettings =
    let private options =
        let o = JsonSerializerOptions(PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, TypeInfoResolver = DefaultJsonTypeInfoResolver())
        o.MakeReadOnly()
        o

    /// The name a field of ModelSettings has in model files, e.g. `key (nameof s.PerUtterance)` = "per_utterance".
    let key (field: string) : string = JsonNamingPolicy.SnakeCaseLower.ConvertName field

    /// Settings with nothing recorded.
    let empty: ModelSettings =
        { Data = null; LabelMap = null; Model = null; Split = null; Epochs = Nullable(); BatchSize = Nullable(); LearningRate = Nullable()
          Augment = null; Copies = Nullable(); AugmentPool = Nullable(); Validation = Nullable(); EarlyStopping = Nullable(); ClassWeight = null
          Refit = Nullable(); Seed = Nullable(); Device = null; Fold = null; Grouping = null; Features = null; FeatureParameters = null
          SchemaParameters = null; SchemaAssembly = null; PerUtterance = null; TestSpeeds = null; SampleRate = Nullable()
          ClipSamples = Nullable(); RecordingSamples = Nullable(); Segment = null; Trim = null; Loudness = Nullable() }

    /// The settings as the JSON object a model file stores (ModelInfo.Settings).
    let toStored (s: ModelSettings) : StoredSettings = Json(JsonSerializer.SerializeToElement(s, options))

    /// The settings of a format 1 file (name/value strings) as the record: each value read as its field's type
    /// ("none" is null for a field that is not text; `data` joined by " + ", `label_map` FROM=TO,..., `segment`
    /// WINDOW/HOP); names the record does not know are dropped. Raises ModelFileException naming the setting when a
    /// value does not read as its type.
    let ofPairs (path: string) (pairs: (string * string) list) : ModelSettings =
        use memory = new IO.MemoryStream()
        do
            use w = new Utf8JsonWriter(memory)
            w.WriteStartObject()
            for p in options.GetTypeInfo(typeof<ModelSettings>).Properties do
                match pairs |> List.tryFind (fun (k, _) -> k = p.Name) with
                | None -> ()
                | Some(_, text) ->
                    let bad expected = raise (ModelFileException(path, sprintf "training setting '%s' = '%s' is not %s" p.Name text expected))
                    let t = p.PropertyType
                    w.WritePropertyName p.Name
                    if t = typeof<string> then w.WriteStringValue text
                    elif text = "none" then w.WriteNullValue()
                    elif t = typeof<Nullable<int>> then
                        match Int32.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture) with
                        | true, v -> w.WriteNumberValue v
                        | _ -> bad "an integer"
                    elif t = typeof<Nullable<float>> then
                        match Double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture) with
                        | true, v when Double.IsFinite v -> w.WriteNumberValue v
                        | _ -> bad "a finite number"
                    elif t = typeof<Nullable<bool>> then
                        match Boolean.TryParse text with
                        | true, v -> w.WriteBooleanValue v
                        | _ -> bad "true or false"
                    elif t = typeof<string[]> then
                        w.WriteStartArray()
                        for part in text.Split(" + ") do w.WriteStringValue part
                        w.WriteEndArray()
                    elif t = typeof<string[][]> then
                        w.WriteStartArray()
                        for pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries) do
                            match pair.Split('=') with
                            | [| from; into |] ->
                                w.WriteStartArray()
                                w.WriteStringValue from
                                w.WriteStringValue into
                                w.WriteEndArray()
                            | _ -> bad "FROM=TO,..."
                        w.WriteEndArray()
                    elif t = typeof<SegmentSettings> then
                        match text.Split '/' with
                        | [| window; hop |] ->
                            match Int32.TryParse window, Int32.TryParse hop with
                            | (true, window), (true, hop) ->
                                w.WriteStartObject()
                                w.WriteNumber(key (nameof Unchecked.defaultof<SegmentSettings>.Window), window)
                                w.WriteNumber(key (nameof Unchecked.defaultof<SegmentSettings>.Hop), hop)
                                w.WriteEndObject()
                            | _ -> bad "WINDOW/HOP in samples"
                        | _ -> bad "WINDOW/HOP in samples"
                    else invalidOp (sprintf "ModelSettings.ofPairs cannot read a %s" t.Name)
            w.WriteEndObject()
        nonNull (JsonSerializer.Deserialize<ModelSettings>(ReadOnlySpan<byte>(memory.ToArray()), options))

    /// The settings a model file stores, typed: the JSON object of format 2, the string pairs of format 1 (ofPairs).
    /// Raises ModelFileException naming the file when a setting has the wrong JSON type.
    let ofStored (path: string) (stored: StoredSettings) : ModelSettings =
        match stored with
        | Pairs pairs -> ofPairs path pairs
        | Json e ->
            try
                match e.Deserialize<ModelSettings>(options) with
                | null -> raise (ModelFileException(path, "header: 'settings' is null"))
                | s -> s
            with :? JsonException as x -> raise (ModelFileException(path, "header: 'settings' is invalid: " + x.Message, x))

    /// The settings as stored, one JSON object (format 1's pairs as an object of strings), for summaries.
    let json (stored: StoredSettings) : JsonElement =
        match stored with
        | Json e -> e
        | Pairs pairs ->
            let o = Collections.Generic.Dictionary<string, string>()
            for name, value in pairs do o[name] <- value
            JsonSerializer.SerializeToElement o

    /// The settings as (name, text) rows in file order, for reports: strings as they are, null as "none", other values
    /// as their JSON text.
    let rows (stored: StoredSettings) : (string * string) list =
        [ for p in (json stored).EnumerateObject() ->
            p.Name,
            match p.Value.ValueKind with
            | JsonValueKind.String -> nonNull (p.Value.GetString())
            | JsonValueKind.Null -> "none"
            | _ -> p.Value.GetRawText() ]
