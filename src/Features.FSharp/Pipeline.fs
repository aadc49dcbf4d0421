/// Batched, streaming feature extraction: clips are read and shaped in parallel a bounded number of batches
/// ahead while the current batch is computed, so memory stays bounded whatever the dataset size; results can
/// be cached on disk in feature shards (Shards).
module Hybrid.Features.Pipeline

open System
open System.Collections.Concurrent
open System.IO
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
      /// Computes a batch of clips of equal length: clips [batch * samples] -> features [batch * Length]. The clips
      /// array is the caller's only for the call (the pipeline refills it for the next batch): keep nothing of it.
      ExtractBatch: float32[] -> int -> float32[] }

/// The clips laid end to end in `buffer`'s array, reused while the total length stays the same (batch after batch of
/// equal clips), else replaced by a new one.
let private concatInto (buffer: float32[] ref) (clips: float32[] seq) =
    let clips = Array.ofSeq clips
    let total = clips |> Array.sumBy (fun c -> c.Length)
    if buffer.Value.Length <> total then buffer.Value <- Array.zeroCreate total
    let mutable at = 0
    for c in clips do
        Array.blit c 0 buffer.Value at c.Length
        at <- at + c.Length
    buffer.Value

/// Rows [clips.Length * Length] of a batch of loaded clips: one ExtractBatch call when the extractor has a fixed
/// clip length, else one call per run of equal lengths (rows stay in clip order). The batch is laid out in
/// `buffer`'s array (concatInto).
let private extractLoaded (extractor: Extractor) (buffer: float32[] ref) (clips: float32[][]) =
    let n = clips.Length
    if extractor.ClipSamples > 0 then extractor.ExtractBatch (concatInto buffer clips) n
    else
        let result = Array.zeroCreate<float32> (n * extractor.Length)
        for length, indexes in Array.init n id |> Array.groupBy (fun i -> clips.[i].Length) do
            let rows = extractor.ExtractBatch (concatInto buffer [ for i in indexes -> clips.[i] ]) indexes.Length
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
                            Threads.forEach n (fun i ->
                                let samples = load (start + i)
                                if extractor.ClipSamples > 0 && samples.Length <> extractor.ClipSamples then
                                    invalidOp (sprintf "item %d has %d samples, the extractor '%s' needs %d" (start + i) samples.Length extractor.Name extractor.ClipSamples)
                                if samples.Length = 0 then
                                    invalidOp (sprintf "item %d has no samples, the extractor '%s' needs at least one" (start + i) extractor.Name)
                                clips.[i] <- samples)
                            queue.Add((start, clips))
                finally
                    queue.CompleteAdding())
        try
            let mutable completed = 0
            // One batch array, refilled batch after batch (a 30 s track is 2.6 MB: fresh arrays of a batch of them
            // cost more in page faults than the extraction's first pass over them).
            let buffer = ref Array.empty<float32>
            for (start, clips) in queue.GetConsumingEnumerable() do
                let features = extractLoaded extractor buffer clips
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
