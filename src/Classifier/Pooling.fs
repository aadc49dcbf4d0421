namespace Hybrid.Classifier

open Hybrid.Dsp

/// Max/average pooling 1-D and 2-D (1-D runs as 2-D with height 1).
type internal PoolRuntime(engine: Engine, name: string, layer: Layer, inShape: int[], outShape: int[]) =
    inherit LayerRuntime(engine)
    let is1d = inShape.Length = 2
    let c = inShape[0]
    let h, w = if is1d then 1, inShape[1] else inShape[1], inShape[2]
    let kind, kh, kw, sh, sw, padding =
        match layer with
        | Pool1D(kind, k, s, p) -> kind, 1, k, 1, s, p
        | Pool2D(kind, kh, kw, sh, sw, p) -> kind, kh, kw, sh, sw, p
        | other -> invalidArg "layer" (sprintf "%A is not a pooling layer." other)
    let oh, padTop = if is1d then 1, 0 else Shapes.window name padding h kh sh
    let ow, padLeft = Shapes.window name padding w kw sw
    let geometry n = PoolGeometry(n, c, h, w, kh, kw, sh, sw, padTop, padLeft, oh, ow)
    let mutable x4 = Unchecked.defaultof<Tensor>
    let mutable y4 = Unchecked.defaultof<Tensor>
    let mutable inputOriginal = Unchecked.defaultof<Tensor>
    override this.Forward(x, _, _) =
        let n = x.Shape[0]
        inputOriginal <- x
        x4 <- if is1d then x.Reshape(n, c, 1, w) else x
        y4 <- this.Buffers.Get("y", [| n; c; oh; ow |])
        let g = geometry n
        this.Ops.Pool2DForward(&g, kind, x4, y4)
        if is1d then y4.Reshape(Array.append [| n |] outShape) else y4
    override this.Backward(dy, needDx) =
        if not needDx then
            None
        else
            let n = dy.Shape[0]
            let dy4 = if is1d then dy.Reshape(n, c, 1, ow) else dy
            let dx4 = this.Buffers.Get("dx", [| n; c; h; w |])
            let g = geometry n
            this.Ops.Pool2DBackward(&g, kind, x4, y4, dy4, dx4)
            Some(if is1d then dx4.Reshape(inputOriginal.Shape) else dx4)

/// Global average pooling: [N; C; ...] -> [N; C].
type internal GlobalAvgPoolRuntime(engine: Engine, inShape: int[]) =
    inherit LayerRuntime(engine)
    override this.Forward(x, _, _) =
        let y = this.Buffers.Get("y", [| x.Shape[0]; inShape[0] |])
        this.Ops.GlobalAvgPoolForward(x, y)
        y
    override this.Backward(dy, needDx) =
        if not needDx then
            None
        else
            let dx = this.Buffers.Get("dx", Array.append [| dy.Shape[0] |] inShape)
            this.Ops.GlobalAvgPoolBackward(dy, dx)
            Some dx
