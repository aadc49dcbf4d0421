using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// <see cref="INnOps"/> on the managed engine: blocked FMA GEMM (<see cref="NnGemm"/>), im2col convolutions per
/// sample, channel-parallel batch normalisation, vectorised element-wise kernels. Work is split over
/// <see cref="ManagedEngine.Parallel"/>; every reduction has a fixed partitioning (e.g. the convolution weight gradient
/// sums per-chunk partials of a fixed chunk count in chunk order), so results are bit-identical run to run and for any
/// thread count. Scratch (im2col columns, partial sums) comes from <see cref="ArrayPool{T}.Shared"/>.
/// </summary>
internal sealed unsafe class ManagedNn : INnOps, INnBatchNormPoolFusion
{
    /// <summary>Fixed sample chunks of the convolution weight gradient: the most threads its pass can use, and with
    /// two threads the work one thread may be left holding at the pass's end (32: a batch of 64 gives 2 samples a
    /// chunk; at 2 threads 16 left 36 ms an epoch of train-cnn2d waiting, 32 left 22-32 ms).</summary>
    internal const int WeightGradChunks = 32;
    private const int ReductionBlock = 8192;
    private readonly ManagedEngine _engine;

    internal ManagedNn(ManagedEngine engine) => _engine = engine;

    public Engine Engine => _engine;

    private static ManagedTensor M(Tensor t, string name) => ManagedEngine.Expect(t, name);

    /// <summary>Ranges a thread of <see cref="ForRanges"/>: enough that the thread left working at a loop's end holds
    /// at most a sixteenth of its share (at 2 threads, Parallel.For over 4 ranges a thread left 7% of a training
    /// step's wall time waiting, 16 self-scheduled ranges with 32 weight-gradient chunks about 5-6%:
    /// Parallelism.MeasureWork, docs/benchmarks.md).</summary>
    private const int RangesPerThread = 16;

    /// <summary>Runs body over [0, count) split into contiguous ranges (at least minPerRange items each), the ranges
    /// self-scheduled over the engine's threads; the split depends on the thread count, so every body must give the
    /// same result for any split (each item computed by one range alone).</summary>
    private void ForRanges(long count, long minPerRange, Action<int, int> body)
    {
        if (count <= 0) return;
        int threads = _engine.MaxThreads;
        int ranges = threads <= 1 || count <= minPerRange
            ? 1
            : (int)Math.Min(threads * (long)RangesPerThread, (count + minPerRange - 1) / minPerRange);
        Parallelism.SelfScheduled(_engine.Parallel, ranges, r =>
        {
            long s = count * r / ranges, e = count * (r + 1) / ranges;
            body((int)s, (int)e);
        });
    }

    // ---------------------------------------------------------------- utilities

    public void Fill(Tensor x, float value) => M(x, nameof(x)).Span.Fill(value);

    public void Copy(Tensor source, Tensor destination)
    {
        NnChecks.SameLength(source, nameof(source), destination, nameof(destination));
        M(source, nameof(source)).Span.CopyTo(M(destination, nameof(destination)).Span);
    }

    public void Scale(Tensor x, float factor)
    {
        var t = M(x, nameof(x));
        ForRanges(t.Length, 1 << 16, (s, e) => Vec.Scale(t.Data.AsSpan(t.Offset + s, e - s), factor));
    }

    public double SumOfSquares(Tensor x)
    {
        var t = M(x, nameof(x));
        int blocks = (int)((t.Length + ReductionBlock - 1) / ReductionBlock);
        if (blocks == 0) return 0.0;
        var partial = ArrayPool<double>.Shared.Rent(blocks);
        try
        {
            ForRanges(blocks, 8, (s, e) =>
            {
                for (int b = s; b < e; b++)
                {
                    int start = b * ReductionBlock;
                    int len = (int)Math.Min(ReductionBlock, t.Length - start);
                    partial[b] = Vec.SumOfSquares(t.Data.AsSpan(t.Offset + start, len));
                }
            });
            double total = 0;
            for (int b = 0; b < blocks; b++) total += partial[b];
            return total;
        }
        finally
        {
            ArrayPool<double>.Shared.Return(partial);
        }
    }

    // ---------------------------------------------------------------- GEMM

