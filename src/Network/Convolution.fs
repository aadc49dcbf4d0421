namespace Hybrid.Classifier

open Hybrid.Dsp

/// Conv1D and Conv2D (NCHW; a 1-D convolution runs as a 2-D one of height 1). Kernel [filters; channels; kh; kw]
/// ([filters; channels; 1; k] for 1-D), bias [filters].
/// `settings`: (filters, kernel height, kernel width, stride height, stride width, dilation height, dilation width,
/// padding, initialiser).
type internal ConvRuntime(engine: Engine, name: string, settings: int * int * int * int * int * int * int * Padding * Init,
                          inShape: int[], outShape: int[], rng: SplitMix) =
    inherit LayerRuntime(engine)
    let is1d = inShape.Length = 2
    let c = inShape[0]
    let h, w = if is1d then 1, inShape[1] else inShape[1], inShape[2]
    let f, kh, kw, sh, sw, dh, dw, padding, init = settings
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

/// Conv1D over [channels; length] (kernel stored [filters; channels; 1; kernel]); ONNX Conv with a 1-D kernel.
type internal Conv1DKind =
    { Filters: int
      Kernel: int
      Stride: int
      Padding: Padding
      Dilation: int
      Init: Init }
    interface ILayerKind with
        member _.Name = "Conv1D"
        member k.Output(what, input) =
            Shapes.needRank what 2 input
            Shapes.positive what [ "filters", k.Filters; "kernel", k.Kernel; "stride", k.Stride; "dilation", k.Dilation ]
            let out, _ = Shapes.window what k.Padding input[1] ((k.Kernel - 1) * k.Dilation + 1) k.Stride
            [| k.Filters; out |]
        member k.Parameters input = int64 k.Filters * int64 input[0] * int64 k.Kernel + int64 k.Filters, 0L
        member k.Create(engine, name, input, output, rng) =
            ConvRuntime(engine, name, (k.Filters, 1, k.Kernel, 1, k.Stride, 1, k.Dilation, k.Padding, k.Init), input, output, rng)
        member k.Write w =
            w.WriteNumber("filters", k.Filters); w.WriteNumber("kernel", k.Kernel); w.WriteNumber("stride", k.Stride)
            w.WriteString("padding", LayerFields.paddingName k.Padding); w.WriteNumber("dilation", k.Dilation)
            w.WriteString("init", LayerFields.initName k.Init)
        member k.ToOnnx(g, name, x, input, weight) =
            let w = g.Constant(name + ".kernel", [| int64 k.Filters; int64 input[0]; int64 k.Kernel |], weight "kernel")
            let b = g.Constant(name + ".bias", [| int64 k.Filters |], weight "bias")
            let before, after = Shapes.pads k.Padding input[1] ((k.Kernel - 1) * k.Dilation + 1) k.Stride
            g.Node("Conv", name, [ x; w; b ],
                   [ OnnxAttr.ints "kernel_shape" [ int64 k.Kernel ]; OnnxAttr.ints "strides" [ int64 k.Stride ]
                     OnnxAttr.ints "dilations" [ int64 k.Dilation ]; OnnxAttr.ints "pads" [ int64 before; int64 after ] ])
        member k.WithInit init = { k with Init = init }

/// Conv2D over [channels; height; width] (kernel [filters; channels; kh; kw]); ONNX Conv.
type internal Conv2DKind =
    { Filters: int
      KernelH: int
      KernelW: int
      StrideH: int
      StrideW: int
      Padding: Padding
      Init: Init }
    interface ILayerKind with
        member _.Name = "Conv2D"
        member k.Output(what, input) =
            Shapes.needRank what 3 input
            Shapes.positive what [ "filters", k.Filters; "kernel height", k.KernelH; "kernel width", k.KernelW; "stride height", k.StrideH; "stride width", k.StrideW ]
            let oh, _ = Shapes.window what k.Padding input[1] k.KernelH k.StrideH
            let ow, _ = Shapes.window what k.Padding input[2] k.KernelW k.StrideW
            [| k.Filters; oh; ow |]
        member k.Parameters input = int64 k.Filters * int64 input[0] * int64 k.KernelH * int64 k.KernelW + int64 k.Filters, 0L
        member k.Create(engine, name, input, output, rng) =
            ConvRuntime(engine, name, (k.Filters, k.KernelH, k.KernelW, k.StrideH, k.StrideW, 1, 1, k.Padding, k.Init), input, output, rng)
        member k.Write w =
            w.WriteNumber("filters", k.Filters); w.WriteNumber("kernel_h", k.KernelH); w.WriteNumber("kernel_w", k.KernelW)
            w.WriteNumber("stride_h", k.StrideH); w.WriteNumber("stride_w", k.StrideW)
            w.WriteString("padding", LayerFields.paddingName k.Padding); w.WriteString("init", LayerFields.initName k.Init)
        member k.ToOnnx(g, name, x, input, weight) =
            let w = g.Constant(name + ".kernel", [| int64 k.Filters; int64 input[0]; int64 k.KernelH; int64 k.KernelW |], weight "kernel")
            let b = g.Constant(name + ".bias", [| int64 k.Filters |], weight "bias")
            let top, bottom = Shapes.pads k.Padding input[1] k.KernelH k.StrideH
            let left, right = Shapes.pads k.Padding input[2] k.KernelW k.StrideW
            g.Node("Conv", name, [ x; w; b ],
                   [ OnnxAttr.ints "kernel_shape" [ int64 k.KernelH; int64 k.KernelW ]; OnnxAttr.ints "strides" [ int64 k.StrideH; int64 k.StrideW ]
                     OnnxAttr.ints "pads" [ int64 top; int64 left; int64 bottom; int64 right ] ])
        member k.WithInit init = { k with Init = init }

/// The convolution constructors and their model-file registrations.
[<AutoOpen>]
module ConvolutionLayers =
    /// 1-D convolution over [channels; length] with `filters` kernels of width `kernel`.
    let Conv1D (filters: int, kernel: int, stride: int, padding: Padding, dilation: int, init: Init) =
        Layer { Conv1DKind.Filters = filters; Kernel = kernel; Stride = stride; Padding = padding; Dilation = dilation; Init = init }
    /// 2-D convolution over [channels; height; width].
    let Conv2D (filters: int, kernelH: int, kernelW: int, strideH: int, strideW: int, padding: Padding, init: Init) =
        Layer { Conv2DKind.Filters = filters; KernelH = kernelH; KernelW = kernelW; StrideH = strideH; StrideW = strideW; Padding = padding; Init = init }
    let internal registrations =
        [ { Names = [ "Conv1D"; "conv1d" ]
            Read = fun _ f -> Conv1D(f.Int "filters", f.Int "kernel", f.Int "stride", LayerFields.padding f, f.Int "dilation", LayerFields.init f) }
          { Names = [ "Conv2D"; "conv2d" ]
            Read = fun _ f -> Conv2D(f.Int "filters", f.Int "kernel_h", f.Int "kernel_w", f.Int "stride_h", f.Int "stride_w", LayerFields.padding f, LayerFields.init f) } ]
