/// Feature tables written for other tools: CSV (pandas.read_csv), Parquet (pandas, Spark; Parquet.Net) and
/// NumPy .npy (float32, C order) with a sidecar listing the files in row order.
module Hybrid.Features.Export

open System
open System.Globalization
open System.IO
open System.Text
open Parquet
open Parquet.Schema

/// A feature table: one row per file, `Columns` named values per row, plus filename and label columns. The
/// filename column holds each row's key as given, written verbatim: `features` gives the recording's path relative
/// to the dataset root (e.g. `yes/0a7c2a8d_nohash_0.wav`), which stays unique where file names repeat.
type Table =
    { /// Feature column names (a schema's Names).
      Columns: string[]
      /// The key of each row's recording, written verbatim (in the table and in the .npy sidecar).
      Files: string[]
      /// The label of each row.
      Labels: string[]
      /// Row-major [Files.Length, Columns.Length] values.
      Values: float32[] }

let private check (table: Table) =
    let n = table.Files.Length
    if table.Labels.Length <> n then
        invalidArg (nameof table) (sprintf "table has %d files but %d labels" n table.Labels.Length)
    if table.Values.Length <> n * table.Columns.Length then
        invalidArg (nameof table) (sprintf "table of %d rows x %d columns needs %d values, has %d" n table.Columns.Length (n * table.Columns.Length) table.Values.Length)

let private replaceAtomically (path: string) (write: string -> unit) =
    let full = Path.GetFullPath path
    match Path.GetDirectoryName full with
    | null -> ()
    | dir -> Directory.CreateDirectory dir |> ignore
    let temp = full + ".tmp-" + Guid.NewGuid().ToString("N")
    try
        write temp
        File.Move(temp, full, true)
    finally
        if File.Exists temp then File.Delete temp


/// A CSV field as RFC 4180 writes it: quoted (inner quotes doubled) when it holds a comma, a quote or a line break.
let csvField (s: string) =
    if s.IndexOfAny([| ','; '"'; '\n'; '\r' |]) >= 0 then "\"" + s.Replace("\"", "\"\"") + "\"" else s

/// A streaming table writer: rows are appended batch by batch (memory bounded by one batch) and the file
/// appears atomically, complete, when Complete is called; disposing an incomplete writer leaves nothing behind.
type RowWriter =
    inherit IDisposable
    /// Appends rows: one file and label per row, values row-major [files.Length, columns].
    abstract Append: files: string[] * labels: string[] * values: float32[] -> unit
    /// Finishes the file(s) and moves them into place; returns the paths written.
    abstract Complete: unit -> string list

let private checkBatch (width: int) (files: string[]) (labels: string[]) (values: float32[]) =
    if labels.Length <> files.Length then
        invalidArg (nameof labels) (sprintf "batch has %d files but %d labels" files.Length labels.Length)
    if values.Length <> files.Length * width then
        invalidArg (nameof values) (sprintf "batch of %d rows x %d columns needs %d values, has %d" files.Length width (files.Length * width) values.Length)

let private prepare (path: string) =
    let full = Path.GetFullPath path
    match Path.GetDirectoryName full with
    | null -> ()
    | dir -> Directory.CreateDirectory dir |> ignore
    full, full + ".tmp-" + Guid.NewGuid().ToString("N")

/// CSV: `filename,<columns...>,label`, floats in round-trip ("R") invariant form.
type private CsvRowWriter(path: string, columns: string[]) =
    let full, temp = prepare path
    let writer = new StreamWriter(temp, false, UTF8Encoding(false), NewLine = "\n")
    let sb = StringBuilder()
    do writer.WriteLine(String.Join(",", Array.concat [ [| "filename" |]; Array.map csvField columns; [| "label" |] ]))
    let mutable finished = false
    interface RowWriter with
        member _.Append(files, labels, values) =
            let width = columns.Length
            checkBatch width files labels values
            for r in 0 .. files.Length - 1 do
                sb.Clear().Append(csvField files.[r]) |> ignore
                for c in 0 .. width - 1 do
                    sb.Append(',').Append(values.[r * width + c].ToString("R", CultureInfo.InvariantCulture)) |> ignore
                sb.Append(',').Append(csvField labels.[r]) |> ignore
                writer.WriteLine(sb.ToString())
        member _.Complete() =
            writer.Dispose()
            File.Move(temp, full, true)
            finished <- true
            [ full ]
        member _.Dispose() =
            writer.Dispose()
            if not finished && File.Exists temp then File.Delete temp

