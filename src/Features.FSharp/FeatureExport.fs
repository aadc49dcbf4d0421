/// A dataset's feature table in one call: every recording of a dataset (or one part of a split) extracted with a
/// feature schema or a configured transform on an engine, optionally through the feature cache (Shards), and written
/// as CSV, Parquet or .npy (Export). `hybrid features` is this function behind its options; the rows are those
/// `train` feeds the network (Extraction). In librosa's terms: `librosa.load(path, sr=sr)` per file, the feature
/// function over the batch, and a `pandas.DataFrame.to_csv` / `to_parquet` / `numpy.save` of the result.
module Hybrid.Features.FeatureExport

open System
open System.Diagnostics
open Hybrid.Dsp
open Hybrid.Features.Schemas

/// Which recordings to export.
[<RequireQualifiedAccess>]
type ExportData =
    /// A dataset folder or manifest, or `fsdd` / `speech-commands` (a set downloaded into the user cache and
    /// verified); None: FSDD from $HYBRID_FSDD or the user cache, downloaded when absent (Download.resolveData).
    /// Opened with Dataset.openFolder, its skipped files and warnings reported through OnSkipped and OnWarning.
    | Folder of path: string option
    /// A dataset already opened (Dataset.openFolder, Dataset.merge, ...): its Skipped and Warnings are reported and
    /// returned as a scan's.
    | Opened of Dataset

/// Which part of a split to export.
[<RequireQualifiedAccess>]
type ExportPart =
    /// The split's training part.
    | Train
    /// The split's validation part (empty for splits without one).
    | Validation
    /// The split's held-out test part.
    | Test
    /// Train, validation and test, in that order.
    | All

/// A configured transform (Transforms.Kind) over clips of one length.
type TransformRequest =
    { /// What the transform computes per clip (its row shape: Transforms.shape).
      Kind: Transforms.Kind
      /// Sampling rate in Hz every recording is resampled to; None: the rate of the dataset's first item.
      Sr: int option
      /// Clip length in samples (zero-padded or cut keeping the content centred); None: the longest recording at the
      /// chosen rate.
      Length: int option
      /// The transform's parameters at the chosen rate (Transforms.defaults gives librosa 0.10's).
      Settings: int -> Transforms.Settings }

/// What each row holds.
[<RequireQualifiedAccess>]
type ExportFeatures =
    /// A feature schema: a declaration (Schemas.ByName) or a run-time variant of one (Extraction.variant), its
    /// clips shaped by Extraction.fit.
    | Schema of FeatureSchemaInfo
    /// A transform: a one-member schema (Transforms.schema), or kymatio's Scattering1D for Transforms.Scattering.
    | Transform of TransformRequest

/// What a step run before the cache is read (CachePrefill) is given.
type CachePrefill =
    { /// The dataset root (full path); the items' shards are keyed by their paths relative to it.
      Root: string
      /// Every recording planned into the shards, in row order.
      Items: Item[]
      /// The cache folder (ExportRequest.Cache).
      CacheFolder: string
      /// The schema's run-time variant text (FeatureSchemaInfo.Variant; empty for a declaration and the scattering
      /// transform).
      Variant: string
      /// The extractor's fingerprint (the shards' folder under the cache).
      Fingerprint: string }

/// Everything `export` does, as a record: build one with `FeatureExport.request` and change what differs.
type ExportRequest =
    { /// The recordings: a folder, manifest or named set, or an opened dataset.
      Data: ExportData
      /// What each row holds: a schema or a transform.
      Features: ExportFeatures
      /// Output file: .csv, .parquet or .npy (the .npy gets a `.files.txt` sidecar listing the rows' keys in order).
      Out: string
      /// A single split to take one part of (official, held-out speakers, a predefined fold or a stratified random
      /// split); None exports every item.
      Split: SplitSpec option
      /// With Split: the part exported.
      Part: ExportPart
      /// With a stratified random split: its seed.
      Seed: int
      /// auto, managed, cuda, opencl or ilgpu-cpu (Engines.Create).
      Device: string
      /// Clips per extraction batch; None: 256, fewer for long clips so that a batch holds at most 2^24 samples.
      BatchSize: int option
      /// Feature cache folder: rows come from Parquet feature shards (Shards) keyed by the fingerprint and each
      /// recording's relative path, size and modification time; missing shards are computed and written first.
      Cache: string option
      /// Refuse the first unusable or truncated file (DatasetException) instead of skipping it or warning about it.
      Strict: bool
      /// Called for each file left out: the scan's, then those the Prefill step left out.
      OnSkipped: SkippedFile -> unit
      /// Called for each file used despite a problem the reader worked around (a truncated recording).
      OnWarning: SkippedFile -> unit
      /// Other messages: the engine's fallbacks, damaged cache shards rebuilt.
      Log: string -> unit
      /// Runs the extraction step (the one whose progress goes through Progress.create); an application wraps it to
      /// draw progress bars. Default: runs it as it is.
      Around: (unit -> unit) -> unit
      /// With Cache: a step run before the cache is read, e.g. extracting the missing shards elsewhere (the CLI's
      /// --cluster); returns the recordings it could not read, which are left out of the output as skipped files.
      Prefill: (CachePrefill -> SkippedFile[]) option }

