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