    public void Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k, ac, bc) = NnChecks.Gemm(a, transposeA, b, transposeB, c);
        var ta = M(a, nameof(a));
        var tb = M(b, nameof(b));
        var tc = M(c, nameof(c));
        GemmParallel(m, n, k, alpha, ta.Data, ta.Offset, ac, transposeA, tb.Data, tb.Offset, bc, transposeB, beta, tc.Data, tc.Offset, n);
    }

    /// <summary>Splits C into column (or row) blocks over threads; each element is still computed by one thread in
    /// the same order as the serial kernel. A product with few outputs and a long inner dimension (a dense layer's
    /// forward pass, [64 x 10240] x [10240 x 128]) is split along K instead: see <see cref="GemmSplitK"/>.</summary>
    private void GemmParallel(int m, int n, int k, float alpha, float[] a, int aOff, int lda, bool transA,
        float[] b, int bOff, int ldb, bool transB, float beta, float[] c, int cOff, int ldc)
    {
        int threads = _engine.MaxThreads;
        long work = (long)m * n * Math.Max(k, 1);
        if (UsesSplitK(m, n, k) && alpha != 0f)
        {
            GemmSplitK(m, n, k, alpha, a, aOff, lda, transA, b, bOff, ldb, transB, beta, c, cOff, ldc);
            return;
        }
        bool splitColumns = n >= m;
        int unit = splitColumns ? NnGemm.NR : NnGemm.MR;
        int extent = splitColumns ? n : m;
        int units = Math.Max(1, (extent + unit - 1) / unit);
        // One part (the whole product on the calling thread) below 2M multiply-adds or with one thread.
        int parts = threads <= 1 || work < (1L << 21) ? 1 : Math.Min(threads * 2, units);
        Parallelism.SelfScheduled(_engine.Parallel, parts, part =>
        {
            int u0 = (int)((long)units * part / parts), u1 = (int)((long)units * (part + 1) / parts);
            int s = u0 * unit, e = Math.Min(extent, u1 * unit);
            if (e <= s) return;
            fixed (float* pa = a)
            fixed (float* pb = b)
            fixed (float* pc = c)
            {
                if (splitColumns)
                {
                    float* bs = pb + bOff + (transB ? (long)s * ldb : s);
                    NnGemm.Gemm(m, e - s, k, alpha, pa + aOff, lda, transA, bs, ldb, transB, beta, pc + cOff + s, ldc);
                }
                else
                {
                    float* As = pa + aOff + (transA ? s : (long)s * lda);
                    NnGemm.Gemm(e - s, n, k, alpha, As, lda, transA, pb + bOff, ldb, transB, beta, pc + cOff + (long)s * ldc, ldc);
                }
            }
        });
    }

    /// <summary>Inner-dimension segment of <see cref="GemmSplitK"/>: 4 of NnGemm's K blocks.</summary>
    internal const int KSegment = 1024;

    /// <summary>Whether <see cref="Gemm"/> splits a product along K: at most 16,384 outputs and K at least two
    /// segments. The rule reads the shape only, so a product's floats are the same at every thread count.</summary>
    internal static bool UsesSplitK(int m, int n, int k) => (long)m * n <= (1 << 14) && k >= 2 * KSegment;

    /// <summary>C = beta C + alpha op(A) op(B) as the sum of fixed K segments of <see cref="KSegment"/>: each segment's
    /// product goes to its own buffer (segments in parallel), then C adds them in segment order. A column split would
    /// give every thread all of op(A) to pack for a few columns of C; here each thread packs only its segments'.</summary>
    private void GemmSplitK(int m, int n, int k, float alpha, float[] a, int aOff, int lda, bool transA,
        float[] b, int bOff, int ldb, bool transB, float beta, float[] c, int cOff, int ldc)
    {
        int segments = (k + KSegment - 1) / KSegment, size = m * n;
        float[] partial = ArrayPool<float>.Shared.Rent(segments * size);
        try
        {
            void Segment(int sgm)
            {
                int k0 = sgm * KSegment, kk = Math.Min(KSegment, k - k0);
                fixed (float* pa = a)
                fixed (float* pb = b)
                fixed (float* pp = partial)
                {
                    float* As = pa + aOff + (transA ? (long)k0 * lda : k0);
                    float* Bs = pb + bOff + (transB ? k0 : (long)k0 * ldb);
                    NnGemm.Gemm(m, n, kk, alpha, As, lda, transA, Bs, ldb, transB, 0f, pp + (long)sgm * size, n);
                }
            }
            Parallelism.SelfScheduled(_engine.Parallel, segments, Segment);
            for (int i = 0; i < m; i++)
            {
                var row = c.AsSpan(cOff + i * ldc, n);
                var sum = partial.AsSpan(i * n, n);
                for (int sgm = 1; sgm < segments; sgm++) Vec.AddInPlace(sum, partial.AsSpan(sgm * size + i * n, n));
                if (beta == 0f) sum.CopyTo(row);
                else
                {
                    if (beta != 1f) Vec.Scale(row, beta);
                    Vec.AddInPlace(row, sum);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partial);
        }
    }

    // ---------------------------------------------------------------- bias

    public void BiasAdd(Tensor x, Tensor bias, Tensor y)
    {
        var (n, ch, s) = NnChecks.ChannelLayout(x, (int)bias.Length, nameof(x));
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var tx = M(x, nameof(x)); var tb = M(bias, nameof(bias)); var ty = M(y, nameof(y));
        ForRanges((long)n * ch, Math.Max(1, 8192 / Math.Max(s, 1)), (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                float bv = tb.Data[tb.Offset + p % ch];
                Vec.AddScalar(tx.Data.AsSpan(tx.Offset + p * s, s), bv, ty.Data.AsSpan(ty.Offset + p * s, s));
            }
        });
    }

    public void BiasGrad(Tensor dy, Tensor dBias)
    {
        var (n, ch, s) = NnChecks.ChannelLayout(dy, (int)dBias.Length, nameof(dy));
        var td = M(dy, nameof(dy)); var tb = M(dBias, nameof(dBias));
        // A dense layer's bias (one value per sample and channel) is too little work to wake another thread for.
        ForRanges(ch, Math.Max(1, (1 << 15) / Math.Max((long)n * s, 1)), (c0, c1) =>
        {
            for (int c = c0; c < c1; c++)
            {
                double sum = 0;
                for (int i = 0; i < n; i++) sum += Vec.Sum(td.Data.AsSpan(td.Offset + (i * ch + c) * s, s));
                tb.Data[tb.Offset + c] = (float)sum;
            }
        });
    }

    // ---------------------------------------------------------------- convolution

    private static bool IsPointwise(in ConvGeometry g) =>
        g.KernelHeight == 1 && g.KernelWidth == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadTop == 0 && g.PadLeft == 0
        && g.OutHeight == g.InHeight && g.OutWidth == g.InWidth;

    public void Conv2DForward(in ConvGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        NnChecks.Conv(g, x, w, bias, y);
        var geo = g;
        var tx = M(x, nameof(x)); var tw = M(w, nameof(w)); var ty = M(y, nameof(y));
        ManagedTensor? tb = bias is null ? null : M(bias, nameof(bias));
        int K = g.PatchSize, P = g.OutHeight * g.OutWidth, inPlane = g.InChannels * g.InHeight * g.InWidth, outPlane = g.OutChannels * P;
        bool pointwise = IsPointwise(g);
        if (NnDirectConv.Applies(g))
        {
            ForRanges(g.Batch, 1, (n0, n1) =>
            {
                float[] scratch = ArrayPool<float>.Shared.Rent(NnDirectConv.ScratchSize(geo));
                try
                {
                    fixed (float* px = tx.Data)
                    fixed (float* pw = tw.Data)
                    fixed (float* py = ty.Data)
                    fixed (float* pb = tb is null ? Array.Empty<float>() : tb.Data)
                    fixed (float* ps = scratch)
                    {
                        float* bp = tb is null ? null : pb + tb.Offset;
                        for (int i = n0; i < n1; i++)
                            NnDirectConv.ForwardPadded(geo, px + tx.Offset + (long)i * inPlane, pw + tw.Offset, bp, py + ty.Offset + (long)i * outPlane, ps);
                    }
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(scratch);
                }
            });
            return;
        }
        ForRanges(g.Batch, 1, (n0, n1) =>
        {
            float[] col = pointwise ? Array.Empty<float>() : ArrayPool<float>.Shared.Rent(K * P);
            try
            {
                fixed (float* px = tx.Data)
                fixed (float* pw = tw.Data)
                fixed (float* py = ty.Data)
                fixed (float* pcol = col)
                {
                    for (int i = n0; i < n1; i++)
                    {
                        float* xi = px + tx.Offset + (long)i * inPlane;
                        float* yi = py + ty.Offset + (long)i * outPlane;
                        float* src = xi;
                        if (!pointwise)
                        {
                            Im2Col(geo, xi, pcol);
                            src = pcol;
                        }
                        NnGemm.Gemm(geo.OutChannels, P, K, 1f, pw + tw.Offset, K, false, src, P, false, 0f, yi, P);
                        if (tb is not null)
                            for (int co = 0; co < geo.OutChannels; co++)
                                Vec.AddScalar(new Span<float>(yi + (long)co * P, P), tb.Data[tb.Offset + co], new Span<float>(yi + (long)co * P, P));
                    }
                }
            }
            finally
            {
                if (!pointwise) ArrayPool<float>.Shared.Return(col);
            }
        });
    }

    public void Conv2DBackward(in ConvGeometry g, Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? dBias)
    {
        NnChecks.Conv(g, x, w, dBias, dy);
        dx?.RequireShape(nameof(dx), g.Batch, g.InChannels, g.InHeight, g.InWidth);
        dw.RequireShape(nameof(dw), g.OutChannels, g.InChannels, g.KernelHeight, g.KernelWidth);
        if (dBias is not null) BiasGrad(dy, dBias);
        var geo = g;
        var tx = M(x, nameof(x)); var tw = M(w, nameof(w)); var tdy = M(dy, nameof(dy)); var tdw = M(dw, nameof(dw));
        ManagedTensor? tdx = dx is null ? null : M(dx, nameof(dx));
        int K = g.PatchSize, P = g.OutHeight * g.OutWidth, inPlane = g.InChannels * g.InHeight * g.InWidth, outPlane = g.OutChannels * P;
        int wLen = g.OutChannels * K;
        bool pointwise = IsPointwise(g);
        bool direct = NnDirectConv.Applies(g);
        int chunks = Math.Min(g.Batch, WeightGradChunks);
        float[] partial = ArrayPool<float>.Shared.Rent(chunks * wLen);
        try
        {
            Parallelism.SelfScheduled(_engine.Parallel, chunks, ch =>
            {
                int n0 = (int)((long)geo.Batch * ch / chunks), n1 = (int)((long)geo.Batch * (ch + 1) / chunks);
                if (direct)
                {
                    float[] scratch = ArrayPool<float>.Shared.Rent(NnDirectConv.ScratchSize(geo));
                    try
                    {
                        fixed (float* px = tx.Data)
                        fixed (float* pw = tw.Data)
                        fixed (float* pdy = tdy.Data)
                        fixed (float* ppart = partial)
                        fixed (float* ps = scratch)
                        fixed (float* pdx = tdx is null ? Array.Empty<float>() : tdx.Data)
                        {
                            float* acc = ppart + (long)ch * wLen;
                            new Span<float>(acc, wLen).Clear();
                            for (int i = n0; i < n1; i++)
                            {
                                float* dyi = pdy + tdy.Offset + (long)i * outPlane;
                                NnDirectConv.WeightGradientPadded(geo, px + tx.Offset + (long)i * inPlane, dyi, acc, ps);
                                if (tdx is not null)
                                    NnDirectConv.InputGradient(geo, pw + tw.Offset, dyi, pdx + tdx.Offset + (long)i * inPlane);
                            }
                        }
                    }
                    finally
                    {
                        ArrayPool<float>.Shared.Return(scratch);
                    }
                    return;
                }
                float[] col = pointwise ? Array.Empty<float>() : ArrayPool<float>.Shared.Rent(K * P);
                float[] dcol = pointwise || tdx is null ? Array.Empty<float>() : ArrayPool<float>.Shared.Rent(K * P);
                try
                {
                    fixed (float* px = tx.Data)
                    fixed (float* pw = tw.Data)
                    fixed (float* pdy = tdy.Data)
                    fixed (float* ppart = partial)
                    fixed (float* pcol = col)
                    fixed (float* pdcol = dcol)
                    fixed (float* pdx = tdx is null ? Array.Empty<float>() : tdx.Data)
                    {
                        float* acc = ppart + (long)ch * wLen;
                        for (int i = n0; i < n1; i++)
                        {
                            float* xi = px + tx.Offset + (long)i * inPlane;
                            float* dyi = pdy + tdy.Offset + (long)i * outPlane;
                            float* src = xi;
                            if (!pointwise)
                            {
                                Im2Col(geo, xi, pcol);
                                src = pcol;
                            }
                            NnGemm.Gemm(geo.OutChannels, K, P, 1f, dyi, P, false, src, P, true, i == n0 ? 0f : 1f, acc, K);
                            if (tdx is not null)
                            {
                                float* dxi = pdx + tdx.Offset + (long)i * inPlane;
                                if (pointwise)
                                {
                                    NnGemm.Gemm(K, P, geo.OutChannels, 1f, pw + tw.Offset, K, true, dyi, P, false, 0f, dxi, P);
                                }
                                else
                                {
                                    NnGemm.Gemm(K, P, geo.OutChannels, 1f, pw + tw.Offset, K, true, dyi, P, false, 0f, pdcol, P);
                                    Col2Im(geo, pdcol, dxi);
                                }
                            }
                        }
                    }
                }
                finally
                {
                    if (!pointwise) ArrayPool<float>.Shared.Return(col);
                    if (dcol.Length > 0) ArrayPool<float>.Shared.Return(dcol);
                }
            });
            // Each weight sums the chunks' partials in chunk order, ranges of weights in parallel.
            ForRanges(wLen, 4096, (s0, s1) =>
            {
                var dst = tdw.Data.AsSpan(tdw.Offset + s0, s1 - s0);
                partial.AsSpan(s0, s1 - s0).CopyTo(dst);
                for (int ch = 1; ch < chunks; ch++) Vec.AddInPlace(dst, partial.AsSpan(ch * wLen + s0, s1 - s0));
            });
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partial);
        }
    }

    /// <summary>Writes the [PatchSize, OutHeight * OutWidth] column matrix of one sample (zeros where padding).</summary>
    private static void Im2Col(in ConvGeometry g, float* x, float* col)
    {
        int P = g.OutHeight * g.OutWidth;
        int row = 0;
        for (int ci = 0; ci < g.InChannels; ci++)
        for (int kh = 0; kh < g.KernelHeight; kh++)
        for (int kw = 0; kw < g.KernelWidth; kw++, row++)
        {
            float* dst = col + (long)row * P;
            int colShift = kw * g.DilationW - g.PadLeft;
            // Valid output columns: 0 <= ow * StrideW + colShift < InWidth.
            int lo = colShift >= 0 ? 0 : (-colShift + g.StrideW - 1) / g.StrideW;
            int hi = g.InWidth - colShift <= 0 ? 0 : Math.Min(g.OutWidth, (g.InWidth - colShift + g.StrideW - 1) / g.StrideW);
            if (hi < lo) hi = lo;
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                float* d = dst + oh * g.OutWidth;
                int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
                if ((uint)ih >= (uint)g.InHeight)
                {
                    new Span<float>(d, g.OutWidth).Clear();
                    continue;
                }
                float* src = x + ((long)ci * g.InHeight + ih) * g.InWidth + colShift;
                for (int ow = 0; ow < lo; ow++) d[ow] = 0f;
                if (g.StrideW == 1)
                {
                    if (hi > lo) new ReadOnlySpan<float>(src + lo, hi - lo).CopyTo(new Span<float>(d + lo, hi - lo));
                }
                else
                {
                    for (int ow = lo; ow < hi; ow++) d[ow] = src[ow * g.StrideW];
                }
                for (int ow = hi; ow < g.OutWidth; ow++) d[ow] = 0f;
            }
        }
    }

    /// <summary>Adjoint of <see cref="Im2Col"/>: dx (one sample, overwritten) = sum of the column gradients.</summary>
    private static void Col2Im(in ConvGeometry g, float* dcol, float* dx)
    {
        int P = g.OutHeight * g.OutWidth;
        new Span<float>(dx, g.InChannels * g.InHeight * g.InWidth).Clear();
        int row = 0;
        for (int ci = 0; ci < g.InChannels; ci++)
        for (int kh = 0; kh < g.KernelHeight; kh++)
        for (int kw = 0; kw < g.KernelWidth; kw++, row++)
        {
            float* srcRow = dcol + (long)row * P;
            int colShift = kw * g.DilationW - g.PadLeft;
            int lo = colShift >= 0 ? 0 : (-colShift + g.StrideW - 1) / g.StrideW;
            int hi = g.InWidth - colShift <= 0 ? 0 : Math.Min(g.OutWidth, (g.InWidth - colShift + g.StrideW - 1) / g.StrideW);
            if (hi <= lo) continue;
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
                if ((uint)ih >= (uint)g.InHeight) continue;
                float* s = srcRow + oh * g.OutWidth;
                float* d = dx + ((long)ci * g.InHeight + ih) * g.InWidth + colShift;
                if (g.StrideW == 1)
                    Vec.AddInPlace(new Span<float>(d + lo, hi - lo), new ReadOnlySpan<float>(s + lo, hi - lo));
                else
                    for (int ow = lo; ow < hi; ow++) d[ow * g.StrideW] += s[ow];
            }
        }
    }

    // ---------------------------------------------------------------- pooling

    /// <summary>2 x 2 windows with stride 2 that all lie inside the input (the common max-pooling case).</summary>
    private static bool IsMaxPool2x2(in PoolGeometry g, PoolKind kind) =>
        kind == PoolKind.Max && BatchNormPoolFusion.Applies(g);

    /// <summary>2 x 2 max pooling of stride 2 of one [InHeight, InWidth] plane into one [OutHeight, OutWidth] plane.</summary>
    private static void MaxPool2x2Plane(in PoolGeometry g, float* x, float* y)
    {
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            float* r0 = x + 2 * oh * g.InWidth;
            NnPool2x2.ForwardRow(r0, r0 + g.InWidth, y + oh * g.OutWidth, g.OutWidth);
        }
    }

    /// <summary>Gradient of <see cref="MaxPool2x2Plane"/> for one plane: each window's dy to its first maximal cell of
    /// x, zeros elsewhere (the other cells, and the rows and columns past the last window).</summary>
    private static void MaxPool2x2PlaneBackward(in PoolGeometry g, float* x, float* dy, float* dx)
    {
        int coveredW = 2 * g.OutWidth;
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            int row0 = 2 * oh * g.InWidth, row1 = row0 + g.InWidth;
            NnPool2x2.BackwardRow(x + row0, x + row1, dy + oh * g.OutWidth, dx + row0, dx + row1, g.OutWidth);
            if (coveredW < g.InWidth)
            {
                new Span<float>(dx + row0 + coveredW, g.InWidth - coveredW).Clear();
                new Span<float>(dx + row1 + coveredW, g.InWidth - coveredW).Clear();
            }
        }
        int below = 2 * g.OutHeight * g.InWidth;
        new Span<float>(dx + below, g.InHeight * g.InWidth - below).Clear();
    }

    public void Pool2DForward(in PoolGeometry g, PoolKind kind, Tensor x, Tensor y)
    {
        NnChecks.Pool(g, x, y);
        var geo = g;
        var tx = M(x, nameof(x)); var ty = M(y, nameof(y));
        int inPlane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth;
        if (IsMaxPool2x2(g, kind))
        {
            ForRanges((long)g.Batch * g.Channels, 4, (p0, p1) =>
            {
                fixed (float* px = tx.Data)
                fixed (float* py = ty.Data)
                    for (int p = p0; p < p1; p++)
                        MaxPool2x2Plane(geo, px + tx.Offset + (long)p * inPlane, py + ty.Offset + (long)p * outPlane);
            });
            return;
        }
        ForRanges((long)g.Batch * g.Channels, 4, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                var xs = tx.Data.AsSpan(tx.Offset + p * inPlane, inPlane);
                var ys = ty.Data.AsSpan(ty.Offset + p * outPlane, outPlane);
                for (int oh = 0; oh < geo.OutHeight; oh++)
                {
                    int h0 = oh * geo.StrideH - geo.PadTop;
                    int hs = Math.Max(h0, 0), he = Math.Min(h0 + geo.PoolHeight, geo.InHeight);
                    for (int ow = 0; ow < geo.OutWidth; ow++)
                    {
                        int w0 = ow * geo.StrideW - geo.PadLeft;
                        int ws = Math.Max(w0, 0), we = Math.Min(w0 + geo.PoolWidth, geo.InWidth);
                        float r;
                        if (kind == PoolKind.Max)
                        {
                            r = float.NegativeInfinity;
                            for (int h = hs; h < he; h++)
                                for (int w = ws; w < we; w++)
                                {
                                    float v = xs[h * geo.InWidth + w];
                                    if (v > r || float.IsNaN(v)) r = v;
                                }
                        }
                        else
                        {
                            float sum = 0f;
                            for (int h = hs; h < he; h++)
                                for (int w = ws; w < we; w++) sum += xs[h * geo.InWidth + w];
                            int count = Math.Max((he - hs) * (we - ws), 1);
                            r = sum / count;
                        }
                        ys[oh * geo.OutWidth + ow] = r;
                    }
                }
            }
        });
    }

    public void Pool2DBackward(in PoolGeometry g, PoolKind kind, Tensor x, Tensor y, Tensor dy, Tensor dx)
    {
        NnChecks.Pool(g, x, y);
        dy.RequireShape(nameof(dy), g.Batch, g.Channels, g.OutHeight, g.OutWidth);
        dx.RequireShape(nameof(dx), g.Batch, g.Channels, g.InHeight, g.InWidth);
        var geo = g;
        var tx = M(x, nameof(x)); var tdy = M(dy, nameof(dy)); var tdx = M(dx, nameof(dx));
        int inPlane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth;
        if (IsMaxPool2x2(g, kind))
        {
            ForRanges((long)g.Batch * g.Channels, 4, (p0, p1) =>
            {
                fixed (float* px = tx.Data)
                fixed (float* pdx = tdx.Data)
                fixed (float* pdy = tdy.Data)
                    for (int p = p0; p < p1; p++)
                        MaxPool2x2PlaneBackward(geo, px + tx.Offset + (long)p * inPlane, pdy + tdy.Offset + (long)p * outPlane,
                            pdx + tdx.Offset + (long)p * inPlane);
            });
            return;
        }
        ForRanges((long)g.Batch * g.Channels, 4, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                var xs = tx.Data.AsSpan(tx.Offset + p * inPlane, inPlane);
                var dxs = tdx.Data.AsSpan(tdx.Offset + p * inPlane, inPlane);
                var dys = tdy.Data.AsSpan(tdy.Offset + p * outPlane, outPlane);
                dxs.Clear();
                for (int oh = 0; oh < geo.OutHeight; oh++)
                {
                    int h0 = oh * geo.StrideH - geo.PadTop;
                    int hs = Math.Max(h0, 0), he = Math.Min(h0 + geo.PoolHeight, geo.InHeight);
                    for (int ow = 0; ow < geo.OutWidth; ow++)
                    {
                        int w0 = ow * geo.StrideW - geo.PadLeft;
                        int ws = Math.Max(w0, 0), we = Math.Min(w0 + geo.PoolWidth, geo.InWidth);
                        float gOut = dys[oh * geo.OutWidth + ow];
                        if (kind == PoolKind.Max)
                        {
                            int best = -1;
                            float r = float.NegativeInfinity;
                            for (int h = hs; h < he; h++)
                                for (int w = ws; w < we; w++)
                                {
                                    int idx = h * geo.InWidth + w;
                                    float v = xs[idx];
                                    if (best < 0 || v > r) { r = v; best = idx; }
                                }
                            if (best >= 0) dxs[best] += gOut;
                        }
                        else
                        {
                            int count = Math.Max((he - hs) * (we - ws), 1);
                            float share = gOut / count;
                            for (int h = hs; h < he; h++)
                                for (int w = ws; w < we; w++) dxs[h * geo.InWidth + w] += share;
                        }
                    }
                }
            }
        });
    }

    public void GlobalAvgPoolForward(Tensor x, Tensor y)
    {
        if (y.Rank != 2) throw new ArgumentException($"y: expected [batch, channels], was [{string.Join(", ", y.Shape)}].", nameof(y));
        var (n, ch, s) = NnChecks.ChannelLayout(x, y.Shape[1], nameof(x));
        y.RequireShape(nameof(y), n, ch);
        var tx = M(x, nameof(x)); var ty = M(y, nameof(y));
        ForRanges((long)n * ch, 16, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
                ty.Data[ty.Offset + p] = s == 0 ? 0f : Vec.Sum(tx.Data.AsSpan(tx.Offset + p * s, s)) / s;
        });
    }

    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        if (dy.Rank != 2) throw new ArgumentException($"dy: expected [batch, channels], was [{string.Join(", ", dy.Shape)}].", nameof(dy));
        var (n, ch, s) = NnChecks.ChannelLayout(dx, dy.Shape[1], nameof(dx));
        dy.RequireShape(nameof(dy), n, ch);
        var tdy = M(dy, nameof(dy)); var tdx = M(dx, nameof(dx));
        ForRanges((long)n * ch, 16, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
                tdx.Data.AsSpan(tdx.Offset + p * s, s).Fill(tdy.Data[tdy.Offset + p] / s);
        });
    }

    // ---------------------------------------------------------------- batch normalisation

    public void BatchNormTrainingForward(Tensor x, Tensor gamma, Tensor beta, float momentum, float epsilon,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y) =>
        BatchNormTraining(x, gamma, beta, false, 0f, momentum, epsilon, runningMean, runningVar, saveMean, saveInvStd, y);

    public void BatchNormLeakyReluTrainingForward(Tensor x, Tensor gamma, Tensor beta, float slope, float momentum, float epsilon,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y) =>
        BatchNormTraining(x, gamma, beta, true, slope, momentum, epsilon, runningMean, runningVar, saveMean, saveInvStd, y);

    /// <summary>Training batch norm, channels in parallel; with <paramref name="activate"/> each normalised value goes
    /// through leaky ReLU before it is stored (the same float operations as the separate passes).</summary>
    private void BatchNormTraining(Tensor x, Tensor gamma, Tensor beta, bool activate, float slope, float momentum, float epsilon,
        Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y)
    {
        int chCount = (int)gamma.Length;
        var (n, ch, s) = NnChecks.ChannelLayout(x, chCount, nameof(x));
        foreach (var (t, name) in new[] { (beta, nameof(beta)), (runningMean, nameof(runningMean)), (runningVar, nameof(runningVar)), (saveMean, nameof(saveMean)), (saveInvStd, nameof(saveInvStd)) })
            t.RequireShape(name, ch);
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var tx = M(x, nameof(x)); var tg = M(gamma, nameof(gamma)); var tb = M(beta, nameof(beta));
        var trm = M(runningMean, nameof(runningMean)); var trv = M(runningVar, nameof(runningVar));
        var tsm = M(saveMean, nameof(saveMean)); var tsi = M(saveInvStd, nameof(saveInvStd)); var ty = M(y, nameof(y));
        ForRanges(ch, 1, (c0, c1) =>
        {
            for (int c = c0; c < c1; c++)
            {
                var (scale, shift) = TrainingStatistics(tx, n, ch, s, c, momentum, epsilon, tg, tb, trm, trv, tsm, tsi);
                for (int i = 0; i < n; i++)
                {
                    int o = (i * ch + c) * s;
                    if (activate) Vec.AffineLeakyRelu(tx.Data.AsSpan(tx.Offset + o, s), scale, shift, slope, ty.Data.AsSpan(ty.Offset + o, s));
                    else Vec.Affine(tx.Data.AsSpan(tx.Offset + o, s), scale, shift, ty.Data.AsSpan(ty.Offset + o, s));
                }
            }
        });
    }

    /// <summary>Channel c's batch statistics from one read of the channel (each row's mean and squared deviations, the
    /// second pass over the row hitting the cache, merged row by row in double: Chan, Golub and LeVeque's pairwise
    /// update): writes saveMean, saveInvStd and the running statistics, and returns the affine map of the normalised
    /// output, y = scale x + shift.</summary>
    private static (float Scale, float Shift) TrainingStatistics(ManagedTensor tx, int n, int ch, int s, int c, float momentum, float epsilon,
        ManagedTensor tg, ManagedTensor tb, ManagedTensor trm, ManagedTensor trv, ManagedTensor tsm, ManagedTensor tsi)
    {
        double runMean = 0, runM2 = 0;
        for (int i = 0; i < n; i++)
        {
            var row = tx.Data.AsSpan(tx.Offset + (i * ch + c) * s, s);
            double rowMean = (double)Vec.Sum(row) / s;
            double rowM2 = Vec.SumOfSquaredDeviations(row, (float)rowMean);
            double before = (double)i * s, after = before + s, delta = rowMean - runMean;
            runMean += delta * s / after;
            runM2 += rowM2 + delta * delta * (before * s / after);
        }
        float mean = (float)runMean;
        float variance = (float)(runM2 / ((double)n * s));
        float invStd = 1f / MathF.Sqrt(variance + epsilon);
        tsm.Data[tsm.Offset + c] = mean;
        tsi.Data[tsi.Offset + c] = invStd;
        ref float rm = ref trm.Data[trm.Offset + c];
        ref float rv = ref trv.Data[trv.Offset + c];
        rm = momentum * rm + (1f - momentum) * mean;
        rv = momentum * rv + (1f - momentum) * variance;
        return AffineOf(tg, tb, c, mean, invStd);
    }

    /// <summary>The normalised output's affine map from a channel's mean and 1/std: scale = gamma invStd, shift =
    /// beta - mean scale (the forward pass and the fused backward pass's recomputation share it).</summary>
    private static (float Scale, float Shift) AffineOf(ManagedTensor tg, ManagedTensor tb, int c, float mean, float invStd)
    {
        float scale = tg.Data[tg.Offset + c] * invStd;
        return (scale, tb.Data[tb.Offset + c] - mean * scale);
    }

    public void BatchNormInferenceForward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float epsilon, Tensor y) =>
        BatchNormInference(x, gamma, beta, false, 0f, runningMean, runningVar, epsilon, y);

    public void BatchNormLeakyReluInferenceForward(Tensor x, Tensor gamma, Tensor beta, float slope, Tensor runningMean, Tensor runningVar,
        float epsilon, Tensor y) =>
        BatchNormInference(x, gamma, beta, true, slope, runningMean, runningVar, epsilon, y);

    private void BatchNormInference(Tensor x, Tensor gamma, Tensor beta, bool activate, float slope, Tensor runningMean, Tensor runningVar,
        float epsilon, Tensor y)
    {
        int chCount = (int)gamma.Length;
        var (n, ch, s) = NnChecks.ChannelLayout(x, chCount, nameof(x));
        beta.RequireShape(nameof(beta), ch);
        runningMean.RequireShape(nameof(runningMean), ch);
        runningVar.RequireShape(nameof(runningVar), ch);
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var tx = M(x, nameof(x)); var tg = M(gamma, nameof(gamma)); var tb = M(beta, nameof(beta));
        var trm = M(runningMean, nameof(runningMean)); var trv = M(runningVar, nameof(runningVar)); var ty = M(y, nameof(y));
        ForRanges((long)n * ch, Math.Max(1, 8192 / Math.Max(s, 1)), (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                int c = p % ch;
                float scale = tg.Data[tg.Offset + c] / MathF.Sqrt(trv.Data[trv.Offset + c] + epsilon);
                float shift = tb.Data[tb.Offset + c] - trm.Data[trm.Offset + c] * scale;
                if (activate) Vec.AffineLeakyRelu(tx.Data.AsSpan(tx.Offset + p * s, s), scale, shift, slope, ty.Data.AsSpan(ty.Offset + p * s, s));
                else Vec.Affine(tx.Data.AsSpan(tx.Offset + p * s, s), scale, shift, ty.Data.AsSpan(ty.Offset + p * s, s));
            }
        });
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

    /// <summary>Batch norm's gradient, channels in parallel: one pass over each channel's rows reduces sum(g) and
    /// sum(g (x - mean)) together (each in its own accumulator, in the order of the separate reductions), a second
    /// writes dx. g is dy, or with an activation output <paramref name="y"/> the leaky ReLU gradient of dy.</summary>
    private void BatchNormGradient(Tensor x, Tensor? y, float slope, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dy,
        Tensor dx, Tensor dGamma, Tensor dBeta)
    {
        int chCount = (int)gamma.Length;
        var (n, ch, s) = NnChecks.ChannelLayout(x, chCount, nameof(x));
        saveMean.RequireShape(nameof(saveMean), ch);
        saveInvStd.RequireShape(nameof(saveInvStd), ch);
        dGamma.RequireShape(nameof(dGamma), ch);
        dBeta.RequireShape(nameof(dBeta), ch);
        NnChecks.SameLength(x, nameof(x), dy, nameof(dy));
        NnChecks.SameLength(x, nameof(x), dx, nameof(dx));
        var tx = M(x, nameof(x)); var tg = M(gamma, nameof(gamma)); var tsm = M(saveMean, nameof(saveMean));
        var tsi = M(saveInvStd, nameof(saveInvStd)); var tdy = M(dy, nameof(dy)); var tdx = M(dx, nameof(dx));
        var tdg = M(dGamma, nameof(dGamma)); var tdb = M(dBeta, nameof(dBeta));
        var ty = y is null ? null : M(y, nameof(y));
        double count = (double)n * s;
        ForRanges(ch, 1, (c0, c1) =>
        {
            for (int c = c0; c < c1; c++)
            {
                float mean = tsm.Data[tsm.Offset + c], invStd = tsi.Data[tsi.Offset + c];
                double sumDy = 0, sumDyXc = 0;
                for (int i = 0; i < n; i++)
                {
                    int o = (i * ch + c) * s;
                    var dys = tdy.Data.AsSpan(tdy.Offset + o, s);
                    var xs = tx.Data.AsSpan(tx.Offset + o, s);
                    float rowSum;
                    double rowDot = ty is null
                        ? Vec.SumAndDotCentered(dys, xs, mean, out rowSum)
                        : Vec.SumAndDotCenteredLeakyRelu(dys, ty.Data.AsSpan(ty.Offset + o, s), slope, xs, mean, out rowSum);
                    sumDy += rowSum;
                    sumDyXc += rowDot;
                }
                var (a, bCoef, cConst) = GradientCoefficients(tg, tdg, tdb, c, mean, invStd, sumDy, sumDyXc, count);
                for (int i = 0; i < n; i++)
                {
                    int o = (i * ch + c) * s;
                    if (ty is null)
                        Vec.LinearPair(tdy.Data.AsSpan(tdy.Offset + o, s), a, tx.Data.AsSpan(tx.Offset + o, s), bCoef, cConst, tdx.Data.AsSpan(tdx.Offset + o, s));
                    else
                        Vec.LinearPairLeakyRelu(tdy.Data.AsSpan(tdy.Offset + o, s), ty.Data.AsSpan(ty.Offset + o, s), slope, a,
                            tx.Data.AsSpan(tx.Offset + o, s), bCoef, cConst, tdx.Data.AsSpan(tdx.Offset + o, s));
                }
            }
        });
    }

    /// <summary>Writes channel c's dBeta = sum(g) and dGamma = sum(g (x - mean)) invStd and returns the coefficients of
    /// dx = a g + b x + c0 (dx = gamma invStd (g - dBeta / M - xhat dGamma / M), xhat = (x - mean) invStd, M = count).</summary>
    private static (float A, float B, float C) GradientCoefficients(ManagedTensor tg, ManagedTensor tdg, ManagedTensor tdb, int c,
        float mean, float invStd, double sumDy, double sumDyXc, double count)
    {
        float dBetaC = (float)sumDy;
        float dGammaC = (float)(sumDyXc * invStd);
        tdb.Data[tdb.Offset + c] = dBetaC;
        tdg.Data[tdg.Offset + c] = dGammaC;
        float k = tg.Data[tg.Offset + c] * invStd;
        float bCoef = -k * dGammaC * invStd / (float)count;
        float cConst = -k * dBetaC / (float)count - bCoef * mean;
        return (k, bCoef, cConst);
    }

    // ---------------------------------------------------------------- batch norm, leaky ReLU and 2 x 2 max pooling fused

    /// <summary>Checks the fused operations' geometry (a 2 x 2, stride 2, unpadded max pool), x, gamma and the pooled
    /// tensor (y or dy, named <paramref name="pooledName"/>); returns the plane size s = InHeight x InWidth.</summary>
    private static int CheckFusedPool(in PoolGeometry g, Tensor x, Tensor gamma, Tensor pooled, string pooledName)
    {
        g.Validate();
        x.RequireShape(nameof(x), g.Batch, g.Channels, g.InHeight, g.InWidth);
        pooled.RequireShape(pooledName, g.Batch, g.Channels, g.OutHeight, g.OutWidth);
        if (!BatchNormPoolFusion.Applies(g))
            throw new ArgumentException($"g: the fused batch norm and pooling needs a 2 x 2 window of stride 2 without padding, every window inside the input, was {g.PoolHeight} x {g.PoolWidth}, stride {g.StrideH} x {g.StrideW}, padding {g.PadTop}/{g.PadLeft}, {g.OutHeight} x {g.OutWidth} windows over {g.InHeight} x {g.InWidth}.", nameof(g));
        gamma.RequireShape(nameof(gamma), g.Channels);
        return g.InHeight * g.InWidth;
    }

    public void BatchNormLeakyReluMaxPoolTrainingForward(in PoolGeometry g, Tensor x, Tensor gamma, Tensor beta, float slope, float momentum,
        float epsilon, Tensor runningMean, Tensor runningVar, Tensor saveMean, Tensor saveInvStd, Tensor y)
    {
        int s = CheckFusedPool(g, x, gamma, y, nameof(y));
        int n = g.Batch, ch = g.Channels, outPlane = g.OutHeight * g.OutWidth;
        foreach (var (t, name) in new[] { (beta, nameof(beta)), (runningMean, nameof(runningMean)), (runningVar, nameof(runningVar)), (saveMean, nameof(saveMean)), (saveInvStd, nameof(saveInvStd)) })
            t.RequireShape(name, ch);
        var geo = g;
        var tx = M(x, nameof(x)); var tg = M(gamma, nameof(gamma)); var tb = M(beta, nameof(beta));
        var trm = M(runningMean, nameof(runningMean)); var trv = M(runningVar, nameof(runningVar));
        var tsm = M(saveMean, nameof(saveMean)); var tsi = M(saveInvStd, nameof(saveInvStd)); var ty = M(y, nameof(y));
        ForRanges(ch, 1, (c0, c1) =>
        {
            // One plane's activation at a time, in cache: the pool reads it back from there.
            float[] z = ArrayPool<float>.Shared.Rent(s);
            try
            {
                fixed (float* pz = z)
                fixed (float* py = ty.Data)
                    for (int c = c0; c < c1; c++)
                    {
                        var (scale, shift) = TrainingStatistics(tx, n, ch, s, c, momentum, epsilon, tg, tb, trm, trv, tsm, tsi);
                        for (int i = 0; i < n; i++)
                        {
                            Vec.AffineLeakyRelu(tx.Data.AsSpan(tx.Offset + (i * ch + c) * s, s), scale, shift, slope, z.AsSpan(0, s));
                            MaxPool2x2Plane(geo, pz, py + ty.Offset + (long)(i * ch + c) * outPlane);
                        }
                    }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(z);
            }
        });
    }

    /// <summary>One plane of the fused backward pass: z = the activation of x's plane at offset o (the forward pass's
    /// float operations), gz = the pool's gradient of z from the plane's pooled dy.</summary>
    private static void FusedPlaneGradient(in PoolGeometry g, ManagedTensor tx, int o, float scale, float shift, float slope,
        float* z, float* dyPlane, float* gz)
    {
        int s = g.InHeight * g.InWidth;
        Vec.AffineLeakyRelu(tx.Data.AsSpan(tx.Offset + o, s), scale, shift, slope, new Span<float>(z, s));
        MaxPool2x2PlaneBackward(g, z, dyPlane, gz);
    }

    public void BatchNormLeakyReluMaxPoolBackward(in PoolGeometry g, Tensor x, float slope, Tensor gamma, Tensor beta, Tensor saveMean,
        Tensor saveInvStd, Tensor dy, Tensor dx, Tensor dGamma, Tensor dBeta)
    {
        int s = CheckFusedPool(g, x, gamma, dy, nameof(dy));
        int n = g.Batch, ch = g.Channels, outPlane = g.OutHeight * g.OutWidth;
        foreach (var (t, name) in new[] { (beta, nameof(beta)), (saveMean, nameof(saveMean)), (saveInvStd, nameof(saveInvStd)), (dGamma, nameof(dGamma)), (dBeta, nameof(dBeta)) })
            t.RequireShape(name, ch);
        NnChecks.SameLength(x, nameof(x), dx, nameof(dx));
        var geo = g;
        var tx = M(x, nameof(x)); var tg = M(gamma, nameof(gamma)); var tb = M(beta, nameof(beta));
        var tsm = M(saveMean, nameof(saveMean)); var tsi = M(saveInvStd, nameof(saveInvStd));
        var tdy = M(dy, nameof(dy)); var tdx = M(dx, nameof(dx)); var tdg = M(dGamma, nameof(dGamma)); var tdb = M(dBeta, nameof(dBeta));
        double count = (double)n * s;
        ForRanges(ch, 1, (c0, c1) =>
        {
            // Per plane, in cache: the activation z recomputed from x (as the forward pass wrote it) and the pool's
            // gradient gz, which the separate operations would have written to and read from memory.
            float[] z = ArrayPool<float>.Shared.Rent(s);
            float[] gz = ArrayPool<float>.Shared.Rent(s);
            try
            {
                fixed (float* pz = z)
                fixed (float* pgz = gz)
                fixed (float* pdy = tdy.Data)
                    for (int c = c0; c < c1; c++)
                    {
                        float mean = tsm.Data[tsm.Offset + c], invStd = tsi.Data[tsi.Offset + c];
                        var (scale, shift) = AffineOf(tg, tb, c, mean, invStd);
                        double sumDy = 0, sumDyXc = 0;
                        for (int i = 0; i < n; i++)
                        {
                            int o = (i * ch + c) * s;
                            FusedPlaneGradient(geo, tx, o, scale, shift, slope, pz, pdy + tdy.Offset + (long)(i * ch + c) * outPlane, pgz);
                            double rowDot = Vec.SumAndDotCenteredLeakyRelu(gz.AsSpan(0, s), z.AsSpan(0, s), slope,
                                tx.Data.AsSpan(tx.Offset + o, s), mean, out float rowSum);
                            sumDy += rowSum;
                            sumDyXc += rowDot;
                        }
                        var (a, bCoef, cConst) = GradientCoefficients(tg, tdg, tdb, c, mean, invStd, sumDy, sumDyXc, count);
                        for (int i = 0; i < n; i++)
                        {
                            int o = (i * ch + c) * s;
                            FusedPlaneGradient(geo, tx, o, scale, shift, slope, pz, pdy + tdy.Offset + (long)(i * ch + c) * outPlane, pgz);
                            Vec.LinearPairLeakyRelu(gz.AsSpan(0, s), z.AsSpan(0, s), slope, a, tx.Data.AsSpan(tx.Offset + o, s), bCoef, cConst,
                                tdx.Data.AsSpan(tdx.Offset + o, s));
                        }
                    }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(z);
                ArrayPool<float>.Shared.Return(gz);
            }
        });
    }

    // ---------------------------------------------------------------- dropout and activations

    public void DropoutForward(Tensor x, float rate, ulong seed, Tensor mask, Tensor y)
    {
        if (!(rate >= 0f && rate < 1f)) throw new ArgumentOutOfRangeException(nameof(rate), $"Dropout rate must be in [0, 1), was {rate}.");
        NnChecks.SameLength(x, nameof(x), mask, nameof(mask));
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var tx = M(x, nameof(x)); var tm = M(mask, nameof(mask)); var ty = M(y, nameof(y));
        float keepScale = 1f / (1f - rate);
        ForRanges(tx.Length, 1 << 15, (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                float m = NnRandom.Uniform(seed, i) >= rate ? keepScale : 0f;
                tm.Data[tm.Offset + i] = m;
                ty.Data[ty.Offset + i] = tx.Data[tx.Offset + i] * m;
            }
        });
    }

    public void DropoutBackward(Tensor dy, Tensor mask, Tensor dx)
    {
        NnChecks.SameLength(dy, nameof(dy), mask, nameof(mask));
        NnChecks.SameLength(dy, nameof(dy), dx, nameof(dx));
        var tdy = M(dy, nameof(dy)); var tm = M(mask, nameof(mask)); var tdx = M(dx, nameof(dx));
        ForRanges(tdy.Length, 1 << 15, (s, e) =>
            Vec.Multiply(tdy.Data.AsSpan(tdy.Offset + s, e - s), tm.Data.AsSpan(tm.Offset + s, e - s), tdx.Data.AsSpan(tdx.Offset + s, e - s)));
    }

    public void LeakyReluForward(Tensor x, float slope, Tensor y)
    {
        NnChecks.SameLength(x, nameof(x), y, nameof(y));
        var tx = M(x, nameof(x)); var ty = M(y, nameof(y));
        ForRanges(tx.Length, 1 << 15, (s, e) =>
            Vec.LeakyRelu(tx.Data.AsSpan(tx.Offset + s, e - s), slope, ty.Data.AsSpan(ty.Offset + s, e - s)));
    }

    public void LeakyReluBackward(Tensor y, float slope, Tensor dy, Tensor dx)
    {
        NnChecks.SameLength(y, nameof(y), dy, nameof(dy));
        NnChecks.SameLength(y, nameof(y), dx, nameof(dx));
        var ty = M(y, nameof(y)); var tdy = M(dy, nameof(dy)); var tdx = M(dx, nameof(dx));
        ForRanges(ty.Length, 1 << 15, (s, e) =>
            Vec.LeakyReluGrad(ty.Data.AsSpan(ty.Offset + s, e - s), slope, tdy.Data.AsSpan(tdy.Offset + s, e - s), tdx.Data.AsSpan(tdx.Offset + s, e - s)));
    }

    // ---------------------------------------------------------------- loss

    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, float labelSmoothing,
        Tensor probabilities, Tensor losses, Tensor? dLogits, float gradientScale)
    {
        var (n, k) = NnChecks.SoftmaxCrossEntropy(logits, labels, labelSmoothing, probabilities, losses, dLogits);
        var tz = M(logits, nameof(logits)); var tl = M(labels, nameof(labels)); var tp = M(probabilities, nameof(probabilities));
        var tloss = M(losses, nameof(losses));
        ManagedTensor? tg = dLogits is null ? null : M(dLogits, nameof(dLogits));
        for (int i = 0; i < n; i++)
        {
            float lf = tl.Data[tl.Offset + i];
            if (!(lf >= 0f && lf < k && lf == MathF.Floor(lf)))
                throw new ArgumentException($"labels: element {i} is {lf}, expected a class index in 0..{k - 1}.", nameof(labels));
        }
        float off = labelSmoothing / k, on = 1f - labelSmoothing + off;
        ForRanges(n, 64, (r0, r1) =>
        {
            for (int i = r0; i < r1; i++)
            {
                var z = tz.Data.AsSpan(tz.Offset + i * k, k);
                var p = tp.Data.AsSpan(tp.Offset + i * k, k);
                int label = (int)tl.Data[tl.Offset + i];
                float max = float.NegativeInfinity;
                for (int j = 0; j < k; j++) if (z[j] > max) max = z[j];
                double sum = 0;
                for (int j = 0; j < k; j++)
                {
                    float e = MathF.Exp(z[j] - max);
                    p[j] = e;
                    sum += e;
                }
                float lse = max + (float)Math.Log(sum);
                float inv = (float)(1.0 / sum);
                double loss = 0;
                for (int j = 0; j < k; j++)
                {
                    p[j] *= inv;
                    float q = j == label ? on : off;
                    if (q != 0f) loss += q * (double)(lse - z[j]);
                }
                tloss.Data[tloss.Offset + i] = (float)loss;
                if (tg is not null)
                {
                    var g = tg.Data.AsSpan(tg.Offset + i * k, k);
                    for (int j = 0; j < k; j++) g[j] = gradientScale * (p[j] - (j == label ? on : off));
                }
            }
        });
    }

    // ---------------------------------------------------------------- optimizers

    public void SgdUpdate(Tensor parameter, Tensor gradient, Tensor velocity, float learningRate, float momentum, bool nesterov, float weightDecay)
    {
        NnChecks.SameLength(parameter, nameof(parameter), gradient, nameof(gradient));
        NnChecks.SameLength(parameter, nameof(parameter), velocity, nameof(velocity));
        var tp = M(parameter, nameof(parameter)); var tg = M(gradient, nameof(gradient)); var tv = M(velocity, nameof(velocity));
        ForRanges(tp.Length, 1 << 16, (s, e) =>
        {
            var p = tp.Data.AsSpan(tp.Offset + s, e - s);
            var g = tg.Data.AsSpan(tg.Offset + s, e - s);
            var v = tv.Data.AsSpan(tv.Offset + s, e - s);
            for (int i = 0; i < p.Length; i++)
            {
                float gi = g[i] + weightDecay * p[i];
                float vi = momentum * v[i] + gi;
                v[i] = vi;
                p[i] -= learningRate * (nesterov ? gi + momentum * vi : vi);
            }
        });
    }

    public void AdamUpdate(Tensor parameter, Tensor gradient, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupled, int step)
    {
        NnChecks.Adam(parameter, gradient, m, v, step);
        var tp = M(parameter, nameof(parameter)); var tg = M(gradient, nameof(gradient)); var tm = M(m, nameof(m)); var tv = M(v, nameof(v));
        float c1 = 1f / (1f - MathF.Pow(beta1, step));
        float c2 = 1f / (1f - MathF.Pow(beta2, step));
        float decay = decoupled ? 1f - learningRate * weightDecay : 1f;
        float l2 = decoupled ? 0f : weightDecay;
        ForRanges(tp.Length, 1 << 16, (s, e) =>
        {
            var p = tp.Data.AsSpan(tp.Offset + s, e - s);
            var g = tg.Data.AsSpan(tg.Offset + s, e - s);
            var ms = tm.Data.AsSpan(tm.Offset + s, e - s);
            var vs = tv.Data.AsSpan(tv.Offset + s, e - s);
            int done = Vec.AdamStep(p, g, ms, vs, learningRate, beta1, beta2, epsilon, c1, c2, decay, l2);
            for (int i = done; i < p.Length; i++)
            {
                float pi = p[i] * decay;
                float gi = g[i] + l2 * p[i];
                float mi = beta1 * ms[i] + (1f - beta1) * gi;
                float vi = beta2 * vs[i] + (1f - beta2) * gi * gi;
                ms[i] = mi;
                vs[i] = vi;
                p[i] = pi - learningRate * (mi * c1) / (MathF.Sqrt(vi * c2) + epsilon);
            }
        });
    }
}

