module Hybrid.FeaturesTests.ExportTests

open System
open System.IO
open Expecto
open Hybrid.TestSupport
open Hybrid.Features

let private withTemp (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-export-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try body dir finally Directory.Delete(dir, true)

let private sample (rows: int) (width: int) (seed: int) : Export.Table =
    let rng = Random seed
    { Columns = Array.init width (fun c -> sprintf "mfcc%d" (c + 1))
      Files = Array.init rows (fun r -> sprintf "/data/recordings/%d_george_%d.wav" (r % 10) r)
      Labels = Array.init rows (fun r -> string (r % 10))
      Values = Array.init (rows * width) (fun _ -> float32 (rng.NextDouble() * 200.0 - 100.0)) }

[<Tests>]
let tests =
    testList "Export" [
        testPropertyWithConfig Properties.defaults "a CSV round trip keeps names, labels and every float bit for bit" (fun (seed: int) ->
            withTemp (fun dir ->
                let t = sample 7 5 seed
                let path = Path.Combine(dir, "t.csv")
                Export.writeCsv path t
                let back = Export.readCsv path
                Expect.equal back.Columns t.Columns "columns"
                Expect.equal back.Files t.Files "row keys as given"
                Expect.equal back.Labels t.Labels "labels"
                Expect.equal back.Values t.Values "values"))

        test "a CSV header is filename, the columns, then label" {
            withTemp (fun dir ->
                let path = Path.Combine(dir, "h.csv")
                Export.writeCsv path { (sample 1 2 1) with Columns = [| "chroma_stft"; "rmse" |] }
                Expect.equal (File.ReadLines path |> Seq.head) "filename,chroma_stft,rmse,label" "header")
        }

        test "CSV fields with commas and quotes are quoted and read back" {
            withTemp (fun dir ->
                let t = { sample 2 1 3 with Labels = [| "a,b"; "say \"hi\"" |] }
                let path = Path.Combine(dir, "q.csv")
                Export.writeCsv path t
                Expect.equal (Export.readCsv path).Labels t.Labels "labels")
        }

        test "a Parquet round trip keeps names, labels and values" {
            withTemp (fun dir ->
                let t = sample 11 4 5
                let path = Path.Combine(dir, "t.parquet")
                Export.writeParquet path t
                let back = Export.readParquet path
                Expect.equal back.Columns t.Columns "columns"
                Expect.equal back.Labels t.Labels "labels"
                Expect.equal back.Files t.Files "row keys as given"
                Expect.equal back.Values t.Values "values")
        }

        test "an .npy round trip keeps shape and values and writes the file list beside it" {
            withTemp (fun dir ->
                let t = sample 3 (4 * 5) 9
                let path = Path.Combine(dir, "t.npy")
                let written = Export.write path [| 4; 5 |] t
                let shape, values = Export.readNpy path
                Expect.equal shape [| 3; 4; 5 |] "shape clips x bins x frames"
                Expect.equal values t.Values "values"
                Expect.equal written [ path; path + ".files.txt" ] "files written"
                let lines = File.ReadAllLines(path + ".files.txt")
                Expect.equal lines (Array.map2 (fun f l -> f + "\t" + l) t.Files t.Labels) "sidecar in row order"
                Expect.equal ((FileInfo path).Length % 64L) (int64 (3 * 20 * 4) % 64L) "header padded to 64 bytes")
        }

        test "a one-dimensional .npy writes a tuple shape with a trailing comma" {
            withTemp (fun dir ->
                let path = Path.Combine(dir, "v.npy")
                Export.writeNpy path [| 3 |] [| 1.0f; 2.0f; 3.0f |]
                let header = Text.Encoding.ASCII.GetString(File.ReadAllBytes path, 10, 60)
                Expect.stringContains header "'shape': (3,)" "numpy's 1-D tuple form"
                Expect.equal (Export.readNpy path) ([| 3 |], [| 1.0f; 2.0f; 3.0f |]) "round trip")
        }

        test "rows appended batch by batch give the same files as one whole table, in every format" {
            withTemp (fun dir ->
                let t = sample 9 6 11
                for ext in [ "csv"; "parquet"; "npy" ] do
                    let whole, streamed = Path.Combine(dir, "whole." + ext), Path.Combine(dir, "streamed." + ext)
                    Export.write whole [| 2; 3 |] t |> ignore
                    use writer = Export.openWriter streamed t.Columns [| 2; 3 |] 9
                    for start in 0 .. 4 .. 8 do
                        let n = min 4 (9 - start)
                        writer.Append(t.Files.[start .. start + n - 1], t.Labels.[start .. start + n - 1], t.Values.[start * 6 .. (start + n) * 6 - 1])
                    writer.Complete() |> ignore
                    match ext with
                    | "csv" -> Expect.equal (File.ReadAllText streamed) (File.ReadAllText whole) "CSV"
                    | "parquet" -> Expect.equal (Export.readParquet streamed) (Export.readParquet whole) "Parquet"
                    | _ ->
                        Expect.equal (File.ReadAllBytes streamed) (File.ReadAllBytes whole) ".npy"
                        Expect.equal (File.ReadAllText(streamed + ".files.txt")) (File.ReadAllText(whole + ".files.txt")) "sidecar")
        }

        test "a writer disposed before Complete leaves no file behind" {
            withTemp (fun dir ->
                for ext in [ "csv"; "parquet"; "npy" ] do
                    let path = Path.Combine(dir, "partial." + ext)
                    do
                        use writer = Export.openWriter path [| "a" |] [| 1 |] 3
                        writer.Append([| "f.wav" |], [| "x" |], [| 1.0f |])
                    Expect.isEmpty (Directory.GetFiles(dir, "partial*")) (sprintf "nothing left for .%s" ext))
        }

        test "an .npy writer refuses more or fewer rows than it declared" {
            withTemp (fun dir ->
                use writer = Export.openWriter (Path.Combine(dir, "n.npy")) [| "a" |] [| 1 |] 2
                writer.Append([| "f.wav" |], [| "x" |], [| 1.0f |])
                Expect.throwsT<InvalidOperationException> (fun () -> writer.Complete() |> ignore) "one of two rows")
        }

        test "an unknown extension and a mismatched table are refused with their reason" {
            let t = sample 2 2 1
            Expect.throwsT<ArgumentException> (fun () -> Export.write "x.xlsx" [| 2 |] t |> ignore) "unknown format"
            Expect.throwsT<ArgumentException> (fun () -> Export.writeCsv "x.csv" { t with Labels = [| "1" |] }) "labels mismatch"
        }
    ]
