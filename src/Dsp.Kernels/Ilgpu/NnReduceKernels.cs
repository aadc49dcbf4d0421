using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>Arguments of the per-channel reductions over [N, C, S] activations.</summary>
internal struct ChannelReduction
{
    public int Batch;
    public int Channels;
    public int Spatial;
}

/// <summary>
/// Reductions of the network operations, one group per output and a fixed tree in shared memory, so results do not
/// depend on timing (deterministic run to run): block sums of squares (double), per-channel bias gradients,
/// batch-normalisation statistics and gradient sums, global average pooling, and row-wise softmax cross-entropy.
/// Each group's threads stride over the reduced elements (consecutive threads on consecutive elements).
/// </summary>
internal static class NnReduceKernels
{
    /// <summary>Largest group size the reductions use (their shared arrays have this many cells).</summary>
    internal const int MaxThreads = 256;

    /// <summary>Elements per group of <see cref="SumOfSquaresKernel"/>.</summary>
    internal const int SquaresBlock = 8192;

    /// <summary>Tree-sums shared[0..threads) into shared[0] (all threads must call it).</summary>
    private static void TreeSum(ArrayView<float> shared, int tid, int threads)
    {
        for (int stride = 1; stride < threads; stride <<= 1)
        {
            if ((tid & (2 * stride - 1)) == 0 && tid + stride < threads) shared[tid] += shared[tid + stride];
            Group.Barrier();
        }
    }

    private static void TreeSumDouble(ArrayView<double> shared, int tid, int threads)
    {
        for (int stride = 1; stride < threads; stride <<= 1)
        {
            if ((tid & (2 * stride - 1)) == 0 && tid + stride < threads) shared[tid] += shared[tid + stride];
            Group.Barrier();
        }
    }

    /// <summary>partial[block] = sum of x^2 over the block's <see cref="SquaresBlock"/> elements, in double.</summary>
    internal static void SumOfSquaresKernel(ArrayView<float> x, ArrayView<double> partial, int length)
    {
        var shared = SharedMemory.Allocate<double>(MaxThreads);
        int tid = Group.IdxX, threads = Group.DimX;
        long start = (long)Grid.IdxX * SquaresBlock;
        long end = start + SquaresBlock;
        if (end > length) end = length;
        double acc = 0.0;
        for (long j = start + tid; j < end; j += threads)
        {
            double v = x[j];
            acc += v * v;
        }
        shared[tid] = acc;
        Group.Barrier();
        TreeSumDouble(shared, tid, threads);
        if (tid == 0) partial[Grid.IdxX] = shared[0];
    }

    /// <summary>Element j of channel c over all samples: x[(j / S) * C * S + c * S + j % S].</summary>
    private static long ChannelIndex(ChannelReduction r, int c, int j)
    {
        int n = j / r.Spatial;
        return ((long)n * r.Channels + c) * r.Spatial + (j - n * r.Spatial);
    }

    /// <summary>One group per channel: dBias[c] = sum over n, s of dy[n, c, s].</summary>
    internal static void BiasGradKernel(ArrayView<float> dy, ArrayView<float> dBias, ChannelReduction r)
    {
        var shared = SharedMemory.Allocate<float>(MaxThreads);
        int c = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        int count = r.Batch * r.Spatial;
        float acc = 0f;
        for (int j = tid; j < count; j += threads) acc += dy[ChannelIndex(r, c, j)];
        shared[tid] = acc;
        Group.Barrier();
        TreeSum(shared, tid, threads);
        if (tid == 0) dBias[c] = shared[0];
    }

