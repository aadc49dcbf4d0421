/// LayerRegistry: one name per layer kind, shared by the summary, model files and ONNX nodes; older aliases still read.
module Hybrid.ClassifierTests.LayerRegistryTests

open Expecto
open Hybrid.Classifier

/// Fields a model file could hold for any kind (every integer 2, every float 0.5, 'same', Glorot-uniform).
let private fields =
    { new LayerFields with
        member _.Int _ = 2
        member _.Float _ = 0.5
        member _.String name = if name = "padding" then "same" elif name = "init" then "glorot_uniform" else "?"
        member _.Error problem = exn problem }

[<Tests>]
let tests =
    testList "LayerRegistry" [
        testCase "no name belongs to two kinds" (fun () ->
            let names = LayerRegistry.all |> List.collect (fun r -> r.Names)
            Expect.equal (List.distinct names) names "unique names")

        testCase "every name, alias or not, reads a layer whose kind carries the registration's first name" (fun () ->
            for r in LayerRegistry.all do
                for name in r.Names do
                    let layer = (LayerRegistry.tryRead name fields).Value
                    Expect.equal layer.TypeName (List.head r.Names) (sprintf "'%s' reads a %s" name layer.TypeName))

        testCase "the Layers constructors cover every registered kind" (fun () ->
            let built =
                [ Layers.dense 2; Layers.conv1d 2 3 Same; Layers.conv2d 2 (3, 3) Same; Layers.maxPool1d 2; Layers.avgPool1d 2
                  Layers.maxPool2d 2; Layers.avgPool2d 2; Layers.globalAvgPool; Layers.batchNorm; Layers.dropout 0.1
                  Layers.relu; Layers.leakyRelu 0.3; Layers.flatten ]
                |> List.map (fun l -> l.TypeName)
            Expect.equal (List.sort built) (List.sort LayerRegistry.names) "one constructor per kind")
    ]
