namespace Hybrid.Classifier

open System
open System.IO
open Google.Protobuf
open Onnx

/// ONNX graphs (opset 17) of trained networks, written with OnnxSharp's generated protobuf classes. Each layer kind
/// maps itself (ILayerKind.ToOnnx): Dense -> Gemm, Conv1D/Conv2D -> Conv, BatchNormalization in inference form,
/// ReLU/LeakyReLU, MaxPool/AveragePool, GlobalAveragePool, Flatten; Dropout is removed.
[<RequireQualifiedAccess>]
module OnnxModel =
    /// The operator set the graphs use.
    [<Literal>]
    let Opset = 17L

    /// ONNX IR version 8 (the IR of opset 17).
    [<Literal>]
    let IrVersion = 8L

    /// Appends the network's layers in inference mode, reading `input` ([batch; the network's input shape]) and
    /// returns the name of the logits value [batch; classes].
    let internal appendNetwork (g: OnnxGraph) (model: Model) (input: string) : string =
        let weights = dict [ for name, t in model.Tensors -> name, t ]
        let net = model.Net
        let mutable x = input
        net.Layers
        |> List.iteri (fun i layer ->
            let name = sprintf "%d.%s" i (layer.TypeName.ToLowerInvariant())
            let weight role =
                match weights.TryGetValue(name + "." + role) with
                | true, t -> t.ToArray()
                | _ -> invalidOp (sprintf "layer %d (%O) has no tensor '%s.%s'." i layer name role)
            x <- layer.Kind.ToOnnx(g, name, x, net.InputOf i, weight))
        x

    /// A ModelProto around `graph` (opset 17, IR 8) with `metadata` as metadata_props.
    let internal wrap (graph: GraphProto) (metadata: (string * string) list) =
        let model =
            ModelProto(IrVersion = IrVersion, ProducerName = "Hybrid", ProducerVersion = Container.libraryVersion,
                       Domain = "hybrid", ModelVersion = 1L, Graph = graph)
        model.OpsetImport.Add(OperatorSetIdProto(Domain = "", Version = Opset))
        for k, v in metadata do
            model.MetadataProps.Add(StringStringEntryProto(Key = k, Value = v))
        model

    /// Writes a ModelProto to `path` (temporary file, then rename).
    let internal write (path: string) (model: ModelProto) =
        let full = Path.GetFullPath path
        match Path.GetDirectoryName full with
        | null -> ()
        | dir -> Directory.CreateDirectory dir |> ignore
        let temporary = full + ".tmp"
        do
            use stream = File.Create temporary
            model.WriteTo(stream)
        File.Move(temporary, full, true)

    /// Writes the network alone as an ONNX model: input "input" [batch; the network's input shape], output
    /// "probabilities" [batch; classes] (Softmax of the logits), `metadata` as metadata_props. Model.predict and
    /// ONNX Runtime give the same probabilities (inference mode).
    let saveNetwork (path: string) (metadata: (string * string) list) (model: Model) : unit =
        let g = OnnxGraph "hybrid"
        let input = g.AddInput("input", model.Net.InputShape |> Array.map int64)
        let logits = appendNetwork g model input
        let p = g.Node("Softmax", "probabilities", [ logits ], [ OnnxAttr.int "axis" -1L ])
        g.AddOutput(p, [| int64 (Model.classes model) |])
        write path (wrap g.Graph metadata)
