namespace Hybrid.Dsp;

/// <summary>
/// Geometry of a batched 2-D convolution in NCHW layout (a 1-D convolution is the case
/// <c>InHeight = KernelHeight = 1</c>). Padding is explicit and may be asymmetric: <see cref="PadTop"/> and
/// <see cref="PadLeft"/> zeros precede the input, and the output sizes decide how much follows, so TensorFlow's
/// 'same' (extra zero at the end) and 'valid' are both expressible. Tensors:
/// x [Batch, InChannels, InHeight, InWidth], w [OutChannels, InChannels, KernelHeight, KernelWidth],
/// bias [OutChannels], y [Batch, OutChannels, OutHeight, OutWidth].
/// Output element (oh, ow) reads input rows <c>oh * StrideH - PadTop + kh * DilationH</c> (and likewise for columns).
/// </summary>
public readonly record struct ConvGeometry(
    int Batch, int InChannels, int InHeight, int InWidth,
    int OutChannels, int KernelHeight, int KernelWidth,
    int StrideH, int StrideW, int PadTop, int PadLeft, int DilationH, int DilationW,
    int OutHeight, int OutWidth)
{
    /// <summary>Rows of the im2col matrix: InChannels x KernelHeight x KernelWidth.</summary>
    public int PatchSize => InChannels * KernelHeight * KernelWidth;

    /// <summary>Throws <see cref="ArgumentException"/> when a size is not positive or the output reads no input.</summary>
    public void Validate()
    {
        if (Batch < 1 || InChannels < 1 || InHeight < 1 || InWidth < 1 || OutChannels < 1 || KernelHeight < 1 || KernelWidth < 1
            || StrideH < 1 || StrideW < 1 || DilationH < 1 || DilationW < 1 || OutHeight < 1 || OutWidth < 1 || PadTop < 0 || PadLeft < 0)
            throw new ArgumentException($"Invalid convolution geometry {this}: sizes, strides and dilations must be positive and padding non-negative.");
    }
}

/// <summary>Pooling flavour: maximum over the window, or average over the window's cells that lie inside the input
/// (padding cells are excluded from the count, as Keras' 'same' pooling and PyTorch's count_include_pad=False).</summary>
public enum PoolKind
{
    /// <summary>Maximum; its gradient goes to the first maximal cell of each window.</summary>
    Max,
    /// <summary>Mean of the in-bounds cells.</summary>
    Average,
}

/// <summary>
/// Geometry of batched 2-D pooling in NCHW layout (1-D pooling: <c>InHeight = PoolHeight = 1</c>).
/// x [Batch, Channels, InHeight, InWidth]; y [Batch, Channels, OutHeight, OutWidth]. Window (oh, ow) covers rows
/// <c>oh * StrideH - PadTop</c> .. + PoolHeight - 1 (cells outside the input are ignored).
/// </summary>
public readonly record struct PoolGeometry(
    int Batch, int Channels, int InHeight, int InWidth,
    int PoolHeight, int PoolWidth, int StrideH, int StrideW, int PadTop, int PadLeft,
    int OutHeight, int OutWidth)
{
    /// <summary>Throws <see cref="ArgumentException"/> when a size is not positive.</summary>
    public void Validate()
    {
        if (Batch < 1 || Channels < 1 || InHeight < 1 || InWidth < 1 || PoolHeight < 1 || PoolWidth < 1 || StrideH < 1 || StrideW < 1
            || OutHeight < 1 || OutWidth < 1 || PadTop < 0 || PadLeft < 0)
            throw new ArgumentException($"Invalid pooling geometry {this}: sizes and strides must be positive and padding non-negative.");
    }
}

/// <summary>
/// Batched float32 neural-network operations, forward and backward, on one engine's tensors. Every tensor is
/// row-major and allocated by the same engine; the leading axis is the batch. Operations take tensors in and write
/// tensors out (no host callbacks), so each engine implements them as kernels. Channel-wise operations see
/// activations as [Batch, Channels, Spatial...] where the spatial part may be empty.
/// Results on the managed engine are deterministic: every reduction uses a fixed partitioning and order that does
/// not depend on thread timing or thread count. One instance is not meant to be used from several threads at once.
/// </summary>
public interface INnOps
{
    /// <summary>The engine whose tensors these operations accept.</summary>
    Engine Engine { get; }

    /// <summary>Sets every element of <paramref name="x"/> to <paramref name="value"/>.</summary>
    void Fill(Tensor x, float value);

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> (equal element counts).</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>Multiplies every element of <paramref name="x"/> by <paramref name="factor"/> in place.</summary>
    void Scale(Tensor x, float factor);

