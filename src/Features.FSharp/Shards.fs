/// On-disk feature shards: the feature cache that `features --cache`, `train` and distributed workers share. Feature
/// rows are computed once into Parquet shards of up to N recordings each, under
/// `{cache folder}/{first 16 hex digits of the fingerprint}/shard-{variant key}-{index}-{id}.parquet`. A shard's id
/// hashes the extractor's fingerprint (a schema's, run-time variant included), the variant text (clip shaping, clip
/// plan, augmentation copy) and each member recording's path relative to the dataset root, size and modification
/// time, so the same shard planned twice (by two runs or two machines) has the same name and is written once, and a
/// changed recording gives its shard a new id (the old file is then reported stale). Recordings are never read to
/// look a shard up. Every shard is written atomically (a temporary name in the same folder, then a rename).
///
/// Format (version 2): one row group; columns `path` (string: the recording's path relative to the dataset root,
/// '/' separators), `size` (int64 bytes), `mtime` (int64: last write time, UTC ticks of 100 ns since 0001-01-01),
/// `label` (string), `window` (int32: the clip's window index within its recording, 0 without windows) and
/// `features` (binary: the row's `row_length` float32 values, little-endian); rows grouped by recording in the plan's
/// member order, windows ascending. File metadata: `hybrid.shard.version` ("1"), `hybrid.shard.fingerprint`,
/// `hybrid.shard.variant`, `hybrid.shard.id`, `hybrid.shard.index`, `hybrid.shard.extractor`,
/// `hybrid.shard.row_length`, `hybrid.shard.shape` (comma-separated) and `hybrid.shard.checksum` (SHA-256, lowercase hex,
/// of every row's key, window and feature bytes, verified on every read: a damaged shard is refused, never read as
/// numbers, and `readOrRebuild` builds it again). Version 1 shards (no checksum) are refused as another version.
module Hybrid.Features.Shards

open System
open System.Collections.Generic
open System.IO
open System.Security.Cryptography
open System.Text
open Parquet
open Parquet.Schema

/// Raised when a shard file or a shard folder is unusable: the message names the file and what was wrong with it.
type ShardException(path: string, problem: string, inner: exn | null) =
    inherit Exception(sprintf "%s: %s" path problem, inner)
    new(path, problem) = ShardException(path, problem, null)
    /// The shard file (or folder) concerned.
    member _.Path = path
    /// What was wrong with it.
    member _.Problem = problem

/// A recording as the shards know it: identified by its path relative to the dataset root, its size and its
/// modification time (the file is not read).
type Source =
    { /// Full path of the recording.
      Path: string
      /// Path relative to the dataset root with '/' separators (Dataset.Item.Key).
      Key: string
      Label: string
      /// Size in bytes.
      Size: int64
      /// Last write time, UTC ticks.
      Modified: int64 }

/// One planned shard: its members and the name it is stored under.
type ShardPlan =
    { /// Position of the shard in its plan (0-based).
      Index: int
      /// 16 hex digits of SHA-256 over the fingerprint, the variant and each member's key, size and modification time.
      Id: string
      Fingerprint: string
      Variant: string
      /// Member recordings, ordered by Key (ordinal).
      Sources: Source[] }

/// Rows to write into a shard: row r belongs to member `Sources.[r]` of the plan (an index into ShardPlan.Sources),
/// clip window `Windows.[r]`; Values is row-major [rows * row length].
type ShardRows =
    { Sources: int[]
      Windows: int[]
      Values: float32[] }

/// A shard read back (every column, validated).
type Shard =
    { /// The file it was read from.
      File: string
      Id: string
      Index: int
      Fingerprint: string
      Variant: string
      Extractor: string
      /// Values per row.
      RowLength: int
      /// Shape of one row (e.g. [| 40; 65 |]).
      Shape: int[]
      /// Per row: the recording's key (path relative to the dataset root).
      Keys: string[]
      Sizes: int64[]
      Modified: int64[]
      Labels: string[]
      Windows: int[]
      /// Row-major [rows * RowLength].
      Values: float32[] }
    /// Number of rows.
    member x.Rows = x.Keys.Length

