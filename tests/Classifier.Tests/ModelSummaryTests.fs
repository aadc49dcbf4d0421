/// Model summaries: Keras' rows (names, output shapes, parameter counts that are the weight arrays' sizes), the
/// totals, and the input as the model file records it.
module Hybrid.ClassifierTests.ModelSummaryTests

open System
open System.IO
open Expecto
open Hybrid.Dsp.Managed
open Hybrid.Classifier

let private digits = [ for d in 0 .. 9 -> string d ]

let private withDir (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), "hybrid-summary-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try body dir finally Directory.Delete(dir, true)

/// Every layer's trainable and non-trainable counts equal the sizes of its arrays in the loaded model (parameters,
/// then states such as BatchNorm's running statistics), and the totals are their sums.
let private expectCountsAreArrays (path: string) (summary: ModelSummary) =
    let _, info = ModelFile.inspect path
    use engine = new ManagedEngine(1)
    let model, _ = ModelFile.load engine info.SchemaFingerprint path
    Expect.equal summary.Layers.Length model.Runtimes.Length "one row per layer"
    for layer, runtime in List.zip summary.Layers (List.ofArray model.Runtimes) do
        let trainable = runtime.Params |> List.sumBy (fun p -> p.Value.Length)
        let states = runtime.States |> List.sumBy (fun (_, t) -> t.Length)
        Expect.equal layer.Trainable trainable (sprintf "%s: trainable parameters are its parameter arrays' sizes" layer.Name)
        Expect.equal layer.NonTrainable states (sprintf "%s: non-trainable parameters are its state arrays' sizes" layer.Name)
    let all = model.Tensors |> Array.sumBy (fun (_, t) -> t.Length)
    Expect.equal (summary.Trainable + summary.NonTrainable) all "the total is every weight array's size"
    Expect.equal summary.Trainable (summary.Layers |> List.sumBy (fun l -> l.Trainable)) "trainable total"
    Expect.equal summary.FileBytes (FileInfo(path).Length) "the file's size"

