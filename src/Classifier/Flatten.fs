namespace Hybrid.Classifier

open Hybrid.Dsp

/// Flatten: a view of [N; ...] as [N; product] (no copy).
type internal FlattenRuntime(engine: Engine, inShape: int[]) =
    inherit LayerRuntime(engine)
    let size = Array.fold (*) 1 inShape
    override _.Forward(x, _, _) = x.Reshape(x.Shape[0], size)
    override _.Backward(dy, needDx) =
        if needDx then Some(dy.Reshape(Array.append [| dy.Shape[0] |] inShape)) else None