    /// <summary>
    /// One group per channel: batch mean, biased variance (two passes, the second around the mean),
    /// saveMean, saveInvStd = 1 / sqrt(var + eps), and the running statistics' momentum update.
    /// </summary>
    internal static void BatchNormStatsKernel(ArrayView<float> x, ArrayView<float> runningMean, ArrayView<float> runningVar,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd, ChannelReduction r, float momentum, float epsilon)
    {
        var shared = SharedMemory.Allocate<float>(MaxThreads);
        int c = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        int count = r.Batch * r.Spatial;
        float acc = 0f;
        for (int j = tid; j < count; j += threads) acc += x[ChannelIndex(r, c, j)];
        shared[tid] = acc;
        Group.Barrier();
        TreeSum(shared, tid, threads);
        float mean = shared[0] / count;
        Group.Barrier();
        float sq = 0f;
        for (int j = tid; j < count; j += threads)
        {
            float d = x[ChannelIndex(r, c, j)] - mean;
            sq += d * d;
        }
        shared[tid] = sq;
        Group.Barrier();
        TreeSum(shared, tid, threads);
        if (tid == 0)
        {
            float variance = shared[0] / count;
            saveMean[c] = mean;
            saveInvStd[c] = 1f / XMath.Sqrt(variance + epsilon);
            runningMean[c] = momentum * runningMean[c] + (1f - momentum) * mean;
            runningVar[c] = momentum * runningVar[c] + (1f - momentum) * variance;
        }
    }

    /// <summary>Ends the batch-norm gradient-sum kernels (all threads must call it): tree-sums each thread's partial
    /// sums a (of the gradient) and b (of the gradient times x - mean) in the shared arrays, both in one pass of
    /// strides, and thread 0 writes dBeta[c] = sum a and dGamma[c] = invStd[c] * sum b.</summary>
    private static void FinishGradSums(ArrayView<float> sumDy, ArrayView<float> sumDyXc, float a, float b, int tid, int threads, int c,
        ArrayView<float> saveInvStd, ArrayView<float> dGamma, ArrayView<float> dBeta)
    {
        sumDy[tid] = a;
        sumDyXc[tid] = b;
        Group.Barrier();
        for (int stride = 1; stride < threads; stride <<= 1)
        {
            if ((tid & (2 * stride - 1)) == 0 && tid + stride < threads)
            {
                sumDy[tid] += sumDy[tid + stride];
                sumDyXc[tid] += sumDyXc[tid + stride];
            }
            Group.Barrier();
        }
        if (tid == 0)
        {
            dBeta[c] = sumDy[0];
            dGamma[c] = sumDyXc[0] * saveInvStd[c];
        }
    }

    /// <summary>One group per channel: dBeta[c] = sum dy, dGamma[c] = invStd * sum dy (x - mean).</summary>
    internal static void BatchNormGradSumsKernel(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        ArrayView<float> dGamma, ArrayView<float> dBeta, ChannelReduction r)
    {
        var sumDy = SharedMemory.Allocate<float>(MaxThreads);
        var sumDyXc = SharedMemory.Allocate<float>(MaxThreads);
        int c = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        int count = r.Batch * r.Spatial;
        float mean = saveMean[c];
        float a = 0f, b = 0f;
        for (int j = tid; j < count; j += threads)
        {
            long k = ChannelIndex(r, c, j);
            float g = dy[k];
            a += g;
            b += g * (x[k] - mean);
        }
        FinishGradSums(sumDy, sumDyXc, a, b, tid, threads, c, saveInvStd, dGamma, dBeta);
    }

    /// <summary><see cref="BatchNormGradSumsKernel"/> of g = dy where the activation output y &gt; 0, slope * dy
    /// otherwise (leaky ReLU's gradient, computed as dy is read).</summary>
    internal static void BatchNormGradSumsLeakyReluKernel(ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> saveMean,
        ArrayView<float> saveInvStd, ArrayView<float> dGamma, ArrayView<float> dBeta, ChannelReduction r, float slope)
    {
        var sumDy = SharedMemory.Allocate<float>(MaxThreads);
        var sumDyXc = SharedMemory.Allocate<float>(MaxThreads);
        int c = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        int count = r.Batch * r.Spatial;
        float mean = saveMean[c];
        float a = 0f, b = 0f;
        for (int j = tid; j < count; j += threads)
        {
            long k = ChannelIndex(r, c, j);
            float d = dy[k];
            float g = y[k] > 0f ? d : slope * d;
            a += g;
            b += g * (x[k] - mean);
        }
        FinishGradSums(sumDy, sumDyXc, a, b, tid, threads, c, saveInvStd, dGamma, dBeta);
    }