    /// <summary>Sum of squares of all elements, accumulated in double in a fixed order (the squared L2 norm used by
    /// gradient clipping). Synchronises with the device.</summary>
    double SumOfSquares(Tensor x);

    /// <summary>
    /// General matrix product C = alpha * op(A) * op(B) + beta * C (BLAS sgemm, row-major). op(A) is [M, K]
    /// (A stored [M, K], or [K, M] when <paramref name="transposeA"/>); op(B) is [K, N] (stored [K, N], or [N, K]
    /// when <paramref name="transposeB"/>); C is [M, N]. Tensors of higher rank are read as matrices of their first
    /// axis by the product of the rest. beta = 0 ignores C's previous contents (NaN included).
    /// </summary>
    void Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f);

    /// <summary>y[n, c, s] = x[n, c, s] + bias[c]. x, y: [N, C, spatial...] (may be the same tensor); bias: [C].</summary>
    void BiasAdd(Tensor x, Tensor bias, Tensor y);

    /// <summary>dBias[c] = sum over n and s of dy[n, c, s]. dy: [N, C, spatial...]; dBias: [C].</summary>
    void BiasGrad(Tensor dy, Tensor dBias);

    /// <summary>Convolution (cross-correlation, as Keras Conv2D / torch.nn.functional.conv2d) with optional bias.
    /// Shapes in <see cref="ConvGeometry"/>.</summary>
    void Conv2DForward(in ConvGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y);

    /// <summary>Gradients of <see cref="Conv2DForward"/>: dw (overwritten), dBias (overwritten, optional) and dx
    /// (overwritten, optional: pass null for a first layer whose input needs no gradient).</summary>
    void Conv2DBackward(in ConvGeometry g, Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? dBias);

    /// <summary>Max or average pooling. Shapes in <see cref="PoolGeometry"/>.</summary>
    void Pool2DForward(in PoolGeometry g, PoolKind kind, Tensor x, Tensor y);

    /// <summary>Gradient of <see cref="Pool2DForward"/> into dx (overwritten). x and y are the forward input and output
    /// (max pooling routes each window's gradient to its first maximal cell).</summary>
    void Pool2DBackward(in PoolGeometry g, PoolKind kind, Tensor x, Tensor y, Tensor dy, Tensor dx);

    /// <summary>Global average pooling: y[n, c] = mean over s of x[n, c, s]. x: [N, C, spatial...]; y: [N, C].</summary>
    void GlobalAvgPoolForward(Tensor x, Tensor y);

    /// <summary>Gradient of global average pooling: dx[n, c, s] = dy[n, c] / S.</summary>
    void GlobalAvgPoolBackward(Tensor dy, Tensor dx);

    /// <summary>
    /// Batch normalisation in training mode (Ioffe and Szegedy 2015; Keras BatchNormalization on the channel axis).
    /// Statistics per channel over batch and spatial axes, biased variance. x, y: [N, C, spatial...];
    /// gamma, beta, saveMean, saveInvStd, runningMean, runningVar: [C]. Writes the batch mean and 1/sqrt(var + eps)
    /// to saveMean/saveInvStd (for the backward pass) and updates running = momentum * running + (1 - momentum) * batch
    /// (Keras' convention: momentum 0.99 keeps 99% of the old value).
    /// </summary>
    void BatchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, float momentum, float epsilon,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y);

    /// <summary>Batch normalisation with running statistics (inference): y = gamma (x - mean) / sqrt(var + eps) + beta.</summary>
    void BatchNormInferenceForward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float epsilon, Tensor y);

    /// <summary>Gradient of <see cref="BatchNormTrainingForward"/>: dx, dGamma, dBeta (all overwritten).</summary>
    void BatchNormBackward(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy,
        Tensor dx, Tensor dGamma, Tensor dBeta);

    /// <summary>
    /// <see cref="BatchNormTrainingForward"/> followed by <see cref="LeakyReluForward"/> in one pass: y = v for v &gt; 0,
    /// slope * v otherwise, with v the batch-normalised value (slope 0 gives ReLU; slope &gt;= 0). Bit-identical to
    /// the two operations in sequence (the same statistics, the same v, the same selection); y holds only the
    /// activation, the normalised values are not kept. Shapes as <see cref="BatchNormTrainingForward"/>.
    /// </summary>
    void BatchNormLeakyReluTrainingForward(Tensor x, Tensor gamma, Tensor beta, float slope, float momentum, float epsilon,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y);

    /// <summary><see cref="BatchNormInferenceForward"/> followed by <see cref="LeakyReluForward"/> in one pass,
    /// bit-identical to the two in sequence. Shapes as <see cref="BatchNormInferenceForward"/>.</summary>
    void BatchNormLeakyReluInferenceForward(Tensor x, Tensor gamma, Tensor beta, float slope, Tensor runningMean, Tensor runningVar,
        float epsilon, Tensor y);

    /// <summary>
    /// Gradient of <see cref="BatchNormLeakyReluTrainingForward"/>: <see cref="LeakyReluBackward"/> from its output y
    /// applied to dy as it is read (dy where y &gt; 0, slope * dy otherwise) inside <see cref="BatchNormBackward"/>, so
    /// no masked copy of dy is written. Bit-identical to the two operations in sequence. x: the forward input; y: the
    /// forward output; dx, dGamma, dBeta overwritten; dx must not alias x, y or dy.
    /// </summary>
    void BatchNormLeakyReluBackward(Tensor x, Tensor y, float slope, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy,
        Tensor dx, Tensor dGamma, Tensor dBeta);

    /// <summary>Inverted dropout (Srivastava et al. 2014): keeps each element with probability 1 - rate and scales kept
    /// elements by 1 / (1 - rate). The mask (0 or 1 / (1 - rate), same shape as x) is a pure function of
    /// (<paramref name="seed"/>, element index), so every engine draws the same mask. rate in [0, 1).</summary>
    void DropoutForward(Tensor x, float rate, ulong seed, Tensor mask, Tensor y);

    /// <summary>dx = dy * mask (the mask written by <see cref="DropoutForward"/>).</summary>
    void DropoutBackward(Tensor dy, Tensor mask, Tensor dx);

    /// <summary>Leaky ReLU: y = x for x &gt; 0, slope * x otherwise (slope 0 gives ReLU). x and y may be the same tensor.</summary>
    void LeakyReluForward(Tensor x, float slope, Tensor y);

    /// <summary>Gradient of leaky ReLU from the forward output y (valid for slope &gt;= 0): dx = dy where y &gt; 0,
    /// slope * dy otherwise. dy and dx may be the same tensor.</summary>
    void LeakyReluBackward(Tensor y, float slope, Tensor dy, Tensor dx);

    /// <summary>
    /// Softmax cross-entropy, numerically stable (log-sum-exp with the row maximum subtracted), with label smoothing
    /// (targets (1 - eps) one-hot + eps / K, as Keras' CategoricalCrossentropy(label_smoothing)).
    /// logits, probabilities, dLogits: [N, K]; labels: [N] holding class indices 0..K-1 as floats; losses: [N]
    /// (per-sample loss in nats). dLogits (optional) = gradientScale * (softmax - targets), e.g. scale 1/N for the mean loss.
    /// </summary>
    void SoftmaxCrossEntropy(Tensor logits, Tensor labels, float labelSmoothing,
        Tensor probabilities, Tensor losses, Tensor? dLogits, float gradientScale);

    /// <summary>
    /// SGD step in place (PyTorch's torch.optim.SGD): g = grad + weightDecay * p; v = momentum * v + g;
    /// p -= lr * (nesterov ? g + momentum * v : v). With momentum 0, v still holds g. All tensors share one shape.
    /// </summary>
    void SgdUpdate(Tensor parameter, Tensor gradient, Tensor velocity, float learningRate, float momentum, bool nesterov, float weightDecay);

    /// <summary>
    /// Adam step in place (Kingma and Ba 2015, bias-corrected): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    /// p -= lr * m^ / (sqrt(v^) + eps) with m^ = m / (1 - b1^t), v^ = v / (1 - b2^t). Weight decay is added to the
    /// gradient (L2, Adam) or, when <paramref name="decoupled"/>, applied as p *= 1 - lr * weightDecay before the step
    /// (AdamW, Loshchilov and Hutter 2019). <paramref name="step"/> t counts from 1.
    /// </summary>
    void AdamUpdate(Tensor parameter, Tensor gradient, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupled, int step);
}

