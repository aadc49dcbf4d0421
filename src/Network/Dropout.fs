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

/// Inverted dropout; removed from ONNX graphs (identity at inference).
type internal DropoutKind =
    { Rate: float }
    interface ILayerKind with
        member _.Name = "Dropout"
        member k.Output(what, input) =
            if not (k.Rate >= 0.0 && k.Rate < 1.0) then invalidArg "layers" (sprintf "%s: rate must be in [0, 1), was %g." what k.Rate)
            input
        member _.Parameters _ = 0L, 0L
        member k.Create(engine, _, _, _, _) = DropoutRuntime(engine, k.Rate)
        member k.Write w = w.WriteNumber("rate", k.Rate)
        member _.ToOnnx(_, _, x, _, _) = x
        member k.WithInit _ = k

/// The Dropout constructor and its model-file registration.
[<AutoOpen>]
module DropoutLayer =
    /// Inverted dropout while training; identity at inference.
    let Dropout (rate: float) = Layer { Rate = rate }
    let internal registration =
        { Names = [ "Dropout"; "dropout" ]
          Read = fun _ f -> Dropout(f.Float "rate") }
