namespace Hybrid.Classifier

open Hybrid.Dsp

/// Max/average pooling 1-D and 2-D (1-D runs as 2-D with height 1).
/// `settings`: (kind, window height, window width, stride height, stride width, padding); 1-D pooling has height 1.
type internal PoolRuntime(engine: Engine, name: string, settings: PoolKind * int * int * int * int * Padding, inShape: int[], outShape: int[]) =
    inherit LayerRuntime(engine)
    let is1d = inShape.Length = 2
    let c = inShape[0]
    let h, w = if is1d then 1, inShape[1] else inShape[1], inShape[2]
    let kind, kh, kw, sh, sw, padding = settings
    let oh, padTop = if is1d then 1, 0 else Shapes.window name padding h kh sh
    let ow, padLeft = Shapes.window name padding w kw sw
    let geometry n = PoolGeometry(n, c, h, w, kh, kw, sh, sw, padTop, padLeft, oh, ow)
    let mutable x4 = Unchecked.defaultof<Tensor>
    let mutable y4 = Unchecked.defaultof<Tensor>
    let mutable inputOriginal = Unchecked.defaultof<Tensor>
    /// The pool's geometry for a batch of n.
    member _.Geometry(n: int) = geometry n
    /// Whether this is 2-D max pooling over 2 x 2 windows of stride 2 without padding, every window inside the input
    /// (what the fused batch norm, activation and pooling of INnBatchNormPoolFusion computes: BatchNormPoolFusion.Applies).
    member _.IsMaxPool2x2 =
        let g = geometry 1
        not is1d && kind = PoolKind.Max && BatchNormPoolFusion.Applies(&g)
    /// The output shape of one sample ([C; OH; OW] for 2-D pooling).
    member _.SampleOutput = outShape
    /// Set by `Model` when the BatchNorm two layers before applies this pool in its own passes
    /// (INnBatchNormPoolFusion): the layer then passes values and gradients through unchanged.
    member val Fused = false with get, set
    override this.Forward(x, _, _) =
        let n = x.Shape[0]
        if this.Fused then x else
        inputOriginal <- x
        x4 <- if is1d then x.Reshape(n, c, 1, w) else x
        y4 <- this.Buffers.Get("y", [| n; c; oh; ow |])
        let g = geometry n
        this.Ops.Pool2DForward(&g, kind, x4, y4)
        if is1d then y4.Reshape(Array.append [| n |] outShape) else y4
    override this.Backward(dy, needDx) =
        if this.Fused then
            Some dy
        elif not needDx then
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

/// Max or average pooling over [channels; length] (Dims 1, PoolH 1) or [channels; height; width] (Dims 2): ONNX
/// MaxPool / AveragePool (padding cells excluded from averages, count_include_pad 0, as the engines do).
type internal PoolKindDefinition =
    { Kind: PoolKind
      Dims: int
      PoolH: int
      PoolW: int
      StrideH: int
      StrideW: int
      Padding: Padding }
    interface ILayerKind with
        member k.Name = sprintf "%sPooling%dD" (if k.Kind = PoolKind.Max then "Max" else "Average") k.Dims
        member k.Output(what, input) =
            Shapes.needRank what (k.Dims + 1) input
            if k.Dims = 1 then
                Shapes.positive what [ "pool", k.PoolW; "stride", k.StrideW ]
                let out, _ = Shapes.window what k.Padding input[1] k.PoolW k.StrideW
                [| input[0]; out |]
            else
                Shapes.positive what [ "pool height", k.PoolH; "pool width", k.PoolW; "stride height", k.StrideH; "stride width", k.StrideW ]
                let oh, _ = Shapes.window what k.Padding input[1] k.PoolH k.StrideH
                let ow, _ = Shapes.window what k.Padding input[2] k.PoolW k.StrideW
                [| input[0]; oh; ow |]
        member _.Parameters _ = 0L, 0L
        member k.Create(engine, name, input, output, _) =
            PoolRuntime(engine, name, (k.Kind, k.PoolH, k.PoolW, k.StrideH, k.StrideW, k.Padding), input, output)
        member k.Write w =
            if k.Dims = 1 then
                w.WriteNumber("pool", k.PoolW); w.WriteNumber("stride", k.StrideW)
            else
                w.WriteNumber("pool_h", k.PoolH); w.WriteNumber("pool_w", k.PoolW)
                w.WriteNumber("stride_h", k.StrideH); w.WriteNumber("stride_w", k.StrideW)
            w.WriteString("padding", LayerFields.paddingName k.Padding)
        member k.ToOnnx(g, name, x, input, _) =
            let op = if k.Kind = PoolKind.Max then "MaxPool" else "AveragePool"
            let left, right = Shapes.pads k.Padding input[input.Length - 1] k.PoolW k.StrideW
            if k.Dims = 1 then
                g.Node(op, name, [ x ], [ OnnxAttr.ints "kernel_shape" [ int64 k.PoolW ]; OnnxAttr.ints "strides" [ int64 k.StrideW ]
                                          OnnxAttr.ints "pads" [ int64 left; int64 right ] ])
            else
                let top, bottom = Shapes.pads k.Padding input[1] k.PoolH k.StrideH
                g.Node(op, name, [ x ], [ OnnxAttr.ints "kernel_shape" [ int64 k.PoolH; int64 k.PoolW ]
                                          OnnxAttr.ints "strides" [ int64 k.StrideH; int64 k.StrideW ]
                                          OnnxAttr.ints "pads" [ int64 top; int64 left; int64 bottom; int64 right ] ])
        member k.WithInit _ = k

