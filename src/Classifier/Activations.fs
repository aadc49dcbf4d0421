namespace Hybrid.Classifier

open Hybrid.Dsp

/// ReLU (slope 0) and leaky ReLU; the backward pass reads the forward output.
type internal LeakyReluRuntime(engine: Engine, slope: float) =
    inherit LayerRuntime(engine)
    let mutable output = Unchecked.defaultof<Tensor>
    /// The slope (0 for ReLU).
    member _.Slope = slope
    /// True when the layer before applies this activation in its own launch (`Model` sets it on device engines):
    /// Forward then passes its input through, and Backward works from it as the output.
    member val Fused = false with get, set
    override this.Forward(x, _, _) =
        if this.Fused then
            output <- x
        else
            output <- this.Buffers.Get("y", x.Shape)
            this.Ops.LeakyReluForward(x, float32 slope, output)
        output
    override this.Backward(dy, needDx) =
        if not needDx then
            None
        else
            let dx = this.Buffers.Get("dx", dy.Shape)
            this.Ops.LeakyReluBackward(output, float32 slope, dy, dx)
            Some dx

/// ReLU: max(x, 0); ONNX Relu.
type internal ReluKind =
    | ReluKind
    interface ILayerKind with
        member _.Name = "ReLU"
        member _.Output(_, input) = input
        member _.Parameters _ = 0L, 0L
        member _.Create(engine, _, _, _, _) = LeakyReluRuntime(engine, 0.0)
        member _.Write _ = ()
        member _.ToOnnx(g, name, x, _, _) = g.Node("Relu", name, [ x ])
        member k.WithInit _ = k

/// Leaky ReLU: x for x > 0, slope * x otherwise; ONNX LeakyRelu.
type internal LeakyReluKind =
    { Slope: float }
    interface ILayerKind with
        member _.Name = "LeakyReLU"
        member k.Output(what, input) =
            if not (k.Slope >= 0.0) then invalidArg "layers" (sprintf "%s: slope must be non-negative, was %g." what k.Slope)
            input
        member _.Parameters _ = 0L, 0L
        member k.Create(engine, _, _, _, _) = LeakyReluRuntime(engine, k.Slope)
        member k.Write w = w.WriteNumber("slope", k.Slope)
        member k.ToOnnx(g, name, x, _, _) = g.Node("LeakyRelu", name, [ x ], [ OnnxAttr.float "alpha" (float32 k.Slope) ])
        member k.WithInit _ = k

/// The activation constructors and their model-file registrations.
[<AutoOpen>]
module ActivationLayers =
    /// max(x, 0).
    let ReLU = Layer ReluKind
    /// x for x > 0, slope * x otherwise.
    let LeakyReLU (slope: float) = Layer { Slope = slope }
    let internal registrations =
        [ { Names = [ "ReLU"; "relu" ]; Read = fun _ _ -> ReLU }
          { Names = [ "LeakyReLU"; "leaky_relu" ]; Read = fun _ f -> LeakyReLU(f.Float "slope") } ]