/// <summary>Slots of the status tensor that <see cref="INnDeviceTraining"/> operations read and write on the device
/// (a float tensor of at least <see cref="Length"/> elements, zeroed at the start of a logging interval).</summary>
public static class DeviceStatus
{
    /// <summary>Set to 1 by <see cref="INnDeviceTraining.SoftmaxCrossEntropyRows"/> when a row's loss is NaN or
    /// infinite (or its label is not a class index); the guarded optimizer updates skip every step while it is set.</summary>
    public const int LossNotFinite = 0;

    /// <summary>The gradient scale of clipping by global norm, written by <see cref="INnDeviceTraining.ClipScale"/>.</summary>
    public const int GradientScale = 1;

    /// <summary>Set to 1 by <see cref="INnDeviceTraining.FlagNonFinite"/> when a weight is NaN or infinite.</summary>
    public const int WeightsNotFinite = 2;

    /// <summary>Elements of a status tensor.</summary>
    public const int Length = 4;
}

/// <summary>
/// Operations that keep a whole training step on a device (implemented by the ILGPU engines' network operations):
/// fused kernels that replace several <see cref="INnOps"/> launches, and results (per-row loss and correctness, a
/// non-finite flag, the clipping scale) that stay in device tensors until the caller reads them once per logging
/// interval, so that a step makes no device-to-host copy. Each operation equals a composition of <see cref="INnOps"/>
/// operations on the managed engine (stated per method; the engine-equivalence tests compare them) and throws
/// <see cref="ArgumentException"/> naming the parameter for a tensor of another engine or a wrong shape.
/// </summary>
public interface INnDeviceTraining
{
    /// <summary>A tensor of <paramref name="shape"/> over elements [offset, offset + product(shape)) of
    /// <paramref name="storage"/>, sharing its memory (parameters and optimizer slots as parts of one flat buffer).
    /// Throws <see cref="ArgumentOutOfRangeException"/> when the range leaves the storage.</summary>
    Tensor View(Tensor storage, long offset, params int[] shape);