[<Tests>]
let tests =
    testList "ModelSummary" [
        test "a cnn2d model: Keras' names, output shapes per sample and counts that are its weight arrays' sizes" {
            withDir (fun dir ->
                let path = ModelFixtures.write (Path.Combine(dir, "cnn2d.hnn")) "cnn2d" digits (ModelFixtures.preparation "cnn2d") 1 10.0f
                let s = ModelSummary.ofFile path
                Expect.equal s.InputShape [| 1; 40; 65 |] "one channel of 40 bands x 65 frames"
                Expect.equal (s.Layers |> List.map (fun l -> l.Name)) (Net.layerNames (fst (ModelFile.inspect path))) "Keras' names"
                let row i = s.Layers.[i]
                Expect.equal ((row 0).Name, (row 0).Kind, (row 0).OutputShape) ("conv2d", "Conv2D", [| 16; 40; 65 |]) "the first convolution"
                Expect.equal ((row 0).Trainable, (row 0).NonTrainable) (16L * 9L + 16L, 0L) "3 x 3 kernels of one channel and a bias each"
                Expect.equal ((row 1).Kind, (row 1).Trainable, (row 1).NonTrainable) ("BatchNormalization", 32L, 32L) "gamma and beta; running mean and variance"
                Expect.equal (row 3).OutputShape [| 16; 20; 32 |] "max pooling halves each axis (floor)"
                Expect.equal (row 4).Name "conv2d_1" "the second convolution is numbered"
                Expect.equal (row 12).OutputShape [| 64 * 5 * 8 |] "flattened"
                Expect.equal ((row 14).Kind, (row 14).OutputShape) ("Dense", [| 10 |]) "one output per class"
                expectCountsAreArrays path s
                Expect.equal s.Recipe (Some "cnn2d") "the recipe"
                Expect.equal s.Labels digits "the classes"
                match s.Input with
                | Some i ->
                    Expect.equal (i.SampleRate, i.ClipSamples, i.Features, i.FeatureShape) (8000, 8192, "logmel-fsdd", [| 40; 65 |]) "the input"
                    Expect.equal i.FeatureParameters "n_fft=512,win_length=512" "cnn2d's own n_fft (and the window it sets)"
                    Expect.equal i.Trim "20:256:64" "the recipe's trim"
                    Expect.equal (i.PerUtterance, i.Segment, i.TestSpeeds) ("mean", None, []) "per-utterance mean, one clip, no speeds"
                | None -> failtestf "the input is readable: %A" s.InputProblem)
        }

        test "an mlp model: a vector input, dense shapes and no non-trainable parameter" {
            withDir (fun dir ->
                let path = ModelFixtures.write (Path.Combine(dir, "mlp.hnn")) "mlp" [ "a"; "b"; "c" ] (ModelFixtures.preparation "mlp") 2 30.0f
                let s = ModelSummary.ofFile path
                Expect.equal s.InputShape [| 40 |] "40 MFCC means"
                Expect.equal [ for l in s.Layers -> l.Kind, l.OutputShape ]
                    [ "Flatten", [| 40 |]; "Dense", [| 256 |]; "ReLU", [| 256 |]; "Dropout", [| 256 |]; "Dense", [| 128 |]; "ReLU", [| 128 |]
                      "Dropout", [| 128 |]; "Dense", [| 3 |] ] "the layers and their shapes"
                Expect.equal [ for l in s.Layers -> l.Trainable ] [ 0L; 40L * 256L + 256L; 0L; 0L; 256L * 128L + 128L; 0L; 0L; 128L * 3L + 3L ] "dense kernels and biases"
                Expect.equal s.NonTrainable 0L "no state"
                expectCountsAreArrays path s
                Expect.equal (s.Input |> Option.map (fun i -> i.Features, i.FeatureShape)) (Some("mfcc-mean40", [| 40 |])) "the schema")
        }

        test "windows, loudness, recording length and test speeds are reported as the file records them, in seconds" {
            withDir (fun dir ->
                let p = ModelFixtures.preparation "cnn2d"
                let prepared =
                    { p with TestSpeeds = [ 0.9, 1.0; 1.0, 2.0 ]
                             Clips = { p.Clips with Segment = Some(8192, 4096); RecordingSamples = Some 80000; Loudness = Some -20.0; Trim = None } }
                let s = ModelSummary.ofFile (ModelFixtures.write (Path.Combine(dir, "w.hnn")) "cnn2d" digits prepared 3 10.0f)
                match s.Input with
                | Some i ->
                    Expect.equal i.Segment (Some(1.024, 0.512)) "windows of 1.024 s every 0.512 s"
                    Expect.equal i.RecordingSeconds (Some 10.0) "recordings cut to 10 s"
                    Expect.equal (i.Loudness, i.Trim, i.TestSpeeds) (Some -20.0, "none", [ 0.9, 1.0; 1.0, 2.0 ]) "loudness, no trim, speeds"
                | None -> failtestf "the input is readable: %A" s.InputProblem
                Expect.equal (s.Settings.GetProperty("segment").GetRawText()) """{"window":8192,"hop":4096}""" "every setting, as recorded")
        }

        test "a schema no loaded assembly declares: the network is summarised and the input says why it is not" {
            withDir (fun dir ->
                let path = ModelFixtures.write (Path.Combine(dir, "m.hnn")) "logreg" [ "a"; "b" ] (ModelFixtures.preparation "logreg") 4 30.0f
                let net, info = ModelFile.inspect path
                use engine = new ManagedEngine(1)
                let model, _ = ModelFile.load engine info.SchemaFingerprint path
                let settings = { ModelSettings.ofStored path info.Settings with Features = "my-schema"; SchemaAssembly = "My.Schemas.dll" }
                let other = Path.Combine(dir, "other.hnn")
                ModelFile.save other { info with Settings = ModelSettings.toStored settings } model
                let s = ModelSummary.ofFile other
                Expect.equal s.Layers.Length net.Layers.Length "the layers"
                Expect.isNone s.Input "no input"
                Expect.stringContains (defaultArg s.InputProblem "") "'my-schema', which no loaded assembly defines; it is declared in My.Schemas.dll" "why")
        }

        test "a missing, a truncated and a damaged file raise ModelFileException naming the file" {
            withDir (fun dir ->
                let missing = Path.Combine(dir, "missing.hnn")
                let e = Expect.throwsC (fun () -> ModelSummary.ofFile missing |> ignore) id
                Expect.isTrue (e :? ModelFileException) (sprintf "a ModelFileException, was %s" (e.GetType().Name))
                Expect.stringContains e.Message missing "names the file"
                let path = ModelFixtures.write (Path.Combine(dir, "m.hnn")) "mlp" [ "a"; "b" ] (ModelFixtures.preparation "mlp") 5 30.0f
                let bytes = File.ReadAllBytes path
                let truncated = Path.Combine(dir, "truncated.hnn")
                File.WriteAllBytes(truncated, bytes.[.. bytes.Length - 100])
                let damaged = Path.Combine(dir, "damaged.hnn")
                File.WriteAllBytes(damaged, Array.mapi (fun i (b: byte) -> if i = bytes.Length - 200 then b ^^^ 0xFFuy else b) bytes)
                for file, fragment in [ truncated, "truncated"; damaged, "checksum mismatch" ] do
                    let e = Expect.throwsC (fun () -> ModelSummary.ofFile file |> ignore) id
                    Expect.isTrue (e :? ModelFileException) (sprintf "%s: a ModelFileException, was %s" fragment (e.GetType().Name))
                    Expect.stringContains e.Message file "names the file"
                    Expect.stringContains e.Message fragment "says what is wrong")
        }
    ]
