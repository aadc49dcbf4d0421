using ILGPU;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>
/// <see cref="INnOps"/> as ILGPU kernels (element-wise, reduction, GEMM, convolution and pooling families in the
/// Nn*Kernels files). Each method checks its tensors' engine and shapes like <see cref="Managed.ManagedNn"/> (naming the
/// parameter and the expected shape), then queues batched launches on the engine's stream: no launch per sample.
/// Convolutions run im2col + one batched GEMM launch per chunk of samples (the chunk bounded by a column workspace of
/// <see cref="ColumnBudget"/> floats); the weight gradient is one GEMM per chunk whose k axis runs over samples and
/// pixels. Every reduction has a fixed order, so results are deterministic. Not for concurrent use from several threads.
/// </summary>
internal sealed class IlgpuNn : INnOps, INnDeviceTraining
{
    /// <summary>Floats of im2col workspace a convolution may use (64 MiB).</summary>
    internal const long ColumnBudget = 16L << 20;

    private readonly IlgpuEngine _engine;
    private MemoryBuffer1D<float, Stride1D.Dense>? _work;
    private MemoryBuffer1D<double, Stride1D.Dense>? _partials;

    internal IlgpuNn(IlgpuEngine engine) => _engine = engine;

    public Engine Engine => _engine;

    /// <summary>Loads every kernel (compile check).</summary>
    internal void CompileAll()
    {
        var e = _engine;
        NnElementKernels.Fill(e); NnElementKernels.Copy(e); NnElementKernels.Scale(e); NnElementKernels.BiasAdd(e);
        NnElementKernels.LeakyRelu(e); NnElementKernels.LeakyReluGrad(e); NnElementKernels.Dropout(e); NnElementKernels.Multiply(e);
        NnElementKernels.GlobalAvgPoolGrad(e); NnElementKernels.BatchNormInference(e); NnElementKernels.BatchNormApply(e);
        NnElementKernels.BatchNormGrad(e); NnElementKernels.BatchNormInferenceLeakyRelu(e); NnElementKernels.BatchNormApplyLeakyRelu(e);
        NnElementKernels.BatchNormGradLeakyRelu(e); NnElementKernels.Sgd(e); NnElementKernels.Adam(e);
        NnReduceKernels.SumOfSquares(e); NnReduceKernels.BiasGrad(e); NnReduceKernels.BatchNormStats(e);
        NnReduceKernels.BatchNormGradSums(e); NnReduceKernels.BatchNormGradSumsLeakyRelu(e); NnReduceKernels.GlobalAvgPool(e); NnReduceKernels.SoftmaxCrossEntropy(e);
        NnGemmKernels.Compile(e); NnConvKernels.Im2Col(e); NnConvKernels.Col2Im(e); NnPoolKernels.Forward(e); NnPoolKernels.Backward(e);
        NnTrainKernels.BiasLeakyRelu(e); NnTrainKernels.SoftmaxCrossEntropyRows(e); NnTrainKernels.ClipScale(e);
        NnTrainKernels.SgdGuarded(e); NnTrainKernels.AdamGuarded(e); NnTrainKernels.FlagNonFinite(e);
    }

    private ArrayView1D<float, Stride1D.Dense> V(Tensor t, string name) => _engine.Expect(t, name).View;

    /// <summary>The double work area of the sums of squares, <paramref name="blocks"/> long (grown after a wait).</summary>
    private ArrayView1D<double, Stride1D.Dense> Partials(int blocks)
    {
        if (_partials is null || _partials.Length < blocks)
        {
            _engine.Wait();
            _partials?.Dispose();
            _partials = _engine.Accelerator.Allocate1D<double>(Math.Max(blocks, 64));
        }
        return _partials.View.SubView(0, blocks);
    }

    private static int Count(Tensor t) => checked((int)t.Length);

    private int Threads => Math.Min(NnReduceKernels.MaxThreads, _engine.GroupSize);

    // ---------------------------------------------------------------- utilities