/// Parquet: one row group per appended batch; string `filename`, one float column per feature, string `label`.
type private ParquetRowWriter(path: string, columns: string[]) =
    let full, temp = prepare path
    let fileField = DataField<string>("filename")
    let labelField = DataField<string>("label")
    let featureFields = columns |> Array.map (fun c -> DataField<float32>(c))
    let fields: Field[] = Array.concat [ [| fileField :> Field |]; featureFields |> Array.map (fun f -> f :> Field); [| labelField :> Field |] ]
    let stream = File.Create temp
    let writer = ParquetWriter.CreateAsync(ParquetSchema(fields), stream).GetAwaiter().GetResult()
    let mutable finished = false
    let close () =
        writer.DisposeAsync().AsTask().GetAwaiter().GetResult()
        stream.Dispose()
    interface RowWriter with
        member _.Append(files, labels, values) =
            let width = columns.Length
            checkBatch width files labels values
            if files.Length > 0 then
                use group = writer.CreateRowGroup()
                let n = files.Length
                task {
                    do! group.WriteAsync(fileField, files, Nullable())
                    let column = Array.zeroCreate<float32> n
                    for c in 0 .. width - 1 do
                        for r in 0 .. n - 1 do column.[r] <- values.[r * width + c]
                        do! group.WriteAsync<float32>(featureFields.[c], ReadOnlyMemory column)
                    do! group.WriteAsync(labelField, labels, Nullable())
                }
                |> fun t -> t.GetAwaiter().GetResult()
        member _.Complete() =
            close ()
            File.Move(temp, full, true)
            finished <- true
            [ full ]
        member _.Dispose() =
            if not finished then
                close ()
                if File.Exists temp then File.Delete temp

let private npyHeader (shape: int[]) =
    let dims =
        match shape with
        | [| d |] -> sprintf "(%d,)" d
        | _ -> "(" + String.Join(", ", shape) + ")"
    let dict = sprintf "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" dims
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
    let unpadded = 10 + dict.Length + 1
    let padded = (unpadded + 63) / 64 * 64
    let header = Encoding.ASCII.GetBytes(dict + String(' ', padded - unpadded) + "\n")
    Array.concat [ [| 0x93uy; byte 'N'; byte 'U'; byte 'M'; byte 'P'; byte 'Y'; 1uy; 0uy |]; BitConverter.GetBytes(uint16 header.Length); header ]

let private writeFloats (stream: Stream) (values: float32[]) =
    let bytes = Array.zeroCreate<byte> (values.Length * 4)
    Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length)
    if not BitConverter.IsLittleEndian then
        for i in 0 .. values.Length - 1 do Array.Reverse(bytes, i * 4, 4)
    stream.Write(bytes, 0, bytes.Length)

/// .npy of shape [rows] + rowShape (the row count is declared up front) with a `.files.txt` sidecar of
/// `path<TAB>label` lines in row order.
type private NpyRowWriter(path: string, rowShape: int[], rows: int) =
    let full, temp = prepare path
    let sidecar, sidecarTemp = prepare (path + ".files.txt")
    let width = rowShape |> Array.fold (*) 1
    let stream = File.Create temp
    let list = new StreamWriter(sidecarTemp, false, UTF8Encoding(false), NewLine = "\n")
    do
        let header = npyHeader (Array.append [| rows |] rowShape)
        stream.Write(header, 0, header.Length)
    let mutable written = 0
    let mutable finished = false
    interface RowWriter with
        member _.Append(files, labels, values) =
            checkBatch width files labels values
            if written + files.Length > rows then
                invalidOp (sprintf "%s: %d rows were declared, %d appended" path rows (written + files.Length))
            writeFloats stream values
            for r in 0 .. files.Length - 1 do list.WriteLine(files.[r] + "\t" + labels.[r])
            written <- written + files.Length
        member _.Complete() =
            if written <> rows then invalidOp (sprintf "%s: %d rows were declared, %d appended" path rows written)
            stream.Dispose()
            list.Dispose()
            File.Move(temp, full, true)
            File.Move(sidecarTemp, sidecar, true)
            finished <- true
            [ full; sidecar ]
        member _.Dispose() =
            stream.Dispose()
            list.Dispose()
            if not finished then
                for f in [ temp; sidecarTemp ] do
                    if File.Exists f then File.Delete f

