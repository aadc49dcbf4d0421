namespace Hybrid.Classifier

open System
open Hybrid.Dsp

/// How a convolution or pooling window treats the borders (Keras' `padding`).
type Padding =
    /// Zero padding so that output length = ceil(input / stride); when the padding is odd the extra zero goes at the
    /// end (TensorFlow's 'same').
    | Same
    /// No padding: output length = floor((input - effective window) / stride) + 1.
    | Valid

/// Weight initialisation of Dense and convolution kernels (biases start at zero). fanIn = inputs per output,
/// fanOut = outputs per input (times the kernel size for convolutions).
type Init =
    /// U(-l, l) with l = sqrt(6 / (fanIn + fanOut)) (Glorot and Bengio 2010; Keras' default).
    | GlorotUniform
    /// N(0, 2 / (fanIn + fanOut)).
    | GlorotNormal
    /// U(-l, l) with l = sqrt(6 / fanIn) (He et al. 2015).
    | HeUniform
    /// N(0, 2 / fanIn) (He et al. 2015; not truncated).
    | HeNormal

/// One layer of a sequential network, a plain value. Per-sample shapes (no batch axis): Dense takes [features];
/// 1-D layers take [channels; length]; 2-D layers take [channels; height; width] (NCHW).
/// Build layers with the functions of the `Layers` module.
type Layer =
    /// Fully connected: y = x W + b, W [inputs; units].
    | Dense of units: int * init: Init
    /// 1-D convolution over [channels; length] with `filters` kernels of width `kernel`.
    | Conv1D of filters: int * kernel: int * stride: int * padding: Padding * dilation: int * init: Init
    /// 2-D convolution over [channels; height; width].
    | Conv2D of filters: int * kernelH: int * kernelW: int * strideH: int * strideW: int * padding: Padding * init: Init
    /// Max or average pooling over [channels; length].
    | Pool1D of kind: PoolKind * pool: int * stride: int * padding: Padding
    /// Max or average pooling over [channels; height; width].
    | Pool2D of kind: PoolKind * poolH: int * poolW: int * strideH: int * strideW: int * padding: Padding
    /// Mean over every axis after the channel axis: [channels; ...] -> [channels].
    | GlobalAvgPool
    /// Batch normalisation over the first (channel or feature) axis; Keras' momentum convention (0.99 keeps 99%).
    | BatchNorm of momentum: float * epsilon: float
    /// Inverted dropout while training; identity at inference.
    | Dropout of rate: float
    /// max(x, 0).
    | ReLU
    /// x for x > 0, slope * x otherwise.
    | LeakyReLU of slope: float
    /// Reshapes any per-sample shape to [product].
    | Flatten

/// Layer constructors with Keras' defaults.
[<RequireQualifiedAccess>]
module Layers =
    /// Dense layer with Glorot-uniform weights (Keras' Dense(units)).
    let dense units = Dense(units, GlorotUniform)
    /// 1-D convolution, stride 1, no dilation, Glorot-uniform (Keras' Conv1D(filters, kernel, padding=...)).
    let conv1d filters kernel padding = Conv1D(filters, kernel, 1, padding, 1, GlorotUniform)
    /// 1-D convolution with stride and dilation.
    let conv1dWith filters kernel stride dilation padding = Conv1D(filters, kernel, stride, padding, dilation, GlorotUniform)
    /// 2-D convolution, stride 1, Glorot-uniform (Keras' Conv2D(filters, (kh, kw), padding=...)).
    let conv2d filters (kernelH, kernelW) padding = Conv2D(filters, kernelH, kernelW, 1, 1, padding, GlorotUniform)
    /// 2-D convolution with strides.
    let conv2dWith filters (kernelH, kernelW) (strideH, strideW) padding = Conv2D(filters, kernelH, kernelW, strideH, strideW, padding, GlorotUniform)
    /// Max pooling 1-D, stride = pool size, 'valid' (Keras' MaxPooling1D(pool)).
    let maxPool1d pool = Pool1D(PoolKind.Max, pool, pool, Valid)
    /// Average pooling 1-D, stride = pool size, 'valid'.
    let avgPool1d pool = Pool1D(PoolKind.Average, pool, pool, Valid)
    /// Max pooling 2-D with square window and stride `pool`, 'valid' (Keras' MaxPooling2D(pool)).
    let maxPool2d pool = Pool2D(PoolKind.Max, pool, pool, pool, pool, Valid)
    /// Average pooling 2-D with square window and stride `pool`, 'valid'.
    let avgPool2d pool = Pool2D(PoolKind.Average, pool, pool, pool, pool, Valid)
    /// Global average pooling.
    let globalAvgPool = GlobalAvgPool
    /// Batch normalisation with momentum 0.99 and epsilon 1e-3 (Keras' defaults).
    let batchNorm = BatchNorm(0.99, 1e-3)
    /// Dropout with the given rate in [0, 1).
    let dropout rate = Dropout rate
    /// ReLU activation.
    let relu = ReLU
    /// Leaky ReLU with the given negative slope (Keras' LeakyReLU default 0.3).
    let leakyRelu slope = LeakyReLU slope
    /// Flatten to one axis.
    let flatten = Flatten
    /// The same Dense or convolution layer with another initialiser (other layers are returned unchanged).
    let withInit init layer =
        match layer with
        | Dense(u, _) -> Dense(u, init)
        | Conv1D(f, k, s, p, d, _) -> Conv1D(f, k, s, p, d, init)
        | Conv2D(f, kh, kw, sh, sw, p, _) -> Conv2D(f, kh, kw, sh, sw, p, init)
        | other -> other

