/// Model files: round trip and every corruption raising its exception.
module Hybrid.ClassifierTests.ModelFileTests

open System
open System.Buffers.Binary
open System.IO
open System.Security.Cryptography
open System.Text.Json
open Expecto
open Hybrid.TestSupport
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.ClassifierTests.Support

let private net () =
    Net.sequential [ 2; 6; 5 ] [ Layers.conv2d 3 (3, 3) Same; Layers.batchNorm; Layers.relu; Layers.maxPool2d 2; Layers.flatten; Layers.dropout 0.2; Layers.dense 4 ]

let private info =
    { SchemaFingerprint = "logmel-2x6x5-v1"
      Labels = [ "zero"; "one"; "two"; "three" ]
      Normalization = [ "mean", [| 0.1f; -3.25f; 1e-30f |]; "std", [| 1.0f / 3.0f; 2.0f; 1e-30f |] ]
      Settings = Json(JsonDocument.Parse("""{"optimizer":"adam","epochs":3,"nested":{"a":[1,2.5,null]}}""").RootElement)
      LibraryVersion = "" }

let private withFile (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-modelfile-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try body (Path.Combine(dir, "model.hnn")) finally Directory.Delete(dir, true)

/// A saved model (BatchNorm statistics moved away from their initial values by one training pass).
let private saved (path: string) =
    use engine = new ManagedEngine(2)
    let model = Model.create engine 3 (net ())
    let rng = Random 1
    let x = uniform rng (5 * 60)
    model.Forward(tensor engine x [| 5; 2; 6; 5 |], true, 1UL) |> ignore
    ModelFile.save path info model
    model.Snapshot(), Model.predict model x, x

let private expectModelFileError (path: string) (fragment: string) =
    use engine = new ManagedEngine(1)
    try
        ModelFile.load engine info.SchemaFingerprint path |> ignore
        failtestf "expected ModelFileException mentioning '%s'" fragment
    with :? ModelFileException as e ->
        Expect.stringContains e.Message fragment "what differs"
        Expect.stringContains e.Message path "names the file"

let private patch (path: string) (offset: int64) (bytes: byte[]) =
    use s = File.OpenWrite path
    s.Position <- offset
    s.Write(bytes, 0, bytes.Length)

/// Rewrites a model file's header with `edit` and signs it again (valid magic, sizes and checksum), as a hostile or
/// older writer would.
let private resign (path: string) (edit: string -> string) =
    let header, floats = Container.read path (fun h _ -> h)
    let text = Text.Encoding.UTF8.GetString header
    Container.write path (Text.Encoding.UTF8.GetBytes(edit text)) [ floats ]

/// Rewrites a model file's floats (weights, then normalisation values) with `edit` and signs it again.
let private resignFloats (path: string) (edit: float32[] -> unit) =
    let header, floats = Container.read path (fun h _ -> h)
    edit floats
    Container.write path header [ floats ]

/// Expects ModelFileException from both load and inspect, each naming the file and `fragment`.
let private expectRefused (path: string) (fragment: string) =
    expectModelFileError path fragment
    try
        ModelFile.inspect path |> ignore
        failtestf "inspect: expected ModelFileException mentioning '%s'" fragment
    with :? ModelFileException as e -> Expect.stringContains e.Message fragment "inspect says what differs"

/// The offset of the normalisation block `name` among the stored floats (weights come first).
let private normalizationOffset (name: string) =
    use engine = new ManagedEngine(1)
    let weights = (Model.create engine 0 (net ())).Tensors |> Array.sumBy (fun (_, t) -> Array.fold (*) 1 t.Shape)
    let before = info.Normalization |> List.takeWhile (fun (n, _) -> n <> name) |> List.sumBy (fun (_, v) -> v.Length)
    weights + before

[<Tests>]
let tests =
    testList "ModelFile" [
        testCase "a saved model loads with the same weights, predictions and info" (fun () ->
            withFile (fun path ->
                let weights, predictions, x = saved path
                use engine = new ManagedEngine(2)
                let model, loaded = ModelFile.load engine info.SchemaFingerprint path
                Array.iteri2 (fun i a b -> bitEqual (sprintf "tensor %d" i) a b) weights (model.Snapshot())
                Expect.equal (Model.predict model x) predictions "predictions"
                Expect.equal model.Net.Layers (net ()).Layers "architecture"
                Expect.equal loaded.Labels info.Labels "labels"
                match loaded.Settings, info.Settings with
                | Json a, Json b -> Expect.equal (a.GetRawText()) (b.GetRawText()) "the settings object as written"
                | other -> failtestf "settings read back as %A" other
                Expect.equal (loaded.Normalization |> List.map fst) [ "mean"; "std" ] "normalisation names"
                List.iter2 (fun (_, a) (_, b) -> bitEqual "normalisation" a b) info.Normalization loaded.Normalization
                Expect.isNonEmpty loaded.LibraryVersion "library version"
                let inspectedNet, inspected = ModelFile.inspect path
                Expect.equal inspected.SchemaFingerprint info.SchemaFingerprint "inspect"
                Expect.equal inspectedNet.Layers (net ()).Layers "inspect architecture"
                Expect.isFalse (File.Exists(path + ".tmp")) "no temporary file left"))

        testCase "a different schema fingerprint raises SchemaMismatchException naming both" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                use engine = new ManagedEngine(1)
                try
                    ModelFile.load engine "mfcc-13-v2" path |> ignore
                    failtest "expected SchemaMismatchException"
                with :? SchemaMismatchException as e ->
                    Expect.stringContains e.Message "mfcc-13-v2" "expected fingerprint"
                    Expect.stringContains e.Message info.SchemaFingerprint "stored fingerprint"))

        testCase "a format 1 file's name/value settings read back as pairs, in file order; format 2 files are written" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                let header, floats = Container.read path (fun h _ -> h)
                let version = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan(File.ReadAllBytes path, 8, 4))
                Expect.equal version 2 "written as format 2"
                // The same file as format 1 wrote it: "trainingSettings" of strings instead of "settings", version 1.
                let text = Text.Encoding.UTF8.GetString header
                let settings = (match info.Settings with Json e -> e.GetRawText() | Pairs _ -> failtest "json")
                let legacy = Text.Encoding.UTF8.GetBytes(text.Replace("\"settings\":" + settings, "\"trainingSettings\":{\"optimizer\":\"adam\",\"epochs\":\"3\"}"))
                let body =
                    [| yield! "HYBRIDNN"B
                       yield! BitConverter.GetBytes 1
                       yield! BitConverter.GetBytes legacy.Length
                       yield! legacy
                       yield! BitConverter.GetBytes(int64 floats.Length)
                       for f in floats do yield! BitConverter.GetBytes f |]
                File.WriteAllBytes(path, Array.append body (SHA256.HashData body))
                use engine = new ManagedEngine(1)
                let _, loaded = ModelFile.load engine info.SchemaFingerprint path
                Expect.equal loaded.Settings (Pairs [ "optimizer", "adam"; "epochs", "3" ]) "the pairs"))

        testCase "settings that are not a JSON object are not saved, and a format 2 file without them is refused" (fun () ->
            withFile (fun path ->
                use engine = new ManagedEngine(1)
                let model = Model.create engine 3 (net ())
                Expect.throwsT<ArgumentException> (fun () -> ModelFile.save path { info with Settings = Pairs [ "a", "b" ] } model) "pairs"
                Expect.throwsT<ArgumentException> (fun () -> ModelFile.save path { info with Settings = Json(JsonDocument.Parse("[1]").RootElement) } model) "an array"
                saved path |> ignore
                resign path (fun h -> h.Replace("\"settings\":", "\"trainingSettings\":"))
                expectRefused path "missing property 'settings'"))

        testCase "a wrong magic number is reported" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                patch path 0L "NOTMODEL"B
                expectModelFileError path "magic"))

        testCase "an unknown format version is reported" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                let b = Array.zeroCreate 4
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(), 7)
                patch path 8L b
                expectModelFileError path "version 7"))

        testCase "a flipped weight bit fails the checksum" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                let bytes = File.ReadAllBytes path
                let i = bytes.Length - 40
                patch path (int64 i) [| bytes[i] ^^^ 0x10uy |]
                expectModelFileError path "checksum"))

        testCase "a flipped header byte fails the checksum" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                let bytes = File.ReadAllBytes path
                patch path 30L [| bytes[30] ^^^ 0x01uy |]
                expectModelFileError path "checksum"))

        testCase "a truncated file is reported as truncated" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                let bytes = File.ReadAllBytes path
                File.WriteAllBytes(path, bytes[0 .. bytes.Length - 101])
                expectModelFileError path "truncated"
                File.WriteAllBytes(path, bytes[0..20])
                expectModelFileError path "truncated"))

        testCase "absurd header and weight sizes are refused before allocating" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                let original = File.ReadAllBytes path
                let b = Array.zeroCreate 4
                BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(), Int32.MaxValue)
                patch path 12L b
                expectModelFileError path "header length"
                File.WriteAllBytes(path, original)
                let headerLength = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan<byte>(original, 12, 4))
                let c = Array.zeroCreate 8
                BinaryPrimitives.WriteInt64LittleEndian(c.AsSpan(), 1L <<< 40)
                patch path (16L + int64 headerLength) c
                expectModelFileError path "weight count"))

        testCase "each layer kind is written under its one name, the summary's" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                let header, _ = Container.read path (fun h _ -> Text.Encoding.UTF8.GetString h)
                for name in [ "Conv2D"; "BatchNormalization"; "ReLU"; "MaxPooling2D"; "Flatten"; "Dropout"; "Dense" ] do
                    Expect.stringContains header (sprintf "\"type\":\"%s\"" name) "type name"
                    Expect.stringContains (Net.summary (net ())) (sprintf "(%s)" name) "summary name"))

        testCase "files that name layers by the older aliases still load" (fun () ->
            withFile (fun path ->
                let weights, predictions, x = saved path
                resign path (fun h ->
                    [ "Conv2D", "conv2d"; "BatchNormalization", "batch_norm"; "ReLU", "relu"; "MaxPooling2D", "max_pool2d"
                      "Flatten", "flatten"; "Dropout", "dropout"; "Dense", "dense" ]
                    |> List.fold (fun (t: string) (a, b) -> t.Replace(sprintf "\"type\":\"%s\"" a, sprintf "\"type\":\"%s\"" b)) h)
                let header, _ = Container.read path (fun h _ -> Text.Encoding.UTF8.GetString h)
                Expect.stringContains header "\"type\":\"batch_norm\"" "aliases written"
                use engine = new ManagedEngine(2)
                let model, _ = ModelFile.load engine info.SchemaFingerprint path
                Expect.equal model.Net.Layers (net ()).Layers "same architecture"
                Array.iteri2 (fun i a b -> bitEqual (sprintf "tensor %d" i) a b) weights (model.Snapshot())
                Expect.equal (Model.predict model x) predictions "predictions"))

        testCase "a signed header with hostile sizes is refused with ModelFileException before weights are allocated" (fun () ->
            withFile (fun path ->
                saved path |> ignore
                let original = File.ReadAllBytes path
                for from, into, fragment in
                    [ "\"units\":4", "\"units\":2147483647", "absurd"
                      "\"filters\":3", "\"filters\":1000000000", "flattens"
                      "\"input\":[2,6,5]", "\"input\":[2,6,20000000]", "size outside"
                      "\"input\":[2,6,5]", "\"input\":[2,4096,4096]", "weights"
                      "\"momentum\":0.99", "\"momentum\":7", "momentum"
                      "\"type\":\"Dense\"", "\"type\":\"Attention\"", "unknown layer type 'Attention'" ] do
                    File.WriteAllBytes(path, original)
                    resign path (fun h ->
                        Expect.stringContains h from "the header holds the field to change"
                        h.Replace(from, into))
                    expectModelFileError path fragment))

        testPropertyWithConfig Properties.defaults "randomly damaged but signed headers give ModelFileException or load, nothing else" (fun (seed: int) ->
            withFile (fun path ->
                saved path |> ignore
                let rng = Random seed
                let values = [| "0"; "-1"; "1"; "2147483647"; "-2147483648"; "1e308"; "null"; "\"x\""; "[]"; "{}"; "0.5"; "65536" |]
                resign path (fun h ->
                    let chars = h.ToCharArray()
                    match rng.Next 3 with
                    | 0 ->
                        // Replace one number with a hostile value.
                        let numbers = Text.RegularExpressions.Regex.Matches(h, "-?[0-9][0-9.e+-]*") |> Seq.toArray
                        let m = numbers[rng.Next numbers.Length]
                        h.Substring(0, m.Index) + values[rng.Next values.Length] + h.Substring(m.Index + m.Length)
                    | 1 ->
                        // Delete a short run of characters.
                        let i = rng.Next chars.Length
                        h.Remove(i, min (1 + rng.Next 6) (chars.Length - i))
                    | _ ->
                        // Overwrite one character.
                        let pool = "{}[],:\"0a-" in chars[rng.Next chars.Length] <- pool[rng.Next pool.Length]
                        String chars)
                use engine = new ManagedEngine(1)
                try
                    ModelFile.load engine info.SchemaFingerprint path |> ignore
                with
                | :? ModelFileException
                | :? SchemaMismatchException -> ()))

        testList "a checksummed file with forged content is refused naming the field" [
            for what, from, into, fragment in
                [ "more labels than outputs", "\"labels\":[\"zero\",", "\"labels\":[\"minus\",\"zero\",", "'labels' has 5 labels, the network has 4 outputs"
                  "fewer labels than outputs", "\"zero\",\"one\",", "\"one\",", "'labels' has 3 labels, the network has 4 outputs"
                  "labels that are numbers", "\"labels\":[\"zero\",\"one\",\"two\",\"three\"]", "\"labels\":[0,1,2,3]", "'labels' must hold strings; label 0 is Number"
                  "a label that is null", "\"zero\",", "null,", "'labels' must hold strings; label 0 is Null"
                  "labels that are not an array", "\"labels\":[\"zero\",\"one\",\"two\",\"three\"]", "\"labels\":\"zero\"", "'labels' must be an array"
                  "a duplicated label", "\"one\",\"two\"", "\"one\",\"one\"", "'labels' names 'one' 2 times"
                  "an empty label", "\"two\"", "\"\"", "'labels' entry 2 is empty"
                  "a blank label", "\"two\"", "\"   \"", "'labels' entry 2 is empty" ] do
                testCase (sprintf "%s is refused by load and inspect" what) (fun () ->
                    withFile (fun path ->
                        saved path |> ignore
                        resign path (fun h ->
                            Expect.stringContains h from "the header holds the field to change"
                            h.Replace(from, into))
                        expectRefused path fragment))
            testCase "a one-class model is refused: one label means one probability, always 1" (fun () ->
                withFile (fun path ->
                    use engine = new ManagedEngine(1)
                    let single = Model.create engine 1 (Net.sequential [ 3 ] [ Layers.dense 1 ])
                    ModelFile.save path { info with Labels = [ "only" ]; Normalization = [] } single
                    expectRefused path "a classifier needs at least two classes"))
            for what, edit, fragment in
                [ "a NaN weight", (fun (f: float32[]) -> f.[5] <- Single.NaN), "weight block"
                  "an infinite weight", (fun (f: float32[]) -> f.[0] <- Single.PositiveInfinity), "holds Infinity at index 0"
                  "a NaN mean", (fun (f: float32[]) -> f.[normalizationOffset "mean" + 1] <- Single.NaN), "normalization block 'mean' holds NaN at index 1"
                  "an infinite standard deviation", (fun (f: float32[]) -> f.[normalizationOffset "std"] <- Single.NegativeInfinity), "normalization block 'std' holds -Infinity at index 0"
                  "a zero standard deviation", (fun (f: float32[]) -> f.[normalizationOffset "std" + 2] <- 0.0f), "'std' holds 0 at index 2: a standard deviation must be positive"
                  "a negative standard deviation", (fun (f: float32[]) -> f.[normalizationOffset "std" + 1] <- -2.0f), "'std' holds -2 at index 1" ] do
                testCase (sprintf "%s is refused by load and inspect" what) (fun () ->
                    withFile (fun path ->
                        saved path |> ignore
                        resignFloats path edit
                        expectRefused path fragment))
            testCase "'mean' and 'std' of different lengths are refused" (fun () ->
                withFile (fun path ->
                    use engine = new ManagedEngine(1)
                    ModelFile.save path { info with Normalization = [ "mean", [| 1.0f; 2.0f |]; "std", [| 1.0f |] ] } (Model.create engine 2 (net ()))
                    expectRefused path "'mean' (2 values) and 'std' (1 values) differ in length"))
        ]

        testPropertyWithConfig Properties.defaults "files forged with a valid checksum (labels, weights, normalisation) load valid or raise ModelFileException naming what" (fun (seed: int) ->
            let mutable valid = false
            withFile (fun path ->
                saved path |> ignore
                let rng = Random seed
                let bad = [| Single.NaN; Single.PositiveInfinity; Single.NegativeInfinity; 0.0f; -1.0f; 1e30f |]
                match rng.Next 3 with
                | 0 ->
                    let labels = [| "\"zero\""; "\"one\""; "\"two\""; "\"three\""; "\"\""; "7"; "null"; "\"one\""; "{}"; "\"x\"" |]
                    let n = rng.Next 7
                    let forged = Array.init n (fun _ -> labels[rng.Next labels.Length]) |> String.concat ","
                    resign path (fun h -> h.Replace("\"labels\":[\"zero\",\"one\",\"two\",\"three\"]", sprintf "\"labels\":[%s]" forged))
                | 1 -> resignFloats path (fun f -> f[rng.Next f.Length] <- bad[rng.Next bad.Length])
                | _ -> resignFloats path (fun f -> f[normalizationOffset "std" + rng.Next 3] <- bad[rng.Next bad.Length])
                use engine = new ManagedEngine(1)
                valid <-
                  try
                    let model, loaded = ModelFile.load engine info.SchemaFingerprint path
                    let labels = loaded.Labels
                    labels.Length = 4
                    && List.distinct labels = labels
                    && labels |> List.forall (fun l -> not (String.IsNullOrWhiteSpace l))
                    && model.Snapshot() |> Array.forall (Array.forall Single.IsFinite)
                    && loaded.Normalization |> List.forall (fun (name, v) -> v |> Array.forall (fun x -> Single.IsFinite x && (name <> "std" || x > 0.0f)))
                  with :? ModelFileException as e -> e.Message.StartsWith(path + ": ", StringComparison.Ordinal))
            valid)

        testCase "a missing file is reported as a ModelFileException" (fun () ->
            expectModelFileError (Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid().ToString("N") + ".hnn")) "not found")
    ]
