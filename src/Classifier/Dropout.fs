namespace Hybrid.Classifier

open Hybrid.Dsp

/// Inverted dropout: while training, a mask drawn from (seed, element index); identity at inference.
type internal DropoutRuntime(engine: Engine, rate: float) =
    inherit LayerRuntime(engine)
    override this.Forward(x, training, seed) =
        if not training || rate = 0.0 then
            x
        else
            let y = this.Buffers.Get("y", x.Shape)
            let mask = this.Buffers.Get("mask", x.Shape)
            this.Ops.DropoutForward(x, float32 rate, seed, mask, y)
            y
    override this.Backward(dy, needDx) =
        if not needDx then None
        elif rate = 0.0 then Some dy
        else
            let dx = this.Buffers.Get("dx", dy.Shape)
            this.Ops.DropoutBackward(dy, this.Buffers.Get("mask", dy.Shape), dx)
            Some dx