    /// <summary>One group per (n, c) row: y[p] = mean of x[p, 0..S).</summary>
    internal static void GlobalAvgPoolKernel(ArrayView<float> x, ArrayView<float> y, int spatial)
    {
        var shared = SharedMemory.Allocate<float>(MaxThreads);
        int p = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        long basis = (long)p * spatial;
        float acc = 0f;
        for (int j = tid; j < spatial; j += threads) acc += x[basis + j];
        shared[tid] = acc;
        Group.Barrier();
        TreeSum(shared, tid, threads);
        if (tid == 0) y[p] = shared[0] / spatial;
    }

    /// <summary>
    /// One thread per row of logits [N, K]: stable softmax (row maximum subtracted, exponential sum in double),
    /// loss = sum_j q_j (lse - z_j) with q the smoothed one-hot target, optional gradient scale * (p - q).
    /// </summary>
    internal static void SoftmaxCrossEntropyKernel(Index1D row, ArrayView<float> logits, ArrayView<float> labels, ArrayView<float> probabilities,
        ArrayView<float> losses, ArrayView<float> dLogits, int classes, float on, float off, float gradientScale, int withGradient)
    {
        int r = row;
        long basis = (long)r * classes;
        int label = (int)labels[row];
        float max = float.NegativeInfinity;
        for (int j = 0; j < classes; j++) max = XMath.Max(max, logits[basis + j]);
        double sum = 0.0;
        for (int j = 0; j < classes; j++)
        {
            float e = XMath.Exp(logits[basis + j] - max);
            probabilities[basis + j] = e;
            sum += e;
        }
        float lse = max + (float)XMath.Log(sum);
        float inv = (float)(1.0 / sum);
        double loss = 0.0;
        for (int j = 0; j < classes; j++)
        {
            float p = probabilities[basis + j] * inv;
            probabilities[basis + j] = p;
            float q = j == label ? on : off;
            if (q != 0f) loss += q * (double)(lse - logits[basis + j]);
            if (withGradient != 0) dLogits[basis + j] = gradientScale * (p - q);
        }
        losses[row] = (float)loss;
    }

    internal static Action<KernelConfig, ArrayView<float>, ArrayView<double>, int> SumOfSquares(IlgpuEngine e) =>
        e.Kernel("nn.sumsq", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<double>, int>(SumOfSquaresKernel));

    internal static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ChannelReduction> BiasGrad(IlgpuEngine e) =>
        e.Kernel("nn.biasgrad", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ChannelReduction>(BiasGradKernel));

    internal static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelReduction, float, float> BatchNormStats(IlgpuEngine e) =>
        e.Kernel("nn.bnstats", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelReduction, float, float>(BatchNormStatsKernel));

    internal static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelReduction> BatchNormGradSums(IlgpuEngine e) =>
        e.Kernel("nn.bngradsums", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelReduction>(BatchNormGradSumsKernel));

    internal static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelReduction, float> BatchNormGradSumsLeakyRelu(IlgpuEngine e) =>
        e.Kernel("nn.bngradsumsleaky", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ChannelReduction, float>(BatchNormGradSumsLeakyReluKernel));

    internal static Action<KernelConfig, ArrayView<float>, ArrayView<float>, int> GlobalAvgPool(IlgpuEngine e) =>
        e.Kernel("nn.gap", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(GlobalAvgPoolKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float, float, int> SoftmaxCrossEntropy(IlgpuEngine e) =>
        e.Kernel("nn.softmaxce", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float, float, int>(SoftmaxCrossEntropyKernel));
}
