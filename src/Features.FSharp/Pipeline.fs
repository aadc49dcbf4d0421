/// Batched, streaming feature extraction: clips are read and shaped in parallel a bounded number of batches
/// ahead while the current batch is computed, so memory stays bounded whatever the dataset size; results can
/// be cached on disk keyed by the extractor's fingerprint and each file's content.
module Hybrid.Features.Pipeline

open System
open System.Collections.Concurrent
open System.IO
open System.Security.Cryptography
open System.Threading.Tasks

/// A batched feature extractor: a clip in, a fixed-length feature row out.
type Extractor =
    { /// Name used in messages and cache folders.
      Name: string
      /// Stable hash over the layout and every DSP parameter (a schema's Fingerprint).
      Fingerprint: string
      /// Values per clip (the product of Shape).
      Length: int
      /// Shape of one clip's features, e.g. [| 40; 65 |] for a log-mel image.
      Shape: int[]
      /// Sampling rate the clips must have, in Hz.
      SampleRate: int
      /// Samples per clip after shaping; 0: any length (statistics over the whole clip), each batch then being
      /// computed in runs of clips of equal length.
      ClipSamples: int
      /// Computes a batch of clips of equal length: clips [batch * samples] -> features [batch * Length].
      ExtractBatch: float32[] -> int -> float32[] }

/// Rows [clips.Length * Length] of a batch of loaded clips: one ExtractBatch call when the extractor has a fixed
/// clip length, else one call per run of equal lengths (rows stay in clip order).
let private extractLoaded (extractor: Extractor) (clips: float32[][]) =
    let n = clips.Length
    if extractor.ClipSamples > 0 then extractor.ExtractBatch (Array.concat clips) n
    else
        let result = Array.zeroCreate<float32> (n * extractor.Length)
        for length, indexes in Array.init n id |> Array.groupBy (fun i -> clips.[i].Length) do
            let rows = extractor.ExtractBatch (Array.concat [ for i in indexes -> clips.[i] ]) indexes.Length
            indexes |> Array.iteri (fun j i -> Array.blit rows (j * extractor.Length) result (i * extractor.Length) extractor.Length)
            ignore length
        result

/// Streams extraction for `count` items: yields (first item index, rows [n * Length]) batch by batch in item
/// order. `load i` returns item i's samples at the extractor's rate and length (already shaped; any non-empty
/// length when ClipSamples is 0); loading runs in parallel, at most `readAhead` batches ahead of extraction, so
/// memory stays bounded by the batches in flight whatever the dataset size. Nothing runs until the sequence is
/// iterated. Raises InvalidOperationException naming the item whose clip has the wrong length.
let extractBatches (extractor: Extractor) (load: int -> float32[]) (count: int) (batchSize: int) (readAhead: int) (progress: Progress.Reporter) =
    if batchSize < 1 then invalidArg (nameof batchSize) (sprintf "batch size must be at least 1, was %d" batchSize)
    seq {
        let batches = (count + batchSize - 1) / batchSize
        use queue = new BlockingCollection<int * float32[][]>(max 1 readAhead)
        use cancel = new Threading.CancellationTokenSource()
        let producer =
            Task.Run(fun () ->
                try
                    for b in 0 .. batches - 1 do
                        if not cancel.IsCancellationRequested then
                            let start = b * batchSize
                            let n = min batchSize (count - start)
                            let clips = Array.zeroCreate<float32[]> n
                            Parallel.For(0, n, fun i ->
                                let samples = load (start + i)
                                if extractor.ClipSamples > 0 && samples.Length <> extractor.ClipSamples then
                                    invalidOp (sprintf "item %d has %d samples, the extractor '%s' needs %d" (start + i) samples.Length extractor.Name extractor.ClipSamples)
                                if samples.Length = 0 then
                                    invalidOp (sprintf "item %d has no samples, the extractor '%s' needs at least one" (start + i) extractor.Name)
                                clips.[i] <- samples)
                            |> ignore
                            queue.Add((start, clips))
                finally
                    queue.CompleteAdding())
        try
            let mutable completed = 0
            for (start, clips) in queue.GetConsumingEnumerable() do
                let features = extractLoaded extractor clips
                completed <- completed + clips.Length
                progress.Report completed
                yield start, features
            producer.Wait()
            progress.Finish()
        finally
            // A consumer that stops early (or fails) releases the producer, which may be blocked on a full queue.
            cancel.Cancel()
            while queue.TryTake() |> fst do ()
            try producer.Wait() with _ -> ()
    }

