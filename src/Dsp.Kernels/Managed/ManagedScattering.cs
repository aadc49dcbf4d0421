using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using V = System.Runtime.Intrinsics.Vector256<double>;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// Products of a half spectrum with a filter, periodised to a shorter length: out[Dst[t]] += in[Bin[t]] * (WRe[t], WIm[t])
/// with the input read as a Hermitian spectrum (bin b, conjugated where the source bin is above M/2: the sign of
/// WIm carries the conjugation). Taps below 1e-15 of the filter's peak are dropped (the double-precision rounding level; a cut at 1e-9 already left a 2e-9 floor on quiet frames),
/// so only a filter's band is visited. Weights carry the periodisation's 1/2^k and the inverse FFT's 1/M, and are
/// stored conjugated so that a forward FFT of the result is the conjugate of the inverse FFT.
/// </summary>
internal sealed class SpectrumFold
{
    public required int[] Bin { get; init; }
    public required int[] Dst { get; init; }
    public required double[] WRe { get; init; }
    public required double[] WIm { get; init; }

    /// <summary>Output length (complex points).</summary>
    public required int OutLength { get; init; }

    /// <summary>Taps for <paramref name="filter"/> (length M, the input's length) periodised to outLength points,
    /// scaled by <paramref name="scale"/>.</summary>
    public static SpectrumFold Build(double[] filter, int outLength, double scale)
    {
        var m = filter.Length;
        double peak = 0;
        foreach (var v in filter) peak = Math.Max(peak, Math.Abs(v));
        var threshold = 1e-15 * peak;
        var bins = new List<int>();
        var dst = new List<int>();
        var wre = new List<double>();
        var wim = new List<double>();
        for (var s = 0; s < m; s++)
        {
            if (Math.Abs(filter[s]) <= threshold) continue;
            var w = filter[s] * scale;
            var upper = 2 * s > m;
            bins.Add(upper ? m - s : s);
            dst.Add(s % outLength);
            wre.Add(w);
            // Input bin s = conj(bin m - s) above m/2; the stored product is conjugated (forward FFT as inverse).
            wim.Add(upper ? w : -w);
        }
        return new SpectrumFold { Bin = bins.ToArray(), Dst = dst.ToArray(), WRe = wre.ToArray(), WIm = wim.ToArray(), OutLength = outLength };
    }

    /// <summary>Clears 2 * OutLength vectors of <paramref name="output"/> and accumulates the taps from the half
    /// spectrum <paramref name="input"/> (bins interleaved re, im).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Apply(ReadOnlySpan<V> input, Span<V> output)
    {
        output[..(2 * OutLength)].Clear();
        ref var src = ref Unsafe.AsRef(in input[0]);
        ref var dst = ref output[0];
        var bin = Bin;
        var to = Dst;
        var wre = WRe;
        var wim = WIm;
        for (var t = 0; t < bin.Length; t++)
        {
            var b = 2 * bin[t];
            var d = 2 * to[t];
            V re = Unsafe.Add(ref src, b), im = Unsafe.Add(ref src, b + 1);
            Unsafe.Add(ref dst, d) = Vector256.FusedMultiplyAdd(re, Vector256.Create(wre[t]), Unsafe.Add(ref dst, d));
            Unsafe.Add(ref dst, d + 1) = Vector256.FusedMultiplyAdd(im, Vector256.Create(wim[t]), Unsafe.Add(ref dst, d + 1));
        }
    }
}

/// <summary>
/// The managed engine's plan for one scattering filter bank: for every path the folds that take a half spectrum
/// through a filter to the (subsampled) next stage, and the FFT lengths. Built once per filter bank and cached.
/// </summary>
internal sealed class ScatteringPlan
{
    private static readonly ConditionalWeakTable<ScatteringFilterBank, ScatteringPlan> Plans = new();

