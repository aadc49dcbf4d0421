using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>Per-channel layout [N, C, S] of an activation tensor (S = product of the spatial axes, 1 when none).</summary>
internal struct ChannelShape
{
    public int Channels;
    public int Spatial;
}

/// <summary>Hyper-parameters of one optimizer step (SGD or Adam), folded on the host.</summary>
internal struct OptimizerArgs
{
    public float LearningRate;
    public float Momentum;
    public int Nesterov;
    public float WeightDecay;
    public float Beta1;
    public float Beta2;
    public float Epsilon;
    public float C1;
    public float C2;
    public float Decay;
    public float L2;
}

/// <summary>
/// Element-wise network kernels: one thread per element, consecutive threads on consecutive elements (coalesced).
/// Fill, copy, scale, bias add, leaky ReLU, dropout (the managed engine's counter-based mask, <see cref="Managed.NnRandom"/>),
/// global-average-pooling gradient, batch-normalisation affine passes (alone or with leaky ReLU fused in) and the SGD / Adam updates (the same
/// operations in the same order as <see cref="Managed.ManagedNn"/>).
/// </summary>
internal static class NnElementKernels
{
    internal static void FillKernel(Index1D i, ArrayView<float> x, float value) => x[i] = value;

    internal static void CopyKernel(Index1D i, ArrayView<float> source, ArrayView<float> destination) => destination[i] = source[i];

    internal static void ScaleKernel(Index1D i, ArrayView<float> x, float factor) => x[i] = x[i] * factor;

    /// <summary>y[n, c, s] = x[n, c, s] + bias[c].</summary>
    internal static void BiasAddKernel(Index1D i, ArrayView<float> x, ArrayView<float> bias, ArrayView<float> y, ChannelShape shape) =>
        y[i] = x[i] + bias[(i / shape.Spatial) % shape.Channels];