/// What `export` did.
type ExportResult =
    { /// The exported recordings, in row order.
      Items: Item[]
      /// Files left out (the scan's, then the Prefill step's), each with its reason.
      Skipped: SkippedFile[]
      /// Files used despite a problem the reader worked around.
      Warnings: SkippedFile[]
      /// Shape of one row (e.g. [| 40 |] for MFCC means, [| 40; 65 |] for a log-mel image).
      Shape: int[]
      /// The extractor's name (the schema's, or the transform's).
      Extractor: string
      /// The schema's run-time variant text (empty for a declaration and the scattering transform).
      Variant: string
      /// SHA-256 fingerprint of the rows' layout and parameters.
      Fingerprint: string
      /// The engine that ran (Engine.Name).
      Device: string
      /// The files written (the table; for .npy also its sidecar).
      Files: string list
      /// With Cache: how many rows came from shards already in the cache.
      CacheHits: int option
      /// Wall-clock seconds of the whole export.
      Seconds: float }

/// A request with the CLI's defaults: FSDD, every item, the auto engine, automatic batches, no cache, lenient scan,
/// nothing reported.
let request (features: ExportFeatures) (out: string) : ExportRequest =
    { Data = ExportData.Folder None
      Features = features
      Out = out
      Split = None
      Part = ExportPart.All
      Seed = 0
      Device = "auto"
      BatchSize = None
      Cache = None
      Strict = false
      OnSkipped = ignore
      OnWarning = ignore
      Log = ignore
      Around = fun step -> step ()
      Prefill = None }

let private noAudio (root: string) = DatasetException(sprintf "%s holds no usable audio" root)

let private partOf (request: ExportRequest) (items: Item[]) =
    match request.Split with
    | None -> items
    | Some spec ->
        let folds = Split.apply request.Seed spec items
        if folds.Length <> 1 then
            raise (DatasetException(sprintf "split %s gives %d folds; export needs a single split (e.g. official, speaker:NAME, random:0.1)" (Split.format spec) folds.Length))
        match request.Part with
        | ExportPart.Train -> folds.[0].Train
        | ExportPart.Validation -> folds.[0].Validation
        | ExportPart.Test -> folds.[0].Test
        | ExportPart.All -> Array.concat [ folds.[0].Train; folds.[0].Validation; folds.[0].Test ]

/// The extractor, clip shaping, column names and variant text of the request on `engine`. Schemas and transforms
/// are both schemas here, extracted through the one path (Extraction); only the scattering transform runs as its
/// own extractor (Transforms.extractor).
let private extractorOf (engine: Engine) (features: ExportFeatures) (items: Item[]) =
    let ofSchema (schema: FeatureSchemaInfo) = Extraction.extractor engine schema, Extraction.fit schema, Array.ofSeq schema.Names, schema.Variant
    match features with
    | ExportFeatures.Schema schema -> ofSchema schema
    | ExportFeatures.Transform t ->
        let sr = t.Sr |> Option.defaultValue items.[0].SampleRate
        let longest () = items |> Array.map (fun i -> int (ceil (float i.Frames * float sr / float i.SampleRate))) |> Array.max
        let length = t.Length |> Option.defaultWith longest
        let settings = t.Settings sr
        match t.Kind with
        | Transforms.Scattering ->
            Transforms.extractor engine settings t.Kind length, Clip.fit length Clip.Center, Transforms.names settings t.Kind length, ""
        | kind -> ofSchema (Transforms.schema settings kind length)

/// Clips per batch: the request's, else at most 2^24 samples (64 MB of waveform; its spectrograms are several times
/// that): 256 short clips, fewer long ones (25 tracks of 30 s at 22,050 Hz).
let private batchSizeOf (request: ExportRequest) (extractor: Pipeline.Extractor) (items: Item[]) =
    match request.BatchSize with
    | Some n -> n
    | None ->
        let longest =
            if extractor.ClipSamples > 0 then float extractor.ClipSamples
            else items |> Array.fold (fun m i -> max m (i.Duration * float extractor.SampleRate)) 1.0
        int (Math.Clamp(float (1 <<< 24) / longest, 1.0, 256.0))

