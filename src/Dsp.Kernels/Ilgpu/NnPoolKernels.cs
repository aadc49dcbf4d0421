using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>A <see cref="PoolGeometry"/> as a kernel argument.</summary>
internal struct PoolArgs
{
    public int Channels, InHeight, InWidth, PoolHeight, PoolWidth, StrideH, StrideW, PadTop, PadLeft, OutHeight, OutWidth;
    public int Max;

    internal static PoolArgs From(in PoolGeometry g, PoolKind kind) => new()
    {
        Channels = g.Channels, InHeight = g.InHeight, InWidth = g.InWidth, PoolHeight = g.PoolHeight, PoolWidth = g.PoolWidth,
        StrideH = g.StrideH, StrideW = g.StrideW, PadTop = g.PadTop, PadLeft = g.PadLeft, OutHeight = g.OutHeight, OutWidth = g.OutWidth,
        Max = kind == PoolKind.Max ? 1 : 0,
    };
}

/// <summary>
/// Max and average pooling, forward (one thread per output cell) and backward as a gather (one thread per input cell
/// visiting the windows that contain it: no atomics, deterministic). Max pooling routes a window's gradient to its
/// first maximal cell in row-major order (the managed engine's rule); average pooling divides by the window's
/// in-bounds cell count.
/// </summary>
internal static class NnPoolKernels
{
    internal static void ForwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, PoolArgs g)
    {
        int ow = i % g.OutWidth;
        int rest = i / g.OutWidth;
        int oh = rest % g.OutHeight;
        int plane = rest / g.OutHeight;
        long basis = (long)plane * g.InHeight * g.InWidth;
        int h0 = oh * g.StrideH - g.PadTop, w0 = ow * g.StrideW - g.PadLeft;
        int hs = h0 < 0 ? 0 : h0, he = h0 + g.PoolHeight < g.InHeight ? h0 + g.PoolHeight : g.InHeight;
        int ws = w0 < 0 ? 0 : w0, we = w0 + g.PoolWidth < g.InWidth ? w0 + g.PoolWidth : g.InWidth;
        float r;
        if (g.Max != 0)
        {
            r = float.NegativeInfinity;
            for (int h = hs; h < he; h++)
                for (int w = ws; w < we; w++)
                {
                    float v = x[basis + h * g.InWidth + w];
                    if (v > r || XMath.IsNaN(v)) r = v;
                }
        }
        else
        {
            float sum = 0f;
            for (int h = hs; h < he; h++)
                for (int w = ws; w < we; w++) sum += x[basis + h * g.InWidth + w];
            int count = (he - hs) * (we - ws);
            r = sum / (count < 1 ? 1 : count);
        }
        y[i] = r;
    }

    internal static void BackwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, PoolArgs g)
    {
        int iw = i % g.InWidth;
        int rest = i / g.InWidth;
        int ih = rest % g.InHeight;
        int plane = rest / g.InHeight;
        long xBase = (long)plane * g.InHeight * g.InWidth;
        long yBase = (long)plane * g.OutHeight * g.OutWidth;
        int self = ih * g.InWidth + iw;
        // Windows containing ih: oh * StrideH - PadTop <= ih < oh * StrideH - PadTop + PoolHeight.
        int ohHi = (ih + g.PadTop) / g.StrideH;
        int tLo = ih + g.PadTop - g.PoolHeight + 1;
        int ohLo = tLo <= 0 ? 0 : (tLo + g.StrideH - 1) / g.StrideH;
        int owHi = (iw + g.PadLeft) / g.StrideW;
        int sLo = iw + g.PadLeft - g.PoolWidth + 1;
        int owLo = sLo <= 0 ? 0 : (sLo + g.StrideW - 1) / g.StrideW;
        if (ohHi > g.OutHeight - 1) ohHi = g.OutHeight - 1;
        if (owHi > g.OutWidth - 1) owHi = g.OutWidth - 1;
        float acc = 0f;
        for (int oh = ohLo; oh <= ohHi; oh++)
        {
            int h0 = oh * g.StrideH - g.PadTop;
            int hs = h0 < 0 ? 0 : h0, he = h0 + g.PoolHeight < g.InHeight ? h0 + g.PoolHeight : g.InHeight;
            for (int ow = owLo; ow <= owHi; ow++)
            {
                int w0 = ow * g.StrideW - g.PadLeft;
                int ws = w0 < 0 ? 0 : w0, we = w0 + g.PoolWidth < g.InWidth ? w0 + g.PoolWidth : g.InWidth;
                float gOut = dy[yBase + oh * g.OutWidth + ow];
                if (g.Max != 0)
                {
                    int best = -1;
                    float r = float.NegativeInfinity;
                    for (int h = hs; h < he; h++)
                        for (int w = ws; w < we; w++)
                        {
                            int idx = h * g.InWidth + w;
                            float v = x[xBase + idx];
                            if (best < 0 || v > r)
                            {
                                r = v;
                                best = idx;
                            }
                        }
                    if (best == self) acc += gOut;
                }
                else
                {
                    int count = (he - hs) * (we - ws);
                    acc += gOut / (count < 1 ? 1 : count);
                }
            }
        }
        dx[i] = acc;
    }

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, PoolArgs> Forward(IlgpuEngine e) =>
        e.Kernel("nn.poolfwd", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PoolArgs>(ForwardKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, PoolArgs> Backward(IlgpuEngine e) =>
        e.Kernel("nn.poolbwd", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, PoolArgs>(BackwardKernel));
}
