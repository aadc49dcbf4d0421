/// Net composition, shape inference and the Keras-like summary.
module Hybrid.ClassifierTests.NetTests

open System
open Expecto
open Hybrid.Classifier

[<Tests>]
let tests =
    testList "Net" [
        testCase "the reference CNN infers Keras' output shapes and parameter counts" (fun () ->
            let net = Bench.referenceCnn ()
            let shapes = net.LayerOutputShapes |> Array.map List.ofArray |> List.ofArray
            Expect.equal shapes[0] [ 32; 40; 65 ] "conv 1 'same'"
            Expect.equal shapes[3] [ 32; 20; 32 ] "pool 1 floors 65 / 2"
            Expect.equal shapes[7] [ 64; 10; 16 ] "pool 2"
            Expect.equal shapes[8] [ 10240 ] "flatten"
            Expect.equal net.OutputShape [| 10 |] "classes"
            let trainable, fixedCount = Net.parameterCounts net
            Expect.equal trainable (320L + 64L + 18496L + 128L + 1310848L + 1290L) "trainable"
            Expect.equal fixedCount (64L + 128L) "BatchNorm moving statistics"
            let summary = Net.summary net
            for text in [ "conv2d (Conv2D)"; "(None, 32, 40, 65)"; "18496"; "1310848"; "Total params: 1331338"; "Non-trainable params: 192"; "conv2d_1 (Conv2D)" ] do
                Expect.stringContains summary text "summary row")

        testCase "the operator appends layers like Net.sequential" (fun () ->
            let a = Net.sequential [ 4 ] [ Layers.dense 3 ] --> Layers.relu --> Layers.dense 2
            let b = Net.sequential [ 4 ] [ Layers.dense 3; Layers.relu; Layers.dense 2 ]
            Expect.equal a.Layers b.Layers "same layers"
            Expect.equal a.OutputShape b.OutputShape "same output")

        testCase "1-D layers infer lengths with stride, dilation and padding" (fun () ->
            let net = Net.sequential [ 1; 100 ] [ Layers.conv1dWith 8 5 2 3 Valid; Layers.maxPool1d 2; Layers.conv1d 4 3 Same; GlobalAvgPool ]
            Expect.equal (net.LayerOutputShapes |> Array.map List.ofArray |> List.ofArray) [ [ 8; 44 ]; [ 8; 22 ]; [ 4; 22 ]; [ 4 ] ] "shapes")

        testCase "a layer that does not fit its input is named in the error" (fun () ->
            let e = Expect.throwsT<ArgumentException> (fun () -> Net.sequential [ 1; 4; 4 ] [ Layers.conv2d 2 (5, 5) Valid ] |> ignore)
            ignore e
            try
                Net.sequential [ 1; 4; 4 ] [ Layers.flatten; Layers.conv2d 2 (3, 3) Same ] |> ignore
                failtest "expected ArgumentException"
            with :? ArgumentException as e ->
                Expect.stringContains e.Message "layer 1" "names the layer"
                Expect.stringContains e.Message "rank 3" "says what was expected")
    ]