    internal static void LeakyReluKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, float slope)
    {
        float v = x[i];
        y[i] = v > 0f ? v : slope * v;
    }

    internal static void LeakyReluGradKernel(Index1D i, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, float slope)
    {
        float g = dy[i];
        dx[i] = y[i] > 0f ? g : slope * g;
    }

    /// <summary>mask = 1 / (1 - rate) where Uniform(seed, i) &gt;= rate, else 0; y = x * mask.</summary>
    internal static void DropoutKernel(Index1D i, ArrayView<float> x, ArrayView<float> mask, ArrayView<float> y, float rate, float keepScale, ulong seed)
    {
        float m = Managed.NnRandom.Uniform(seed, i) >= rate ? keepScale : 0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }

    internal static void MultiplyKernel(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => y[i] = a[i] * b[i];

    /// <summary>dx[p, s] = dy[p] / S.</summary>
    internal static void GlobalAvgPoolGradKernel(Index1D i, ArrayView<float> dy, ArrayView<float> dx, int spatial) =>
        dx[i] = dy[i / spatial] / spatial;

    /// <summary>Inference batch norm: y = x * scale + shift, scale = gamma / sqrt(var + eps), shift = beta - mean * scale.</summary>
    internal static void BatchNormInferenceKernel(Index1D i, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> variance, ArrayView<float> y, ChannelShape shape, float epsilon)
    {
        int c = (i / shape.Spatial) % shape.Channels;
        float scale = gamma[c] / XMath.Sqrt(variance[c] + epsilon);
        float shift = beta[c] - mean[c] * scale;
        y[i] = x[i] * scale + shift;
    }

    /// <summary>Training batch norm's normalisation from the saved batch statistics.</summary>
    internal static void BatchNormApplyKernel(Index1D i, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd, ArrayView<float> y, ChannelShape shape)
    {
        int c = (i / shape.Spatial) % shape.Channels;
        float scale = gamma[c] * saveInvStd[c];
        float shift = beta[c] - saveMean[c] * scale;
        y[i] = x[i] * scale + shift;
    }

    /// <summary>dx = gamma invStd (dy - dBeta / M - xhat dGamma / M), with dGamma and dBeta already reduced.</summary>
    internal static void BatchNormGradKernel(Index1D i, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> saveMean,
        ArrayView<float> saveInvStd, ArrayView<float> dy, ArrayView<float> dGamma, ArrayView<float> dBeta, ArrayView<float> dx,
        ChannelShape shape, float count)
    {
        int c = (i / shape.Spatial) % shape.Channels;
        float invStd = saveInvStd[c];
        float k = gamma[c] * invStd;
        float b = -k * dGamma[c] * invStd / count;
        float constant = -k * dBeta[c] / count - b * saveMean[c];
        dx[i] = dy[i] * k + x[i] * b + constant;
    }

    /// <summary><see cref="BatchNormInferenceKernel"/> with leaky ReLU applied to the normalised value before it is stored.</summary>
    internal static void BatchNormInferenceLeakyReluKernel(Index1D i, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> variance, ArrayView<float> y, ChannelShape shape, float epsilon, float slope)
    {
        int c = (i / shape.Spatial) % shape.Channels;
        float scale = gamma[c] / XMath.Sqrt(variance[c] + epsilon);
        float shift = beta[c] - mean[c] * scale;
        float v = x[i] * scale + shift;
        y[i] = v > 0f ? v : slope * v;
    }

    /// <summary><see cref="BatchNormApplyKernel"/> with leaky ReLU applied to the normalised value before it is stored.</summary>
    internal static void BatchNormApplyLeakyReluKernel(Index1D i, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd, ArrayView<float> y, ChannelShape shape, float slope)
    {
        int c = (i / shape.Spatial) % shape.Channels;
        float scale = gamma[c] * saveInvStd[c];
        float shift = beta[c] - saveMean[c] * scale;
        float v = x[i] * scale + shift;
        y[i] = v > 0f ? v : slope * v;
    }

    /// <summary><see cref="BatchNormGradKernel"/> of g = dy where the activation output y &gt; 0, slope * dy otherwise
    /// (leaky ReLU's gradient, computed as dy is read).</summary>
    internal static void BatchNormGradLeakyReluKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd, ArrayView<float> dy, ArrayView<float> dGamma, ArrayView<float> dBeta,
        ArrayView<float> dx, ChannelShape shape, float count, float slope)
    {
        int c = (i / shape.Spatial) % shape.Channels;
        float invStd = saveInvStd[c];
        float k = gamma[c] * invStd;
        float b = -k * dGamma[c] * invStd / count;
        float constant = -k * dBeta[c] / count - b * saveMean[c];
        float d = dy[i];
        float g = y[i] > 0f ? d : slope * d;
        dx[i] = g * k + x[i] * b + constant;
    }

    internal static void SgdKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> v, OptimizerArgs o)
    {
        float pi = p[i];
        float gi = g[i] + o.WeightDecay * pi;
        float vi = o.Momentum * v[i] + gi;
        v[i] = vi;
        p[i] = pi - o.LearningRate * (o.Nesterov != 0 ? gi + o.Momentum * vi : vi);
    }

    internal static void AdamKernel(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, OptimizerArgs o)
    {
        float p0 = p[i];
        float pi = p0 * o.Decay;
        float gi = g[i] + o.L2 * p0;
        float mi = o.Beta1 * m[i] + (1f - o.Beta1) * gi;
        float vi = o.Beta2 * v[i] + (1f - o.Beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - o.LearningRate * (mi * o.C1) / (XMath.Sqrt(vi * o.C2) + o.Epsilon);
    }

    internal static Action<Index1D, ArrayView<float>, float> Fill(IlgpuEngine e) =>
        e.Kernel("nn.fill", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(FillKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>> Copy(IlgpuEngine e) =>
        e.Kernel("nn.copy", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(CopyKernel));

    internal static Action<Index1D, ArrayView<float>, float> Scale(IlgpuEngine e) =>
        e.Kernel("nn.scale", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(ScaleKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape> BiasAdd(IlgpuEngine e) =>
        e.Kernel("nn.biasadd", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape>(BiasAddKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, float> LeakyRelu(IlgpuEngine e) =>
        e.Kernel("nn.leaky", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float>(LeakyReluKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float> LeakyReluGrad(IlgpuEngine e) =>
        e.Kernel("nn.leakygrad", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(LeakyReluGradKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, ulong> Dropout(IlgpuEngine e) =>
        e.Kernel("nn.dropout", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, ulong>(DropoutKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Multiply(IlgpuEngine e) =>
        e.Kernel("nn.multiply", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(MultiplyKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, int> GlobalAvgPoolGrad(IlgpuEngine e) =>
        e.Kernel("nn.gapgrad", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(GlobalAvgPoolGradKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float> BatchNormInference(IlgpuEngine e) =>
        e.Kernel("nn.bninfer", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float>(BatchNormInferenceKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape> BatchNormApply(IlgpuEngine e) =>
        e.Kernel("nn.bnapply", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape>(BatchNormApplyKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float> BatchNormGrad(IlgpuEngine e) =>
        e.Kernel("nn.bngrad", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float>(BatchNormGradKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float, float> BatchNormInferenceLeakyRelu(IlgpuEngine e) =>
        e.Kernel("nn.bninferleaky", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float, float>(BatchNormInferenceLeakyReluKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float> BatchNormApplyLeakyRelu(IlgpuEngine e) =>
        e.Kernel("nn.bnapplyleaky", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float>(BatchNormApplyLeakyReluKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float, float> BatchNormGradLeakyRelu(IlgpuEngine e) =>
        e.Kernel("nn.bngradleaky", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelShape, float, float>(BatchNormGradLeakyReluKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, OptimizerArgs> Sgd(IlgpuEngine e) =>
        e.Kernel("nn.sgd", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, OptimizerArgs>(SgdKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, OptimizerArgs> Adam(IlgpuEngine e) =>
        e.Kernel("nn.adam", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, OptimizerArgs>(AdamKernel));
}
