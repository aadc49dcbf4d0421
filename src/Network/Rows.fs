namespace Hybrid.Classifier

open System
open System.IO
open Microsoft.Win32.SafeHandles

/// Samples read on demand for training and evaluation: `Count` rows of `RowLength` floats (one sample of the
/// network's input shape each, row-major) with one class index per row in `Labels`. `Training.fitRows` and
/// `Model.evaluateRows` read a batch at a time, so a source need never hold more than the batch asked for.
[<AbstractClass>]
type RowSource() =
    /// Number of rows.
    abstract Count: int
    /// Floats per row.
    abstract RowLength: int
    /// One class index per row (kept in memory: 4 bytes a row).
    abstract Labels: int[]
    /// Copies rows `order.[start .. start + count - 1]` into `dest.[0 .. count * RowLength - 1]`, in that order.
    abstract Read: order: int[] * start: int * count: int * dest: float32[] -> unit
    /// Called by `Training.fitRows` before each epoch's first Read with the 0-based epoch (after a resume, the epoch
    /// resumed at), so a source may draw per-epoch randomness (TransformedRows); nothing by default.
    abstract BeginEpoch: epoch: int -> unit
    default _.BeginEpoch _ = ()
    /// Releases what the source holds open (a file); nothing by default.
    abstract Dispose: unit -> unit
    default _.Dispose() = ()
    interface IDisposable with
        member this.Dispose() = this.Dispose()

/// Rows held in memory (Examples): `Training.fit` trains on these.
[<Sealed>]
type ExampleRows(examples: Examples, rowLength: int) =
    inherit RowSource()
    do
        if rowLength < 1 || examples.Inputs.Length % rowLength <> 0 then
            invalidArg "examples" (sprintf "Inputs have %d floats, not a multiple of the sample size %d." examples.Inputs.Length rowLength)
    override _.Count = examples.Inputs.Length / rowLength
    override _.RowLength = rowLength
    override _.Labels = examples.Labels
    override _.Read(order, start, count, dest) =
        for i in 0 .. count - 1 do
            Array.Copy(examples.Inputs, int64 order.[start + i] * int64 rowLength, dest, int64 i * int64 rowLength, int64 rowLength)

/// Rows stored in a file of raw float32 values (the machine's byte order), row after row: written once with
/// `RowFile.Writer`, then read a batch at a time with positioned reads (no memory map, so only the rows asked for are
/// in the process's memory). Logical row i is physical row `physical.[i]` of the file; `prepare dest rows` runs on
/// every batch read (e.g. the train-fitted standardisation of its first `rows` rows). `PeakRowsHeld` counts the most
/// rows one read held. Raises ArgumentException when the file is not a whole number of rows or a physical index is
/// outside it.
[<Sealed>]
type RowFile(path: string, rowLength: int, labels: int[], physical: int[], prepare: float32[] -> int -> unit) =
    inherit RowSource()
    let handle: SafeFileHandle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess)
    let rowBytes = int64 (max 1 rowLength) * 4L
    let length = RandomAccess.GetLength handle
    let rows = length / rowBytes
    do
        if rowLength < 1 || length % rowBytes <> 0L then
            handle.Dispose()
            invalidArg "path" (sprintf "%s: %d bytes are not rows of %d float32 values" path length rowLength)
        if labels.Length <> physical.Length then
            handle.Dispose()
            invalidArg "labels" (sprintf "%s: %d labels for %d rows" path labels.Length physical.Length)
        for p in physical do
            if p < 0 || int64 p >= rows then
                handle.Dispose()
                invalidArg "physical" (sprintf "%s: row %d is outside the file's %d rows" path p rows)
    let mutable peak = 0
    /// The file.
    member _.Path = path
    /// The most rows a single Read held.
    member _.PeakRowsHeld = peak
    override _.Count = physical.Length
    override _.RowLength = rowLength
    override _.Labels = labels
    override _.Read(order, start, count, dest) =
        peak <- max peak count
        let bytes = Runtime.InteropServices.MemoryMarshal.AsBytes(Span<float32>(dest, 0, count * rowLength))
        for i in 0 .. count - 1 do
            let target = bytes.Slice(int (int64 i * rowBytes), int rowBytes)
            let offset = int64 physical.[order.[start + i]] * rowBytes
            let mutable read = 0
            while read < target.Length do
                let n = RandomAccess.Read(handle, target.Slice read, offset + int64 read)
                if n = 0 then raise (EndOfStreamException(sprintf "%s: ends inside row %d" path physical.[order.[start + i]]))
                read <- read + n
        prepare dest count
    override _.Dispose() = handle.Dispose()