    public void Fill(Tensor x, float value)
    {
        var v = V(x, nameof(x));
        if (x.Length > 0) NnElementKernels.Fill(_engine)(Count(x), v, value);
    }

    public void Copy(Tensor source, Tensor destination)
    {
        NnChecks.SameLength(source, nameof(source), destination, nameof(destination));
        var s = V(source, nameof(source));
        var d = V(destination, nameof(destination));
        if (source.Length > 0) NnElementKernels.Copy(_engine)(Count(source), s, d);
    }

    public void Scale(Tensor x, float factor)
    {
        var v = V(x, nameof(x));
        if (x.Length > 0) NnElementKernels.Scale(_engine)(Count(x), v, factor);
    }

    public double SumOfSquares(Tensor x)
    {
        var v = V(x, nameof(x));
        int blocks = (int)((x.Length + NnReduceKernels.SquaresBlock - 1) / NnReduceKernels.SquaresBlock);
        if (blocks == 0) return 0.0;
        var partial = Partials(blocks);
        NnReduceKernels.SumOfSquares(_engine)(new KernelConfig(blocks, Threads), v, partial, Count(x));
        var host = new double[blocks];
        _engine.Read(partial, host);
        double total = 0;
        foreach (var p in host) total += p;
        return total;
    }

    // ---------------------------------------------------------------- GEMM

