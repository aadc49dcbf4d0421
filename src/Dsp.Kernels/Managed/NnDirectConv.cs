using System.Runtime.Intrinsics;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// Direct convolution for layers with few input taps (InChannels x KernelHeight x KernelWidth small, column stride 1),
/// where an im2col GEMM would have an inner dimension too short to pay for packing (e.g. a first layer over a
/// one-channel spectrogram). Each output row is a sum of shifted input rows scaled by one weight, vectorised along
/// the row; the adjoint operations give the weight and input gradients. One sample per call.
/// </summary>
internal static unsafe class NnDirectConv
{
    /// <summary>Largest patch (InChannels x KernelHeight x KernelWidth) routed to the direct kernels.</summary>
    internal const int MaxPatch = 27;

    internal static bool Applies(in ConvGeometry g) => g.StrideW == 1 && g.PatchSize <= MaxPatch;

    /// <summary>Valid output columns [lo, hi) for kernel column kw (input column = ow + shift).</summary>
    private static (int Lo, int Hi, int Shift) Columns(in ConvGeometry g, int kw)
    {
        int shift = kw * g.DilationW - g.PadLeft;
        int lo = Math.Max(0, -shift);
        int hi = Math.Min(g.OutWidth, g.InWidth - shift);
        return (lo, Math.Max(lo, hi), shift);
    }

    /// <summary>dx (one sample, overwritten) from dy and the weights (the adjoint of <see cref="ForwardPadded"/>).</summary>
    internal static void InputGradient(in ConvGeometry g, float* w, float* dy, float* dx)
    {
        int P = g.OutHeight * g.OutWidth;
        new Span<float>(dx, g.InChannels * g.InHeight * g.InWidth).Clear();
        for (int co = 0; co < g.OutChannels; co++)
        {
            float* dyc = dy + (long)co * P;
            for (int ci = 0; ci < g.InChannels; ci++)
            for (int kh = 0; kh < g.KernelHeight; kh++)
            for (int kw = 0; kw < g.KernelWidth; kw++)
            {
                float wv = w[((co * g.InChannels + ci) * g.KernelHeight + kh) * g.KernelWidth + kw];
                var (lo, hi, shift) = Columns(g, kw);
                if (hi <= lo) continue;
                for (int oh = 0; oh < g.OutHeight; oh++)
                {
                    int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
                    if ((uint)ih >= (uint)g.InHeight) continue;
                    float* dst = dx + ((long)ci * g.InHeight + ih) * g.InWidth + shift;
                    Axpy(wv, dyc + oh * g.OutWidth + lo, dst + lo, hi - lo);
                }
            }
        }
    }

    /// <summary>Width of the zero-padded input rows used by the register-blocked kernels: output width rounded up to
    /// whole vectors plus the kernel's reach.</summary>
    internal static int PaddedWidth(in ConvGeometry g) => ((g.OutWidth + 7) & ~7) + (g.KernelWidth - 1) * g.DilationW;

    /// <summary>Rows of the zero-padded input: every row any output reads.</summary>
    internal static int PaddedHeight(in ConvGeometry g) => (g.OutHeight - 1) * g.StrideH + (g.KernelHeight - 1) * g.DilationH + 1;

    /// <summary>Floats of scratch needed by <see cref="ForwardPadded"/> and <see cref="WeightGradientPadded"/>.</summary>
    internal static int ScratchSize(in ConvGeometry g) =>
        g.InChannels * PaddedHeight(g) * PaddedWidth(g) + g.OutHeight * ((g.OutWidth + 7) & ~7);

    /// <summary>Copies one sample into [InChannels, PaddedHeight, PaddedWidth] with zeros around it.</summary>
    private static void Pad(in ConvGeometry g, float* x, float* xp)
    {
        int hp = PaddedHeight(g), wp = PaddedWidth(g);
        new Span<float>(xp, g.InChannels * hp * wp).Clear();
        for (int ci = 0; ci < g.InChannels; ci++)
        for (int r = 0; r < hp; r++)
        {
            int ih = r - g.PadTop;
            if ((uint)ih >= (uint)g.InHeight) continue;
            int c0 = g.PadLeft, n = Math.Min(g.InWidth, wp - c0);
            if (n > 0)
                new ReadOnlySpan<float>(x + ((long)ci * g.InHeight + ih) * g.InWidth, n).CopyTo(new Span<float>(xp + ((long)ci * hp + r) * wp + c0, n));
        }
    }