    private ScatteringPlan(ScatteringFilterBank bank)
    {
        Bank = bank;
        var n = bank.PaddedLength;
        var log2T = bank.Log2T;
        var l = n >> log2T;
        OutLength = l;
        // Low-pass at each level: periodised from N >> level to L points (mean of 2^(log2T - level) copies), real part of
        // the inverse FFT (1/L).
        PhiFolds = new SpectrumFold[log2T + 1];
        for (var level = 0; level <= log2T; level++)
            PhiFolds[level] = SpectrumFold.Build(bank.Phi.Level(level), l, 1.0 / (1 << (log2T - level)) / l);
        var psi1 = bank.Psi1;
        First = new FirstOrder[psi1.Count];
        var pathIndex = 1 + psi1.Count;
        for (var a = 0; a < psi1.Count; a++)
        {
            var k1 = Math.Min(psi1[a].J, log2T);
            var m1 = n >> k1;
            var fold = SpectrumFold.Build(psi1[a].Fourier, m1, 1.0 / (1 << k1) / m1);
            var children = new List<SecondOrder>();
            for (var b = 0; b < bank.Psi2.Count; b++)
            {
                var j2 = bank.Psi2[b].J;
                if (j2 <= psi1[a].J) continue;
                var sub2 = Math.Min(j2, log2T);
                var k2 = Math.Max(sub2 - k1, 0);
                var m2 = m1 >> k2;
                var f2 = SpectrumFold.Build(bank.Psi2[b].Level(k1), m2, 1.0 / (1 << k2) / m2);
                children.Add(new SecondOrder(pathIndex++, f2, m2, k1 + k2));
            }
            First[a] = new FirstOrder(1 + a, fold, m1, k1, children.ToArray());
        }
        MaxBuffer = 2 * Math.Max(n, 16) + 4;
    }

    public ScatteringFilterBank Bank { get; }

    /// <summary>Length of the inverse FFT that yields the output frames (N / T).</summary>
    public int OutLength { get; }

    /// <summary>Low-pass folds per level of the input spectrum.</summary>
    public SpectrumFold[] PhiFolds { get; }

    public FirstOrder[] First { get; }

    /// <summary>Vectors each stage buffer needs.</summary>
    public int MaxBuffer { get; }

    public static ScatteringPlan For(ScatteringFilterBank bank) => Plans.GetValue(bank, static b => new ScatteringPlan(b));

    internal sealed record FirstOrder(int Path, SpectrumFold Fold, int Length, int Level, SecondOrder[] Children);

    internal sealed record SecondOrder(int Path, SpectrumFold Fold, int Length, int Level);
}

/// <summary>
/// kymatio 0.4's Scattering1D on the managed engine, in double precision (kymatio's numpy backend computes in
/// float64; float32 FFTs of the padded signal leave a noise floor near 1e-8 that dominates log(|S| + 1e-6) on quiet
/// frames): four clips at a time in the lanes of 256-bit vectors, groups of four spread over the engine's threads.
/// Per group: reflect padding, one real FFT, then for every first-order wavelet a band-limited product periodised to
/// the wavelet's subsampled length, an inverse FFT, the modulus and a real FFT; the low-pass output and every
/// second-order path are taken from that spectrum the same way. Buffers are per thread and reused.
/// </summary>
internal static class ManagedScattering
{
    private const int Width = 4;

    [ThreadStatic] private static V[]? _buffer;