    public void Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k, _, _) = NnChecks.Gemm(a, transposeA, b, transposeB, c);
        var va = V(a, nameof(a)); var vb = V(b, nameof(b)); var vc = V(c, nameof(c));
        NnGemmKernels.Run(_engine, va, vb, vc, NnGemmKernels.Plain(m, n, k, transposeA, transposeB, alpha, beta));
    }

    // ---------------------------------------------------------------- bias

    private static ChannelReduction ChannelLayout(Tensor x, int channels, string name)
    {
        var (n, c, spatial) = NnChecks.ChannelLayout(x, channels, name);
        return new ChannelReduction { Batch = n, Channels = c, Spatial = spatial };
    }

    private static ChannelShape Shape(ChannelReduction r) => new() { Channels = r.Channels, Spatial = Math.Max(r.Spatial, 1) };

    public void BiasAdd(Tensor x, Tensor bias, Tensor y)
    {
        var r = ChannelLayout(x, (int)bias.Length, nameof(x));
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var vx = V(x, nameof(x)); var vb = V(bias, nameof(bias)); var vy = V(y, nameof(y));
        if (x.Length > 0) NnElementKernels.BiasAdd(_engine)(Count(x), vx, vb, vy, Shape(r));
    }

    public void BiasGrad(Tensor dy, Tensor dBias)
    {
        var r = ChannelLayout(dy, (int)dBias.Length, nameof(dy));
        var vd = V(dy, nameof(dy)); var vb = V(dBias, nameof(dBias));
        if (r.Channels > 0) NnReduceKernels.BiasGrad(_engine)(new KernelConfig(r.Channels, Threads), vd, vb, r);
    }

    // ---------------------------------------------------------------- convolution

    /// <summary>1 x 1 kernels with unit stride and no padding: the im2col matrix of a sample is the sample itself.</summary>
    private static bool IsPointwise(in ConvGeometry g) =>
        g.KernelHeight == 1 && g.KernelWidth == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadTop == 0 && g.PadLeft == 0
        && g.OutHeight == g.InHeight && g.OutWidth == g.InWidth;

    /// <summary>A device work area of at least <paramref name="floats"/> elements owned by these operations.</summary>
    private ArrayView1D<float, Stride1D.Dense> Work(long floats)
    {
        if (_work is null || _work.Length < floats)
        {
            _engine.Wait();
            _work?.Dispose();
            _work = _engine.Accelerator.Allocate1D<float>(Math.Max(floats, 1024));
        }
        return _work.View.SubView(0, Math.Max(floats, 1));
    }

    /// <summary>Samples per im2col chunk: as many as fit <paramref name="buffers"/> column matrices in the budget.</summary>
    private static int ChunkSize(in ConvGeometry g, int buffers)
    {
        long perSample = (long)g.PatchSize * g.OutHeight * g.OutWidth * buffers;
        return (int)Math.Clamp(ColumnBudget / Math.Max(perSample, 1), 1, g.Batch);
    }

    public void Conv2DForward(in ConvGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        NnChecks.Conv(g, x, w, bias, y);
        var vx = V(x, nameof(x)); var vw = V(w, nameof(w)); var vy = V(y, nameof(y));
        var args = ConvArgs.From(g);
        int K = g.PatchSize, P = g.OutHeight * g.OutWidth;
        bool pointwise = IsPointwise(g);
        int chunk = pointwise ? g.Batch : ChunkSize(g, 1);
        var col = pointwise ? vx : Work((long)chunk * K * P);
        for (int first = 0; first < g.Batch; first += chunk)
        {
            int count = Math.Min(chunk, g.Batch - first);
            if (!pointwise) NnConvKernels.Im2Col(_engine)(checked(count * K * P), vx, col, args, first);
            // y[n] = W [Co, K] x col[n] [K, P], one launch for the chunk.
            var gemm = NnGemmKernels.Plain(g.OutChannels, P, K, false, false, 1f, 0f);
            gemm.BBatch = (long)K * P;
            gemm.CBatch = (long)g.OutChannels * P;
            NnGemmKernels.Run(_engine, vw, col, vy.SubView((long)first * g.OutChannels * P, (long)count * g.OutChannels * P), gemm, count);
        }
        if (bias is not null) BiasAdd(y, bias, y);
    }

    public void Conv2DBackward(in ConvGeometry g, Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? dBias)
    {
        NnChecks.Conv(g, x, w, dBias, dy);
        dx?.RequireShape(nameof(dx), g.Batch, g.InChannels, g.InHeight, g.InWidth);
        dw.RequireShape(nameof(dw), g.OutChannels, g.InChannels, g.KernelHeight, g.KernelWidth);
        if (dBias is not null) BiasGrad(dy, dBias);
        var vx = V(x, nameof(x)); var vw = V(w, nameof(w)); var vdy = V(dy, nameof(dy)); var vdw = V(dw, nameof(dw));
        ArrayView1D<float, Stride1D.Dense>? vdx = dx is null ? null : V(dx, nameof(dx));
        var args = ConvArgs.From(g);
        int K = g.PatchSize, P = g.OutHeight * g.OutWidth, Co = g.OutChannels;
        // A pointwise convolution's columns are its input: no im2col, and the column gradient is dx itself.
        bool pointwise = IsPointwise(g);
        int chunk = pointwise ? g.Batch : ChunkSize(g, dx is null ? 1 : 2);
        long colFloats = (long)chunk * K * P;
        var work = pointwise ? vx : Work(dx is null ? colFloats : 2 * colFloats);
        int inPlane = g.InChannels * g.InHeight * g.InWidth;
        for (int first = 0; first < g.Batch; first += chunk)
        {
            int count = Math.Min(chunk, g.Batch - first);
            var dyChunk = vdy.SubView((long)first * Co * P, (long)count * Co * P);
            var col = pointwise ? vx : work.SubView(0, colFloats);
            if (!pointwise) NnConvKernels.Im2Col(_engine)(checked(count * K * P), vx, col, args, first);
            // dW [Co, K] (+)= sum over samples n and pixels p of dy[n, co, p] col[n, kk, p]: k runs over (n, p).
            var wg = new GemmArgs
            {
                M = Co, N = K, K = checked(count * P), Alpha = 1f, Beta = first == 0 ? 0f : 1f, KSplit = P,
                ARow = P, AKo = (long)Co * P, AKi = 1,
                BCol = P, BKo = (long)K * P, BKi = 1,
                CRow = K,
            };
            NnGemmKernels.Run(_engine, dyChunk, col, vdw, wg);
            if (vdx is { } dxView)
            {
                var dcol = pointwise ? dxView : work.SubView(colFloats, colFloats);
                // dcol[n] = W^T [K, Co] x dy[n] [Co, P], one launch for the chunk; then the gather col2im.
                var dg = NnGemmKernels.Plain(K, P, Co, true, false, 1f, 0f);
                dg.BBatch = (long)Co * P;
                dg.CBatch = (long)K * P;
                NnGemmKernels.Run(_engine, vw, dyChunk, dcol, dg, count);
                if (!pointwise) NnConvKernels.Col2Im(_engine)(checked(count * inPlane), dcol, dxView, args, first);
            }
        }
    }

    // ---------------------------------------------------------------- pooling

    public void Pool2DForward(in PoolGeometry g, PoolKind kind, Tensor x, Tensor y)
    {
        NnChecks.Pool(g, x, y);
        var vx = V(x, nameof(x)); var vy = V(y, nameof(y));
        NnPoolKernels.Forward(_engine)(Count(y), vx, vy, PoolArgs.From(g, kind));
    }

    public void Pool2DBackward(in PoolGeometry g, PoolKind kind, Tensor x, Tensor y, Tensor dy, Tensor dx)
    {
        NnChecks.Pool(g, x, y);
        dy.RequireShape(nameof(dy), g.Batch, g.Channels, g.OutHeight, g.OutWidth);
        dx.RequireShape(nameof(dx), g.Batch, g.Channels, g.InHeight, g.InWidth);
        var vx = V(x, nameof(x)); var vdy = V(dy, nameof(dy)); var vdx = V(dx, nameof(dx));
        NnPoolKernels.Backward(_engine)(Count(dx), vx, vdy, vdx, PoolArgs.From(g, kind));
    }

    public void GlobalAvgPoolForward(Tensor x, Tensor y)
    {
        if (y.Rank != 2) throw new ArgumentException($"y: expected [batch, channels], was [{string.Join(", ", y.Shape)}].", nameof(y));
        var r = ChannelLayout(x, y.Shape[1], nameof(x));
        y.RequireShape(nameof(y), r.Batch, r.Channels);
        var vx = V(x, nameof(x)); var vy = V(y, nameof(y));
        if (y.Length == 0) return;
        if (r.Spatial == 0) { Fill(y, 0f); return; }
        NnReduceKernels.GlobalAvgPool(_engine)(new KernelConfig(Count(y), Threads), vx, vy, r.Spatial);
    }

    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        if (dy.Rank != 2) throw new ArgumentException($"dy: expected [batch, channels], was [{string.Join(", ", dy.Shape)}].", nameof(dy));
        var r = ChannelLayout(dx, dy.Shape[1], nameof(dx));
        dy.RequireShape(nameof(dy), r.Batch, r.Channels);
        var vdy = V(dy, nameof(dy)); var vdx = V(dx, nameof(dx));
        if (dx.Length > 0) NnElementKernels.GlobalAvgPoolGrad(_engine)(Count(dx), vdy, vdx, r.Spatial);
    }

    // ---------------------------------------------------------------- batch normalisation

    public void BatchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, float momentum, float epsilon,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y) =>
        BatchNormTraining(x, gamma, beta, null, momentum, epsilon, runningMean, runningVar, saveMean, saveInvStd, y);

    public void BatchNormLeakyReluTrainingForward(Tensor x, Tensor gamma, Tensor beta, float slope, float momentum, float epsilon,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y) =>
        BatchNormTraining(x, gamma, beta, slope, momentum, epsilon, runningMean, runningVar, saveMean, saveInvStd, y);

    /// <summary>The statistics launch, then the normalisation launch (with leaky ReLU of <paramref name="slope"/> when given).</summary>
    private void BatchNormTraining(Tensor x, Tensor gamma, Tensor beta, float? slope, float momentum, float epsilon,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y)
    {
        var r = ChannelLayout(x, (int)gamma.Length, nameof(x));
        foreach (var (t, name) in new[] { (beta, nameof(beta)), (runningMean, nameof(runningMean)), (runningVar, nameof(runningVar)), (saveMean, nameof(saveMean)), (saveInvStd, nameof(saveInvStd)) })
            t.RequireShape(name, r.Channels);
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var vx = V(x, nameof(x)); var vg = V(gamma, nameof(gamma)); var vb = V(beta, nameof(beta));
        var vrm = V(runningMean, nameof(runningMean)); var vrv = V(runningVar, nameof(runningVar));
        var vsm = V(saveMean, nameof(saveMean)); var vsi = V(saveInvStd, nameof(saveInvStd)); var vy = V(y, nameof(y));
        if (r.Channels == 0) return;
        NnReduceKernels.BatchNormStats(_engine)(new KernelConfig(r.Channels, Threads), vx, vrm, vrv, vsm, vsi, r, momentum, epsilon);
        if (x.Length == 0) return;
        if (slope is float s) NnElementKernels.BatchNormApplyLeakyRelu(_engine)(Count(x), vx, vg, vb, vsm, vsi, vy, Shape(r), s);
        else NnElementKernels.BatchNormApply(_engine)(Count(x), vx, vg, vb, vsm, vsi, vy, Shape(r));
    }

    public void BatchNormInferenceForward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float epsilon, Tensor y) =>
        BatchNormInference(x, gamma, beta, null, runningMean, runningVar, epsilon, y);

    public void BatchNormLeakyReluInferenceForward(Tensor x, Tensor gamma, Tensor beta, float slope, Tensor runningMean, Tensor runningVar,
        float epsilon, Tensor y) =>
        BatchNormInference(x, gamma, beta, slope, runningMean, runningVar, epsilon, y);

    private void BatchNormInference(Tensor x, Tensor gamma, Tensor beta, float? slope, Tensor runningMean, Tensor runningVar, float epsilon, Tensor y)
    {
        var r = ChannelLayout(x, (int)gamma.Length, nameof(x));
        beta.RequireShape(nameof(beta), r.Channels);
        runningMean.RequireShape(nameof(runningMean), r.Channels);
        runningVar.RequireShape(nameof(runningVar), r.Channels);
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var vx = V(x, nameof(x)); var vg = V(gamma, nameof(gamma)); var vb = V(beta, nameof(beta));
        var vrm = V(runningMean, nameof(runningMean)); var vrv = V(runningVar, nameof(runningVar)); var vy = V(y, nameof(y));
        if (x.Length == 0) return;
        if (slope is float s) NnElementKernels.BatchNormInferenceLeakyRelu(_engine)(Count(x), vx, vg, vb, vrm, vrv, vy, Shape(r), epsilon, s);
        else NnElementKernels.BatchNormInference(_engine)(Count(x), vx, vg, vb, vrm, vrv, vy, Shape(r), epsilon);
    }

    public void BatchNormBackward(Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy,
        Tensor dx, Tensor dGamma, Tensor dBeta) =>
        BatchNormGradient(x, null, 0f, gamma, saveMean, saveInvStd, dy, dx, dGamma, dBeta);

    public void BatchNormLeakyReluBackward(Tensor x, Tensor y, float slope, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy,
        Tensor dx, Tensor dGamma, Tensor dBeta)
    {
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        BatchNormGradient(x, y, slope, gamma, saveMean, saveInvStd, dy, dx, dGamma, dBeta);
    }

    /// <summary>The gradient sums launch, then the dx launch; with an activation output <paramref name="y"/> both read
    /// dy through leaky ReLU's gradient.</summary>
    private void BatchNormGradient(Tensor x, Tensor? y, float slope, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy,
        Tensor dx, Tensor dGamma, Tensor dBeta)
    {
        var r = ChannelLayout(x, (int)gamma.Length, nameof(x));
        saveMean.RequireShape(nameof(saveMean), r.Channels);
        saveInvStd.RequireShape(nameof(saveInvStd), r.Channels);
        dGamma.RequireShape(nameof(dGamma), r.Channels);
        dBeta.RequireShape(nameof(dBeta), r.Channels);
        NnChecks.SameLength(x, nameof(x), dy, nameof(dy));
        NnChecks.SameLength(x, nameof(x), dx, nameof(dx));
        var vx = V(x, nameof(x)); var vg = V(gamma, nameof(gamma)); var vsm = V(saveMean, nameof(saveMean));
        var vsi = V(saveInvStd, nameof(saveInvStd)); var vdy = V(dy, nameof(dy)); var vdx = V(dx, nameof(dx));
        var vdg = V(dGamma, nameof(dGamma)); var vdb = V(dBeta, nameof(dBeta));
        if (r.Channels == 0) return;
        float count = (float)((double)r.Batch * r.Spatial);
        if (y is null)
        {
            NnReduceKernels.BatchNormGradSums(_engine)(new KernelConfig(r.Channels, Threads), vx, vdy, vsm, vsi, vdg, vdb, r);
            if (x.Length > 0)
                NnElementKernels.BatchNormGrad(_engine)(Count(x), vx, vg, vsm, vsi, vdy, vdg, vdb, vdx, Shape(r), count);
        }
        else
        {
            var vy = V(y, nameof(y));
            NnReduceKernels.BatchNormGradSumsLeakyRelu(_engine)(new KernelConfig(r.Channels, Threads), vx, vy, vdy, vsm, vsi, vdg, vdb, r, slope);
            if (x.Length > 0)
                NnElementKernels.BatchNormGradLeakyRelu(_engine)(Count(x), vx, vy, vg, vsm, vsi, vdy, vdg, vdb, vdx, Shape(r), count, slope);
        }
    }

    // ---------------------------------------------------------------- dropout and activations

    public void DropoutForward(Tensor x, float rate, ulong seed, Tensor mask, Tensor y)
    {
        if (!(rate >= 0f && rate < 1f)) throw new ArgumentOutOfRangeException(nameof(rate), $"Dropout rate must be in [0, 1), was {rate}.");
        NnChecks.SameLength(x, nameof(x), mask, nameof(mask));
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var vx = V(x, nameof(x)); var vm = V(mask, nameof(mask)); var vy = V(y, nameof(y));
        if (x.Length > 0) NnElementKernels.Dropout(_engine)(Count(x), vx, vm, vy, rate, 1f / (1f - rate), seed);
    }

    public void DropoutBackward(Tensor dy, Tensor mask, Tensor dx)
    {
        NnChecks.SameLength(dy, nameof(dy), mask, nameof(mask));
        NnChecks.SameLength(dy, nameof(dy), dx, nameof(dx));
        var vdy = V(dy, nameof(dy)); var vm = V(mask, nameof(mask)); var vdx = V(dx, nameof(dx));
        if (dy.Length > 0) NnElementKernels.Multiply(_engine)(Count(dy), vdy, vm, vdx);
    }

    public void LeakyReluForward(Tensor x, float slope, Tensor y)
    {
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var vx = V(x, nameof(x)); var vy = V(y, nameof(y));
        if (x.Length > 0) NnElementKernels.LeakyRelu(_engine)(Count(x), vx, vy, slope);
    }

    public void LeakyReluBackward(Tensor y, float slope, Tensor dy, Tensor dx)
    {
        NnChecks.SameLength(y, nameof(y), dy, nameof(dy));
        NnChecks.SameLength(y, nameof(y), dx, nameof(dx));
        var vy = V(y, nameof(y)); var vdy = V(dy, nameof(dy)); var vdx = V(dx, nameof(dx));
        if (y.Length > 0) NnElementKernels.LeakyReluGrad(_engine)(Count(y), vy, vdy, vdx, slope);
    }

    // ---------------------------------------------------------------- loss

    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, float labelSmoothing,
        Tensor probabilities, Tensor losses, Tensor? dLogits, float gradientScale)
    {
        var (n, k) = NnChecks.SoftmaxCrossEntropy(logits, labels, labelSmoothing, probabilities, losses, dLogits);
        var vz = V(logits, nameof(logits)); var vl = V(labels, nameof(labels)); var vp = V(probabilities, nameof(probabilities));
        var vloss = V(losses, nameof(losses));
        var vg = dLogits is null ? vp : V(dLogits, nameof(dLogits));
        // The labels are validated on the host (n floats): an index outside 0..K-1 must raise, not read out of bounds.
        var host = labels.ToArray();
        for (int i = 0; i < n; i++)
        {
            float lf = host[i];
            if (!(lf >= 0f && lf < k && lf == MathF.Floor(lf)))
                throw new ArgumentException($"labels: element {i} is {lf}, expected a class index in 0..{k - 1}.", nameof(labels));
        }
        if (n == 0) return;
        float off = labelSmoothing / k, on = 1f - labelSmoothing + off;
        NnReduceKernels.SoftmaxCrossEntropy(_engine)(n, vz, vl, vp, vloss, vg, k, on, off, gradientScale, dLogits is null ? 0 : 1);
    }

    // ---------------------------------------------------------------- optimizers

    public void SgdUpdate(Tensor parameter, Tensor gradient, Tensor velocity, float learningRate, float momentum, bool nesterov, float weightDecay)
    {
        NnChecks.SameLength(parameter, nameof(parameter), gradient, nameof(gradient));
        NnChecks.SameLength(parameter, nameof(parameter), velocity, nameof(velocity));
        var vp = V(parameter, nameof(parameter)); var vg = V(gradient, nameof(gradient)); var vv = V(velocity, nameof(velocity));
        var o = new OptimizerArgs { LearningRate = learningRate, Momentum = momentum, Nesterov = nesterov ? 1 : 0, WeightDecay = weightDecay };
        if (parameter.Length > 0) NnElementKernels.Sgd(_engine)(Count(parameter), vp, vg, vv, o);
    }

    public void AdamUpdate(Tensor parameter, Tensor gradient, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupled, int step)
    {
        NnChecks.Adam(parameter, gradient, m, v, step);
        var vp = V(parameter, nameof(parameter)); var vg = V(gradient, nameof(gradient)); var vm = V(m, nameof(m)); var vv = V(v, nameof(v));
        var o = new OptimizerArgs
        {
            LearningRate = learningRate, Beta1 = beta1, Beta2 = beta2, Epsilon = epsilon,
            C1 = 1f / (1f - MathF.Pow(beta1, step)), C2 = 1f / (1f - MathF.Pow(beta2, step)),
            Decay = decoupled ? 1f - learningRate * weightDecay : 1f, L2 = decoupled ? 0f : weightDecay,
        };
        if (parameter.Length > 0) NnElementKernels.Adam(_engine)(Count(parameter), vp, vg, vm, vv, o);
    }

    // ---------------------------------------------------------------- device-resident training (INnDeviceTraining)

    public Tensor View(Tensor storage, long offset, params int[] shape)
    {
        var t = _engine.Expect(storage, nameof(storage));
        ArgumentNullException.ThrowIfNull(shape);
        long length = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"shape: dimensions must be non-negative, was [{string.Join(", ", shape)}].", nameof(shape));
            length = checked(length * d);
        }
        if (offset < 0 || offset + length > t.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"View [{offset}, {offset + length}) is outside the storage's {t.Length} elements.");
        return new IlgpuTensor(_engine, shape, null, t.View.SubView(offset, length));
    }

    public void BiasLeakyRelu(Tensor x, Tensor bias, float slope, Tensor y)
    {
        var r = ChannelLayout(x, (int)bias.Length, nameof(x));
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var vx = V(x, nameof(x)); var vb = V(bias, nameof(bias)); var vy = V(y, nameof(y));
        if (x.Length > 0) NnTrainKernels.BiasLeakyRelu(_engine)(Count(x), vx, vb, vy, Shape(r), slope);
    }

    public void SoftmaxCrossEntropyRows(Tensor logits, Tensor labels, float labelSmoothing, Tensor dLogits, float gradientScale,
        Tensor losses, Tensor correct, Tensor status)
    {
        var (n, k) = NnChecks.SoftmaxCrossEntropy(logits, labels, labelSmoothing, dLogits, losses, dLogits);
        correct.RequireShape(nameof(correct), n);
        RequireStatus(status);
        var vz = V(logits, nameof(logits)); var vl = V(labels, nameof(labels)); var vg = V(dLogits, nameof(dLogits));
        var vloss = V(losses, nameof(losses)); var vc = V(correct, nameof(correct)); var vs = V(status, nameof(status));
        if (n == 0) return;
        float off = labelSmoothing / k, on = 1f - labelSmoothing + off;
        NnTrainKernels.SoftmaxCrossEntropyRows(_engine)(n, vz, vl, vg, vloss, vc, vs, k, on, off, gradientScale);
    }

    public void ClipScale(Tensor gradient, double maxNorm, Tensor status)
    {
        if (!(maxNorm > 0.0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"The clipping norm must be positive, was {maxNorm}.");
        RequireStatus(status);
        var v = V(gradient, nameof(gradient)); var vs = V(status, nameof(status));
        int blocks = (int)((gradient.Length + NnReduceKernels.SquaresBlock - 1) / NnReduceKernels.SquaresBlock);
        var partial = Partials(Math.Max(blocks, 1));
        if (blocks > 0) NnReduceKernels.SumOfSquares(_engine)(new KernelConfig(blocks, Threads), v, partial, Count(gradient));
        NnTrainKernels.ClipScale(_engine)(1, partial, blocks, vs, maxNorm);
    }

    public void AdamUpdateGuarded(Tensor parameter, Tensor gradient, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupled, int step, Tensor status, bool clipped)
    {
        NnChecks.Adam(parameter, gradient, m, v, step);
        RequireStatus(status);
        var vp = V(parameter, nameof(parameter)); var vg = V(gradient, nameof(gradient)); var vm = V(m, nameof(m)); var vv = V(v, nameof(v));
        var vs = V(status, nameof(status));
        var o = new OptimizerArgs
        {
            LearningRate = learningRate, Beta1 = beta1, Beta2 = beta2, Epsilon = epsilon,
            C1 = 1f / (1f - MathF.Pow(beta1, step)), C2 = 1f / (1f - MathF.Pow(beta2, step)),
            Decay = decoupled ? 1f - learningRate * weightDecay : 1f, L2 = decoupled ? 0f : weightDecay,
        };
        if (parameter.Length > 0) NnTrainKernels.AdamGuarded(_engine)(Count(parameter), vp, vg, vm, vv, o, vs, clipped ? 1 : 0);
    }

    public void SgdUpdateGuarded(Tensor parameter, Tensor gradient, Tensor velocity, float learningRate, float momentum, bool nesterov,
        float weightDecay, Tensor status, bool clipped)
    {
        NnChecks.SameLength(parameter, nameof(parameter), gradient, nameof(gradient));
        NnChecks.SameLength(parameter, nameof(parameter), velocity, nameof(velocity));
        RequireStatus(status);
        var vp = V(parameter, nameof(parameter)); var vg = V(gradient, nameof(gradient)); var vv = V(velocity, nameof(velocity));
        var vs = V(status, nameof(status));
        var o = new OptimizerArgs { LearningRate = learningRate, Momentum = momentum, Nesterov = nesterov ? 1 : 0, WeightDecay = weightDecay };
        if (parameter.Length > 0) NnTrainKernels.SgdGuarded(_engine)(Count(parameter), vp, vg, vv, o, vs, clipped ? 1 : 0);
    }

    public void FlagNonFinite(Tensor x, Tensor status, int slot)
    {
        RequireStatus(status);
        if (slot < 0 || slot >= status.Length)
            throw new ArgumentOutOfRangeException(nameof(slot), $"Status slot {slot} is outside the status tensor's {status.Length} elements.");
        var vx = V(x, nameof(x)); var vs = V(status, nameof(status));
        if (x.Length > 0) NnTrainKernels.FlagNonFinite(_engine)(Count(x), vx, vs, slot);
    }

    private static void RequireStatus(Tensor status)
    {
        ArgumentNullException.ThrowIfNull(status, nameof(status));
        if (status.Length < DeviceStatus.Length)
            throw new ArgumentException($"status: expected at least {DeviceStatus.Length} elements, was [{string.Join(", ", status.Shape)}].", nameof(status));
    }
}