    /// <summary>Forward pass of one sample with eight outputs per register and all taps accumulated before a store.
    /// scratch: <see cref="ScratchSize"/> floats.</summary>
    internal static void ForwardPadded(in ConvGeometry g, float* x, float* w, float* bias, float* y, float* scratch)
    {
        int hp = PaddedHeight(g), wp = PaddedWidth(g), taps = g.PatchSize;
        Pad(g, x, scratch);
        int* offsets = stackalloc int[MaxPatch];
        for (int ci = 0, t = 0; ci < g.InChannels; ci++)
            for (int kh = 0; kh < g.KernelHeight; kh++)
                for (int kw = 0; kw < g.KernelWidth; kw++, t++)
                    offsets[t] = (ci * hp + kh * g.DilationH) * wp + kw * g.DilationW;
        float* tail = stackalloc float[8];
        int P = g.OutHeight * g.OutWidth;
        int co = 0;
        // Four output channels at a time: four independent accumulator chains share each load of the input (every
        // output still sums bias then its taps in tap order, as the one-channel loop below does).
        for (; co + 4 <= g.OutChannels; co += 4)
        {
            float* w0 = w + (long)co * taps, w1 = w0 + taps, w2 = w1 + taps, w3 = w2 + taps;
            var b0 = Vector256.Create(bias == null ? 0f : bias[co]);
            var b1 = Vector256.Create(bias == null ? 0f : bias[co + 1]);
            var b2 = Vector256.Create(bias == null ? 0f : bias[co + 2]);
            var b3 = Vector256.Create(bias == null ? 0f : bias[co + 3]);
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                float* rowBase = scratch + (long)oh * g.StrideH * wp;
                float* y0 = y + (long)co * P + oh * g.OutWidth;
                for (int ow = 0; ow < g.OutWidth; ow += 8)
                {
                    Vector256<float> a0 = b0, a1 = b1, a2 = b2, a3 = b3;
                    float* src = rowBase + ow;
                    for (int t = 0; t < taps; t++)
                    {
                        var xv = Vector256.Load(src + offsets[t]);
                        a0 += Vector256.Create(w0[t]) * xv;
                        a1 += Vector256.Create(w1[t]) * xv;
                        a2 += Vector256.Create(w2[t]) * xv;
                        a3 += Vector256.Create(w3[t]) * xv;
                    }
                    int n = Math.Min(8, g.OutWidth - ow);
                    StoreRow(a0, y0 + ow, n, tail);
                    StoreRow(a1, y0 + P + ow, n, tail);
                    StoreRow(a2, y0 + 2L * P + ow, n, tail);
                    StoreRow(a3, y0 + 3L * P + ow, n, tail);
                }
            }
        }
        for (; co < g.OutChannels; co++)
        {
            float* wc = w + (long)co * taps;
            var b = Vector256.Create(bias == null ? 0f : bias[co]);
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                float* rowBase = scratch + (long)oh * g.StrideH * wp;
                float* yr = y + (long)co * P + oh * g.OutWidth;
                for (int ow = 0; ow < g.OutWidth; ow += 8)
                {
                    var acc = b;
                    float* src = rowBase + ow;
                    for (int t = 0; t < taps; t++)
                        acc += Vector256.Create(wc[t]) * Vector256.Load(src + offsets[t]);
                    StoreRow(acc, yr + ow, Math.Min(8, g.OutWidth - ow), tail);
                }
            }
        }
    }

    /// <summary>Stores the first n (1..8) lanes of v at y (through tail when fewer than 8).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(Vector256<float> v, float* y, int n, float* tail)
    {
        if (n == 8)
        {
            Vector256.Store(v, y);
            return;
        }
        Vector256.Store(v, tail);
        for (int j = 0; j < n; j++) y[j] = tail[j];
    }

    /// <summary>Weight gradient of one sample, accumulated into dw ([OutChannels, PatchSize]).
    /// scratch: <see cref="ScratchSize"/> floats.</summary>
    internal static void WeightGradientPadded(in ConvGeometry g, float* x, float* dy, float* dw, float* scratch)
    {
        int hp = PaddedHeight(g), wp = PaddedWidth(g), taps = g.PatchSize, owp = (g.OutWidth + 7) & ~7;
        Pad(g, x, scratch);
        float* dyp = scratch + (long)g.InChannels * hp * wp;
        int* offsets = stackalloc int[MaxPatch];
        for (int ci = 0, t = 0; ci < g.InChannels; ci++)
            for (int kh = 0; kh < g.KernelHeight; kh++)
                for (int kw = 0; kw < g.KernelWidth; kw++, t++)
                    offsets[t] = (ci * hp + kh * g.DilationH) * wp + kw * g.DilationW;
        int P = g.OutHeight * g.OutWidth;
        new Span<float>(dyp, g.OutHeight * owp).Clear();
        for (int co = 0; co < g.OutChannels; co++)
        {
            for (int oh = 0; oh < g.OutHeight; oh++)
                new ReadOnlySpan<float>(dy + (long)co * P + oh * g.OutWidth, g.OutWidth).CopyTo(new Span<float>(dyp + oh * owp, g.OutWidth));
            // Four taps at a time: four independent accumulator chains share each load of dy.
            for (int t0 = 0; t0 < taps; t0 += 4)
            {
                int o0 = offsets[t0];
                int o1 = t0 + 1 < taps ? offsets[t0 + 1] : o0;
                int o2 = t0 + 2 < taps ? offsets[t0 + 2] : o0;
                int o3 = t0 + 3 < taps ? offsets[t0 + 3] : o0;
                var a0 = System.Runtime.Intrinsics.Vector256<float>.Zero;
                var a1 = a0;
                var a2 = a0;
                var a3 = a0;
                for (int oh = 0; oh < g.OutHeight; oh++)
                {
                    float* src = scratch + (long)oh * g.StrideH * wp;
                    float* d = dyp + oh * owp;
                    for (int ow = 0; ow < owp; ow += 8)
                    {
                        var dv = System.Runtime.Intrinsics.Vector256.Load(d + ow);
                        a0 += dv * System.Runtime.Intrinsics.Vector256.Load(src + o0 + ow);
                        a1 += dv * System.Runtime.Intrinsics.Vector256.Load(src + o1 + ow);
                        a2 += dv * System.Runtime.Intrinsics.Vector256.Load(src + o2 + ow);
                        a3 += dv * System.Runtime.Intrinsics.Vector256.Load(src + o3 + ow);
                    }
                }
                float* dwc = dw + co * taps;
                dwc[t0] += System.Runtime.Intrinsics.Vector256.Sum(a0);
                if (t0 + 1 < taps) dwc[t0 + 1] += System.Runtime.Intrinsics.Vector256.Sum(a1);
                if (t0 + 2 < taps) dwc[t0 + 2] += System.Runtime.Intrinsics.Vector256.Sum(a2);
                if (t0 + 3 < taps) dwc[t0 + 3] += System.Runtime.Intrinsics.Vector256.Sum(a3);
            }
        }
    }

    /// <summary>y[i] += a * x[i].</summary>
    private static void Axpy(float a, float* x, float* y, int n)
    {
        int i = 0;
        var va = System.Runtime.Intrinsics.Vector256.Create(a);
        for (; i + 8 <= n; i += 8)
        {
            var v = System.Runtime.Intrinsics.Vector256.Load(y + i) + va * System.Runtime.Intrinsics.Vector256.Load(x + i);
            System.Runtime.Intrinsics.Vector256.Store(v, y + i);
        }
        for (; i < n; i++) y[i] += a * x[i];
    }
}