/// Extracts features for `count` items (see extractBatches) into one row-major [count, Length] array.
let extractAll (extractor: Extractor) (load: int -> float32[]) (count: int) (batchSize: int) (readAhead: int) (progress: Progress.Reporter) =
    let result = Array.zeroCreate<float32> (count * extractor.Length)
    for start, rows in extractBatches extractor load count batchSize readAhead progress do
        Array.blit rows 0 result (start * extractor.Length) rows.Length
    result

/// An on-disk cache of feature rows: one file per (extractor fingerprint, recording) pair, a recording being known by
/// its full path, size and modification time, so a second run over the same recordings skips extraction (without
/// reading them) and a changed recording or parameter is recomputed. `features --cache` and `train` share it.
type FeatureCache(folder: string) =
    let hex (bytes: byte[]) = Convert.ToHexString(bytes).ToLowerInvariant()

    /// The cache's root folder.
    member _.Folder = folder

    /// The key of one recording under one extractor: SHA-256 over the fingerprint, the variant (e.g. the clip
    /// shaping), the file's full path, its size in bytes and its last write time (UTC ticks). Raises
    /// FileNotFoundException for a missing file.
    member _.Key(fingerprint: string, variant: string, path: string) =
        let info = FileInfo path
        if not info.Exists then raise (FileNotFoundException(sprintf "%s: no such recording" path, path))
        let text = String.Join("\n", fingerprint, variant, info.FullName, string info.Length, string info.LastWriteTimeUtc.Ticks)
        hex (SHA256.HashData(Text.Encoding.UTF8.GetBytes text))

    member private _.PathOf(fingerprint: string, key: string) =
        Path.Combine(folder, fingerprint.Substring(0, min 16 fingerprint.Length), key + ".f32")

    /// The cached row for a key, if present and of the expected length.
    member this.TryGet(fingerprint: string, key: string, length: int) : float32[] option =
        let path = this.PathOf(fingerprint, key)
        if File.Exists path && FileInfo(path).Length = int64 length * 4L then
            let bytes = File.ReadAllBytes path
            let row = Array.zeroCreate<float32> length
            Buffer.BlockCopy(bytes, 0, row, 0, bytes.Length)
            Some row
        else None

    /// Stores a row atomically (temporary file, then rename).
    member this.Put(fingerprint: string, key: string, row: float32[]) =
        let path = this.PathOf(fingerprint, key)
        match Path.GetDirectoryName path with
        | null -> ()
        | dir -> Directory.CreateDirectory dir |> ignore
        let bytes = Array.zeroCreate<byte> (row.Length * 4)
        Buffer.BlockCopy(row, 0, bytes, 0, bytes.Length)
        let temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp"
        File.WriteAllBytes(temp, bytes)
        File.Move(temp, path, true)

/// Extracts features for files, taking rows from the cache where present and extracting (then caching)
/// the rest. `load path` returns a file's shaped samples. Returns [paths.Length, Length] in path order and
/// the number of rows served from the cache.
let extractCached (cache: FeatureCache) (variant: string) (extractor: Extractor) (load: string -> float32[]) (paths: string[]) (batchSize: int) (progress: Progress.Reporter) =
    let keys = Array.Parallel.map (fun p -> cache.Key(extractor.Fingerprint, variant, p)) paths
    let cached = keys |> Array.map (fun k -> cache.TryGet(extractor.Fingerprint, k, extractor.Length))
    let missing = [| for i in 0 .. paths.Length - 1 do if cached.[i].IsNone then i |]
    let fresh = extractAll extractor (fun j -> load paths.[missing.[j]]) missing.Length batchSize 2 progress
    let result = Array.zeroCreate<float32> (paths.Length * extractor.Length)
    for i in 0 .. paths.Length - 1 do
        match cached.[i] with
        | Some row -> Array.blit row 0 result (i * extractor.Length) extractor.Length
        | None -> ()
    missing
    |> Array.iteri (fun j i ->
        let row = Array.sub fresh (j * extractor.Length) extractor.Length
        cache.Put(extractor.Fingerprint, keys.[i], row)
        Array.blit row 0 result (i * extractor.Length) extractor.Length)
    result, paths.Length - missing.Length