/// Rows from the feature shards under `dir` (Shards: keyed by the fingerprint and each recording's relative path,
/// size and modification time): missing shards (planned over every item in `planned`) are computed and written
/// first; a damaged or truncated shard is reported through `log` and built again, never read as numbers. Returns the
/// rows of `items` [items.Length * extractor.Length] and how many of them came from shards already there.
let private fromCache (dir: string) (extractor: Pipeline.Extractor) (fit: float32[] -> float32[]) (planned: Item[]) (items: Item[]) (log: string -> unit) progress =
    let sources = planned |> Array.map (fun i -> Shards.source i.Path i.Key i.Label)
    let plans = Shards.plan extractor.Fingerprint Extraction.WholeRecordings Extraction.shardSize sources
    let index = items |> Array.mapi (fun i item -> item.Key, i) |> dict
    let path = planned |> Array.map (fun i -> i.Key, i.Path) |> dict
    let clipsOf (s: Shards.Source) = [| fit (AudioFile.read { AudioFile.defaults with SampleRate = Some extractor.SampleRate } path.[s.Key]).Samples.[0] |]
    let found, _ = Shards.ensure dir plans extractor clipsOf 32 progress
    let values = Array.zeroCreate<float32> (items.Length * extractor.Length)
    for plan in plans do
        let shard = Shards.readOrRebuild dir plan extractor clipsOf log
        for r in 0 .. shard.Rows - 1 do
            Array.blit shard.Values (r * extractor.Length) values (index.[shard.Keys.[r]] * extractor.Length) extractor.Length
    values, found |> Array.sumBy (fun p -> p.Sources |> Array.filter (fun m -> index.ContainsKey m.Key) |> Array.length)

/// Extracts the requested features of every recording of the dataset (or of one part of a single split) and writes
/// them to request.Out as a table: one row per recording, keyed by its path relative to the dataset root (Item.Key),
/// with its label; CSV `filename,<columns...>,label`, Parquet with the same columns, or .npy float32
/// [recordings, *row shape] with a `.files.txt` sidecar (key TAB label per row). Each recording is decoded to mono,
/// resampled to the features' rate (librosa.load(path, sr=sr)) and shaped by Extraction.fit (or centred to the
/// transform's length). Without a cache, batches are streamed to the file as they are computed (memory bounded by the
/// batches in flight); with one, rows come from the feature shards. The output file appears complete or not at all.
/// Raises ArgumentException for an unknown device or a named GPU engine that cannot be used (Engines.Create) and an
/// unknown output extension; DatasetException when the data is missing or holds no usable audio, the split gives
/// several folds, or (Strict) a file is unusable; AudioFormatException for a recording that cannot be decoded;
/// Shards.ShardException for a cache shard that cannot be rebuilt; IOException when a file cannot be written.
let export (request: ExportRequest) : ExportResult =
    let started = Stopwatch.StartNew()
    let dataset =
        match request.Data with
        | ExportData.Folder path -> Dataset.openFolder request.Strict (Download.resolveData path)
        | ExportData.Opened dataset -> dataset
    dataset.Skipped |> Array.iter request.OnSkipped
    dataset.Warnings |> Array.iter request.OnWarning
    if dataset.Items.Length = 0 then raise (noAudio dataset.Root)
    let planned = partOf request dataset.Items
    use engine = Engines.Create(request.Device, request.Log)
    let extractor, fit, columns, variant = extractorOf engine request.Features planned
    let batchSize = batchSizeOf request extractor planned
    // A recording the Prefill step cannot read is skipped as the scan skips one: reported and left out of the
    // output; the shards are still planned over every scanned recording.
    let prefillSkipped =
        match request.Prefill, request.Cache with
        | Some prefill, Some dir ->
            let skipped =
                prefill { Root = dataset.Root; Items = planned; CacheFolder = dir; Variant = variant; Fingerprint = extractor.Fingerprint }
                |> Array.distinctBy (fun s -> s.Path)
            skipped |> Array.iter request.OnSkipped
            skipped
        | _ -> [||]
    let left = set [ for s in prefillSkipped -> s.Path ]
    let items = if left.IsEmpty then planned else planned |> Array.filter (fun i -> not (left.Contains i.Path))
    if items.Length = 0 then raise (noAudio dataset.Root)
    let labels = items |> Array.map (fun i -> i.Label)
    // Rows are keyed by the recording's path relative to the dataset root (Item.Key): file names alone repeat
    // across class folders (Speech Commands' SPEAKER_nohash_N.wav).
    let keys = items |> Array.map (fun i -> i.Key)
    use writer = Export.openWriter request.Out columns extractor.Shape items.Length
    let mutable hits = None
    request.Around(fun () ->
        let progress = Progress.create (sprintf "features %s" extractor.Name) items.Length
        match request.Cache with
        | None ->
            let load (i: int) = fit ((AudioFile.read { AudioFile.defaults with SampleRate = Some extractor.SampleRate } items.[i].Path).Samples.[0])
            for start, rows in Pipeline.extractBatches extractor load items.Length batchSize 2 progress do
                let n = rows.Length / extractor.Length
                writer.Append(keys.[start .. start + n - 1], labels.[start .. start + n - 1], rows)
        | Some dir ->
            let values, found = fromCache dir extractor fit planned items request.Log progress
            writer.Append(keys, labels, values)
            hits <- Some found)
    let written = writer.Complete()
    { Items = items
      Skipped = Array.append dataset.Skipped prefillSkipped
      Warnings = dataset.Warnings
      Shape = extractor.Shape
      Extractor = extractor.Name
      Variant = variant
      Fingerprint = extractor.Fingerprint
      Device = engine.Name
      Files = written
      CacheHits = hits
      Seconds = started.Elapsed.TotalSeconds }
