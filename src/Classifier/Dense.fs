namespace Hybrid.Classifier

open Hybrid.Dsp

/// Dense layer: y [N; units] = x [N; inputs] W [inputs; units] + b (Keras' kernel layout).
type internal DenseRuntime(engine: Engine, name: string, inputs: int, units: int, init: Init, rng: SplitMix) =
    inherit LayerRuntime(engine)
    let w = Param.create engine (name + ".kernel") [| inputs; units |]
    let b = Param.create engine (name + ".bias") [| units |]
    do Param.fill w (Initializers.sample init inputs units (inputs * units) rng)
    let mutable input = Unchecked.defaultof<Tensor>
    override _.Params = [ w; b ]
    override this.Forward(x, _, _) =
        input <- x
        let y = this.Buffers.Get("y", [| x.Shape[0]; units |])
        this.Ops.Gemm(x, false, w.Value, false, y)
        this.Ops.BiasAdd(y, b.Value, y)
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
