namespace Hybrid.Classifier

open System
open Hybrid.Dsp

/// The layer kinds model files can hold: one registration per kind (a new kind is one file plus one line here).
module internal LayerRegistry =
    let all: LayerRegistration list =
        [ DenseLayer.registration ]
        @ ConvolutionLayers.registrations
        @ PoolingLayers.registrations
        @ [ BatchNormLayer.registration; DropoutLayer.registration ]
        @ ActivationLayers.registrations
        @ [ FlattenLayer.registration ]

    let private byName =
        dict [ for r in all do
                   for n in r.Names -> n, r ]

    /// The kinds' names (each kind's first name, as files are written).
    let names = all |> List.map (fun r -> List.head r.Names)

    /// Reads a layer whose "type" field is `name` (a kind's name or an older alias).
    let tryRead (name: string) (fields: LayerFields) : Layer option =
        match byName.TryGetValue name with
        | true, r -> Some(r.Read name fields)
        | _ -> None

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
    let withInit init (layer: Layer) = Layer(layer.Kind.WithInit init)