/// Global average pooling: [channels; ...] -> [channels]; ONNX GlobalAveragePool then Flatten.
type internal GlobalAvgPoolKind =
    | GlobalAvgPoolKind
    interface ILayerKind with
        member _.Name = "GlobalAveragePooling"
        member _.Output(what, input) =
            if input.Length < 2 then
                invalidArg "layers" (sprintf "%s: expected [channels; ...] with at least one spatial axis, was %s." what (Shapes.describe input))
            [| input[0] |]
        member _.Parameters _ = 0L, 0L
        member _.Create(engine, _, input, _, _) = GlobalAvgPoolRuntime(engine, input)
        member _.Write _ = ()
        member _.ToOnnx(g, name, x, _, _) =
            let pooled = g.Node("GlobalAveragePool", name, [ x ])
            g.Node("Flatten", name + ".flatten", [ pooled ], [ OnnxAttr.int "axis" 1L ])
        member k.WithInit _ = k

/// The pooling constructors and their model-file registrations.
[<AutoOpen>]
module PoolingLayers =
    /// Max or average pooling over [channels; length].
    let Pool1D (kind: PoolKind, pool: int, stride: int, padding: Padding) =
        Layer { Kind = kind; Dims = 1; PoolH = 1; PoolW = pool; StrideH = 1; StrideW = stride; Padding = padding }
    /// Max or average pooling over [channels; height; width].
    let Pool2D (kind: PoolKind, poolH: int, poolW: int, strideH: int, strideW: int, padding: Padding) =
        Layer { Kind = kind; Dims = 2; PoolH = poolH; PoolW = poolW; StrideH = strideH; StrideW = strideW; Padding = padding }
    /// Mean over every axis after the channel axis: [channels; ...] -> [channels].
    let GlobalAvgPool = Layer GlobalAvgPoolKind
    let internal registrations =
        let read1 kind = fun (_: string) (f: LayerFields) -> Pool1D(kind, f.Int "pool", f.Int "stride", LayerFields.padding f)
        let read2 kind = fun (_: string) (f: LayerFields) -> Pool2D(kind, f.Int "pool_h", f.Int "pool_w", f.Int "stride_h", f.Int "stride_w", LayerFields.padding f)
        [ { Names = [ "MaxPooling1D"; "max_pool1d" ]; Read = read1 PoolKind.Max }
          { Names = [ "AveragePooling1D"; "avg_pool1d" ]; Read = read1 PoolKind.Average }
          { Names = [ "MaxPooling2D"; "max_pool2d" ]; Read = read2 PoolKind.Max }
          { Names = [ "AveragePooling2D"; "avg_pool2d" ]; Read = read2 PoolKind.Average }
          { Names = [ "GlobalAveragePooling"; "global_avg_pool" ]; Read = fun _ _ -> GlobalAvgPool } ]
