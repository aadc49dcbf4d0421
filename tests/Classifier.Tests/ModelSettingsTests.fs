/// ModelSettings: the typed settings of model files, their JSON form, and the name/value strings of format 1 files.
module Hybrid.ClassifierTests.ModelSettingsTests

open System
open System.Buffers.Binary
open System.IO
open System.Text.Json
open Expecto
open Hybrid.TestSupport
open Hybrid.Classifier

let private fixture (name: string) =
    let root = TestData.repositoryRoot () |> Option.defaultWith (fun () -> failtest "repository root not found")
    Path.Combine(root, "tests", "Classifier.Tests", "fixtures", name)

let private withDir (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-modelsettings-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try body dir finally Directory.Delete(dir, true)

/// Settings drawn from `seed`: each field null or a value of its type (text with separators, quotes and non-ASCII
/// characters; finite numbers of any magnitude).
let private random (seed: int) : ModelSettings =
    let rng = Random seed
    let maybe f = if rng.Next 3 = 0 then None else Some(f ())
    let chars = "ab=,+/ é\"\\:*"
    let text () = String(Array.init (rng.Next 8) (fun _ -> chars[rng.Next chars.Length]))
    let str () : string | null = match maybe text with Some t -> t | None -> null
    let int () = maybe (fun () -> rng.Next(-5, Int32.MaxValue)) |> Option.toNullable
    let real () = maybe (fun () -> (rng.NextDouble() - 0.5) * 10.0 ** float (rng.Next(-300, 300))) |> Option.toNullable
    { Data = (match maybe (fun () -> Array.init (rng.Next 3) (fun _ -> text ())) with Some a -> a | None -> null)
      LabelMap = (match maybe (fun () -> Array.init (rng.Next 3) (fun _ -> [| text (); text () |])) with Some a -> a | None -> null)
      Model = str (); Split = str (); Epochs = int (); BatchSize = int (); LearningRate = real (); Augment = str (); Copies = int ()
      AugmentPool = int (); Validation = real (); EarlyStopping = int (); ClassWeight = str ()
      Refit = maybe (fun () -> rng.Next 2 = 0) |> Option.toNullable; Seed = int (); Device = str (); Fold = str (); Grouping = str ()
      Features = str (); FeatureParameters = str (); SchemaParameters = str (); SchemaAssembly = str (); PerUtterance = str ()
      TestSpeeds = str (); SampleRate = int (); ClipSamples = int (); RecordingSamples = int ()
      Segment = (match maybe (fun () -> { Window = rng.Next(); Hop = rng.Next() }) with Some g -> g | None -> null)
      Trim = str (); Loudness = real () }

/// The probabilities predict gave for each recording when a fixture was written (its .predictions.jsonl).
let private recordedPredictions (name: string) =
    File.ReadAllLines(fixture (name + ".predictions.jsonl"))
    |> Array.map (fun line ->
        use doc = JsonDocument.Parse line
        nonNull (doc.RootElement.GetProperty("path").GetString()),
        [ for p in doc.RootElement.GetProperty("probabilities").EnumerateObject() -> p.Name, p.Value.GetDouble() ])

let private expectPredictions (what: string) (expected: (string * (string * float) list)[]) (predictions: Prediction list) =
    Expect.equal predictions.Length expected.Length (what + ": one prediction per recording")
    for (file, probabilities), p in Array.zip expected (Array.ofList predictions) do
        Expect.equal (nonNull (Path.GetFileName p.Path)) file "recording order"
        for (label, e), (label', a) in List.zip probabilities p.Probabilities do
            Expect.equal label' label "label order"
            Expect.floatClose { absolute = 1e-6; relative = 1e-5 } a e (sprintf "%s: %s's P(%s)" what file label)

[<Tests>]
let tests =
    testList "ModelSettings" [
        testPropertyWithConfig Properties.defaults "settings round-trip through their stored JSON form" <| fun (seed: int) ->
            let s = random seed
            Expect.equal (ModelSettings.ofStored "m.hnn" (ModelSettings.toStored s)) s "round trip"

        test "a new model file stores its settings as one JSON object with snake_case names, in format 2" {
            withDir (fun dir ->
                let prepared =
                    { ModelFixtures.preparation "logreg" with
                        TestSpeeds = [ 0.9, 0.5; 1.0, 1.0 ]
                        Clips = { (ModelFixtures.preparation "logreg").Clips with RecordingSamples = Some 44100; Segment = Some(22050, 11025); Loudness = Some -20.0 } }
                let path = ModelFixtures.write (Path.Combine(dir, "m.hnn")) "logreg" [ "a"; "b" ] prepared 1 30.0f
                let bytes = File.ReadAllBytes path
                Expect.equal (BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan(bytes, 8, 4))) 2 "format version 2"
                use header = JsonDocument.Parse(ReadOnlyMemory(bytes, 16, BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan(bytes, 12, 4))))
                let mutable unused = Unchecked.defaultof<JsonElement>
                Expect.isFalse (header.RootElement.TryGetProperty("trainingSettings", &unused)) "no name/value strings"
                let settings = header.RootElement.GetProperty "settings"
                Expect.sequenceEqual [ for p in settings.EnumerateObject() -> p.Name ]
                    [ "data"; "label_map"; "model"; "split"; "epochs"; "batch_size"; "learning_rate"; "augment"; "copies"; "augment_pool"
                      "validation"; "early_stopping"; "class_weight"; "refit"; "seed"; "device"; "fold"; "grouping"; "features"
                      "feature_parameters"; "schema_parameters"; "schema_assembly"; "per_utterance"; "test_speeds"; "sample_rate"
                      "clip_samples"; "recording_samples"; "segment"; "trim"; "loudness" ]
                    "every setting under its snake_case name"
                Expect.equal (settings.GetProperty("model").GetString()) "logreg" "the recipe"
                Expect.equal (settings.GetProperty("sample_rate").GetInt32()) prepared.Clips.SampleRate "numbers are numbers"
                Expect.equal (settings.GetProperty("segment").GetRawText()) """{"window":22050,"hop":11025}""" "windows in samples"
                Expect.equal (settings.GetProperty("loudness").GetDouble()) -20.0 "the level"
                Expect.equal (settings.GetProperty("test_speeds").GetString()) "0.9*0.5,1" "test speeds as --test-speeds writes them"
                Expect.equal (settings.GetProperty("epochs").ValueKind) JsonValueKind.Null "null where not recorded"
                Expect.equal (ModelSettings.key (nameof prepared.Clips.Segment)) "segment" "key names a field as the file does")
        }

        test "a format 1 model file with every setting train recorded reads typed and predicts as the code that wrote it" {
            // Written by the build before typed settings (4907dce) with ModelFixtures' network code: logreg on a
            // 20-MFCC variant of mfcc-mean40 at 8 kHz, recordings trimmed, levelled, cut to 2.5 s and windowed, three
            // test speeds; the probabilities are what that build predicted for four seeded recordings.
            let name = "format1-mfcc-mean40-logreg-windows"
            let path = fixture (name + ".hnn")
            let _, info = ModelFile.inspect path
            Expect.isTrue (match info.Settings with Pairs _ -> true | Json _ -> false) "format 1: name/value strings"
            let s = ModelSettings.ofStored path info.Settings
            Expect.equal s.Data [| "/data/a"; "/data/b" |] "data joined by ' + '"
            Expect.equal s.LabelMap [| [| "zero"; "0" |]; [| "one"; "1" |] |] "the label map"
            Expect.equal (s.Epochs, s.BatchSize, s.LearningRate, s.EarlyStopping, s.Refit) (Nullable 7, Nullable 32, Nullable 0.005, Nullable 3, Nullable false) "numbers"
            Expect.equal s.Segment { Window = 4000; Hop = 2000 } "WINDOW/HOP"
            Expect.equal (s.RecordingSamples, s.Loudness, s.Trim) (Nullable 20000, Nullable -23.5, "30:256:64") "the preparation"
            withDir (fun dir ->
                let expected = recordedPredictions name
                let files =
                    [ for seed, rate, seconds in [ 21, 8000, 3.0; 22, 8000, 1.2; 23, 16000, 2.5; 24, 22050, 4.0 ] ->
                        ModelFixtures.writeRecording (Path.Combine(dir, sprintf "rec-%d.wav" seed)) seed rate seconds ]
                expectPredictions "format 1" expected (Inference.predict "managed" ignore path files)
                // Saved again, the same settings go into format 2 and predict the same.
                use engine = new Hybrid.Dsp.Managed.ManagedEngine(1)
                let model, _ = ModelFile.load engine info.SchemaFingerprint path
                let again = Path.Combine(dir, "again.hnn")
                ModelFile.save again { info with Settings = ModelSettings.toStored s } model
                Expect.equal (ModelSettings.ofStored again (snd (ModelFile.inspect again)).Settings) s "the same settings"
                expectPredictions "format 2" expected (Inference.predict "managed" ignore again files))
        }

        test "format 1 values that do not read as their setting's type are refused naming the setting" {
            for key, value in [ "epochs", "three"; "loudness", "NaN"; "refit", "yes"; "label_map", "zero"; "segment", "8192"; "segment", "a/b" ] do
                let e = Expect.throwsC (fun () -> ModelSettings.ofPairs "m.hnn" [ key, value ] |> ignore) id
                Expect.isTrue (e :? ModelFileException && e.Message.Contains(sprintf "'%s' = '%s'" key value)) (sprintf "%s = %s: %s" key value e.Message)
            let s = ModelSettings.ofPairs "m.hnn" [ "early_stopping", "none"; "loudness", "none"; "trim", "none"; "optimizer", "adam" ]
            Expect.equal s { ModelSettings.empty with Trim = "none" } "none is null where the setting is not text; unknown names are dropped"
        }

        test "a settings object of the wrong shape is refused naming the file" {
            let stored = Json(JsonDocument.Parse("""{"sample_rate": "8000"}""").RootElement)
            let e = Expect.throwsC (fun () -> ModelSettings.ofStored "m.hnn" stored |> ignore) id
            Expect.isTrue (e :? ModelFileException && e.Message.StartsWith "m.hnn: header: 'settings' is invalid") e.Message
        }
    ]
