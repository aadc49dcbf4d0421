/// OnnxModel: every layer kind's ONNX mapping gives ONNX Runtime's probabilities equal to Model.predict's.
module Hybrid.ClassifierTests.OnnxTests

open System
open System.IO
open Expecto
open Microsoft.ML.OnnxRuntime
open Hybrid.Dsp
open Hybrid.Dsp.Managed
open Hybrid.Classifier
open Hybrid.ClassifierTests.Support

/// Runs an ONNX file on ONNX Runtime (CPU): `input` [batch; shape] -> the first output's values.
let runOnnx (path: string) (inputName: string) (shape: int[]) (values: float32[]) : float32[] =
    use session = new InferenceSession(path)
    let dims = Array.append [| int64 (values.Length / size shape) |] (shape |> Array.map int64)
    use input = OrtValue.CreateTensorValueFromMemory<float32>(values, dims)
    use runOptions = new RunOptions()
    let outputName = session.OutputNames[0]
    use outputs = session.Run(runOptions, [| inputName |], [| input |], [| outputName |])
    outputs[0].GetTensorDataAsSpan<float32>().ToArray()

/// Largest absolute difference between a [n; k] matrix and a flat row-major array.
let maxDifference (expected: float32[,]) (actual: float32[]) =
    let k = expected.GetLength 1
    if actual.Length <> expected.Length then failtestf "expected %d probabilities, ONNX Runtime gave %d" expected.Length actual.Length
    Seq.max (seq { for i in 0 .. actual.Length - 1 -> abs (float expected[i / k, i % k] - float actual[i]) })

/// Small networks that together use every layer kind, odd 'same' paddings and strides included.
let private nets =
    [ "Conv2D, BatchNormalization, LeakyReLU, pooling 2-D, Flatten, Dropout, Dense",
      Net.sequential [ 3; 9; 11 ]
          [ Conv2D(4, 3, 2, 2, 1, Same, GlorotUniform); Layers.batchNorm; Layers.leakyRelu 0.2
            Pool2D(PoolKind.Average, 2, 3, 2, 2, Same); Pool2D(PoolKind.Max, 2, 2, 1, 1, Valid); Layers.flatten; Layers.dropout 0.3; Layers.dense 5 ]
      "Conv1D with stride and dilation, pooling 1-D, global average pooling",
      Net.sequential [ 2; 30 ]
          [ Conv1D(4, 5, 2, Same, 2, HeUniform); Layers.batchNorm; Layers.relu; Pool1D(PoolKind.Max, 3, 2, Same)
            Pool1D(PoolKind.Average, 2, 2, Valid); Layers.globalAvgPool; Layers.dense 3 ]
      "BatchNormalization and Dense on feature vectors",
      Net.sequential [ 6 ] [ Layers.batchNorm; Layers.dense 4; Layers.relu; Layers.dense 3 ]
      "global average pooling of an image",
      Net.sequential [ 2; 5; 7 ] [ Layers.globalAvgPool; Layers.dense 3 ] ]

[<Tests>]
let tests =
    testList "OnnxModel" [
        for name, net in nets do
            testCase (sprintf "%s: ONNX Runtime's probabilities equal Model.predict's" name) (fun () ->
                use engine = new ManagedEngine(2)
                let model = Model.create engine 5 net
                let rng = Random 3
                // Every tensor random (running variances positive), so BatchNormalization's statistics matter.
                model.Restore(model.Tensors |> Array.map (fun (n, t) ->
                    let v = uniform rng (int t.Length)
                    if n.EndsWith "moving_variance" then v |> Array.map (fun x -> 0.5f + abs x) else v))
                let x = uniform rng (7 * net.SampleSize) |> Array.map (fun v -> 2.0f * v)
                let expected = Model.predict model x
                let path = Path.Combine(Path.GetTempPath(), "hybrid-onnx-" + Guid.NewGuid().ToString("N") + ".onnx")
                try
                    OnnxModel.saveNetwork path [ "labels", "a,b,c" ] model
                    let actual = runOnnx path "input" net.InputShape x
                    let d = maxDifference expected actual
                    Expect.isLessThan d 1e-5 (sprintf "max |ONNX Runtime - predict| = %g" d)
                finally
                    File.Delete path)

        testCase "the graph is opset 17 and names its nodes after the layer kinds" (fun () ->
            use engine = new ManagedEngine(1)
            let model = Model.create engine 0 (Net.sequential [ 2; 5; 7 ] [ Layers.globalAvgPool; Layers.dense 3 ])
            let path = Path.Combine(Path.GetTempPath(), "hybrid-onnx-" + Guid.NewGuid().ToString("N") + ".onnx")
            try
                OnnxModel.saveNetwork path [ "labels", "a,b,c" ] model
                let proto = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes path)
                Expect.equal (proto.OpsetImport |> Seq.map (fun o -> o.Domain, o.Version) |> List.ofSeq) [ "", 17L ] "opset"
                let names = proto.Graph.Node |> Seq.map (fun n -> n.Name) |> List.ofSeq
                Expect.contains names "0.globalaveragepooling" "node named after the kind"
                Expect.contains names "1.dense" "node named after the kind"
                Expect.equal (proto.MetadataProps |> Seq.map (fun p -> p.Key, p.Value) |> List.ofSeq) [ "labels", "a,b,c" ] "metadata"
            finally
                File.Delete path)
    ]
