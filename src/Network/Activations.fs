namespace Hybrid.Classifier

open Hybrid.Dsp

/// How much of an activation layer the layer before it applies (`Model` decides, per engine).
type internal ActivationFusion =
    /// Nothing: the activation runs its own forward and backward passes.
    | Separate
    /// The forward pass (a Dense layer's bias launch on device engines): the activation passes its input through as
    /// its output, and its backward pass still applies the gradient.
    | ForwardOnly
    /// Both passes (BatchNorm): the layer before writes the activation and reads dy through its gradient, so this
    /// layer passes values and gradients through unchanged.
    | Whole

/// ReLU (slope 0) and leaky ReLU; the backward pass reads the forward output.
type internal LeakyReluRuntime(engine: Engine, slope: float) =
    inherit LayerRuntime(engine)
    let mutable output = Unchecked.defaultof<Tensor>
    /// The slope (0 for ReLU).
    member _.Slope = slope
    /// What the layer before applies of this activation (`Model` sets it): see `ActivationFusion`.
    member val Fusion = Separate with get, set
    override this.Forward(x, _, _) =
        match this.Fusion with
        | Separate ->
            output <- this.Buffers.Get("y", x.Shape)
            this.Ops.LeakyReluForward(x, float32 slope, output)
        | ForwardOnly
        | Whole -> output <- x
        output
    override this.Backward(dy, needDx) =
        match this.Fusion with
        | Whole -> Some dy
        | _ when not needDx -> None
        | _ ->
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