    /// <summary>Bias and leaky ReLU in one launch: y[n, c, s] = f(x[n, c, s] + bias[c]) with f(v) = v for v &gt; 0,
    /// slope * v otherwise; equals <see cref="INnOps.BiasAdd"/> then <see cref="INnOps.LeakyReluForward"/>. x, y:
    /// [N, C, spatial...] (may be the same tensor); bias: [C].</summary>
    void BiasLeakyRelu(Tensor x, Tensor bias, float slope, Tensor y);

    /// <summary>
    /// Softmax cross-entropy and its gradient in one launch, one thread per row, with nothing read back:
    /// dLogits = gradientScale * (softmax - targets) as <see cref="INnOps.SoftmaxCrossEntropy"/>; losses[i] = the row's
    /// loss in nats; correct[i] = 1 when the row's largest probability (the first, on ties) is at its label, else 0;
    /// status[<see cref="DeviceStatus.LossNotFinite"/>] = 1 when a loss is NaN or infinite. Labels are not validated on
    /// the host: a label that is not a class index gives a NaN loss (and sets the flag) instead of reading out of
    /// bounds. logits, dLogits: [N, K]; labels, losses, correct: [N]; status: [<see cref="DeviceStatus.Length"/>].
    /// </summary>
    void SoftmaxCrossEntropyRows(Tensor logits, Tensor labels, float labelSmoothing, Tensor dLogits, float gradientScale,
        Tensor losses, Tensor correct, Tensor status);

    /// <summary>Clipping by global L2 norm without a host read: norm = sqrt(sum of gradient^2) accumulated in double in
    /// a fixed order; status[<see cref="DeviceStatus.GradientScale"/>] = maxNorm / norm when norm &gt; maxNorm, else 1
    /// (the factor <c>Optimizers.clipByNorm</c> applies with <see cref="INnOps.Scale"/>). gradient: every parameter's
    /// gradient in one flat tensor.</summary>
    void ClipScale(Tensor gradient, double maxNorm, Tensor status);

    /// <summary><see cref="INnOps.AdamUpdate"/> over one flat buffer of every parameter (one launch), skipped on the
    /// device while status[<see cref="DeviceStatus.LossNotFinite"/>] is set; when <paramref name="clipped"/>, the
    /// gradient is first multiplied by status[<see cref="DeviceStatus.GradientScale"/>].</summary>
    void AdamUpdateGuarded(Tensor parameter, Tensor gradient, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupled, int step, Tensor status, bool clipped);

    /// <summary><see cref="INnOps.SgdUpdate"/> over one flat buffer, guarded and clipped as
    /// <see cref="AdamUpdateGuarded"/>.</summary>
    void SgdUpdateGuarded(Tensor parameter, Tensor gradient, Tensor velocity, float learningRate, float momentum, bool nesterov,
        float weightDecay, Tensor status, bool clipped);