/// Window arithmetic and shape inference shared by layers, Net and model files.
module internal Shapes =
    /// (output length, padding before) of a window of effective size `window` over `input` cells.
    let window (what: string) (padding: Padding) (input: int) (window: int) (stride: int) =
        match padding with
        | Valid ->
            if input < window then
                invalidArg "layers" (sprintf "%s: window of %d does not fit an input of %d with 'valid' padding." what window input)
            (input - window) / stride + 1, 0
        | Same ->
            let out = (input + stride - 1) / stride
            let total = max ((out - 1) * stride + window - input) 0
            out, total / 2

    let describe (shape: int[]) = "[" + String.Join("; ", shape) + "]"

    let private positive what (values: (string * int) list) =
        for name, v in values do
            if v < 1 then invalidArg "layers" (sprintf "%s: %s must be at least 1, was %d." what name v)

    /// Validates a layer's settings against its per-sample input shape and returns the output shape.
    let output (index: int) (layer: Layer) (input: int[]) : int[] =
        let what = sprintf "layer %d (%A)" index layer
        let needRank r =
            if input.Length <> r then
                invalidArg "layers" (sprintf "%s: expected a per-sample input of rank %d, was %s." what r (describe input))
        match layer with
        | Dense(units, _) ->
            needRank 1
            positive what [ "units", units ]
            [| units |]
        | Conv1D(f, k, s, p, d, _) ->
            needRank 2
            positive what [ "filters", f; "kernel", k; "stride", s; "dilation", d ]
            let out, _ = window what p input[1] ((k - 1) * d + 1) s
            [| f; out |]
        | Conv2D(f, kh, kw, sh, sw, p, _) ->
            needRank 3
            positive what [ "filters", f; "kernel height", kh; "kernel width", kw; "stride height", sh; "stride width", sw ]
            let oh, _ = window what p input[1] kh sh
            let ow, _ = window what p input[2] kw sw
            [| f; oh; ow |]
        | Pool1D(_, k, s, p) ->
            needRank 2
            positive what [ "pool", k; "stride", s ]
            let out, _ = window what p input[1] k s
            [| input[0]; out |]
        | Pool2D(_, kh, kw, sh, sw, p) ->
            needRank 3
            positive what [ "pool height", kh; "pool width", kw; "stride height", sh; "stride width", sw ]
            let oh, _ = window what p input[1] kh sh
            let ow, _ = window what p input[2] kw sw
            [| input[0]; oh; ow |]
        | GlobalAvgPool ->
            if input.Length < 2 then
                invalidArg "layers" (sprintf "%s: expected [channels; ...] with at least one spatial axis, was %s." what (describe input))
            [| input[0] |]
        | BatchNorm(m, e) ->
            if input.Length < 1 then invalidArg "layers" (sprintf "%s: needs at least one axis." what)
            if not (m >= 0.0 && m < 1.0) then invalidArg "layers" (sprintf "%s: momentum must be in [0, 1), was %g." what m)
            if not (e > 0.0) then invalidArg "layers" (sprintf "%s: epsilon must be positive, was %g." what e)
            input
        | Dropout rate ->
            if not (rate >= 0.0 && rate < 1.0) then invalidArg "layers" (sprintf "%s: rate must be in [0, 1), was %g." what rate)
            input
        | ReLU -> input
        | LeakyReLU slope ->
            if not (slope >= 0.0) then invalidArg "layers" (sprintf "%s: slope must be non-negative, was %g." what slope)
            input
        | Flatten ->
            let size = input |> Array.fold (fun acc d -> acc * int64 d) 1L
            if size > int64 Int32.MaxValue then
                invalidArg "layers" (sprintf "%s: %s flattens to %d elements, more than an axis can hold." what (describe input) size)
            [| int size |]

    /// (trainable, non-trainable) parameter counts of a layer for its input shape.
    let parameters (layer: Layer) (input: int[]) : int64 * int64 =
        match layer with
        | Dense(units, _) -> int64 input[0] * int64 units + int64 units, 0L
        | Conv1D(f, k, _, _, _, _) -> int64 f * int64 input[0] * int64 k + int64 f, 0L
        | Conv2D(f, kh, kw, _, _, _, _) -> int64 f * int64 input[0] * int64 kh * int64 kw + int64 f, 0L
        | BatchNorm _ -> 2L * int64 input[0], 2L * int64 input[0]
        | _ -> 0L, 0L

    /// Keras-style type name of a layer.
    let typeName (layer: Layer) =
        match layer with
        | Dense _ -> "Dense"
        | Conv1D _ -> "Conv1D"
        | Conv2D _ -> "Conv2D"
        | Pool1D(PoolKind.Max, _, _, _) -> "MaxPooling1D"
        | Pool1D _ -> "AveragePooling1D"
        | Pool2D(PoolKind.Max, _, _, _, _, _) -> "MaxPooling2D"
        | Pool2D _ -> "AveragePooling2D"
        | GlobalAvgPool -> "GlobalAveragePooling"
        | BatchNorm _ -> "BatchNormalization"
        | Dropout _ -> "Dropout"
        | ReLU -> "ReLU"
        | LeakyReLU _ -> "LeakyReLU"
        | Flatten -> "Flatten"
