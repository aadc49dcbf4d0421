using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using V = System.Runtime.Intrinsics.Vector256<double>;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// Products of a half spectrum with a filter, periodised to a shorter length: out[Dst[t]] += in[Bin[t]] * (WRe[t], WIm[t])
/// with the input read as a Hermitian spectrum in <see cref="LaneFft.RealForward"/>'s order (Bin holds positions) (bin b, conjugated where the source bin is above M/2: the sign of
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
            bins.Add(LaneFft.RealBinPosition(m, upper ? m - s : s));
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
                Parallelism.SelfScheduled(parallel, groups, g =>
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
        var total = 4 * size + sLength;
        if (_buffer is null || _buffer.Length < total) _buffer = new V[total];
        var all = _buffer.AsSpan();
        var u0 = all.Slice(0, size);
        var work = all.Slice(size, size);
        var u1 = all.Slice(2 * size, size);
        var u2 = all.Slice(3 * size, size);
        var s = all.Slice(4 * size, sLength);

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
        LaneFft.RealForward(u0, n);

        var outBase = Width * group * paths * frames;
        Lowpass(plan, plan.PhiFolds[0], u0, s, output, outBase, 0, rows);
        foreach (var first in plan.First)
        {
            first.Fold.Apply(u0, work);
            Modulus(work, u1, first.Length);
            LaneFft.RealForward(u1, first.Length);
            Lowpass(plan, plan.PhiFolds[first.Level], u1, s, output, outBase, first.Path, rows);
            foreach (var second in first.Children)
            {
                second.Fold.Apply(u1, work);
                Modulus(work, u2, second.Length);
                LaneFft.RealForward(u2, second.Length);
                Lowpass(plan, plan.PhiFolds[second.Level], u2, s, output, outBase, second.Path, rows);
            }
        }
    }

    /// <summary>dst[i] = |FFT(work)[i]| for i &lt; m (work holds the conjugated, pre-scaled spectrum, so this is the
    /// modulus of the inverse FFT).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Modulus(Span<V> work, Span<V> dst, int m)
    {
        LaneFft.Forward(work, m);
        var rev = LaneFft.Reversal(m);
        ref var w = ref work[0];
        ref var d = ref dst[0];
        for (var i = 0; i < m; i++)
        {
            var p = 2 * rev[i];
            V re = Unsafe.Add(ref w, p), im = Unsafe.Add(ref w, p + 1);
            Unsafe.Add(ref d, i) = Vector256.Sqrt(Vector256.FusedMultiplyAdd(re, re, im * im));
        }
    }

    /// <summary>Low-pass filters and subsamples a half spectrum to the output frames of one path and stores them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Lowpass(ScatteringPlan plan, SpectrumFold fold, ReadOnlySpan<V> spectrum, Span<V> s,
        Span<float> output, int outBase, int path, int rows)
    {
        fold.Apply(spectrum, s);
        LaneFft.Forward(s, plan.OutLength);
        var rev = LaneFft.Reversal(plan.OutLength);
        var bank = plan.Bank;
        int frames = bank.Frames, paths = bank.Paths.Count, start = bank.FrameStart;
        for (var f = 0; f < frames; f++)
        {
            var v = s[2 * rev[start + f]];
            for (var r = 0; r < rows; r++)
                output[outBase + (r * paths + path) * frames + f] = (float)v[r];
        }
    }
}

/// <summary>
/// Power-of-two FFTs in double precision on four signals at once (the lanes of <see cref="Vector256{T}"/> of
/// double), in place: decimation in frequency with radix-8 butterflies (radix 4 or 2 for the last levels), output in
/// bit-reversed order (bin k at position <see cref="Reversal"/>(n)[k]). Blocks above <see cref="CacheBlock"/> points
/// take one radix-8 pass and recurse into their eighths, so that the passes below run on data that stays in the
/// core's cache (the scattering's 16,384-point transforms are 1 MB of four-lane doubles). Twiddles are computed once
/// per length; real transforms are half-length complex transforms of packed even/odd samples.
/// </summary>
internal static class LaneFft
{
    /// <summary>Points of a block whose remaining passes run breadth-first (64 KB per 1,024 four-lane points).</summary>
    private const int CacheBlock = 1024;