/// What a shard folder holds for a plan.
type ShardStatus =
    { /// Planned shards whose file exists.
      Present: ShardPlan[]
      /// Planned shards without a file.
      Missing: ShardPlan[]
      /// Files of the same fingerprint and variant that the plan no longer names (a member recording changed, was
      /// added or removed): full paths.
      Stale: string[] }

/// The format version written into every shard.
[<Literal>]
let Version = "2"

let private hex (bytes: byte[]) = Convert.ToHexString(bytes).ToLowerInvariant()
let private hash (text: string) = hex (SHA256.HashData(Encoding.UTF8.GetBytes text))

/// SHA-256 (lowercase hex) of a shard's rows: for each row its key (UTF-8), a zero byte, its window (int32
/// little-endian) and its feature values (float32 little-endian), in row order.
let private checksumOf (keys: string[]) (windows: int[]) (rowLength: int) (values: float32[]) =
    use h = IncrementalHash.CreateHash HashAlgorithmName.SHA256
    let window = Array.zeroCreate<byte> 4
    for r in 0 .. keys.Length - 1 do
        h.AppendData(Encoding.UTF8.GetBytes keys.[r])
        h.AppendData([| 0uy |])
        Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(Span window, windows.[r])
        h.AppendData window
        let row = ReadOnlySpan<float32>(values, r * rowLength, rowLength)
        if BitConverter.IsLittleEndian then h.AppendData(Runtime.InteropServices.MemoryMarshal.AsBytes row)
        else
            let bytes = Array.zeroCreate<byte> (rowLength * 4)
            for j in 0 .. rowLength - 1 do Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(Span(bytes, j * 4, 4), row.[j])
            h.AppendData bytes
    hex (h.GetHashAndReset())

/// The source of the recording at `path`, known in its dataset as `key` (its path relative to the dataset root, e.g.
/// Dataset.Item.Key), with its label: the file's size and modification time are read from the file system. Raises
/// ShardException naming the file when it does not exist.
let source (path: string) (key: string) (label: string) : Source =
    let info = FileInfo path
    if not info.Exists then raise (ShardException(path, "no such recording"))
    { Path = info.FullName; Key = key.Replace('\\', '/'); Label = label; Size = info.Length; Modified = info.LastWriteTimeUtc.Ticks }

/// 8 hex digits naming a variant text in shard file names.
let variantKey (variant: string) = (hash ("variant\n" + variant)).Substring(0, 8)

/// The shard id of members under a fingerprint and variant (see ShardPlan.Id).
let shardId (fingerprint: string) (variant: string) (sources: Source[]) =
    let text = StringBuilder()
    text.Append("hybrid-shard/").Append(Version).Append('\n').Append(fingerprint).Append('\n').Append(variant).Append('\n') |> ignore
    for s in sources do text.Append(s.Key).Append('\t').Append(s.Size).Append('\t').Append(s.Modified).Append('\n') |> ignore
    (hash (text.ToString())).Substring(0, 16)

/// Plans the shards of `sources` for an extractor `fingerprint` and a `variant` text: sources ordered by Key
/// (ordinal), `shardSize` per shard (the last may hold fewer). The same sources planned anywhere give the same shards.
/// Raises ArgumentException when shardSize < 1 or two sources share a key.
let plan (fingerprint: string) (variant: string) (shardSize: int) (sources: Source[]) : ShardPlan[] =
    if shardSize < 1 then invalidArg (nameof shardSize) (sprintf "shard size must be at least 1 recording, was %d" shardSize)
    let sorted = sources |> Array.sortWith (fun a b -> String.CompareOrdinal(a.Key, b.Key))
    for i in 1 .. sorted.Length - 1 do
        if sorted.[i].Key = sorted.[i - 1].Key then invalidArg (nameof sources) (sprintf "recording '%s' is listed twice" sorted.[i].Key)
    sorted
    |> Array.chunkBySize shardSize
    |> Array.mapi (fun i members ->
        { Index = i; Id = shardId fingerprint variant members; Fingerprint = fingerprint; Variant = variant; Sources = members })

/// The folder holding the shards of a fingerprint under a cache folder.
let folderOf (cacheFolder: string) (fingerprint: string) =
    Path.Combine(cacheFolder, fingerprint.Substring(0, min 16 fingerprint.Length))

/// The file a planned shard is stored in under a cache folder.
let pathOf (cacheFolder: string) (shard: ShardPlan) =
    Path.Combine(folderOf cacheFolder shard.Fingerprint, sprintf "shard-%s-%05d-%s.parquet" (variantKey shard.Variant) shard.Index shard.Id)