    public static void Run(ParallelOptions parallel, ScatteringPlan plan, ReadOnlySpan<float> clips, Span<float> output, int batch)
    {
        var groups = (batch + Width - 1) / Width;
        if (groups == 0) return;
        unsafe
        {
            // The spans cannot enter the lambda; the tensors' arrays stay pinned for the whole call.
            fixed (float* pin = clips)
            fixed (float* pout = output)
            {
                var inPtr = (nint)pin;
                var outPtr = (nint)pout;
                int inLength = clips.Length, outLength = output.Length;
                Parallel.For(0, groups, parallel, g =>
                {
                    var src = new ReadOnlySpan<float>((float*)inPtr, inLength);
                    var dst = new Span<float>((float*)outPtr, outLength);
                    Group(plan, src, dst, g, Math.Min(Width, batch - Width * g));
                });
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Group(ScatteringPlan plan, ReadOnlySpan<float> clips, Span<float> output, int group, int rows)
    {
        var bank = plan.Bank;
        int n = bank.PaddedLength, len = bank.Length, paths = bank.Paths.Count, frames = bank.Frames;
        var size = plan.MaxBuffer;
        var sLength = 2 * plan.OutLength + 8;
        var total = 5 * size + sLength;
        if (_buffer is null || _buffer.Length < total) _buffer = new V[total];
        var all = _buffer.AsSpan();
        var u0 = all.Slice(0, size);
        var work = all.Slice(size, size);
        var u1 = all.Slice(2 * size, size);
        var u2 = all.Slice(3 * size, size);
        var scratch = all.Slice(4 * size, size);
        var s = all.Slice(5 * size, sLength);

        // Reflect padding (numpy 'reflect': the edge sample is not repeated).
        var left = bank.PadLeft;
        var first0 = Width * group * len;
        Span<double> lane = stackalloc double[Width];
        for (var i = 0; i < len; i++)
        {
            for (var r = 0; r < Width; r++) lane[r] = r < rows ? clips[first0 + r * len + i] : 0.0;
            u0[left + i] = Vector256.Create((ReadOnlySpan<double>)lane);
        }
        for (var i = 0; i < left; i++) u0[i] = u0[2 * left - i];
        for (var m = 0; m < bank.PadRight; m++) u0[left + len + m] = u0[left + len - 2 - m];
        LaneFft.RealForward(u0, n, scratch);

        var outBase = Width * group * paths * frames;
        Lowpass(plan, plan.PhiFolds[0], u0, s, scratch, output, outBase, 0, rows);
        foreach (var first in plan.First)
        {
            first.Fold.Apply(u0, work);
            Modulus(work, u1, first.Length, scratch);
            LaneFft.RealForward(u1, first.Length, scratch);
            Lowpass(plan, plan.PhiFolds[first.Level], u1, s, scratch, output, outBase, first.Path, rows);
            foreach (var second in first.Children)
            {
                second.Fold.Apply(u1, work);
                Modulus(work, u2, second.Length, scratch);
                LaneFft.RealForward(u2, second.Length, scratch);
                Lowpass(plan, plan.PhiFolds[second.Level], u2, s, scratch, output, outBase, second.Path, rows);
            }
        }
    }

    /// <summary>dst[i] = |FFT(work)[i]| for i &lt; m (work holds the conjugated, pre-scaled spectrum, so this is the
    /// modulus of the inverse FFT).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Modulus(Span<V> work, Span<V> dst, int m, Span<V> scratch)
    {
        LaneFft.Forward(work, m, scratch);
        ref var w = ref work[0];
        ref var d = ref dst[0];
        for (var i = 0; i < m; i++)
        {
            V re = Unsafe.Add(ref w, 2 * i), im = Unsafe.Add(ref w, 2 * i + 1);
            Unsafe.Add(ref d, i) = Vector256.Sqrt(Vector256.FusedMultiplyAdd(re, re, im * im));
        }
    }

    /// <summary>Low-pass filters and subsamples a half spectrum to the output frames of one path and stores them.</summary>
    private static void Lowpass(ScatteringPlan plan, SpectrumFold fold, ReadOnlySpan<V> spectrum, Span<V> s, Span<V> scratch,
        Span<float> output, int outBase, int path, int rows)
    {
        fold.Apply(spectrum, s);
        LaneFft.Forward(s, plan.OutLength, scratch);
        var bank = plan.Bank;
        int frames = bank.Frames, paths = bank.Paths.Count, start = bank.FrameStart;
        for (var f = 0; f < frames; f++)
        {
            var v = s[2 * (start + f)];
            for (var r = 0; r < rows; r++)
                output[outBase + (r * paths + path) * frames + f] = (float)v[r];
        }
    }
}

/// <summary>
/// Power-of-two FFTs in double precision on four signals at once (the lanes of <see cref="Vector256{T}"/> of
/// double): Stockham autosort radix-8 stages, then radix 4 and 2 for what remains, with twiddles computed once per
/// length, and real transforms as half-length complex transforms of packed even/odd samples.
/// </summary>
internal static class LaneFft
{
    private static readonly ConcurrentDictionary<int, double[]> Twiddles = new();

    /// <summary>exp(-2 pi i k / n) for k &lt; n, interleaved (cos, -sin).</summary>
    private static double[] TwiddlesFor(int n) => Twiddles.GetOrAdd(n, static m =>
    {
        var t = new double[2 * m];
        for (var k = 0; k < m; k++)
        {
            var (sin, cos) = Filters.SinCos2Pi(k, m);
            t[2 * k] = cos;
            t[2 * k + 1] = -sin;
        }
        return t;
    });

    /// <summary>In-place forward DFT of n complex points (2n vectors, interleaved re, im); scratch holds 2n vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(Span<V> data, int n, Span<V> scratch)
    {
        if (n <= 1) return;
        if ((n & (n - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(n), $"FFT length must be a power of two, was {n}.");
        var tw = TwiddlesFor(n);
        ref var x = ref data[0];
        ref var y = ref scratch[0];
        var inData = true;
        int len = n, stride = 1;
        while (len > 1)
        {
            if (len % 8 == 0)
            {
                // Radix 8 first: fewer passes over buffers that outgrow the L2 cache at the padded lengths.
                Radix8(ref x, ref y, len, stride, tw, n);
                len /= 8;
                stride *= 8;
            }
            else if (len % 4 == 0)
            {
                Radix4(ref x, ref y, len, stride, tw, n);
                len /= 4;
                stride *= 4;
            }
            else
            {
                Radix2(ref x, ref y, len, stride, tw, n);
                len /= 2;
                stride *= 2;
            }
            ref var t = ref x;
            x = ref y;
            y = ref t;
            inData = !inData;
        }
        if (!inData) scratch[..(2 * n)].CopyTo(data);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Radix2(ref V x, ref V y, int len, int s, double[] tw, int n)
    {
        var m = len / 2;
        var step = n / len;
        for (var p = 0; p < m; p++)
        {
            V wr = Vector256.Create(tw[2 * p * step]), wi = Vector256.Create(tw[2 * p * step + 1]);
            for (var q = 0; q < s; q++)
            {
                int ia = 2 * (q + s * p), ib = 2 * (q + s * (p + m));
                V ar = Unsafe.Add(ref x, ia), ai = Unsafe.Add(ref x, ia + 1);
                V br = Unsafe.Add(ref x, ib), bi = Unsafe.Add(ref x, ib + 1);
                int o0 = 2 * (q + s * 2 * p), o1 = 2 * (q + s * (2 * p + 1));
                Unsafe.Add(ref y, o0) = ar + br;
                Unsafe.Add(ref y, o0 + 1) = ai + bi;
                V dr = ar - br, di = ai - bi;
                Unsafe.Add(ref y, o1) = dr * wr - di * wi;
                Unsafe.Add(ref y, o1 + 1) = dr * wi + di * wr;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Radix4(ref V x, ref V y, int len, int s, double[] tw, int n)
    {
        var m = len / 4;
        var step = n / len;
        for (var p = 0; p < m; p++)
        {
            int k1 = p * step, k2 = 2 * p * step, k3 = 3 * p * step;
            V w1r = Vector256.Create(tw[2 * k1]), w1i = Vector256.Create(tw[2 * k1 + 1]);
            V w2r = Vector256.Create(tw[2 * k2]), w2i = Vector256.Create(tw[2 * k2 + 1]);
            V w3r = Vector256.Create(tw[2 * k3]), w3i = Vector256.Create(tw[2 * k3 + 1]);
            for (var q = 0; q < s; q++)
            {
                int ia = 2 * (q + s * p), ib = 2 * (q + s * (p + m)), ic = 2 * (q + s * (p + 2 * m)), id = 2 * (q + s * (p + 3 * m));
                V ar = Unsafe.Add(ref x, ia), ai = Unsafe.Add(ref x, ia + 1);
                V br = Unsafe.Add(ref x, ib), bi = Unsafe.Add(ref x, ib + 1);
                V cr = Unsafe.Add(ref x, ic), ci = Unsafe.Add(ref x, ic + 1);
                V dr = Unsafe.Add(ref x, id), di = Unsafe.Add(ref x, id + 1);
                V apcR = ar + cr, apcI = ai + ci, amcR = ar - cr, amcI = ai - ci;
                V bpdR = br + dr, bpdI = bi + di;
                // j (b - d)
                V jbmdR = di - bi, jbmdI = br - dr;
                int o = 2 * (q + s * 4 * p), so = 2 * s;
                Unsafe.Add(ref y, o) = apcR + bpdR;
                Unsafe.Add(ref y, o + 1) = apcI + bpdI;
                V t1r = amcR - jbmdR, t1i = amcI - jbmdI;
                Unsafe.Add(ref y, o + so) = t1r * w1r - t1i * w1i;
                Unsafe.Add(ref y, o + so + 1) = t1r * w1i + t1i * w1r;
                V t2r = apcR - bpdR, t2i = apcI - bpdI;
                Unsafe.Add(ref y, o + 2 * so) = t2r * w2r - t2i * w2i;
                Unsafe.Add(ref y, o + 2 * so + 1) = t2r * w2i + t2i * w2r;
                V t3r = amcR + jbmdR, t3i = amcI + jbmdI;
                Unsafe.Add(ref y, o + 3 * so) = t3r * w3r - t3i * w3i;
                Unsafe.Add(ref y, o + 3 * so + 1) = t3r * w3i + t3i * w3r;
            }
        }
    }

    /// <summary>One Stockham radix-8 pass: y[q + s (8p + k)] = w_len^(pk) sum_j x[q + s (p + j len/8)] w_8^(jk), as a
    /// radix-2 split into two 4-point DFTs (even outputs from the sums, odd ones from the differences turned by w_8^j).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Radix8(ref V x, ref V y, int len, int s, double[] tw, int n)
    {
        var m = len / 8;
        var step = n / len;
        var r = Vector256.Create(Math.Sqrt(0.5));
        for (var p = 0; p < m; p++)
        {
            var k = p * step;
            V w1r = Vector256.Create(tw[2 * k]), w1i = Vector256.Create(tw[2 * k + 1]);
            V w2r = Vector256.Create(tw[4 * k]), w2i = Vector256.Create(tw[4 * k + 1]);
            V w3r = Vector256.Create(tw[6 * k]), w3i = Vector256.Create(tw[6 * k + 1]);
            V w4r = Vector256.Create(tw[8 * k]), w4i = Vector256.Create(tw[8 * k + 1]);
            V w5r = Vector256.Create(tw[10 * k]), w5i = Vector256.Create(tw[10 * k + 1]);
            V w6r = Vector256.Create(tw[12 * k]), w6i = Vector256.Create(tw[12 * k + 1]);
            V w7r = Vector256.Create(tw[14 * k]), w7i = Vector256.Create(tw[14 * k + 1]);
            for (var q = 0; q < s; q++)
            {
                int i0 = 2 * (q + s * p), sm = 2 * s * m;
                V a0r = Unsafe.Add(ref x, i0), a0i = Unsafe.Add(ref x, i0 + 1);
                V a1r = Unsafe.Add(ref x, i0 + sm), a1i = Unsafe.Add(ref x, i0 + sm + 1);
                V a2r = Unsafe.Add(ref x, i0 + 2 * sm), a2i = Unsafe.Add(ref x, i0 + 2 * sm + 1);
                V a3r = Unsafe.Add(ref x, i0 + 3 * sm), a3i = Unsafe.Add(ref x, i0 + 3 * sm + 1);
                V a4r = Unsafe.Add(ref x, i0 + 4 * sm), a4i = Unsafe.Add(ref x, i0 + 4 * sm + 1);
                V a5r = Unsafe.Add(ref x, i0 + 5 * sm), a5i = Unsafe.Add(ref x, i0 + 5 * sm + 1);
                V a6r = Unsafe.Add(ref x, i0 + 6 * sm), a6i = Unsafe.Add(ref x, i0 + 6 * sm + 1);
                V a7r = Unsafe.Add(ref x, i0 + 7 * sm), a7i = Unsafe.Add(ref x, i0 + 7 * sm + 1);
                // Sums b_j = a_j + a_(j+4) and differences c_j = (a_j - a_(j+4)) w_8^j.
                V b0r = a0r + a4r, b0i = a0i + a4i, b1r = a1r + a5r, b1i = a1i + a5i;
                V b2r = a2r + a6r, b2i = a2i + a6i, b3r = a3r + a7r, b3i = a3i + a7i;
                V c0r = a0r - a4r, c0i = a0i - a4i;
                V d1r = a1r - a5r, d1i = a1i - a5i;
                V c1r = (d1r + d1i) * r, c1i = (d1i - d1r) * r;
                V c2r = a2i - a6i, c2i = a6r - a2r;
                V d3r = a3r - a7r, d3i = a3i - a7i;
                V c3r = (d3i - d3r) * r, c3i = -(d3r + d3i) * r;
                int o = 2 * (q + s * 8 * p), so = 2 * s;
                Dft4(b0r, b0i, b1r, b1i, b2r, b2i, b3r, b3i, out var e0r, out var e0i, out var e1r, out var e1i,
                    out var e2r, out var e2i, out var e3r, out var e3i);
                Dft4(c0r, c0i, c1r, c1i, c2r, c2i, c3r, c3i, out var f0r, out var f0i, out var f1r, out var f1i,
                    out var f2r, out var f2i, out var f3r, out var f3i);
                Unsafe.Add(ref y, o) = e0r;
                Unsafe.Add(ref y, o + 1) = e0i;
                Turn(ref Unsafe.Add(ref y, o + so), f0r, f0i, w1r, w1i);
                Turn(ref Unsafe.Add(ref y, o + 2 * so), e1r, e1i, w2r, w2i);
                Turn(ref Unsafe.Add(ref y, o + 3 * so), f1r, f1i, w3r, w3i);
                Turn(ref Unsafe.Add(ref y, o + 4 * so), e2r, e2i, w4r, w4i);
                Turn(ref Unsafe.Add(ref y, o + 5 * so), f2r, f2i, w5r, w5i);
                Turn(ref Unsafe.Add(ref y, o + 6 * so), e3r, e3i, w6r, w6i);
                Turn(ref Unsafe.Add(ref y, o + 7 * so), f3r, f3i, w7r, w7i);
            }
        }
    }

    /// <summary>4-point DFT (w_4 = -i) of (u0, u1, u2, u3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dft4(V u0r, V u0i, V u1r, V u1i, V u2r, V u2i, V u3r, V u3i,
        out V y0r, out V y0i, out V y1r, out V y1i, out V y2r, out V y2i, out V y3r, out V y3i)
    {
        V apcR = u0r + u2r, apcI = u0i + u2i, amcR = u0r - u2r, amcI = u0i - u2i;
        V bpdR = u1r + u3r, bpdI = u1i + u3i;
        // i (u1 - u3)
        V jR = u3i - u1i, jI = u1r - u3r;
        y0r = apcR + bpdR;
        y0i = apcI + bpdI;
        y1r = amcR - jR;
        y1i = amcI - jI;
        y2r = apcR - bpdR;
        y2i = apcI - bpdI;
        y3r = amcR + jR;
        y3i = amcI + jI;
    }

    /// <summary>Stores (re, im) times (wr, wi) at dst[0], dst[1].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Turn(ref V dst, V re, V im, V wr, V wi)
    {
        dst = re * wr - im * wi;
        Unsafe.Add(ref dst, 1) = re * wi + im * wr;
    }

    /// <summary>Real FFT in place: buffer[0..m) holds the samples; on return buffer[2k], buffer[2k+1] hold bin k for
    /// k &lt;= m/2 (m + 2 vectors). scratch holds m vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RealForward(Span<V> buffer, int m, Span<V> scratch)
    {
        if (m == 1)
        {
            buffer[1] = V.Zero;
            return;
        }
        var h = m / 2;
        // Samples x[2k], x[2k+1] are already the (re, im) pairs of z[k]: a half-length complex transform.
        Forward(buffer, h, scratch);
        var post = TwiddlesFor(m);
        var half = Vector256.Create(0.5);
        V z0r = buffer[0], z0i = buffer[1];
        buffer[0] = z0r + z0i;
        buffer[1] = V.Zero;
        buffer[2 * h] = z0r - z0i;
        buffer[2 * h + 1] = V.Zero;
        ref var b = ref buffer[0];
        for (var k = 1; 2 * k <= h; k++)
        {
            var j = h - k;
            V zkr = Unsafe.Add(ref b, 2 * k), zki = Unsafe.Add(ref b, 2 * k + 1);
            V zjr = Unsafe.Add(ref b, 2 * j), zji = Unsafe.Add(ref b, 2 * j + 1);
            // E = (Zk + conj Zj) / 2, O = -i (Zk - conj Zj) / 2, X[k] = E + W^k O.
            V er = (zkr + zjr) * half, ei = (zki - zji) * half;
            V or = (zki + zji) * half, oi = (zjr - zkr) * half;
            V wr = Vector256.Create(post[2 * k]), wi = Vector256.Create(post[2 * k + 1]);
            V wor = or * wr - oi * wi;
            V woi = or * wi + oi * wr;
            Unsafe.Add(ref b, 2 * k) = er + wor;
            Unsafe.Add(ref b, 2 * k + 1) = ei + woi;
            if (j != k)
            {
                Unsafe.Add(ref b, 2 * j) = er - wor;
                Unsafe.Add(ref b, 2 * j + 1) = woi - ei;
            }
        }
    }
}