/// <summary>Counter-based random numbers (SplitMix64 finaliser over seed and index): the same value for the same
/// (seed, index) on every engine and thread, so masks need no shared generator state.</summary>
internal static class NnRandom
{
    /// <summary>A uniform float in [0, 1) with 24 random bits.</summary>
    internal static float Uniform(ulong seed, long index)
    {
        ulong z = seed + ((ulong)index + 1UL) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1f / 16777216f);
    }
}

/// <summary>Vectorised span kernels (System.Numerics.Vector, 256-bit here) with scalar tails.</summary>
internal static class Vec
{
    private static int W => Vector<float>.Count;

    internal static void Scale(Span<float> x, float factor)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        for (int i = 0; i < vx.Length; i++) vx[i] *= factor;
        for (int i = vx.Length * W; i < x.Length; i++) x[i] *= factor;
    }

    internal static void AddScalar(ReadOnlySpan<float> x, float value, Span<float> y)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var vv = new Vector<float>(value);
        for (int i = 0; i < vx.Length; i++) vy[i] = vx[i] + vv;
        for (int i = vx.Length * W; i < x.Length; i++) y[i] = x[i] + value;
    }

    internal static void AddInPlace(Span<float> y, ReadOnlySpan<float> x)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        for (int i = 0; i < vx.Length; i++) vy[i] += vx[i];
        for (int i = vx.Length * W; i < x.Length; i++) y[i] += x[i];
    }

    internal static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        var va = MemoryMarshal.Cast<float, Vector<float>>(a);
        var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        for (int i = 0; i < va.Length; i++) vy[i] = va[i] * vb[i];
        for (int i = va.Length * W; i < a.Length; i++) y[i] = a[i] * b[i];
    }

    /// <summary>Sum in float vector lanes, lanes combined in a fixed order.</summary>
    internal static float Sum(ReadOnlySpan<float> x)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var acc = Vector<float>.Zero;
        for (int i = 0; i < vx.Length; i++) acc += vx[i];
        float s = Vector.Sum(acc);
        for (int i = vx.Length * W; i < x.Length; i++) s += x[i];
        return s;
    }

    internal static double SumOfSquares(ReadOnlySpan<float> x)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var acc = Vector<float>.Zero;
        for (int i = 0; i < vx.Length; i++) acc += vx[i] * vx[i];
        double s = Vector.Sum(acc);
        for (int i = vx.Length * W; i < x.Length; i++) s += (double)x[i] * x[i];
        return s;
    }

    internal static double SumOfSquaredDeviations(ReadOnlySpan<float> x, float mean)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vm = new Vector<float>(mean);
        var acc = Vector<float>.Zero;
        for (int i = 0; i < vx.Length; i++) { var d = vx[i] - vm; acc += d * d; }
        double s = Vector.Sum(acc);
        for (int i = vx.Length * W; i < x.Length; i++) { double d = x[i] - mean; s += d * d; }
        return s;
    }

    /// <summary>Returns the sum of dy * (x - mean) (float vector lanes, then the tail in double) and sets
    /// <paramref name="sum"/> to <see cref="Sum"/>(dy), both from one pass over dy and x.</summary>
    internal static double SumAndDotCentered(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float mean, out float sum)
    {
        var vd = MemoryMarshal.Cast<float, Vector<float>>(dy);
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vm = new Vector<float>(mean);
        var accSum = Vector<float>.Zero;
        var accDot = Vector<float>.Zero;
        for (int i = 0; i < vd.Length; i++)
        {
            var g = vd[i];
            accSum += g;
            accDot += g * (vx[i] - vm);
        }
        float s = Vector.Sum(accSum);
        double d = Vector.Sum(accDot);
        for (int i = vd.Length * W; i < dy.Length; i++)
        {
            s += dy[i];
            d += (double)dy[i] * (x[i] - mean);
        }
        sum = s;
        return d;
    }

    /// <summary><see cref="SumAndDotCentered"/> of g = <see cref="LeakyReluGrad"/>(y, slope, dy), each g computed as
    /// it is read.</summary>
    internal static double SumAndDotCenteredLeakyRelu(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, float slope, ReadOnlySpan<float> x,
        float mean, out float sum)
    {
        var vd = MemoryMarshal.Cast<float, Vector<float>>(dy);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vm = new Vector<float>(mean);
        var vs = new Vector<float>(slope);
        var accSum = Vector<float>.Zero;
        var accDot = Vector<float>.Zero;
        for (int i = 0; i < vd.Length; i++)
        {
            var g = Vector.ConditionalSelect(Vector.GreaterThan(vy[i], Vector<float>.Zero), vd[i], vd[i] * vs);
            accSum += g;
            accDot += g * (vx[i] - vm);
        }
        float s = Vector.Sum(accSum);
        double d = Vector.Sum(accDot);
        for (int i = vd.Length * W; i < dy.Length; i++)
        {
            float g = y[i] > 0f ? dy[i] : slope * dy[i];
            s += g;
            d += (double)g * (x[i] - mean);
        }
        sum = s;
        return d;
    }

    /// <summary>y = <see cref="LeakyRelu"/>(scale * x + shift, slope), one pass.</summary>
    internal static void AffineLeakyRelu(ReadOnlySpan<float> x, float scale, float shift, float slope, Span<float> y)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var vsc = new Vector<float>(scale);
        var vb = new Vector<float>(shift);
        var vs = new Vector<float>(slope);
        for (int i = 0; i < vx.Length; i++)
        {
            var v = vx[i] * vsc + vb;
            vy[i] = Vector.ConditionalSelect(Vector.GreaterThan(v, Vector<float>.Zero), v, v * vs);
        }
        for (int i = vx.Length * W; i < x.Length; i++)
        {
            float v = x[i] * scale + shift;
            y[i] = v > 0f ? v : slope * v;
        }
    }

    /// <summary>y = a * g + b * v + c with g = <see cref="LeakyReluGrad"/>(act, slope, u) computed as it is read.</summary>
    internal static void LinearPairLeakyRelu(ReadOnlySpan<float> u, ReadOnlySpan<float> act, float slope, float a, ReadOnlySpan<float> v,
        float b, float c, Span<float> y)
    {
        var vu = MemoryMarshal.Cast<float, Vector<float>>(u);
        var vact = MemoryMarshal.Cast<float, Vector<float>>(act);
        var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var va = new Vector<float>(a);
        var vb = new Vector<float>(b);
        var vc = new Vector<float>(c);
        var vs = new Vector<float>(slope);
        for (int i = 0; i < vu.Length; i++)
        {
            var g = Vector.ConditionalSelect(Vector.GreaterThan(vact[i], Vector<float>.Zero), vu[i], vu[i] * vs);
            vy[i] = g * va + vv[i] * vb + vc;
        }
        for (int i = vu.Length * W; i < u.Length; i++)
        {
            float g = act[i] > 0f ? u[i] : slope * u[i];
            y[i] = g * a + v[i] * b + c;
        }
    }

    /// <summary>y = scale * x + shift.</summary>
    internal static void Affine(ReadOnlySpan<float> x, float scale, float shift, Span<float> y)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var vs = new Vector<float>(scale);
        var vb = new Vector<float>(shift);
        for (int i = 0; i < vx.Length; i++) vy[i] = vx[i] * vs + vb;
        for (int i = vx.Length * W; i < x.Length; i++) y[i] = x[i] * scale + shift;
    }

    /// <summary>y = a * u + b * v + c.</summary>
    internal static void LinearPair(ReadOnlySpan<float> u, float a, ReadOnlySpan<float> v, float b, float c, Span<float> y)
    {
        var vu = MemoryMarshal.Cast<float, Vector<float>>(u);
        var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var va = new Vector<float>(a);
        var vb = new Vector<float>(b);
        var vc = new Vector<float>(c);
        for (int i = 0; i < vu.Length; i++) vy[i] = vu[i] * va + vv[i] * vb + vc;
        for (int i = vu.Length * W; i < u.Length; i++) y[i] = u[i] * a + v[i] * b + c;
    }

    /// <summary>The vector part of <see cref="ManagedNn.AdamUpdate"/> (same operations in the same order as its scalar
    /// loop, so results are identical); returns how many leading elements it updated.</summary>
    internal static int AdamStep(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v, float lr, float beta1,
        float beta2, float epsilon, float c1, float c2, float decay, float l2)
    {
        var vp = MemoryMarshal.Cast<float, Vector<float>>(p);
        var vg = MemoryMarshal.Cast<float, Vector<float>>(g);
        var vm = MemoryMarshal.Cast<float, Vector<float>>(m);
        var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
        var b1 = new Vector<float>(beta1);
        var b2 = new Vector<float>(beta2);
        var ob1 = new Vector<float>(1f - beta1);
        var ob2 = new Vector<float>(1f - beta2);
        var vc1 = new Vector<float>(c1);
        var vc2 = new Vector<float>(c2);
        var vdecay = new Vector<float>(decay);
        var vl2 = new Vector<float>(l2);
        var vlr = new Vector<float>(lr);
        var veps = new Vector<float>(epsilon);
        for (int i = 0; i < vp.Length; i++)
        {
            var pi = vp[i] * vdecay;
            var gi = vg[i] + vl2 * vp[i];
            var mi = b1 * vm[i] + ob1 * gi;
            var vi = b2 * vv[i] + ob2 * gi * gi;
            vm[i] = mi;
            vv[i] = vi;
            vp[i] = pi - vlr * (mi * vc1) / (Vector.SquareRoot(vi * vc2) + veps);
        }
        return vp.Length * W;
    }

    internal static void LeakyRelu(ReadOnlySpan<float> x, float slope, Span<float> y)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var vs = new Vector<float>(slope);
        for (int i = 0; i < vx.Length; i++)
        {
            var v = vx[i];
            vy[i] = Vector.ConditionalSelect(Vector.GreaterThan(v, Vector<float>.Zero), v, v * vs);
        }
        for (int i = vx.Length * W; i < x.Length; i++) y[i] = x[i] > 0f ? x[i] : slope * x[i];
    }

    internal static void LeakyReluGrad(ReadOnlySpan<float> y, float slope, ReadOnlySpan<float> dy, Span<float> dx)
    {
        var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
        var vd = MemoryMarshal.Cast<float, Vector<float>>(dy);
        var vx = MemoryMarshal.Cast<float, Vector<float>>(dx);
        var vs = new Vector<float>(slope);
        for (int i = 0; i < vy.Length; i++)
            vx[i] = Vector.ConditionalSelect(Vector.GreaterThan(vy[i], Vector<float>.Zero), vd[i], vd[i] * vs);
        for (int i = vy.Length * W; i < y.Length; i++) dx[i] = y[i] > 0f ? dy[i] : slope * dy[i];
    }
}
