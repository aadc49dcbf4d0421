namespace Hybrid.Classifier

open Hybrid.Dsp

/// Conv1D and Conv2D (NCHW; a 1-D convolution runs as a 2-D one of height 1). Kernel [filters; channels; kh; kw]
/// ([filters; channels; 1; k] for 1-D), bias [filters].
type internal ConvRuntime(engine: Engine, name: string, layer: Layer, inShape: int[], outShape: int[], rng: SplitMix) =
    inherit LayerRuntime(engine)
    let is1d = inShape.Length = 2
    let c = inShape[0]
    let h, w = if is1d then 1, inShape[1] else inShape[1], inShape[2]
    let f, kh, kw, sh, sw, dh, dw, padding, init =
        match layer with
        | Conv1D(f, k, s, p, d, i) -> f, 1, k, 1, s, 1, d, p, i
        | Conv2D(f, kh, kw, sh, sw, p, i) -> f, kh, kw, sh, sw, 1, 1, p, i
        | other -> invalidArg "layer" (sprintf "%A is not a convolution." other)
    let oh, padTop = if is1d then 1, 0 else Shapes.window name padding h ((kh - 1) * dh + 1) sh
    let ow, padLeft = Shapes.window name padding w ((kw - 1) * dw + 1) sw
    let kernel = Param.create engine (name + ".kernel") [| f; c; kh; kw |]
    let bias = Param.create engine (name + ".bias") [| f |]
    do Param.fill kernel (Initializers.sample init (c * kh * kw) (f * kh * kw) (f * c * kh * kw) rng)
    let geometry n = ConvGeometry(n, c, h, w, f, kh, kw, sh, sw, padTop, padLeft, dh, dw, oh, ow)
    let mutable input4 = Unchecked.defaultof<Tensor>
    let mutable inputOriginal = Unchecked.defaultof<Tensor>
    override _.Params = [ kernel; bias ]
    override this.Forward(x, _, _) =
        let n = x.Shape[0]
        inputOriginal <- x
        input4 <- if is1d then x.Reshape(n, c, 1, w) else x
        let y4 = this.Buffers.Get("y", [| n; f; oh; ow |])
        let g = geometry n
        this.Ops.Conv2DForward(&g, input4, kernel.Value, bias.Value, y4)
        if is1d then y4.Reshape(Array.append [| n |] outShape) else y4
    override this.Backward(dy, needDx) =
        let n = dy.Shape[0]
        let dy4 = if is1d then dy.Reshape(n, f, 1, ow) else dy
        let dx4 = if needDx then Some(this.Buffers.Get("dx", [| n; c; h; w |])) else None
        let g = geometry n
        this.Ops.Conv2DBackward(&g, input4, kernel.Value, dy4, Option.toObj dx4, kernel.Grad, bias.Grad)
        dx4 |> Option.map (fun d -> if is1d then d.Reshape(inputOriginal.Shape) else d)
