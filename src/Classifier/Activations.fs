namespace Hybrid.Classifier

open Hybrid.Dsp

/// ReLU (slope 0) and leaky ReLU; the backward pass reads the forward output.
type internal LeakyReluRuntime(engine: Engine, slope: float) =
    inherit LayerRuntime(engine)
    let mutable output = Unchecked.defaultof<Tensor>
    override this.Forward(x, _, _) =
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
