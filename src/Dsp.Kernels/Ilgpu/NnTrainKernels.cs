using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>
/// The fused kernels of a device-resident training step (<see cref="INnDeviceTraining"/>): bias + leaky ReLU,
/// softmax cross-entropy + gradient + per-row loss and correctness, the clipping scale's final sum, the guarded SGD
/// and Adam updates over one flat parameter buffer, and the non-finite flag. Each performs the same float operations
/// in the same order as the <see cref="INnOps"/> composition it replaces, so results agree with the managed engine.
/// Flags are set by plain stores of 1 from any thread that finds the condition (all store the same value).
/// </summary>
internal static class NnTrainKernels
{
    /// <summary>True when v is NaN or infinite (v - v is NaN exactly then).</summary>
    private static bool NotFinite(float v) => v - v != 0f;

    /// <summary>y = leaky(x + bias[c]).</summary>
    internal static void BiasLeakyReluKernel(Index1D i, ArrayView<float> x, ArrayView<float> bias, ArrayView<float> y, ChannelShape shape, float slope)
    {
        float v = x[i] + bias[(i / shape.Spatial) % shape.Channels];
        y[i] = v > 0f ? v : slope * v;
    }

    /// <summary>
    /// One thread per row of logits [N, K]: the exponentials go to dLogits first (row maximum subtracted, sum in double),
    /// then probabilities p = e / sum, loss = sum_j q_j (lse - z_j), correct = (argmax p == label, first maximum),
    /// dLogits = gradientScale * (p - q); status[0] = 1 for a non-finite loss. A label outside 0..K-1 (or not an
    /// integer) gives loss NaN.
    /// </summary>
    internal static void SoftmaxCrossEntropyRowsKernel(Index1D row, ArrayView<float> logits, ArrayView<float> labels, ArrayView<float> dLogits,
        ArrayView<float> losses, ArrayView<float> correct, ArrayView<float> status, int classes, float on, float off, float gradientScale)
    {
        long basis = (long)(int)row * classes;
        float lf = labels[row];
        int label = lf >= 0f && lf < classes && lf == XMath.Floor(lf) ? (int)lf : -1;
        float max = float.NegativeInfinity;
        for (int j = 0; j < classes; j++) max = XMath.Max(max, logits[basis + j]);
        double sum = 0.0;
        for (int j = 0; j < classes; j++)
        {
            float e = XMath.Exp(logits[basis + j] - max);
            dLogits[basis + j] = e;
            sum += e;
        }
        float lse = max + (float)XMath.Log(sum);
        float inv = (float)(1.0 / sum);
        double loss = 0.0;
        int best = 0;
        float bestP = float.NegativeInfinity;
        for (int j = 0; j < classes; j++)
        {
            float p = dLogits[basis + j] * inv;
            if (j == 0 || p > bestP)
            {
                best = j;
                bestP = p;
            }
            float q = j == label ? on : off;
            if (q != 0f) loss += q * (double)(lse - logits[basis + j]);
            dLogits[basis + j] = gradientScale * (p - q);
        }
        float rowLoss = label < 0 ? float.NaN : (float)loss;
        losses[row] = rowLoss;
        correct[row] = best == label ? 1f : 0f;
        if (NotFinite(rowLoss)) status[DeviceStatus.LossNotFinite] = 1f;
    }

    /// <summary>One thread: total = sum of the partial sums in order; status[1] = maxNorm / sqrt(total) when that norm
    /// exceeds maxNorm, else 1.</summary>
    internal static void ClipScaleKernel(Index1D i, ArrayView<double> partial, int blocks, ArrayView<float> status, double maxNorm)
    {
        double total = 0.0;
        for (int b = 0; b < blocks; b++) total += partial[b];
        double norm = XMath.Sqrt(total);
        status[DeviceStatus.GradientScale] = norm > maxNorm && norm > 0.0 ? (float)(maxNorm / norm) : 1f;
    }

    /// <summary>The SGD step of <see cref="NnElementKernels.SgdKernel"/>, skipped while status[0] is set, the gradient
    /// scaled by status[1] when clipped.</summary>
    internal static void SgdGuardedKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> v, OptimizerArgs o,
        ArrayView<float> status, int clipped)
    {
        if (status[DeviceStatus.LossNotFinite] != 0f) return;
        float pi = p[i];
        float raw = clipped != 0 ? g[i] * status[DeviceStatus.GradientScale] : g[i];
        float gi = raw + o.WeightDecay * pi;
        float vi = o.Momentum * v[i] + gi;
        v[i] = vi;
        p[i] = pi - o.LearningRate * (o.Nesterov != 0 ? gi + o.Momentum * vi : vi);
    }

    /// <summary>The Adam step of <see cref="NnElementKernels.AdamKernel"/>, skipped while status[0] is set, the gradient
    /// scaled by status[1] when clipped.</summary>
    internal static void AdamGuardedKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v,
        OptimizerArgs o, ArrayView<float> status, int clipped)
    {
        if (status[DeviceStatus.LossNotFinite] != 0f) return;
        float p0 = p[i];
        float pi = p0 * o.Decay;
        float raw = clipped != 0 ? g[i] * status[DeviceStatus.GradientScale] : g[i];
        float gi = raw + o.L2 * p0;
        float mi = o.Beta1 * m[i] + (1f - o.Beta1) * gi;
        float vi = o.Beta2 * v[i] + (1f - o.Beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - o.LearningRate * (mi * o.C1) / (XMath.Sqrt(vi * o.C2) + o.Epsilon);
    }

    /// <summary>status[slot] = 1 when x[i] is NaN or infinite.</summary>
    internal static void FlagNonFiniteKernel(Index1D i, ArrayView<float> x, ArrayView<float> status, int slot)
    {
        if (NotFinite(x[i])) status[slot] = 1f;
    }

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float> BiasLeakyRelu(IlgpuEngine e) =>
        e.Kernel("nn.biasleaky", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float>(BiasLeakyReluKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float, float> SoftmaxCrossEntropyRows(IlgpuEngine e) =>
        e.Kernel("nn.softmaxcerows", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float, float>(SoftmaxCrossEntropyRowsKernel));

    internal static Action<Index1D, ArrayView<double>, int, ArrayView<float>, double> ClipScale(IlgpuEngine e) =>
        e.Kernel("nn.clipscale", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, int, ArrayView<float>, double>(ClipScaleKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, OptimizerArgs, ArrayView<float>, int> SgdGuarded(IlgpuEngine e) =>
        e.Kernel("nn.sgdguarded", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, OptimizerArgs, ArrayView<float>, int>(SgdGuardedKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, OptimizerArgs, ArrayView<float>, int> AdamGuarded(IlgpuEngine e) =>
        e.Kernel("nn.adamguarded", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, OptimizerArgs, ArrayView<float>, int>(AdamGuardedKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, int> FlagNonFinite(IlgpuEngine e) =>
        e.Kernel("nn.flagnonfinite", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(FlagNonFiniteKernel));
}
