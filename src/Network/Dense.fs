namespace Hybrid.Classifier

open Hybrid.Dsp

/// Dense layer: y [N; units] = x [N; inputs] W [inputs; units] + b (Keras' kernel layout).
type internal DenseRuntime(engine: Engine, name: string, inputs: int, units: int, init: Init, rng: SplitMix) =
    inherit LayerRuntime(engine)
    let w = Param.create engine (name + ".kernel") [| inputs; units |]
    let b = Param.create engine (name + ".bias") [| units |]
    do Param.fill w (Initializers.sample init inputs units (inputs * units) rng)
    let mutable input = Unchecked.defaultof<Tensor>
    let mutable fused: (INnDeviceTraining * float32) option = None
    override _.Params = [ w; b ]
    /// Applies the following leaky ReLU (slope) in the bias launch from now on (`Model` does this on device engines,
    /// and marks that activation layer as fused).
    member _.FuseActivation(device: INnDeviceTraining, slope: float32) = fused <- Some(device, slope)
    override this.Forward(x, _, _) =
        input <- x
        let y = this.Buffers.Get("y", [| x.Shape[0]; units |])
        this.Ops.Gemm(x, false, w.Value, false, y)
        match fused with
        | Some(device, slope) -> device.BiasLeakyRelu(y, b.Value, slope, y)
        | None -> this.Ops.BiasAdd(y, b.Value, y)
        y
    override this.Backward(dy, needDx) =
        this.Ops.Gemm(input, true, dy, false, w.Grad)
        this.Ops.BiasGrad(dy, b.Grad)
        if needDx then
            let dx = this.Buffers.Get("dx", input.Shape)
            this.Ops.Gemm(dy, false, w.Value, true, dx)
            Some dx
        else
            None

/// Dense: y = x W + b with W [inputs; units]; ONNX Gemm.
type internal DenseKind =
    { Units: int
      Init: Init }
    interface ILayerKind with
        member _.Name = "Dense"
        member k.Output(what, input) =
            Shapes.needRank what 1 input
            Shapes.positive what [ "units", k.Units ]
            [| k.Units |]
        member k.Parameters input = int64 input[0] * int64 k.Units + int64 k.Units, 0L
        member k.Create(engine, name, input, _, rng) = DenseRuntime(engine, name, input[0], k.Units, k.Init, rng)
        member k.Write w =
            w.WriteNumber("units", k.Units)
            w.WriteString("init", LayerFields.initName k.Init)
        member k.ToOnnx(g, name, x, input, weight) =
            let w = g.Constant(name + ".kernel", [| int64 input[0]; int64 k.Units |], weight "kernel")
            let b = g.Constant(name + ".bias", [| int64 k.Units |], weight "bias")
            g.Node("Gemm", name, [ x; w; b ])
        member k.WithInit init = { k with Init = init }

/// The Dense constructor and its model-file registration.
[<AutoOpen>]
module DenseLayer =
    /// Fully connected: y = x W + b, W [inputs; units]; per-sample input [features], output [units].
    let Dense (units: int, init: Init) = Layer { Units = units; Init = init }
    let internal registration =
        { Names = [ "Dense"; "dense" ]
          Read = fun _ f -> Dense(f.Int "units", LayerFields.init f) }