/// Opens a streaming writer for the format the extension names: .csv, .parquet or .npy (which needs the total
/// row count and the shape of one row up front; CSV and Parquet ignore them).
let openWriter (path: string) (columns: string[]) (rowShape: int[]) (rows: int) : RowWriter =
    let width = rowShape |> Array.fold (*) 1
    if width <> columns.Length then
        invalidArg (nameof rowShape) (sprintf "row shape [%s] holds %d values, there are %d column names" (String.Join(", ", rowShape)) width columns.Length)
    match (nonNull (Path.GetExtension path)).ToLowerInvariant() with
    | ".csv" -> new CsvRowWriter(path, columns)
    | ".parquet" -> new ParquetRowWriter(path, columns)
    | ".npy" -> new NpyRowWriter(path, rowShape, rows)
    | other -> invalidArg (nameof path) (sprintf "%s: unknown export format '%s'; expected .csv, .parquet or .npy" path other)

let private writeWhole (path: string) (rowShape: int[]) (table: Table) =
    check table
    use writer = openWriter path table.Columns rowShape table.Files.Length
    writer.Append(table.Files, table.Labels, table.Values)
    writer.Complete()

/// Writes `filename,<columns...>,label` then one row per file; floats in round-trip ("R") invariant form.
let writeCsv (path: string) (table: Table) = writeWhole path [| table.Columns.Length |] table |> ignore

let private splitCsvLine (line: string) =
    let fields = Collections.Generic.List<string>()
    let sb = StringBuilder()
    let mutable quoted = false
    let mutable i = 0
    while i < line.Length do
        let ch = line.[i]
        if quoted then
            if ch = '"' && i + 1 < line.Length && line.[i + 1] = '"' then
                sb.Append('"') |> ignore
                i <- i + 1
            elif ch = '"' then quoted <- false
            else sb.Append ch |> ignore
        elif ch = '"' then quoted <- true
        elif ch = ',' then
            fields.Add(sb.ToString())
            sb.Clear() |> ignore
        else sb.Append ch |> ignore
        i <- i + 1
    fields.Add(sb.ToString())
    fields.ToArray()

/// Reads a table written by writeCsv (Files hold the file names as written).
let readCsv (path: string) : Table =
    let lines = File.ReadAllLines path |> Array.filter (fun l -> l.Length > 0)
    if lines.Length = 0 then raise (InvalidDataException(sprintf "%s: empty CSV, expected a header" path))
    let header = splitCsvLine lines.[0]
    if header.Length < 2 || header.[0] <> "filename" || header.[header.Length - 1] <> "label" then
        raise (InvalidDataException(sprintf "%s: expected a header 'filename,...,label'" path))
    let columns = header.[1 .. header.Length - 2]
    let rows = lines.[1..] |> Array.map splitCsvLine
    rows
    |> Array.iteri (fun i r ->
        if r.Length <> header.Length then
            raise (InvalidDataException(sprintf "%s: line %d has %d fields, the header has %d" path (i + 2) r.Length header.Length)))
    { Columns = columns
      Files = rows |> Array.map (fun r -> r.[0])
      Labels = rows |> Array.map (fun r -> r.[r.Length - 1])
      Values = rows |> Array.collect (fun r -> r.[1 .. r.Length - 2] |> Array.map (fun s -> Single.Parse(s, CultureInfo.InvariantCulture))) }

/// Writes one row group with a string `filename` column, one float column per feature and a string `label`.
let writeParquet (path: string) (table: Table) = writeWhole path [| table.Columns.Length |] table |> ignore

