/// `hybrid summary`: Keras' model summary of a model file (layers, shapes, parameters, file size, input), as text and
/// as one JSON object; a missing or damaged file is exit code 1.
module Hybrid.CliTests.SummaryCommandTests

open System
open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport
open Hybrid.ClassifierTests

let private run = Commands.run

let private withDir (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-summary-cli-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try body dir finally Directory.Delete(dir, true)

/// The sizes of the weight blocks a model file's header lists (its normalisation blocks left out), read from the file
/// itself: magic, version, header length, then the JSON header.
let private weightBlockSizes (path: string) : int64 list =
    let bytes = File.ReadAllBytes path
    let headerLength = BitConverter.ToInt32(bytes, 12)
    use header = JsonDocument.Parse(ReadOnlyMemory<byte>(bytes, 16, headerLength))
    [ for b in header.RootElement.GetProperty("blocks").EnumerateArray() do
        if b.GetProperty("role").GetString() = "weight" then
            yield b.GetProperty("shape").EnumerateArray() |> Seq.fold (fun n d -> n * int64 (d.GetInt32())) 1L ]

/// `summary --json` of `path`, parsed.
let private summaryJson (path: string) =
    let code, out, err = run Hybrid.Cli.SummaryCommand.run [ "--model"; path; "--json" ]
    Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
    Expect.equal (out.Trim().Split('\n').Length) 1 "one JSON object on one line"
    JsonDocument.Parse(out)

let private shapes (root: JsonElement) =
    [ for l in root.GetProperty("layers").EnumerateArray() -> nonNull (l.GetProperty("kind").GetString()), [ for d in l.GetProperty("output_shape").EnumerateArray() -> d.GetInt32() ] ]

[<Tests>]
let tests =
    testList "SummaryCommand" [
        test "--json: per-layer counts add up to the file's weight blocks; cnn2d's and mlp's shapes" {
            withDir (fun dir ->
                let cnn = ModelFixtures.write (Path.Combine(dir, "cnn2d.hnn")) "cnn2d" [ for d in 0 .. 9 -> string d ] (ModelFixtures.preparation "cnn2d") 1 10.0f
                let mlp = ModelFixtures.write (Path.Combine(dir, "mlp.hnn")) "mlp" [ "dog"; "siren"; "drill" ] (ModelFixtures.preparation "mlp") 2 30.0f
                for path in [ cnn; mlp ] do
                    use doc = summaryJson path
                    let root = doc.RootElement
                    let layers = [ for l in root.GetProperty("layers").EnumerateArray() -> l.GetProperty("trainable").GetInt64(), l.GetProperty("non_trainable").GetInt64(), l.GetProperty("parameters").GetInt64() ]
                    let blocks = weightBlockSizes path
                    Expect.equal (layers |> List.sumBy (fun (_, _, n) -> n)) (List.sum blocks) (sprintf "%s: the layers' parameters are the weight arrays' sizes" path)
                    Expect.equal (root.GetProperty("total_parameters").GetInt64()) (List.sum blocks) "the total"
                    Expect.equal (root.GetProperty("trainable_parameters").GetInt64() + root.GetProperty("non_trainable_parameters").GetInt64()) (List.sum blocks) "trainable + non-trainable"
                    for t, f, n in layers do Expect.equal (t + f) n "each layer's trainable and non-trainable make its parameters"
                    Expect.equal (root.GetProperty("file_bytes").GetInt64()) (FileInfo(path).Length) "the file's size"
                use doc = summaryJson cnn
                let root = doc.RootElement
                Expect.equal [ for d in root.GetProperty("input_shape").EnumerateArray() -> d.GetInt32() ] [ 1; 40; 65 ] "cnn2d's input"
                Expect.equal (shapes root |> List.take 4) [ "Conv2D", [ 16; 40; 65 ]; "BatchNormalization", [ 16; 40; 65 ]; "ReLU", [ 16; 40; 65 ]; "MaxPooling2D", [ 16; 20; 32 ] ] "the first block"
                Expect.equal (List.last (shapes root)) ("Dense", [ 10 ]) "ten classes"
                let input = root.GetProperty("input")
                Expect.equal (input.GetProperty("sample_rate").GetInt32(), input.GetProperty("clip_samples").GetInt32(), input.GetProperty("features").GetString()) (8000, 8192, "logmel-fsdd") "the input"
                Expect.equal (input.GetProperty("trim").GetString()) "20:256:64" "the trim"
                Expect.equal (input.GetProperty("segment").ValueKind) JsonValueKind.Null "no windows"
                Expect.equal (root.GetProperty("settings").GetProperty("model").GetString()) "cnn2d" "the settings"
                use doc = summaryJson mlp
                Expect.equal (shapes doc.RootElement) [ "Flatten", [ 40 ]; "Dense", [ 256 ]; "ReLU", [ 256 ]; "Dropout", [ 256 ]; "Dense", [ 128 ]; "ReLU", [ 128 ]; "Dropout", [ 128 ]; "Dense", [ 3 ] ] "mlp's layers"
                Expect.equal [ for c in doc.RootElement.GetProperty("classes").EnumerateArray() -> c.GetString() ] [ "dog"; "siren"; "drill" ] "the classes")
        }

        test "text: a row per layer, the totals, the file size and the input, plain when redirected" {
            withDir (fun dir ->
                let p = ModelFixtures.preparation "cnn2d"
                let windowed = { p with Clips = { p.Clips with Segment = Some(8192, 4096) } }
                let path = ModelFixtures.write (Path.Combine(dir, "m.hnn")) "cnn2d" [ "yes"; "no" ] windowed 3 10.0f
                let code, out, err = run Hybrid.Cli.SummaryCommand.run [ "--model"; path ]
                Expect.equal code 0 (sprintf "exit code (stderr: %s)" err)
                let lines = out.Split('\n') |> Array.map (fun l -> l.TrimEnd())
                Expect.stringStarts lines.[0] "Layer (type)" "the header"
                Expect.equal (lines |> Array.filter (fun l -> l.StartsWith "conv2d") |> Array.length) 3 "conv2d, conv2d_1, conv2d_2"
                // Columns are at least three spaces apart; a name and its value one colon and spaces.
                let cells (l: string) = Text.RegularExpressions.Regex.Split(l, " {3,}") |> List.ofArray
                Expect.contains (Array.map cells lines) [ "conv2d (Conv2D)"; "(None, 16, 40, 65)"; "160"; "160" ] "the first convolution's row"
                Expect.contains (Array.map cells lines) [ "batchnormalization (BatchNormalization)"; "(None, 16, 40, 65)"; "64"; "32" ] "BatchNorm: 64 parameters, 32 trainable"
                let value (name: string) =
                    lines |> Array.tryPick (fun l -> if l.StartsWith(name + ":") then Some(l.Substring(name.Length + 1).Trim()) else None) |> Option.defaultValue ""
                let invariant (n: int64) = n.ToString("N0", Globalization.CultureInfo.InvariantCulture)
                Expect.equal (value "Total params") (invariant (weightBlockSizes path |> List.sum)) "the total"
                Expect.stringStarts (value "Model file") (sprintf "%s bytes (%s" (invariant (FileInfo(path).Length)) path) "the file size"
                Expect.equal (value "windows") "1.024 s every 0.512 s, averaged per recording" "the windows"
                Expect.equal (value "classes") "2: yes, no" "the classes"
                Expect.isFalse (out.Contains "\u001b[") "no ANSI escape codes in redirected output")
        }

        test "a missing or damaged model file is exit code 1 naming it; no --model is exit code 2" {
            withDir (fun dir ->
                let missing = Path.Combine(dir, "missing.hnn")
                let code, out, err = run Hybrid.Cli.SummaryCommand.run [ "--model"; missing ]
                Expect.equal (code, out) (1, "") "missing: exit code 1, nothing on standard output"
                Expect.stringContains err (sprintf "summary: %s: file not found" missing) "one line naming the file"
                let path = ModelFixtures.write (Path.Combine(dir, "m.hnn")) "logreg" [ "a"; "b" ] (ModelFixtures.preparation "logreg") 4 30.0f
                let bytes = File.ReadAllBytes path
                File.WriteAllBytes(path, bytes.[.. bytes.Length - 9])
                let code, _, err = run Hybrid.Cli.SummaryCommand.run [ "--model"; path; "--json" ]
                Expect.equal code 1 "damaged: exit code 1"
                Expect.stringContains err (sprintf "summary: %s: truncated" path) "names the file and the problem"
                Expect.isFalse (err.Contains "   at ") "no stack trace"
                let code, _, err = run Hybrid.Cli.SummaryCommand.run [ "--json" ]
                Expect.equal code 2 (sprintf "no model: exit code 2 (stderr: %s)" err)
                let code, _, _ = run Hybrid.Cli.Program.run [ "summary"; "--model"; missing ]
                Expect.equal code 1 "hybrid summary dispatches to the command")
        }
    ]
