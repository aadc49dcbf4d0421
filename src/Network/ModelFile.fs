namespace Hybrid.Classifier

open System
open System.Buffers.Binary
open System.IO
open System.Runtime.InteropServices
open System.Security.Cryptography
open System.Text
open System.Text.Json
open Hybrid.Dsp

/// The caller's settings as a model file holds them: an opaque JSON object the library stores and returns as it is.
type StoredSettings =
    /// A JSON object (format 2: the header's "settings"; at most 32 levels deep).
    | Json of JsonElement
    /// Name/value strings in file order (format 1: the header's "trainingSettings"), read from older files only.
    | Pairs of (string * string) list

/// What a model file stores besides the network and its weights (all given by the caller except LibraryVersion).
type ModelInfo =
    { /// Fingerprint of the input feature schema the model was trained on (an opaque string from the caller).
      SchemaFingerprint: string
      /// Class names, index = class.
      Labels: string list
      /// Named normalisation statistics (e.g. per-feature mean and standard deviation), stored bit-exactly.
      Normalization: (string * float32[]) list
      /// Settings to record: `save` writes a Json object (Pairs only come from format 1 files).
      Settings: StoredSettings
      /// Library version that wrote the file (ignored by save, which writes its own).
      LibraryVersion: string }

/// The container shared by model files and checkpoints: magic "HYBRIDNN", int32 format version, int32 header
/// length, UTF-8 JSON header, int64 float count, little-endian float32 values, SHA-256 of everything before it.
/// Version 2 (written since model settings are one JSON object, "settings") and version 1 (string pairs,
/// "trainingSettings") are read; the container itself is the same in both.
module internal Container =
    let magic = "HYBRIDNN"B
    let version = 2
    let oldestVersion = 1
    let maxHeaderBytes = 16 * 1024 * 1024
    let private fixedBytes = 16L + 8L + 32L

    let libraryVersion =
        match typeof<ModelInfo>.Assembly.GetName().Version with
        | null -> "0.0.0"
        | v -> v.ToString(3)

    let fail (path: string) (problem: string) : 'a = raise (ModelFileException(path, problem))

    /// Writes the container to a temporary file beside `path`, flushes it to disk, then renames it over `path`,
    /// so a reader (or a killed writer) never sees a half-written file.
    let write (path: string) (header: byte[]) (blocks: float32[] seq) =
        if not BitConverter.IsLittleEndian then raise (PlatformNotSupportedException "Model files are written on little-endian machines only.")
        let full = Path.GetFullPath path
        match Path.GetDirectoryName full with
        | null -> ()
        | dir -> Directory.CreateDirectory dir |> ignore
        let temporary = full + ".tmp"
        let blocks = Array.ofSeq blocks
        let count = blocks |> Array.sumBy (fun b -> int64 b.Length)
        do
            use stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None)
            use hash = IncrementalHash.CreateHash HashAlgorithmName.SHA256
            let fixedPart = Array.zeroCreate<byte> 16
            magic.CopyTo(fixedPart, 0)
            BinaryPrimitives.WriteInt32LittleEndian(fixedPart.AsSpan(8), version)
            BinaryPrimitives.WriteInt32LittleEndian(fixedPart.AsSpan(12), header.Length)
            let countBytes = Array.zeroCreate<byte> 8
            BinaryPrimitives.WriteInt64LittleEndian(countBytes.AsSpan(), count)
            for part in [ fixedPart; header; countBytes ] do
                hash.AppendData part
                stream.Write(part, 0, part.Length)
            for block in blocks do
                let bytes = MemoryMarshal.AsBytes(ReadOnlySpan<float32>(block))
                hash.AppendData bytes
                stream.Write bytes
            let digest = hash.GetHashAndReset()
            stream.Write(digest, 0, digest.Length)
            stream.Flush true
        File.Move(temporary, full, true)

    /// Reads and validates a container: magic, version, sizes, length and checksum are checked before anything
    /// sized by the file is allocated; then `check` inspects the format version, the header and the float count and
    /// may raise; only then are the floats read. Returns check's result and the floats.
    let readVersioned (path: string) (check: int -> byte[] -> int -> 'a) : 'a * float32[] =
        if not (File.Exists path) then fail path "file not found."
        use stream = File.OpenRead path
        let length = stream.Length
        if length < fixedBytes then
            fail path (sprintf "truncated: the file has %d bytes, a model file has at least %d." length fixedBytes)
        let fixedPart = Array.zeroCreate<byte> 16
        stream.ReadExactly(fixedPart, 0, 16)
        if fixedPart[0..7] <> magic then
            fail path (sprintf "not a Hybrid model file: magic number is %s, expected %s." (Convert.ToHexString(fixedPart, 0, 8)) (Convert.ToHexString magic))
        let fileVersion = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan<byte>(fixedPart, 8, 4))
        if fileVersion < oldestVersion || fileVersion > version then
            fail path (sprintf "format version %d is not supported (this library reads versions %d to %d)." fileVersion oldestVersion version)
        let headerLength = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan<byte>(fixedPart, 12, 4))
        if headerLength < 2 || headerLength > maxHeaderBytes then
            fail path (sprintf "header length %d is outside 2..%d bytes: the file is corrupt." headerLength maxHeaderBytes)
        if int64 headerLength + fixedBytes > length then
            fail path (sprintf "truncated: the header alone needs %d bytes, the file has %d." (int64 headerLength + fixedBytes) length)
        let header = Array.zeroCreate<byte> headerLength
        stream.ReadExactly(header, 0, headerLength)
        let countBytes = Array.zeroCreate<byte> 8
        stream.ReadExactly(countBytes, 0, 8)
        let count = BinaryPrimitives.ReadInt64LittleEndian(ReadOnlySpan<byte>(countBytes))
        if count < 0L || count > int64 Array.MaxLength then
            fail path (sprintf "weight count %d is outside 0..%d: the file is corrupt." count Array.MaxLength)
        let expected = int64 headerLength + fixedBytes + 4L * count
        if length < expected then
            fail path (sprintf "truncated: %d weights need a file of %d bytes, the file has %d." count expected length)
        if length > expected then
            fail path (sprintf "%d unexpected bytes: %d weights need a file of exactly %d bytes." (length - expected) count expected)
        stream.Position <- 0L
        use hash = IncrementalHash.CreateHash HashAlgorithmName.SHA256
        let buffer = Array.zeroCreate<byte> 65536
        let mutable remaining = length - 32L
        while remaining > 0L do
            let n = stream.Read(buffer, 0, int (min remaining 65536L))
            if n <= 0 then fail path "truncated while computing the checksum."
            hash.AppendData(buffer, 0, n)
            remaining <- remaining - int64 n
        let stored = Array.zeroCreate<byte> 32
        stream.ReadExactly(stored, 0, 32)
        let actual = hash.GetHashAndReset()
        if actual <> stored then
            fail path (sprintf "checksum mismatch: SHA-256 of the content is %s, the file stores %s (corrupt file)." (Convert.ToHexString actual) (Convert.ToHexString stored))
        let checkedResult = check fileVersion header (int count)
        stream.Position <- 16L + int64 headerLength + 8L
        let floats = Array.zeroCreate<float32> (int count)
        stream.ReadExactly(MemoryMarshal.AsBytes(Span<float32>(floats)))
        checkedResult, floats

    /// readVersioned for readers whose header does not depend on the format version.
    let read (path: string) (check: byte[] -> int -> 'a) : 'a * float32[] =
        readVersioned path (fun _ header count -> check header count)

/// Reading JSON headers into a closed set of values (no type instantiated from the file's content).
module internal HeaderJson =
    let bad (path: string) (problem: string) : 'a = Container.fail path ("header: " + problem)

    let prop (path: string) (e: JsonElement) (name: string) =
        if e.ValueKind <> JsonValueKind.Object then bad path (sprintf "expected an object holding '%s'." name)
        let mutable v = Unchecked.defaultof<JsonElement>
        if e.TryGetProperty(name, &v) then v else bad path (sprintf "missing property '%s'." name)

    let tryProp (e: JsonElement) (name: string) =
        let mutable v = Unchecked.defaultof<JsonElement>
        if e.ValueKind = JsonValueKind.Object && e.TryGetProperty(name, &v) && v.ValueKind <> JsonValueKind.Null then Some v else None

    let int (path: string) (e: JsonElement) (name: string) =
        let v = prop path e name
        let mutable i = 0
        if v.ValueKind = JsonValueKind.Number && v.TryGetInt32(&i) then i
        else bad path (sprintf "'%s' must be a 32-bit integer." name)

    let float (path: string) (e: JsonElement) (name: string) =
        let v = prop path e name
        let mutable d = 0.0
        if v.ValueKind = JsonValueKind.Number && v.TryGetDouble(&d) then d
        else bad path (sprintf "'%s' must be a number." name)

    let string (path: string) (e: JsonElement) (name: string) : string =
        let v = prop path e name
        if v.ValueKind = JsonValueKind.String then
            match v.GetString() with
            | null -> bad path (sprintf "'%s' must be a string." name)
            | s -> s
        else bad path (sprintf "'%s' must be a string." name)

    let array (path: string) (e: JsonElement) (name: string) =
        let v = prop path e name
        if v.ValueKind = JsonValueKind.Array then [ for x in v.EnumerateArray() -> x ]
        else bad path (sprintf "'%s' must be an array." name)

    let intArray (path: string) (e: JsonElement) (name: string) =
        array path e name
        |> List.map (fun x ->
            let mutable i = 0
            if x.ValueKind = JsonValueKind.Number && x.TryGetInt32(&i) then i
            else bad path (sprintf "'%s' must hold 32-bit integers." name))
        |> Array.ofList

    let parse (path: string) (bytes: byte[]) =
        try
            JsonDocument.Parse(ReadOnlyMemory<byte>(bytes), JsonDocumentOptions(MaxDepth = 32))
        with :? JsonException as e ->
            raise (ModelFileException(path, "header is not valid JSON: " + e.Message, e))

    let toBytes (write: Utf8JsonWriter -> unit) =
        use memory = new MemoryStream()
        do
            use writer = new Utf8JsonWriter(memory, JsonWriterOptions(Indented = false))
            write writer
        memory.ToArray()

/// Network architectures as JSON: each layer is {"type": <its kind's name>, <its fields>}, written and read by the
/// layer kinds themselves (LayerRegistry); the net is rebuilt with Net.sequential (which checks shapes).
module internal Architecture =
    let writeLayer (w: Utf8JsonWriter) (layer: Layer) =
        w.WriteStartObject()
        w.WriteString("type", layer.TypeName)
        layer.Kind.Write w
        w.WriteEndObject()

    /// Writes "architecture": { "input": [...], "layers": [...] }.
    let write (w: Utf8JsonWriter) (net: Net) =
        w.WriteStartObject "architecture"
        w.WriteStartArray "input"
        for d in net.InputShape do w.WriteNumberValue d
        w.WriteEndArray()
        w.WriteStartArray "layers"
        for l in net.Layers do writeLayer w l
        w.WriteEndArray()
        w.WriteEndObject()

    let private readLayer (path: string) (e: JsonElement) : Layer =
        let fields =
            { new LayerFields with
                member _.Int name = HeaderJson.int path e name
                member _.Float name = HeaderJson.float path e name
                member _.String name = HeaderJson.string path e name
                member _.Error problem = ModelFileException(path, "header: " + problem) }
        let name = HeaderJson.string path e "type"
        match LayerRegistry.tryRead name fields with
        | Some layer -> layer
        | None -> HeaderJson.bad path (sprintf "unknown layer type '%s' (known: %s)." name (String.concat ", " LayerRegistry.names))

    /// Rebuilds the network from the header's "architecture" (shapes checked; sizes bounded).
    let read (path: string) (root: JsonElement) : Net =
        let a = HeaderJson.prop path root "architecture"
        let input = HeaderJson.intArray path a "input"
        let layers = HeaderJson.array path a "layers" |> List.map (readLayer path)
        if input |> Array.exists (fun d -> d < 1 || d > (1 <<< 24)) then
            HeaderJson.bad path (sprintf "input shape %s has a size outside 1..%d." (Shapes.describe input) (1 <<< 24))
        let net =
            try
                Net.sequential (List.ofArray input) layers
            with :? ArgumentException as e ->
                raise (ModelFileException(path, "header: the architecture is invalid: " + e.Message, e))
        for shape in net.LayerOutputShapes do
            let size = shape |> Array.fold (fun acc d -> acc * int64 d) 1L
            if shape |> Array.exists (fun d -> d < 1) || size > (1L <<< 28) then
                HeaderJson.bad path (sprintf "a layer output of %s elements per sample is absurd." (Shapes.describe shape))
        net

/// Saving and loading trained models.
[<RequireQualifiedAccess>]
module ModelFile =
    /// Extension conventionally used for model files.
    [<Literal>]
    let Extension = ".hnn"

    let internal writeBlocks (w: Utf8JsonWriter) (blocks: (string * string * int[]) list) =
        w.WriteStartArray "blocks"
        for name, role, shape in blocks do
            w.WriteStartObject()
            w.WriteString("name", name)
            w.WriteString("role", role)
            w.WriteStartArray "shape"
            for d in shape do w.WriteNumberValue d
            w.WriteEndArray()
            w.WriteEndObject()
        w.WriteEndArray()

    /// Reads the "blocks" list and checks that their sizes add up to the file's float count.
    let internal readBlocks (path: string) (root: JsonElement) (floatCount: int) =
        let blocks =
            HeaderJson.array path root "blocks"
            |> List.map (fun b ->
                let shape = HeaderJson.intArray path b "shape"
                if shape |> Array.exists (fun d -> d < 0) then HeaderJson.bad path "a block has a negative size."
                HeaderJson.string path b "name", HeaderJson.string path b "role", shape)
        let total = blocks |> List.sumBy (fun (_, _, s) -> s |> Array.fold (fun acc d -> acc * int64 d) 1L)
        if total <> int64 floatCount then
            HeaderJson.bad path (sprintf "blocks describe %d floats, the file holds %d." total floatCount)
        blocks

    /// Writes `model` to `path` atomically (temporary file + rename): the architecture, `info` (library version
    /// replaced by this library's), every weight and BatchNorm statistic, the normalisation arrays, and a SHA-256
    /// checksum. Format: see the Container module (magic "HYBRIDNN", version 2). Raises ArgumentException unless
    /// `info.Settings` is a Json object.
    let save (path: string) (info: ModelInfo) (model: Model) : unit =
        let settings =
            match info.Settings with
            | Json e when e.ValueKind = JsonValueKind.Object -> e
            | Json e -> invalidArg "info" (sprintf "the settings must be a JSON object, not %A." e.ValueKind)
            | Pairs _ -> invalidArg "info" "the settings must be a JSON object (name/value pairs are read from format 1 files only)."
        let tensors = model.Tensors
        let blocks =
            [ for name, t in tensors -> name, "weight", t.Shape ]
            @ [ for name, values in info.Normalization -> name, "normalization", [| values.Length |] ]
        let header =
            HeaderJson.toBytes (fun w ->
                w.WriteStartObject()
                w.WriteString("format", "hybrid-nn")
                w.WriteString("kind", "model")
                w.WriteString("libraryVersion", Container.libraryVersion)
                w.WriteString("schemaFingerprint", info.SchemaFingerprint)
                w.WriteStartArray "labels"
                for l in info.Labels do w.WriteStringValue l
                w.WriteEndArray()
                w.WritePropertyName "settings"
                settings.WriteTo w
                Architecture.write w model.Net
                writeBlocks w blocks
                w.WriteEndObject())
        let floats = model.Engine.ReadTensors model.SavedTensors :: [ for _, v in info.Normalization -> v ]
        Container.write path header floats

    /// The header's "labels", validated against the network: distinct non-empty strings, one per network output, at
    /// least two (a classifier of one class answers 1 whatever it hears).
    let private readLabels (path: string) (root: JsonElement) (net: Net) : string list =
        let labels =
            HeaderJson.array path root "labels"
            |> List.mapi (fun i e ->
                match e.ValueKind with
                | JsonValueKind.String ->
                    match e.GetString() with
                    | null -> ""
                    | s -> s
                | kind -> HeaderJson.bad path (sprintf "'labels' must hold strings; label %d is %A." i kind))
        labels
        |> List.iteri (fun i l -> if String.IsNullOrWhiteSpace l then HeaderJson.bad path (sprintf "'labels' entry %d is empty." i))
        match labels |> List.countBy id |> List.tryFind (fun (_, n) -> n > 1) with
        | Some(l, n) -> HeaderJson.bad path (sprintf "'labels' names '%s' %d times; every class needs its own label." l n)
        | None -> ()
        let outputs = net.OutputShape |> Array.fold (fun acc d -> acc * int64 d) 1L
        if int64 labels.Length <> outputs then
            HeaderJson.bad path (sprintf "'labels' has %d labels, the network has %d outputs." labels.Length outputs)
        if labels.Length < 2 then
            HeaderJson.bad path (sprintf "'labels' has %d label; a classifier needs at least two classes." labels.Length)
        labels

    /// Checks the stored floats once the checksum has passed: every weight and normalisation value finite, every
    /// normalisation block named "std" positive, and "mean" and "std" of one length. Raises ModelFileException naming
    /// the block (and the first bad index).
    let private checkFloats (path: string) (blocks: (string * string * int[]) list) (floats: float32[]) =
        let mutable offset = 0
        let lengths = Collections.Generic.Dictionary<string, int>()
        for name, role, shape in blocks do
            let n = Array.fold (*) 1 shape
            for i in offset .. offset + n - 1 do
                let v = floats.[i]
                if not (Single.IsFinite v) then
                    Container.fail path (sprintf "%s block '%s' holds %s at index %d: every stored value must be finite." role name (if Single.IsNaN v then "NaN" else string v) (i - offset))
                if role = "normalization" && name = "std" && not (v > 0.0f) then
                    Container.fail path (sprintf "normalization block 'std' holds %g at index %d: a standard deviation must be positive." v (i - offset))
            if role = "normalization" then lengths.[name] <- n
            offset <- offset + n
        match lengths.TryGetValue "mean", lengths.TryGetValue "std" with
        | (true, m), (true, d) when m <> d ->
            Container.fail path (sprintf "normalization blocks 'mean' (%d values) and 'std' (%d values) differ in length." m d)
        | _ -> ()

    let private readHeader (path: string) (expectedFingerprint: ModelInfo -> string option) (version: int) (header: byte[]) (count: int) =
        use doc = HeaderJson.parse path header
        let root = doc.RootElement
        if HeaderJson.string path root "format" <> "hybrid-nn" then HeaderJson.bad path "format is not 'hybrid-nn'."
        let kind = HeaderJson.string path root "kind"
        if kind <> "model" then HeaderJson.bad path (sprintf "kind is '%s', expected 'model' (is this a checkpoint?)." kind)
        let fingerprint = HeaderJson.string path root "schemaFingerprint"
        let net = Architecture.read path root
        let blocks = readBlocks path root count
        let weights = blocks |> List.filter (fun (_, role, _) -> role = "weight")
        let trainable, fixedCount = Net.parameterCounts net
        let weightCount = weights |> List.sumBy (fun (_, _, s) -> s |> Array.fold (fun acc d -> acc * int64 d) 1L)
        if weightCount <> trainable + fixedCount then
            HeaderJson.bad path (sprintf "the architecture has %d weights, the file stores %d." (trainable + fixedCount) weightCount)
        let labels = readLabels path root net
        let settings =
            if version >= 2 then
                let o = HeaderJson.prop path root "settings"
                if o.ValueKind <> JsonValueKind.Object then HeaderJson.bad path "'settings' must be an object."
                Json(o.Clone())
            else
                match HeaderJson.tryProp root "trainingSettings" with
                | Some o when o.ValueKind = JsonValueKind.Object ->
                    Pairs [ for p in o.EnumerateObject() -> p.Name, (match p.Value.ValueKind with
                                                                    | JsonValueKind.String -> (match p.Value.GetString() with null -> "" | s -> s)
                                                                    | _ -> p.Value.GetRawText()) ]
                | _ -> Pairs []
        let info =
            { SchemaFingerprint = fingerprint
              Labels = labels
              Normalization = []
              Settings = settings
              LibraryVersion = HeaderJson.string path root "libraryVersion" }
        match expectedFingerprint info with
        | Some expected when expected <> fingerprint -> raise (SchemaMismatchException(path, expected, fingerprint))
        | _ -> ()
        net, info, blocks

    /// The architecture and info of a model file, fully validated (checksum, labels, finite values and positive
    /// standard deviations included) but without weights. Raises ModelFileException as load does.
    let inspect (path: string) : Net * ModelInfo =
        let (net, info, blocks), floats = Container.readVersioned path (readHeader path (fun _ -> None))
        checkFloats path blocks floats
        let mutable offset = 0
        let normalization =
            [ for name, role, shape in blocks do
                  let n = Array.fold (*) 1 shape
                  if role = "normalization" then yield name, floats[offset .. offset + n - 1]
                  offset <- offset + n ]
        net, { info with Normalization = normalization }

    /// Loads a model onto `engine`, reading and checksumming the file once: `expect` receives the header's info
    /// (without normalisation arrays) after the checksum and before any weight tensor is allocated, may raise (e.g.
    /// ModelFileException for a setting the caller cannot use), and returns the input schema fingerprint the model must
    /// have. Raises as `load` does.
    let loadChecked (engine: Engine) (expect: ModelInfo -> string) (path: string) : Model * ModelInfo =
        let (net, info, blocks), floats = Container.readVersioned path (readHeader path (expect >> Some))
        checkFloats path blocks floats
        let model = Model.create engine 0 net
        let tensors = model.Tensors
        let mutable offset = 0
        let mutable weightIndex = 0
        let normalization = Collections.Generic.List<string * float32[]>()
        for name, role, shape in blocks do
            let n = Array.fold (*) 1 shape
            if role = "weight" then
                if weightIndex >= tensors.Length then HeaderJson.bad path "more weight blocks than the architecture has tensors."
                let expectedName, t = tensors[weightIndex]
                if t.Shape <> shape || expectedName <> name then
                    HeaderJson.bad path (sprintf "weight block '%s' %s does not match the architecture's '%s' %s." name (Shapes.describe shape) expectedName (Shapes.describe t.Shape))
                t.CopyFrom(ReadOnlySpan<float32>(floats, offset, n), 0L)
                weightIndex <- weightIndex + 1
            elif role = "normalization" then
                normalization.Add((name, floats[offset .. offset + n - 1]))
            else
                HeaderJson.bad path (sprintf "unknown block role '%s'." role)
            offset <- offset + n
        if weightIndex <> tensors.Length then
            HeaderJson.bad path (sprintf "the file stores %d weight tensors, the architecture has %d." weightIndex tensors.Length)
        model, { info with Normalization = List.ofSeq normalization }

    /// Loads a model onto `engine`. Raises ModelFileException (naming the file and the field) for a wrong magic number
    /// or version, a bad checksum, a truncated file, absurd sizes or a malformed header, and, for a file whose checksum
    /// is right but whose content is not (a forged or buggy writer): labels that are not distinct non-empty strings,
    /// one per network output and at least two; a NaN or infinite weight or normalisation value; a standard deviation
    /// that is not positive; "mean" and "std" of different lengths. Raises SchemaMismatchException when the stored input
    /// schema fingerprint differs from `expectedFingerprint`. All before any weight tensor is allocated.
    let load (engine: Engine) (expectedFingerprint: string) (path: string) : Model * ModelInfo =
        loadChecked engine (fun _ -> expectedFingerprint) path