/// Reads a table written by writeParquet or a Parquet RowWriter (every row group, in order).
let readParquet (path: string) : Table =
    task {
        use! reader = ParquetReader.CreateAsync(path)
        let fields = reader.Schema.GetDataFields()
        if fields.Length < 2 || fields.[0].Name <> "filename" || fields.[fields.Length - 1].Name <> "label" then
            raise (InvalidDataException(sprintf "%s: expected columns filename, features..., label" path))
        let columns = fields.[1 .. fields.Length - 2]
        let width = columns.Length
        let files = Collections.Generic.List<string>()
        let labels = Collections.Generic.List<string>()
        let values = Collections.Generic.List<float32>()
        for g in 0 .. reader.RowGroupCount - 1 do
            use group = reader.OpenRowGroupReader g
            let n = int group.RowCount
            let groupFiles = Array.zeroCreate<string> n
            let! _ = group.ReadAsync(fields.[0], Memory groupFiles)
            let groupLabels = Array.zeroCreate<string> n
            let! _ = group.ReadAsync(fields.[fields.Length - 1], Memory groupLabels)
            let groupValues = Array.zeroCreate<float32> (n * width)
            let column = Array.zeroCreate<float32> n
            for c in 0 .. width - 1 do
                let! _ = group.ReadAsync<float32>(columns.[c], Memory column)
                for r in 0 .. n - 1 do groupValues.[r * width + c] <- column.[r]
            files.AddRange groupFiles
            labels.AddRange groupLabels
            values.AddRange groupValues
        let files, labels, values = files.ToArray(), labels.ToArray(), values.ToArray()
        return { Columns = columns |> Array.map (fun f -> f.Name); Files = files; Labels = labels; Values = values }
    }
    |> fun t -> t.GetAwaiter().GetResult()

/// Writes a float32 C-order .npy (format 1.0) of the given shape.
let writeNpy (path: string) (shape: int[]) (values: float32[]) =
    let count = shape |> Array.fold (fun acc d -> acc * int64 d) 1L
    if count <> int64 values.Length then
        invalidArg (nameof values) (sprintf "shape [%s] needs %d values, got %d" (String.Join(", ", shape)) count values.Length)
    replaceAtomically path (fun temp ->
        use stream = File.Create temp
        let header = npyHeader shape
        stream.Write(header, 0, header.Length)
        writeFloats stream values)

/// Reads a little-endian float32 C-order .npy: its shape and values.
let readNpy (path: string) : int[] * float32[] =
    let bytes = File.ReadAllBytes path
    let fail what = raise (InvalidDataException(sprintf "%s: %s" path what))
    if bytes.Length < 10 || bytes.[0] <> 0x93uy || Encoding.ASCII.GetString(bytes, 1, 5) <> "NUMPY" then fail "not a .npy file"
    let headerLength, start =
        match bytes.[6] with
        | 1uy -> int (BitConverter.ToUInt16(bytes, 8)), 10
        | 2uy | 3uy -> int (BitConverter.ToUInt32(bytes, 8)), 12
        | v -> fail (sprintf "unsupported .npy version %d" v)
    if start + headerLength > bytes.Length then fail "truncated header"
    let header = Encoding.ASCII.GetString(bytes, start, headerLength)
    if not (header.Contains "'descr': '<f4'") then fail "expected dtype '<f4'"
    if header.Contains "'fortran_order': True" then fail "expected C order"
    let shapeText =
        let i = header.IndexOf "'shape': ("
        if i < 0 then fail "no shape"
        let j = header.IndexOf(')', i)
        header.Substring(i + 10, j - i - 10)
    let shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> Array.map int
    let count = shape |> Array.fold (fun acc d -> acc * d) 1
    let dataStart = start + headerLength
    if bytes.Length - dataStart <> count * 4 then fail (sprintf "expected %d data bytes, found %d" (count * 4) (bytes.Length - dataStart))
    let values = Array.zeroCreate<float32> count
    Buffer.BlockCopy(bytes, dataStart, values, 0, count * 4)
    shape, values

/// Writes a table in the format its extension names: .csv, .parquet or .npy (with a `.files.txt` sidecar
/// listing the files in row order; the array has shape [rows] + rowShape). Returns the files written.
let write (path: string) (rowShape: int[]) (table: Table) = writeWhole path rowShape table