/// The rows of `inner` with `transform epoch row dest offset` applied to every row after each Read (the row's values at
/// dest.[offset .. offset + RowLength - 1]; `row` its logical index, `epoch` the one BeginEpoch set): per-epoch random
/// augmentation of training rows (the façade's SpecAugment masks and VTLP) that is the same for the same epoch and row
/// whatever the batch order, so a resumed run reads what an uninterrupted one did. Owns `inner` (Dispose disposes it).
[<Sealed>]
type TransformedRows(inner: RowSource, transform: int -> int -> float32[] -> int -> unit) =
    inherit RowSource()
    let mutable epoch = 0
    override _.Count = inner.Count
    override _.RowLength = inner.RowLength
    override _.Labels = inner.Labels
    override _.BeginEpoch e =
        epoch <- e
        inner.BeginEpoch e
    override _.Read(order, start, count, dest) =
        inner.Read(order, start, count, dest)
        for i in 0 .. count - 1 do
            transform epoch order.[start + i] dest (i * inner.RowLength)
    override _.Dispose() = inner.Dispose()

/// The rows of `inner` with some logical rows drawn afresh every epoch from alternatives: logical row i is inner row
/// `choices.[i].[k]`, k drawn uniformly from (seed, epoch set by BeginEpoch, i) when there are several, so every epoch
/// sees one version of each row whatever the batch order, and a resumed run reads what an uninterrupted one did. `train`
/// builds it over a part's originals (one choice each) and its augmented copies (each clip's pool of augmented
/// versions; Recipe.AugmentPool): augmentation drawn per epoch, as torchvision/torchaudio transforms in a Dataset do,
/// from versions computed once. Until the first BeginEpoch every row is its first choice. Alternatives should carry one
/// label (Labels gives the first's). Owns `inner` (Dispose disposes it). Raises ArgumentException for an empty choice
/// list or a row outside `inner`.
[<Sealed>]
type PooledRows(inner: RowSource, choices: int[][], seed: int) =
    inherit RowSource()
    do
        choices |> Array.iteri (fun i c ->
            if c.Length = 0 then invalidArg "choices" (sprintf "logical row %d has no row to choose from" i)
            for r in c do
                if r < 0 || r >= inner.Count then invalidArg "choices" (sprintf "logical row %d names row %d; the source has %d rows" i r inner.Count))
    let labels = choices |> Array.map (fun c -> inner.Labels.[c.[0]])
    let current = choices |> Array.map (fun c -> c.[0])
    let mutable translated: int[] = [||]
    override _.Count = choices.Length
    override _.RowLength = inner.RowLength
    override _.Labels = labels
    override _.BeginEpoch e =
        for i in 0 .. choices.Length - 1 do
            let c = choices.[i]
            current.[i] <- if c.Length = 1 then c.[0] else c.[SplitMix(SplitMix.Derive(seed, 3, e, i)).NextInt c.Length]
        inner.BeginEpoch e
    override _.Read(order, start, count, dest) =
        if translated.Length < count then translated <- Array.zeroCreate count
        for i in 0 .. count - 1 do
            translated.[i] <- current.[order.[start + i]]
        inner.Read(translated, 0, count, dest)
    override _.Dispose() = inner.Dispose()

/// Writing row files.
module RowFile =
    /// Appends rows of `rowLength` float32 values to a new file at `path` (replacing one there); `Rows` counts them.
    [<Sealed>]
    type Writer(path: string, rowLength: int) =
        let stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 <<< 16)
        let mutable rows = 0
        /// Rows written so far (the physical index of the next row).
        member _.Rows = rows
        /// Appends the rows in `values` (a whole number of rows).
        member _.Append(values: float32[]) =
            if values.Length % rowLength <> 0 then invalidArg "values" (sprintf "%s: %d values are not rows of %d" path values.Length rowLength)
            stream.Write(Runtime.InteropServices.MemoryMarshal.AsBytes(ReadOnlySpan<float32>(values)))
            rows <- rows + values.Length / rowLength
        interface IDisposable with
            member _.Dispose() = stream.Dispose()

/// Prediction and evaluation over row sources, 256 rows at a time (Model.predict's batch), so at most 256 rows are
/// read at once and the results equal Model.predict / Model.evaluate on the same rows in memory.
module Rows =
    /// Class probabilities [rows, classes] of every row of `source`, in row order (inference mode).
    let predict (model: Model) (source: RowSource) : float32[,] =
        if source.RowLength <> model.Net.SampleSize then
            invalidArg "source" (sprintf "Rows have %d floats, the model's input shape %s needs %d." source.RowLength (Shapes.describe model.Net.InputShape) model.Net.SampleSize)
        let count = source.Count
        let k = Model.classes model
        let result = Array2D.zeroCreate count k
        let order = Array.init count id
        let buffer = Array.zeroCreate<float32> (min 256 (max count 1) * source.RowLength)
        let mutable start = 0
        while start < count do
            let n = min 256 (count - start)
            source.Read(order, start, n, buffer)
            let p = Model.predict model (if n * source.RowLength = buffer.Length then buffer else Array.sub buffer 0 (n * source.RowLength))
            for i in 0 .. n - 1 do
                for j in 0 .. k - 1 do
                    result[start + i, j] <- p[i, j]
            start <- start + n
        result

    /// Metrics of the model on every row of `source` (inference mode).
    let evaluate (model: Model) (source: RowSource) : Metrics =
        Metrics.compute (predict model source) source.Labels
