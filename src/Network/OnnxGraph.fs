namespace Hybrid.Classifier

open System
open System.Runtime.InteropServices
open Google.Protobuf
open Onnx

/// A small builder over OnnxSharp's generated ONNX protobuf classes (onnx.proto's GraphProto, NodeProto,
/// TensorProto): unique value names, float and int64 constants stored as initializers, nodes with attributes.
/// Every value is float32 unless a constant says otherwise; the batch axis is the symbolic dimension "batch".
type internal OnnxGraph(name: string) =
    let graph = GraphProto(Name = name)
    let used = Collections.Generic.HashSet<string>()

    /// ONNX's TensorProto.DataType codes used here.
    static member Float = 1
    static member Int64 = 7

    /// The graph being built.
    member _.Graph = graph

    /// A value name not used before, derived from `stem` ("stem", then "stem_1", ...).
    member _.Fresh(stem: string) =
        let mutable candidate = stem
        let mutable k = 1
        while not (used.Add candidate) do
            candidate <- sprintf "%s_%d" stem k
            k <- k + 1
        candidate

    /// Adds a float32 initializer of shape `dims` (row-major `values`) and returns its name.
    member g.Constant(stem: string, dims: int64[], values: float32[]) =
        let expected = dims |> Array.fold (*) 1L
        if int64 values.Length <> expected then
            invalidArg "values" (sprintf "constant '%s': %d values for dims [%s]." stem values.Length (String.Join(", ", dims)))
        let t = TensorProto(Name = g.Fresh stem, DataType = OnnxGraph.Float)
        t.Dims.AddRange dims
        t.RawData <- ByteString.CopyFrom(MemoryMarshal.AsBytes(ReadOnlySpan<float32>(values)))
        graph.Initializer.Add t
        t.Name

    /// Adds an int64 initializer (shapes, axes, pads) and returns its name; `dims` empty makes a scalar.
    member g.ConstantInt64(stem: string, dims: int64[], values: int64[]) =
        let t = TensorProto(Name = g.Fresh stem, DataType = OnnxGraph.Int64)
        t.Dims.AddRange dims
        t.Int64Data.AddRange values
        graph.Initializer.Add t
        t.Name

    /// A one-dimensional int64 constant.
    member g.Int64s(stem: string, values: int64[]) = g.ConstantInt64(stem, [| int64 values.Length |], values)

    /// A float32 scalar constant.
    member g.Scalar(stem: string, value: float32) = g.Constant(stem, [||], [| value |])

    /// Adds node `op` (default ONNX domain) reading `inputs` ("" for an omitted optional input) and returns the name
    /// of its single output, derived from `stem`.
    member g.Node(op: string, stem: string, inputs: string list, ?attributes: AttributeProto list) =
        let output = g.Fresh stem
        let node = NodeProto(OpType = op, Name = output)
        node.Input.AddRange inputs
        node.Output.Add output
        for a in defaultArg attributes [] do node.Attribute.Add a
        graph.Node.Add node
        output

    /// Declares a float32 graph input or output with the batch axis symbolic ("batch") and the rest fixed.
    static member ValueInfo(name: string, perSample: int64[]) =
        let shape = TensorShapeProto()
        shape.Dim.Add(TensorShapeProto.Types.Dimension(DimParam = "batch"))
        for d in perSample do
            shape.Dim.Add(if d < 0L then TensorShapeProto.Types.Dimension(DimParam = "samples") else TensorShapeProto.Types.Dimension(DimValue = d))
        ValueInfoProto(Name = name, Type = TypeProto(TensorType = TypeProto.Types.Tensor(ElemType = OnnxGraph.Float, Shape = shape)))

    member g.AddInput(name: string, perSample: int64[]) =
        used.Add name |> ignore
        graph.Input.Add(OnnxGraph.ValueInfo(name, perSample))
        name

    member _.AddOutput(name: string, perSample: int64[]) = graph.Output.Add(OnnxGraph.ValueInfo(name, perSample))

/// ONNX node attributes.
module internal OnnxAttr =
    let int (name: string) (value: int64) =
        AttributeProto(Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value)
    let ints (name: string) (values: int64 seq) =
        let a = AttributeProto(Name = name, Type = AttributeProto.Types.AttributeType.Ints)
        a.Ints.AddRange values
        a
    let float (name: string) (value: float32) =
        AttributeProto(Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value)
    let string (name: string) (value: string) =
        AttributeProto(Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8 value)