    /// <summary>status[<paramref name="slot"/>] = 1 when an element of <paramref name="x"/> is NaN or infinite (left
    /// unchanged otherwise).</summary>
    void FlagNonFinite(Tensor x, Tensor status, int slot);
}

/// <summary>
/// Batch normalisation (training statistics), leaky ReLU and 2 x 2 max pooling of stride 2 as one operation each way,
/// offered by engines whose passes are bound by memory traffic (the managed engine): the full-size activation between
/// the batch norm and the pool is neither written nor read back. The forward pass writes only the pooled output; the
/// backward pass recomputes each plane's activation from x, the saved statistics, gamma and beta (in cache, one plane
/// at a time) and routes dy through the pool and the activation as it reduces. For the reference CNN's second block
/// (64 x 64 x 20 x 32 floats a batch) that is about 37 MB of memory traffic a backward pass instead of about 100.
/// Both operations are bit-identical to <see cref="INnOps.BatchNormLeakyReluTrainingForward"/> then
/// <see cref="INnOps.Pool2DForward"/> (max), and <see cref="INnOps.Pool2DBackward"/> (max) then
/// <see cref="INnOps.BatchNormLeakyReluBackward"/>, on the same engine. The Network's Model uses them for a BatchNorm,
/// (leaky) ReLU, MaxPooling2D (2 x 2, stride 2, no padding) sequence when the engine's operations implement this
/// interface, and runs the three layers apart otherwise. <see cref="BatchNormPoolFusion.Applies"/> says which pools.
/// </summary>
public interface INnBatchNormPoolFusion
{
    /// <summary>
    /// Batch norm in training mode (as <see cref="INnOps.BatchNormTrainingForward"/>: saveMean, saveInvStd and the
    /// running statistics written the same), leaky ReLU of <paramref name="slope"/> and 2 x 2 max pooling into y.
    /// g: the pool's geometry (x: [g.Batch, g.Channels, g.InHeight, g.InWidth]; y: [g.Batch, g.Channels, g.OutHeight,
    /// g.OutWidth]; a 2 x 2 window, stride 2, no padding, the rows and columns past the last window left out);
    /// gamma, beta, running and saved statistics: [g.Channels].
    /// </summary>
    /// <exception cref="ArgumentException">g is not a pool <see cref="BatchNormPoolFusion.Applies"/> accepts, or a
    /// tensor has another shape or belongs to another engine (the message names it).</exception>
    void BatchNormLeakyReluMaxPoolTrainingForward(in PoolGeometry g, Tensor x, Tensor gamma, Tensor beta, float slope, float momentum,
        float epsilon, Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y);

    /// <summary>
    /// Gradient of <see cref="BatchNormLeakyReluMaxPoolTrainingForward"/>: dx [g.Batch, g.Channels, g.InHeight,
    /// g.InWidth], dGamma and dBeta [g.Channels] overwritten from dy [g.Batch, g.Channels, g.OutHeight, g.OutWidth]
    /// and the forward pass's x, gamma, beta and saved statistics (which must not have changed since). Each window's
    /// gradient goes to its first maximal cell, as <see cref="INnOps.Pool2DBackward"/>. dx must not alias x or dy.
    /// </summary>
    /// <exception cref="ArgumentException">As the forward pass.</exception>
    void BatchNormLeakyReluMaxPoolBackward(in PoolGeometry g, Tensor x, float slope, Tensor gamma, Tensor beta, Tensor saveMean,
        Tensor saveInvStd, Tensor dy, Tensor dx, Tensor dGamma, Tensor dBeta);
}

/// <summary>Which pools <see cref="INnBatchNormPoolFusion"/> computes.</summary>
public static class BatchNormPoolFusion
{
    /// <summary>
    /// True for 2 x 2 windows of stride 2 without padding that all lie inside the input (2 OutHeight &lt;= InHeight and
    /// 2 OutWidth &lt;= InWidth: an odd last row or column is left out, as Keras' MaxPooling2D(2) with padding "valid"
    /// does). "same" padding over an odd size has a window past the edge and is run unfused.
    /// </summary>
    public static bool Applies(in PoolGeometry g) =>
        g.PoolHeight == 2 && g.PoolWidth == 2 && g.StrideH == 2 && g.StrideW == 2 && g.PadTop == 0 && g.PadLeft == 0
        && 2 * g.OutHeight <= g.InHeight && 2 * g.OutWidth <= g.InWidth;
}