    private static readonly ConcurrentDictionary<int, double[]> Twiddles = new();
    private static readonly ConcurrentDictionary<int, int[]> Reversals = new();

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

    /// <summary>The bit reversal of log2(n) bits: where <see cref="Forward"/> leaves bin k. n a power of two.</summary>
    public static int[] Reversal(int n) => Reversals.GetOrAdd(n, static m =>
    {
        var bits = 0;
        while ((1 << bits) < m) bits++;
        var r = new int[m];
        for (var k = 0; k < m; k++)
        {
            var v = 0;
            for (var b = 0; b < bits; b++)
                if (((k >> b) & 1) != 0) v |= 1 << (bits - 1 - b);
            r[k] = v;
        }
        return r;
    });

    /// <summary>In-place forward DFT of n complex points (2n vectors, interleaved re, im), bin k left at position
    /// <see cref="Reversal"/>(n)[k].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(Span<V> data, int n)
    {
        if (n <= 1) return;
        if ((n & (n - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(n), $"FFT length must be a power of two, was {n}.");
        if (data.Length < 2 * n) throw new ArgumentException($"data: {2 * n} vectors needed for {n} points, had {data.Length}.", nameof(data));
        Block(ref data[0], n, n, TwiddlesFor(n));
    }

    /// <summary>The DFT of the len points at x (a sub-transform of an n-point one), in place and bit-reversed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block(ref V x, int len, int n, double[] tw)
    {
        if (len > CacheBlock)
        {
            var radix = len % 8 == 0 ? 8 : len % 4 == 0 ? 4 : 2;
            if (radix == 8) Radix8(ref x, len, n, tw);
            else if (radix == 4) Radix4(ref x, len, n, tw);
            else Radix2(ref x, len, n, tw);
            var part = len / radix;
            for (var k = 0; k < radix; k++) Block(ref Unsafe.Add(ref x, 2 * k * part), part, n, tw);
            return;
        }
        for (var l = len; l > 1;)
        {
            if (l % 8 == 0)
            {
                for (var b = 0; b < len; b += l) Radix8(ref Unsafe.Add(ref x, 2 * b), l, n, tw);
                l /= 8;
            }
            else if (l % 4 == 0)
            {
                for (var b = 0; b < len; b += l) Radix4(ref Unsafe.Add(ref x, 2 * b), l, n, tw);
                l /= 4;
            }
            else
            {
                for (var b = 0; b < len; b += l) Radix2(ref Unsafe.Add(ref x, 2 * b), l, n, tw);
                l /= 2;
            }
        }
    }

    /// <summary>One radix-2 decimation-in-frequency level on a block of len points: the even bins' sub-transform
    /// input in the first half, the odd bins' (turned by w_len^i) in the second.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Radix2(ref V x, int len, int n, double[] tw)
    {
        var m = len / 2;
        var step = n / len;
        for (var i = 0; i < m; i++)
        {
            ref var a = ref Unsafe.Add(ref x, 2 * i);
            ref var b = ref Unsafe.Add(ref a, 2 * m);
            V ar = a, ai = Unsafe.Add(ref a, 1), br = b, bi = Unsafe.Add(ref b, 1);
            a = ar + br;
            Unsafe.Add(ref a, 1) = ai + bi;
            Turn(ref b, ar - br, ai - bi, tw, i * step);
        }
    }

    /// <summary>One radix-4 decimation-in-frequency level on a block of len points: the sub-transform inputs of bins
    /// 4k, 4k + 2, 4k + 1 and 4k + 3 (turned by w_len^(i r)) in its quarters, in that order (two radix-2 levels).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Radix4(ref V x, int len, int n, double[] tw)
    {
        var m = len / 4;
        var step = n / len;
        for (var i = 0; i < m; i++)
        {
            var k = i * step;
            int sm = 2 * m;
            ref var a = ref Unsafe.Add(ref x, 2 * i);
            Dft4(a, Unsafe.Add(ref a, 1), Unsafe.Add(ref a, sm), Unsafe.Add(ref a, sm + 1),
                Unsafe.Add(ref a, 2 * sm), Unsafe.Add(ref a, 2 * sm + 1), Unsafe.Add(ref a, 3 * sm), Unsafe.Add(ref a, 3 * sm + 1),
                out var y0r, out var y0i, out var y1r, out var y1i, out var y2r, out var y2i, out var y3r, out var y3i);
            a = y0r;
            Unsafe.Add(ref a, 1) = y0i;
            if (len == 4)
            {
                // A 4-point block (the last level of most lengths): its only twiddles are 1.
                Put(ref Unsafe.Add(ref a, sm), y2r, y2i);
                Put(ref Unsafe.Add(ref a, 2 * sm), y1r, y1i);
                Put(ref Unsafe.Add(ref a, 3 * sm), y3r, y3i);
                continue;
            }
            Turn(ref Unsafe.Add(ref a, sm), y2r, y2i, tw, 2 * k);
            Turn(ref Unsafe.Add(ref a, 2 * sm), y1r, y1i, tw, k);
            Turn(ref Unsafe.Add(ref a, 3 * sm), y3r, y3i, tw, 3 * k);
        }
    }

    /// <summary>One radix-8 decimation-in-frequency level on a block of len points: the sub-transform input of bin
    /// 8k + r (turned by w_len^(i r)) in the eighth rev3(r) of the block (three radix-2 levels), computed as a radix-2
    /// split into two 4-point DFTs: even r from the sums a_j + a_(j+4), odd r from the differences turned by w_8^j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Radix8(ref V x, int len, int n, double[] tw)
    {
        var m = len / 8;
        var step = n / len;
        var r = Vector256.Create(Math.Sqrt(0.5));
        for (var i = 0; i < m; i++)
        {
            var k = i * step;
            int i0 = 2 * i, sm = 2 * m;
            ref var a = ref Unsafe.Add(ref x, i0);
            V a0r = a, a0i = Unsafe.Add(ref a, 1);
            V a1r = Unsafe.Add(ref a, sm), a1i = Unsafe.Add(ref a, sm + 1);
            V a2r = Unsafe.Add(ref a, 2 * sm), a2i = Unsafe.Add(ref a, 2 * sm + 1);
            V a3r = Unsafe.Add(ref a, 3 * sm), a3i = Unsafe.Add(ref a, 3 * sm + 1);
            V a4r = Unsafe.Add(ref a, 4 * sm), a4i = Unsafe.Add(ref a, 4 * sm + 1);
            V a5r = Unsafe.Add(ref a, 5 * sm), a5i = Unsafe.Add(ref a, 5 * sm + 1);
            V a6r = Unsafe.Add(ref a, 6 * sm), a6i = Unsafe.Add(ref a, 6 * sm + 1);
            V a7r = Unsafe.Add(ref a, 7 * sm), a7i = Unsafe.Add(ref a, 7 * sm + 1);
            V b0r = a0r + a4r, b0i = a0i + a4i, b1r = a1r + a5r, b1i = a1i + a5i;
            V b2r = a2r + a6r, b2i = a2i + a6i, b3r = a3r + a7r, b3i = a3i + a7i;
            V c0r = a0r - a4r, c0i = a0i - a4i;
            V d1r = a1r - a5r, d1i = a1i - a5i;
            V c1r = (d1r + d1i) * r, c1i = (d1i - d1r) * r;
            V c2r = a2i - a6i, c2i = a6r - a2r;
            V d3r = a3r - a7r, d3i = a3i - a7i;
            V c3r = (d3i - d3r) * r, c3i = -(d3r + d3i) * r;
            // Bins 8k + r: even r = 2u from the DFT4 of b (u = 0..3), odd r = 2u + 1 from the DFT4 of c.
            Dft4(b0r, b0i, b1r, b1i, b2r, b2i, b3r, b3i, out var e0r, out var e0i, out var e1r, out var e1i,
                out var e2r, out var e2i, out var e3r, out var e3i);
            Dft4(c0r, c0i, c1r, c1i, c2r, c2i, c3r, c3i, out var f0r, out var f0i, out var f1r, out var f1i,
                out var f2r, out var f2i, out var f3r, out var f3i);
            // Eighth s holds bin r = rev3(s): s 0..7 <- r 0, 4, 2, 6, 1, 5, 3, 7.
            a = e0r;
            Unsafe.Add(ref a, 1) = e0i;
            Turn(ref Unsafe.Add(ref a, sm), e2r, e2i, tw, 4 * k);
            Turn(ref Unsafe.Add(ref a, 2 * sm), e1r, e1i, tw, 2 * k);
            Turn(ref Unsafe.Add(ref a, 3 * sm), e3r, e3i, tw, 6 * k);
            Turn(ref Unsafe.Add(ref a, 4 * sm), f0r, f0i, tw, k);
            Turn(ref Unsafe.Add(ref a, 5 * sm), f2r, f2i, tw, 5 * k);
            Turn(ref Unsafe.Add(ref a, 6 * sm), f1r, f1i, tw, 3 * k);
            Turn(ref Unsafe.Add(ref a, 7 * sm), f3r, f3i, tw, 7 * k);
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

    /// <summary>Stores (re, im) at dst[0], dst[1].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(ref V dst, V re, V im)
    {
        dst = re;
        Unsafe.Add(ref dst, 1) = im;
    }

    /// <summary>Stores (re, im) times the twiddle tw[t] at dst[0], dst[1].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Turn(ref V dst, V re, V im, double[] tw, int t)
    {
        V wr = Vector256.Create(tw[2 * t]), wi = Vector256.Create(tw[2 * t + 1]);
        dst = re * wr - im * wi;
        Unsafe.Add(ref dst, 1) = re * wi + im * wr;
    }

    /// <summary>Where <see cref="RealForward"/> of m samples leaves bin b (b &lt;= m/2) of the half spectrum.</summary>
    public static int RealBinPosition(int m, int b) => b >= m / 2 ? b : Reversal(m / 2)[b];

    /// <summary>Real FFT in place: buffer[0..m) holds the samples; on return buffer[2p], buffer[2p+1] hold bin b at
    /// position p = <see cref="RealBinPosition"/>(m, b) for b &lt;= m/2 (the bins below m/2 bit-reversed over m/2
    /// points, bin m/2 at m/2; m + 2 vectors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RealForward(Span<V> buffer, int m)
    {
        if (m == 1)
        {
            buffer[1] = V.Zero;
            return;
        }
        var h = m / 2;
        // Samples x[2k], x[2k+1] are already the (re, im) pairs of z[k]: a half-length complex transform.
        Forward(buffer, h);
        var post = TwiddlesFor(m);
        var rev = Reversal(h);
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
            int pk = 2 * rev[k], pj = 2 * rev[j];
            V zkr = Unsafe.Add(ref b, pk), zki = Unsafe.Add(ref b, pk + 1);
            V zjr = Unsafe.Add(ref b, pj), zji = Unsafe.Add(ref b, pj + 1);
            // E = (Zk + conj Zj) / 2, O = -i (Zk - conj Zj) / 2, X[k] = E + W^k O.
            V er = (zkr + zjr) * half, ei = (zki - zji) * half;
            V or = (zki + zji) * half, oi = (zjr - zkr) * half;
            V wr = Vector256.Create(post[2 * k]), wi = Vector256.Create(post[2 * k + 1]);
            V wor = or * wr - oi * wi;
            V woi = or * wi + oi * wr;
            Unsafe.Add(ref b, pk) = er + wor;
            Unsafe.Add(ref b, pk + 1) = ei + woi;
            if (j != k)
            {
                Unsafe.Add(ref b, pj) = er - wor;
                Unsafe.Add(ref b, pj + 1) = woi - ei;
            }
        }
    }
}
