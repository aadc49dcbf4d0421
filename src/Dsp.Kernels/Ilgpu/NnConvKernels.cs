using ILGPU;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>A <see cref="ConvGeometry"/> as a kernel argument.</summary>
internal struct ConvArgs
{
    public int InChannels, InHeight, InWidth, OutChannels, KernelHeight, KernelWidth;
    public int StrideH, StrideW, PadTop, PadLeft, DilationH, DilationW, OutHeight, OutWidth;

    internal static ConvArgs From(in ConvGeometry g) => new()
    {
        InChannels = g.InChannels, InHeight = g.InHeight, InWidth = g.InWidth, OutChannels = g.OutChannels,
        KernelHeight = g.KernelHeight, KernelWidth = g.KernelWidth, StrideH = g.StrideH, StrideW = g.StrideW,
        PadTop = g.PadTop, PadLeft = g.PadLeft, DilationH = g.DilationH, DilationW = g.DilationW,
        OutHeight = g.OutHeight, OutWidth = g.OutWidth,
    };
}

/// <summary>
/// The data movement of GEMM-based convolution over a chunk of samples: im2col (one thread per column cell, the
/// output pixel fastest, so both reads and writes are coalesced along rows) and its adjoint col2im as a gather (one
/// thread per input cell summing the column cells that read it: no atomics, deterministic).
/// Columns of sample n: col[n, (ci, kh, kw), (oh, ow)] of [PatchSize, OutHeight * OutWidth].
/// </summary>
internal static class NnConvKernels
{
    /// <summary>col cell i of the chunk starting at sample <paramref name="first"/>.</summary>
    internal static void Im2ColKernel(Index1D i, ArrayView<float> x, ArrayView<float> col, ConvArgs g, int first)
    {
        int p = g.OutHeight * g.OutWidth;
        int patch = g.InChannels * g.KernelHeight * g.KernelWidth;
        int pix = i % p;
        int rest = i / p;
        int row = rest % patch;
        int n = rest / patch + first;
        int kw = row % g.KernelWidth;
        int kh = (row / g.KernelWidth) % g.KernelHeight;
        int ci = row / (g.KernelWidth * g.KernelHeight);
        int oh = pix / g.OutWidth, ow = pix % g.OutWidth;
        int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
        int iw = ow * g.StrideW - g.PadLeft + kw * g.DilationW;
        float v = 0f;
        if (ih >= 0 && ih < g.InHeight && iw >= 0 && iw < g.InWidth)
            v = x[(((long)n * g.InChannels + ci) * g.InHeight + ih) * g.InWidth + iw];
        col[i] = v;
    }

    /// <summary>dx cell i (of the chunk starting at <paramref name="first"/>) = sum of the column-gradient cells reading it.</summary>
    internal static void Col2ImKernel(Index1D i, ArrayView<float> dcol, ArrayView<float> dx, ConvArgs g, int first)
    {
        int p = g.OutHeight * g.OutWidth;
        int patch = g.InChannels * g.KernelHeight * g.KernelWidth;
        int iw = i % g.InWidth;
        int rest = i / g.InWidth;
        int ih = rest % g.InHeight;
        rest /= g.InHeight;
        int ci = rest % g.InChannels;
        int n = rest / g.InChannels;
        long colBase = (long)n * patch * p;
        float acc = 0f;
        for (int kh = 0; kh < g.KernelHeight; kh++)
        {
            int th = ih + g.PadTop - kh * g.DilationH;
            if (th < 0 || th % g.StrideH != 0) continue;
            int oh = th / g.StrideH;
            if (oh >= g.OutHeight) continue;
            for (int kw = 0; kw < g.KernelWidth; kw++)
            {
                int tw = iw + g.PadLeft - kw * g.DilationW;
                if (tw < 0 || tw % g.StrideW != 0) continue;
                int ow = tw / g.StrideW;
                if (ow >= g.OutWidth) continue;
                int row = (ci * g.KernelHeight + kh) * g.KernelWidth + kw;
                acc += dcol[colBase + (long)row * p + oh * g.OutWidth + ow];
            }
        }
        dx[(long)first * g.InChannels * g.InHeight * g.InWidth + i] = acc;
    }

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs, int> Im2Col(IlgpuEngine e) =>
        e.Kernel("nn.im2col", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs, int>(Im2ColKernel));

    internal static Action<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs, int> Col2Im(IlgpuEngine e) =>
        e.Kernel("nn.col2im", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvArgs, int>(Col2ImKernel));
}