/// The columns of one shard file. Fresh field objects for every writer: Parquet.Net's fields carry state set when a
/// schema is built, so writers running at the same time (several shard workers in one process) must not share them.
type private ShardFields =
    { Path: DataField<string>; Size: DataField<int64>; Mtime: DataField<int64>; Label: DataField<string>
      Window: DataField<int>; Features: DataField<byte[]> }
    member f.Schema = ParquetSchema([| f.Path :> Field; f.Size; f.Mtime; f.Label; f.Window; f.Features |])

let private shardFields () =
    { Path = DataField<string>("path"); Size = DataField<int64>("size"); Mtime = DataField<int64>("mtime")
      Label = DataField<string>("label"); Window = DataField<int>("window"); Features = DataField<byte[]>("features") }

let private meta name = "hybrid.shard." + name

/// Writes `rows` as the shard `shard` of an extractor (name, row shape) under `cacheFolder`, atomically: the file is
/// written under a temporary name in the shard folder and renamed into place, so a reader sees the whole shard or
/// none, and a failure leaves no file behind. Writing a shard that exists replaces it with the same content. Returns
/// the shard's path. `beforeRename` runs on the complete temporary file (tests use it to fail a write). Raises
/// ArgumentException when the rows do not match the plan or the shape.
let internal writeWith (beforeRename: string -> unit) (cacheFolder: string) (shard: ShardPlan) (extractor: string) (shape: int[]) (rows: ShardRows) =
    let rowLength = shape |> Array.fold (*) 1
    let n = rows.Sources.Length
    if rowLength < 1 then invalidArg (nameof shape) (sprintf "shard %d: row shape [%s] holds no values" shard.Index (String.Join(", ", shape)))
    if rows.Windows.Length <> n || rows.Values.Length <> n * rowLength then
        invalidArg (nameof rows) (sprintf "shard %d: %d sources, %d windows and %d values do not make rows of %d values" shard.Index n rows.Windows.Length rows.Values.Length rowLength)
    for r in 0 .. n - 1 do
        if rows.Sources.[r] < 0 || rows.Sources.[r] >= shard.Sources.Length then
            invalidArg (nameof rows) (sprintf "shard %d: row %d names member %d of %d" shard.Index r rows.Sources.[r] shard.Sources.Length)
    let path = pathOf cacheFolder shard
    let folder = nonNull (Path.GetDirectoryName path)
    Directory.CreateDirectory folder |> ignore
    let temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp"
    try
        task {
            use stream = File.Create temp
            let fields = shardFields ()
            use! writer = ParquetWriter.CreateAsync(fields.Schema, stream)
            let keys = Array.init n (fun r -> shard.Sources.[rows.Sources.[r]].Key)
            writer.CustomMetadata <-
                readOnlyDict [ meta "version", Version; meta "fingerprint", shard.Fingerprint; meta "variant", shard.Variant;
                       meta "id", shard.Id; meta "index", string shard.Index; meta "extractor", extractor;
                       meta "row_length", string rowLength; meta "shape", String.Join(",", shape);
                       meta "checksum", checksumOf keys rows.Windows rowLength rows.Values ]
            use group = writer.CreateRowGroup()
            let member' (r: int) = shard.Sources.[rows.Sources.[r]]
            do! group.WriteAsync(fields.Path, Array.init n (fun r -> (member' r).Key), Nullable())
            do! group.WriteAsync<int64>(fields.Size, ReadOnlyMemory(Array.init n (fun r -> (member' r).Size)))
            do! group.WriteAsync<int64>(fields.Mtime, ReadOnlyMemory(Array.init n (fun r -> (member' r).Modified)))
            do! group.WriteAsync(fields.Label, Array.init n (fun r -> (member' r).Label), Nullable())
            do! group.WriteAsync<int>(fields.Window, ReadOnlyMemory rows.Windows)
            let blobs =
                Array.init n (fun r ->
                    let bytes = Array.zeroCreate<byte> (rowLength * 4)
                    let values = ReadOnlySpan<float32>(rows.Values, r * rowLength, rowLength)
                    if BitConverter.IsLittleEndian then Runtime.InteropServices.MemoryMarshal.AsBytes(values).CopyTo(Span bytes)
                    else for j in 0 .. rowLength - 1 do Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(Span(bytes, j * 4, 4), values.[j])
                    bytes)
            do! group.WriteAsync(fields.Features, blobs, Nullable())
        }
        |> fun t -> t.GetAwaiter().GetResult()
        beforeRename temp
        File.Move(temp, path, true)
        path
    finally
        if File.Exists temp then File.Delete temp

/// Writes a shard atomically (see writeWith) and returns its path.
let write (cacheFolder: string) (shard: ShardPlan) (extractor: string) (shape: int[]) (rows: ShardRows) =
    writeWith ignore cacheFolder shard extractor shape rows

/// The feature column of a row group (blobs of rowLength little-endian float32 values each, lengths checked by the
/// caller) as one array: on a little-endian machine each blob's bytes are copied as they are (bit for bit, NaN payloads
/// included); elsewhere each value is read with its bytes swapped.
let private featureValues (rowLength: int) (blobs: byte[][]) : float32[] =
    let values = Array.zeroCreate<float32> (blobs.Length * rowLength)
    if BitConverter.IsLittleEndian then
        for r in 0 .. blobs.Length - 1 do
            Buffer.BlockCopy(blobs.[r], 0, values, r * rowLength * 4, rowLength * 4)
    else
        for r in 0 .. blobs.Length - 1 do
            for j in 0 .. rowLength - 1 do
                values.[r * rowLength + j] <- Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(ReadOnlySpan(blobs.[r], j * 4, 4))
    values

/// Reads a shard file back, bit for bit, checking its format: the version, the metadata, the columns, every feature
/// value's length and the checksum of the rows. Raises ShardException naming the file for anything else (not Parquet,
/// truncated, another format version, a missing column, a feature row of the wrong length, rows that do not match
/// their checksum).
let read (path: string) : Shard =
    let bad problem = raise (ShardException(path, problem))
    if not (File.Exists path) then bad "no such shard file"
    let body () =
        task {
            use! reader = ParquetReader.CreateAsync(path)
            let metadata = reader.CustomMetadata
            let find name =
                match metadata.TryGetValue(meta name) with
                | true, v -> v
                | _ -> bad (sprintf "not a feature shard (metadata '%s' is missing)" (meta name))
            let version = find "version"
            if version <> Version then bad (sprintf "shard format version %s, this version reads %s" version Version)
            let integer name =
                match Int32.TryParse(find name, Globalization.NumberStyles.Integer, Globalization.CultureInfo.InvariantCulture) with
                | true, v when v >= 0 -> v
                | _ -> bad (sprintf "metadata '%s' = '%s' is not a count" (meta name) (find name))
            let rowLength = integer "row_length"
            let shape =
                find "shape"
                |> fun s -> s.Split(',')
                |> Array.map (fun d -> match Int32.TryParse d with | true, v when v > 0 -> v | _ -> bad (sprintf "metadata '%s' = '%s' is not a shape" (meta "shape") (find "shape")))
            if Array.fold (*) 1 shape <> rowLength then bad (sprintf "shape [%s] does not hold %d values" (find "shape") rowLength)
            let fields = reader.Schema.GetDataFields()
            let field (name: string) =
                match fields |> Array.tryFind (fun f -> f.Name = name) with
                | Some f -> f
                | None -> bad (sprintf "column '%s' is missing" name)
            let keys = List<string>()
            let sizes = List<int64>()
            let mtimes = List<int64>()
            let labels = List<string>()
            let windows = List<int>()
            let values = List<float32[]>()
            for g in 0 .. reader.RowGroupCount - 1 do
                use group = reader.OpenRowGroupReader g
                let n = int group.RowCount
                let k = Array.zeroCreate<string> n
                let! _ = group.ReadAsync(field "path", Memory k)
                let s = Array.zeroCreate<int64> n
                let! _ = group.ReadAsync<int64>(field "size", Memory s)
                let m = Array.zeroCreate<int64> n
                let! _ = group.ReadAsync<int64>(field "mtime", Memory m)
                let l = Array.zeroCreate<string> n
                let! _ = group.ReadAsync(field "label", Memory l)
                let w = Array.zeroCreate<int> n
                let! _ = group.ReadAsync<int>(field "window", Memory w)
                let f = Array.zeroCreate<byte[]> n
                let! _ = group.ReadAsync(field "features", Memory f)
                for r in 0 .. n - 1 do
                    let bytes = f.[r]
                    if isNull (box bytes) || bytes.Length <> rowLength * 4 then
                        bad (sprintf "row %d holds %d feature bytes, expected %d (%d float32 values)" (keys.Count + r) (if isNull (box bytes) then 0 else bytes.Length) (rowLength * 4) rowLength)
                values.Add(featureValues rowLength f)
                keys.AddRange k
                sizes.AddRange s
                mtimes.AddRange m
                labels.AddRange l
                windows.AddRange w
            let keys, windows = keys.ToArray(), windows.ToArray()
            let values = if values.Count = 1 then values.[0] else Array.concat values
            let stored = find "checksum"
            let actual = checksumOf keys windows rowLength values
            if actual <> stored then bad (sprintf "checksum mismatch: the rows hash to %s, the shard records %s (a damaged shard)" actual stored)
            return
                { File = path; Id = find "id"; Index = integer "index"; Fingerprint = find "fingerprint"; Variant = find "variant"
                  Extractor = find "extractor"; RowLength = rowLength; Shape = shape
                  Keys = keys; Sizes = sizes.ToArray(); Modified = mtimes.ToArray(); Labels = labels.ToArray()
                  Windows = windows; Values = values }
        }
        |> fun t -> t.GetAwaiter().GetResult()
    try body ()
    with
    | :? ShardException -> reraise ()
    | e -> raise (ShardException(path, sprintf "not a readable feature shard (%s)" e.Message, e))

/// Reads the shard a plan names, checking that it is that shard (fingerprint, variant, id, and rows only of its
/// members with their sizes and modification times). Raises ShardException naming the file otherwise.
let readPlanned (cacheFolder: string) (shard: ShardPlan) : Shard =
    let path = pathOf cacheFolder shard
    let s = read path
    let bad problem = raise (ShardException(path, problem))
    if s.Fingerprint <> shard.Fingerprint then bad (sprintf "holds fingerprint %s, the plan needs %s" s.Fingerprint shard.Fingerprint)
    if s.Variant <> shard.Variant then bad (sprintf "holds variant '%s', the plan needs '%s'" s.Variant shard.Variant)
    if s.Id <> shard.Id then bad (sprintf "holds shard id %s, the plan needs %s" s.Id shard.Id)
    let members = shard.Sources |> Array.map (fun m -> m.Key, m) |> dict
    for r in 0 .. s.Rows - 1 do
        match members.TryGetValue s.Keys.[r] with
        | true, m when m.Size = s.Sizes.[r] && m.Modified = s.Modified.[r] -> ()
        | true, _ -> bad (sprintf "row %d: recording '%s' has another size or modification time than the plan's" r s.Keys.[r])
        | _ -> bad (sprintf "row %d: recording '%s' is not a member of the planned shard" r s.Keys.[r])
    s

/// Which planned shards exist under `cacheFolder`, which are missing, and which files are stale: shard files of the
/// same fingerprint, variant and index as a planned shard but another id (a member recording changed, or recordings
/// were added or removed). Only file names are looked at; nothing is read.
let check (cacheFolder: string) (plans: ShardPlan[]) : ShardStatus =
    let present, missing = plans |> Array.partition (fun p -> File.Exists(pathOf cacheFolder p))
    let stale =
        [| for p in plans do
               let folder = folderOf cacheFolder p.Fingerprint
               if Directory.Exists folder then
                   for file in Directory.GetFiles(folder, sprintf "shard-%s-%05d-*.parquet" (variantKey p.Variant) p.Index) do
                       if file <> pathOf cacheFolder p then yield file |]
        |> Array.distinct
        |> Array.sort
    { Present = present; Missing = missing; Stale = stale }

/// Deletes the stale files `check` reports for `plans` and returns their paths. Only for a cache folder that holds
/// one dataset's shards: two datasets planned with the same fingerprint and variant name their shards alike and would
/// see each other's shards as stale.
let prune (cacheFolder: string) (plans: ShardPlan[]) : string[] =
    let stale = (check cacheFolder plans).Stale
    for file in stale do File.Delete file
    stale

/// Every shard file under a shard folder (`folderOf`), read and validated, ordered by file name. Raises
/// ShardException naming the first unusable file. Temporary files of writes in progress are not listed.
let list (shardFolder: string) : Shard[] =
    if not (Directory.Exists shardFolder) then [||]
    else Directory.GetFiles(shardFolder, "shard-*.parquet") |> Array.sort |> Array.map read

/// Computes and writes one shard: each member's clips from `tryClips` (Ok: its windows, shaped as the extractor
/// needs them, in window order; Error: why the member cannot be used, and it is left out of the shard), members
/// loaded `loadGroup` at a time in parallel and extracted together, so at most that many recordings' clips are in
/// memory. `progress` receives the members done so far. Returns the shard's path and the members left out (source,
/// reason).
let buildWith (cacheFolder: string) (shard: ShardPlan) (extractor: Pipeline.Extractor) (tryClips: Source -> Result<float32[][], string>) (loadGroup: int) (progress: int -> unit) =
    let sources = List<int>()
    let windows = List<int>()
    let values = List<float32[]>()
    let left = List<Source * string>()
    let mutable done' = 0
    for group in Array.init shard.Sources.Length id |> Array.chunkBySize (max 1 loadGroup) do
        let loaded = group |> Hybrid.Features.Threads.map (fun m -> tryClips shard.Sources.[m])
        let usable = Array.zip group loaded |> Array.choose (fun (m, r) -> match r with Ok clips -> Some(m, clips) | Error _ -> None)
        for m, r in Array.zip group loaded do
            match r with
            | Error reason -> left.Add((shard.Sources.[m], reason))
            | Ok _ -> ()
        let flat = usable |> Array.collect snd
        let rows = if flat.Length = 0 then [||] else Pipeline.extractAll extractor (fun i -> flat.[i]) flat.Length 256 2 Progress.silent
        let mutable row = 0
        for m, clips in usable do
            for w in 0 .. clips.Length - 1 do
                sources.Add m
                windows.Add w
                values.Add(Array.sub rows (row * extractor.Length) extractor.Length)
                row <- row + 1
        done' <- done' + group.Length
        progress done'
    let path =
        write cacheFolder shard extractor.Name extractor.Shape
            { Sources = sources.ToArray(); Windows = windows.ToArray(); Values = Array.concat values }
    path, List.ofSeq left

/// Reads the shard a plan names (readPlanned); a shard that cannot be read (damaged, truncated, of another version,
/// not the planned one) is reported to `warn` with the reason, deleted and built again from its members' clips
/// (`clipsOf`, as `ensure` takes them), then read. The cache is a cache: a bad shard costs its extraction, never a
/// wrong row. Raises ShardException only when the rebuilt shard cannot be read either.
let readOrRebuild (cacheFolder: string) (shard: ShardPlan) (extractor: Pipeline.Extractor) (clipsOf: Source -> float32[][]) (warn: string -> unit) : Shard =
    try readPlanned cacheFolder shard
    with :? ShardException as e ->
        warn (sprintf "%s; rebuilding the shard from its %d recordings" e.Message shard.Sources.Length)
        let path = pathOf cacheFolder shard
        if File.Exists path then File.Delete path
        buildWith cacheFolder shard extractor (clipsOf >> Ok) 32 ignore |> ignore
        readPlanned cacheFolder shard

/// Computes and writes every missing shard of `plans` under `cacheFolder` (stale files are left alone: see prune),
/// and returns (the shards found, the shards written). For each missing shard, `clipsOf source` gives a member
/// recording's clips (its windows, shaped as the extractor needs them, in window order); members are loaded
/// `loadGroup` at a time in parallel and extracted together (buildWith), so at most that many recordings' clips are
/// in memory per shard being built. `progress` counts recordings of written shards.
let ensure (cacheFolder: string) (plans: ShardPlan[]) (extractor: Pipeline.Extractor) (clipsOf: Source -> float32[][]) (loadGroup: int) (progress: Progress.Reporter) =
    let status = check cacheFolder plans
    let mutable before = 0
    for shard in status.Missing do
        buildWith cacheFolder shard extractor (clipsOf >> Ok) loadGroup (fun n -> progress.Report(before + n)) |> ignore
        before <- before + shard.Sources.Length
    progress.Finish()
    status.Present, status.Missing
