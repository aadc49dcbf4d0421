/// Feature standardisation: statistics fitted on the training part only, then applied to every part,
/// and per-utterance normalisation (cepstral mean and variance normalisation over time).
module Hybrid.Features.Normalization

open System

/// How statistics are grouped: one mean/std per column of a row, or per band of a [bands, frames] image
/// (pooled over frames, so an image keeps its time structure).
type Grouping =
    | PerColumn
    | PerBand of bands: int * frames: int

/// Fitted statistics: Mean and Std have one value per group (column or band).
type Stats =
    { Grouping: Grouping
      Mean: float32[]
      Std: float32[] }

let private groupCount width grouping =
    match grouping with
    | PerColumn -> width
    | PerBand (bands, frames) ->
        if bands * frames <> width then
            invalidArg "grouping" (sprintf "PerBand(%d, %d) needs rows of %d values, rows have %d" bands frames (bands * frames) width)
        bands

let inline private groupOf grouping j =
    match grouping with
    | PerColumn -> j
    | PerBand (_, frames) -> j / frames

/// Statistics fitted a chunk of rows at a time (for rows that are not all in memory): adding the rows of `fit`'s
/// data in the same order, in chunks of any size, gives bit for bit the same statistics as `fit`.
type Accumulator(grouping: Grouping, width: int) =
    let groups = groupCount width grouping
    let sum = Array.zeroCreate<float> groups
    let sumSq = Array.zeroCreate<float> groups
    let count = Array.zeroCreate<float> groups
    let mutable rows = 0
    /// Rows added so far.
    member _.Rows = rows
    /// Adds the first `rowCount` rows of `data` (row-major, `width` values a row).
    member _.Add(data: float32[], rowCount: int) =
        if rowCount < 0 || int64 rowCount * int64 width > int64 data.Length then
            invalidArg (nameof data) (sprintf "%d rows of %d values need %d values, got %d" rowCount width (rowCount * width) data.Length)
        for r in 0 .. rowCount - 1 do
            let baseIndex = r * width
            for j in 0 .. width - 1 do
                let g = groupOf grouping j
                let v = float data.[baseIndex + j]
                sum.[g] <- sum.[g] + v
                sumSq.[g] <- sumSq.[g] + v * v
                count.[g] <- count.[g] + 1.0
        rows <- rows + rowCount
    /// The statistics of the rows added (std floored to 1 below 1e-8). Raises ArgumentException without rows.
    member _.Stats() : Stats =
        if rows = 0 then invalidArg "data" "cannot fit normalisation statistics on zero rows"
        let mean = Array.init groups (fun g -> sum.[g] / count.[g])
        let std =
            Array.init groups (fun g ->
                let variance = max 0.0 (sumSq.[g] / count.[g] - mean.[g] * mean.[g])
                let s = sqrt variance
                if s < 1e-8 then 1.0 else s)
        { Grouping = grouping
          Mean = Array.map float32 mean
          Std = Array.map float32 std }

/// Fits statistics on `rows` rows of `width` values stored row-major in `data` (the training part only).
/// A group with zero variance gets Std 1 so applying it never divides by zero.
let fit (grouping: Grouping) (width: int) (data: float32[]) : Stats =
    if width <= 0 || data.Length % width <> 0 then
        invalidArg (nameof data) (sprintf "data of %d values is not a whole number of rows of %d" data.Length width)
    let acc = Accumulator(grouping, width)
    acc.Add(data, data.Length / width)
    acc.Stats()

/// Standardises the first `rows` rows of `data` in place with fitted statistics (as applyInPlace on those rows).
let applyRowsInPlace (stats: Stats) (width: int) (data: float32[]) (rows: int) =
    let groups = groupCount width stats.Grouping
    if groups <> stats.Mean.Length then
        invalidArg (nameof stats) (sprintf "statistics have %d groups, rows of %d values need %d" stats.Mean.Length width groups)
    if rows < 0 || int64 rows * int64 width > int64 data.Length then
        invalidArg (nameof data) (sprintf "%d rows of %d values need %d values, got %d" rows width (rows * width) data.Length)
    let inv = stats.Std |> Array.map (fun s -> 1.0f / s)
    for r in 0 .. rows - 1 do
        let baseIndex = r * width
        for j in 0 .. width - 1 do
            let g = groupOf stats.Grouping j
            data.[baseIndex + j] <- (data.[baseIndex + j] - stats.Mean.[g]) * inv.[g]

/// Applies fitted statistics in place: x <- (x - mean) / std per group.
let applyInPlace (stats: Stats) (width: int) (data: float32[]) =
    if data.Length % width <> 0 then
        invalidArg (nameof data) (sprintf "data of %d values is not a whole number of rows of %d" data.Length width)
    applyRowsInPlace stats width data (data.Length / width)

/// Per-utterance normalisation of [bands, frames] images in place: each band of each row is shifted to
/// zero mean over time and, when `scale` is true, divided by its standard deviation (floored at `floor`).
let perUtteranceInPlace (bands: int) (frames: int) (scale: bool) (floor: float32) (data: float32[]) =
    let width = bands * frames
    if width <= 0 || data.Length % width <> 0 then
        invalidArg (nameof data) (sprintf "data of %d values is not a whole number of %d x %d images" data.Length bands frames)
    let rows = data.Length / width
    for r in 0 .. rows - 1 do
        for b in 0 .. bands - 1 do
            let start = r * width + b * frames
            let span = Span<float32>(data, start, frames)
            let mutable sum = 0.0
            for v in span do sum <- sum + float v
            let mean = sum / float frames
            let mutable sq = 0.0
            for v in span do sq <- sq + (float v - mean) * (float v - mean)
            let s = if scale then max (float floor) (sqrt (sq / float frames)) else 1.0
            for i in 0 .. frames - 1 do
                span.[i] <- float32 ((float span.[i] - mean) / s)
