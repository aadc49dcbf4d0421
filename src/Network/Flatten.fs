namespace Hybrid.Classifier

open Hybrid.Dsp

/// Flatten: a view of [N; ...] as [N; product] (no copy).
type internal FlattenRuntime(engine: Engine, inShape: int[]) =
    inherit LayerRuntime(engine)
    let size = Array.fold (*) 1 inShape
    override _.Forward(x, _, _) = x.Reshape(x.Shape[0], size)
    override _.Backward(dy, needDx) =
        if needDx then Some(dy.Reshape(Array.append [| dy.Shape[0] |] inShape)) else None

/// Flatten: any per-sample shape to [product]; ONNX Flatten (axis 1).
type internal FlattenKind =
    | FlattenKind
    interface ILayerKind with
        member _.Name = "Flatten"
        member _.Output(what, input) =
            let size = input |> Array.fold (fun acc d -> acc * int64 d) 1L
            if size > int64 System.Int32.MaxValue then
                invalidArg "layers" (sprintf "%s: %s flattens to %d elements, more than an axis can hold." what (Shapes.describe input) size)
            [| int size |]
        member _.Parameters _ = 0L, 0L
        member _.Create(engine, _, input, _, _) = FlattenRuntime(engine, input)
        member _.Write _ = ()
        member _.ToOnnx(g, name, x, _, _) = g.Node("Flatten", name, [ x ], [ OnnxAttr.int "axis" 1L ])
        member k.WithInit _ = k

/// The Flatten constructor and its model-file registration.
[<AutoOpen>]
module FlattenLayer =
    /// Reshapes any per-sample shape to [product].
    let Flatten = Layer FlattenKind
    let internal registration = { Names = [ "Flatten"; "flatten" ]; Read = fun _ _ -> Flatten }
