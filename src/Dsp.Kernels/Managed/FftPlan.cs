using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using V = System.Runtime.Intrinsics.Vector256<float>;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// A forward complex FFT of length N applied to eight transforms at once: every element is a
/// <see cref="Vector256{T}"/> whose lanes belong to eight independent signals (structure of arrays), so each
/// butterfly is fully vectorised whatever N is. Buffers hold N complex elements interleaved as
/// [re0, im0, re1, im1, ...] (2N vectors). Power-of-two lengths use Stockham radix-4 (plus one radix-2) stages,
/// lengths with factors 2, 3, 5 mixed-radix Stockham stages, and every other length Bluestein's chirp-z
/// algorithm over a power-of-two plan. Twiddles are computed in double precision.
/// </summary>
internal sealed class ComplexFftPlan
{
    private static readonly ConcurrentDictionary<int, ComplexFftPlan> Plans = new();

    private readonly int[] _radices = [];
    private readonly float[][] _twiddles = [];

    // Bluestein: chirp exp(-pi i k^2 / N) for k < N and the transformed conjugate chirp (scaled 1/M).
    private readonly ComplexFftPlan? _inner;
    private readonly float[]? _chirp;
    private readonly float[]? _filter;

    private ComplexFftPlan(int n)
    {
        N = n;
        var factors = Factor(n);
        if (factors is null)
        {
            var m = 1;
            while (m < 2 * n - 1) m <<= 1;
            _inner = Get(m);
            _chirp = new float[2 * n];
            var chirp = new double[2 * n];
            for (var k = 0; k < n; k++)
            {
                var (s, c) = Filters.SinCos2Pi((long)k * k % (2L * n), 2L * n);
                chirp[2 * k] = c;
                chirp[2 * k + 1] = -s;
                _chirp[2 * k] = (float)c;
                _chirp[2 * k + 1] = (float)-s;
            }
            var b = new double[2 * m];
            for (var k = 0; k < n; k++)
            {
                b[2 * k] = chirp[2 * k];
                b[2 * k + 1] = -chirp[2 * k + 1];
                if (k > 0)
                {
                    b[2 * (m - k)] = chirp[2 * k];
                    b[2 * (m - k) + 1] = -chirp[2 * k + 1];
                }
            }
            DoubleFft(b, m);
            _filter = new float[2 * m];
            for (var i = 0; i < 2 * m; i++) _filter[i] = (float)(b[i] / m);
            ScratchLength = 2 * m + _inner.ScratchLength + 2 * m;
        }
        else
        {
            _radices = factors;
            _twiddles = new float[factors.Length][];
            var len = n;
            for (var s = 0; s < factors.Length; s++)
            {
                int r = factors[s], m = len / r;
                var tw = new float[2 * m * (r - 1)];
                for (var p = 0; p < m; p++)
                    for (var k = 1; k < r; k++)
                    {
                        var (sin, cos) = Filters.SinCos2Pi((long)p * k, len);
                        tw[2 * (p * (r - 1) + k - 1)] = (float)cos;
                        tw[2 * (p * (r - 1) + k - 1) + 1] = (float)-sin;
                    }
                _twiddles[s] = tw;
                len = m;
            }
            ScratchLength = 2 * n;
        }
    }

    /// <summary>Transform length.</summary>
    public int N { get; }

    /// <summary>Vectors of scratch that <see cref="Forward"/> needs besides the data buffer.</summary>
    public int ScratchLength { get; }

    /// <summary>The cached plan for length <paramref name="n"/> (1..32768).</summary>
    public static ComplexFftPlan Get(int n)
    {
        if (n < 1 || n > 32768) throw new ArgumentOutOfRangeException(nameof(n), $"FFT length must be in 1..32768, was {n}.");
        return Plans.GetOrAdd(n, static k => new ComplexFftPlan(k));
    }

    /// <summary>Radices (8 and 4 first, then 2, 3, 5) whose product is n, or null when n has another prime factor.</summary>
    private static int[]? Factor(int n)
    {
        var list = new List<int>();
        var rest = n;
        var twos = 0;
        while (rest % 2 == 0) { twos++; rest /= 2; }
        // Powers of two: as many radix-8 stages as possible, the remainder as radix 4 (4 x 4 instead of 8 x 2).
        var eights = twos % 3 == 1 && twos >= 4 ? (twos - 4) / 3 : twos / 3;
        for (var i = 0; i < eights; i++) list.Add(8);
        twos -= 3 * eights;
        while (twos >= 2) { list.Add(4); twos -= 2; }
        if (twos == 1) list.Add(2);
        while (rest % 3 == 0) { list.Add(3); rest /= 3; }
        while (rest % 5 == 0) { list.Add(5); rest /= 5; }
        return rest == 1 ? list.ToArray() : null;
    }

    /// <summary>In-place forward DFT X[k] = sum x[j] exp(-2 pi i jk / N) of the 8 lanes of <paramref name="data"/> (2N vectors).</summary>
    public void Forward(Span<V> data, Span<V> scratch)
    {
        if (N == 1) return;
        if (_inner is not null)
        {
            Bluestein(data, scratch);
            return;
        }
        ref var x = ref data[0];
        ref var y = ref scratch[0];
        int len = N, stride = 1;
        for (var s = 0; s < _radices.Length; s++)
        {
            var tw = _twiddles[s];
            switch (_radices[s])
            {
                case 8: Radix8(ref x, ref y, len, stride, tw); break;
                case 4: Radix4(ref x, ref y, len, stride, tw); break;
                case 2: Radix2(ref x, ref y, len, stride, tw); break;
                default: RadixOdd(ref x, ref y, len, stride, _radices[s], tw); break;
            }
            len /= _radices[s];
            stride *= _radices[s];
            ref var t = ref x;
            x = ref y;
            y = ref t;
        }
        if (_radices.Length % 2 == 1) scratch[..(2 * N)].CopyTo(data);
    }

    private void Bluestein(Span<V> data, Span<V> scratch)
    {
        var m = _inner!.N;
        var a = scratch[..(2 * m)];
        var innerScratch = scratch.Slice(2 * m, _inner.ScratchLength);
        var chirp = _chirp!;
        var filter = _filter!;
        for (var k = 0; k < N; k++)
        {
            V cr = Vector256.Create(chirp[2 * k]), ci = Vector256.Create(chirp[2 * k + 1]);
            V xr = data[2 * k], xi = data[2 * k + 1];
            a[2 * k] = xr * cr - xi * ci;
            a[2 * k + 1] = xr * ci + xi * cr;
        }
        a[(2 * N)..].Clear();
        _inner.Forward(a, innerScratch);
        // Multiply by the filter spectrum and conjugate, so a second forward FFT acts as the inverse.
        for (var k = 0; k < m; k++)
        {
            V fr = Vector256.Create(filter[2 * k]), fi = Vector256.Create(filter[2 * k + 1]);
            V ar = a[2 * k], ai = a[2 * k + 1];
            a[2 * k] = ar * fr - ai * fi;
            a[2 * k + 1] = -(ar * fi + ai * fr);
        }
        _inner.Forward(a, innerScratch);
        for (var k = 0; k < N; k++)
        {
            V cr = Vector256.Create(chirp[2 * k]), ci = Vector256.Create(chirp[2 * k + 1]);
            V xr = a[2 * k], xi = -a[2 * k + 1];
            data[2 * k] = xr * cr - xi * ci;
            data[2 * k + 1] = xr * ci + xi * cr;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Mul(V ar, V ai, V wr, V wi, out V re, out V im)
    {
        re = Vector256.FusedMultiplyAdd(ar, wr, -(ai * wi));
        im = Vector256.FusedMultiplyAdd(ar, wi, ai * wr);
    }

    // Stockham DIF stage: for p < m = len/4 and q < stride, reads x[q + stride (p + j m)], writes
    // y[q + stride (4p + k)] = (DFT4 of the four inputs)[k] * w^(pk) with w = exp(-2 pi i / len).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Radix4(ref V x, ref V y, int len, int stride, float[] tw)
    {
        var m = len / 4;
        var jump = 2 * stride * m;
        for (var p = 0; p < m; p++)
        {
            var twiddled = p != 0;
            V w1r = Vector256.Create(tw[6 * p]), w1i = Vector256.Create(tw[6 * p + 1]);
            V w2r = Vector256.Create(tw[6 * p + 2]), w2i = Vector256.Create(tw[6 * p + 3]);
            V w3r = Vector256.Create(tw[6 * p + 4]), w3i = Vector256.Create(tw[6 * p + 5]);
            for (var q = 0; q < stride; q++)
            {
                var i0 = 2 * (q + stride * p);
                ref var a = ref Unsafe.Add(ref x, i0);
                V a0r = a, a0i = Unsafe.Add(ref a, 1);
                V a1r = Unsafe.Add(ref a, jump), a1i = Unsafe.Add(ref a, jump + 1);
                V a2r = Unsafe.Add(ref a, 2 * jump), a2i = Unsafe.Add(ref a, 2 * jump + 1);
                V a3r = Unsafe.Add(ref a, 3 * jump), a3i = Unsafe.Add(ref a, 3 * jump + 1);
                V t0r = a0r + a2r, t0i = a0i + a2i, t1r = a0r - a2r, t1i = a0i - a2i;
                V t2r = a1r + a3r, t2i = a1i + a3i, t3r = a1r - a3r, t3i = a1i - a3i;
                V b0r = t0r + t2r, b0i = t0i + t2i, b2r = t0r - t2r, b2i = t0i - t2i;
                V b1r = t1r + t3i, b1i = t1i - t3r, b3r = t1r - t3i, b3i = t1i + t3r;
                ref var o = ref Unsafe.Add(ref y, 2 * (q + stride * 4 * p));
                var os = 2 * stride;
                o = b0r;
                Unsafe.Add(ref o, 1) = b0i;
                if (twiddled)
                {
                    Mul(b1r, b1i, w1r, w1i, out b1r, out b1i);
                    Mul(b2r, b2i, w2r, w2i, out b2r, out b2i);
                    Mul(b3r, b3i, w3r, w3i, out b3r, out b3i);
                }
                Unsafe.Add(ref o, os) = b1r;
                Unsafe.Add(ref o, os + 1) = b1i;
                Unsafe.Add(ref o, 2 * os) = b2r;
                Unsafe.Add(ref o, 2 * os + 1) = b2i;
                Unsafe.Add(ref o, 3 * os) = b3r;
                Unsafe.Add(ref o, 3 * os + 1) = b3i;
            }
        }
    }

    // Radix-8 Stockham stage: a DFT8 as two DFT4s (even and odd inputs) joined by the eighth roots of unity.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Radix8(ref V x, ref V y, int len, int stride, float[] tw)
    {
        var m = len / 8;
        var jump = 2 * stride * m;
        var os = 2 * stride;
        var r = Vector256.Create(0.70710678118654752f);
        for (var p = 0; p < m; p++)
        {
            var twiddled = p != 0;
            ref var w = ref tw[14 * p];
            for (var q = 0; q < stride; q++)
            {
                ref var a = ref Unsafe.Add(ref x, 2 * (q + stride * p));
                // Even inputs a0, a2, a4, a6.
                V e0r = a, e0i = Unsafe.Add(ref a, 1);
                V e1r = Unsafe.Add(ref a, 2 * jump), e1i = Unsafe.Add(ref a, 2 * jump + 1);
                V e2r = Unsafe.Add(ref a, 4 * jump), e2i = Unsafe.Add(ref a, 4 * jump + 1);
                V e3r = Unsafe.Add(ref a, 6 * jump), e3i = Unsafe.Add(ref a, 6 * jump + 1);
                V t0r = e0r + e2r, t0i = e0i + e2i, t1r = e0r - e2r, t1i = e0i - e2i;
                V t2r = e1r + e3r, t2i = e1i + e3i, t3r = e1r - e3r, t3i = e1i - e3i;
                V E0r = t0r + t2r, E0i = t0i + t2i, E2r = t0r - t2r, E2i = t0i - t2i;
                V E1r = t1r + t3i, E1i = t1i - t3r, E3r = t1r - t3i, E3i = t1i + t3r;
                // Odd inputs a1, a3, a5, a7.
                V o0r = Unsafe.Add(ref a, jump), o0i = Unsafe.Add(ref a, jump + 1);
                V o1r = Unsafe.Add(ref a, 3 * jump), o1i = Unsafe.Add(ref a, 3 * jump + 1);
                V o2r = Unsafe.Add(ref a, 5 * jump), o2i = Unsafe.Add(ref a, 5 * jump + 1);
                V o3r = Unsafe.Add(ref a, 7 * jump), o3i = Unsafe.Add(ref a, 7 * jump + 1);
                t0r = o0r + o2r; t0i = o0i + o2i; t1r = o0r - o2r; t1i = o0i - o2i;
                t2r = o1r + o3r; t2i = o1i + o3i; t3r = o1r - o3r; t3i = o1i - o3i;
                V O0r = t0r + t2r, O0i = t0i + t2i, O2r = t0r - t2r, O2i = t0i - t2i;
                V O1r = t1r + t3i, O1i = t1i - t3r, O3r = t1r - t3i, O3i = t1i + t3r;
                // W8^1 O1 = (O1r + O1i, O1i - O1r) / sqrt 2; W8^2 O2 = (O2i, -O2r); W8^3 O3 = (O3i - O3r, -(O3r + O3i)) / sqrt 2.
                V u1r = (O1r + O1i) * r, u1i = (O1i - O1r) * r;
                V u2r = O2i, u2i = -O2r;
                V u3r = (O3i - O3r) * r, u3i = -(O3r + O3i) * r;
                ref var o = ref Unsafe.Add(ref y, 2 * (q + stride * 8 * p));
                o = E0r + O0r;
                Unsafe.Add(ref o, 1) = E0i + O0i;
                if (!twiddled)
                {
                    Unsafe.Add(ref o, os) = E1r + u1r; Unsafe.Add(ref o, os + 1) = E1i + u1i;
                    Unsafe.Add(ref o, 2 * os) = E2r + u2r; Unsafe.Add(ref o, 2 * os + 1) = E2i + u2i;
                    Unsafe.Add(ref o, 3 * os) = E3r + u3r; Unsafe.Add(ref o, 3 * os + 1) = E3i + u3i;
                    Unsafe.Add(ref o, 4 * os) = E0r - O0r; Unsafe.Add(ref o, 4 * os + 1) = E0i - O0i;
                    Unsafe.Add(ref o, 5 * os) = E1r - u1r; Unsafe.Add(ref o, 5 * os + 1) = E1i - u1i;
                    Unsafe.Add(ref o, 6 * os) = E2r - u2r; Unsafe.Add(ref o, 6 * os + 1) = E2i - u2i;
                    Unsafe.Add(ref o, 7 * os) = E3r - u3r; Unsafe.Add(ref o, 7 * os + 1) = E3i - u3i;
                    continue;
                }
                Twiddle(E1r + u1r, E1i + u1i, ref w, 0, ref Unsafe.Add(ref o, os));
                Twiddle(E2r + u2r, E2i + u2i, ref w, 1, ref Unsafe.Add(ref o, 2 * os));
                Twiddle(E3r + u3r, E3i + u3i, ref w, 2, ref Unsafe.Add(ref o, 3 * os));
                Twiddle(E0r - O0r, E0i - O0i, ref w, 3, ref Unsafe.Add(ref o, 4 * os));
                Twiddle(E1r - u1r, E1i - u1i, ref w, 4, ref Unsafe.Add(ref o, 5 * os));
                Twiddle(E2r - u2r, E2i - u2i, ref w, 5, ref Unsafe.Add(ref o, 6 * os));
                Twiddle(E3r - u3r, E3i - u3i, ref w, 6, ref Unsafe.Add(ref o, 7 * os));
            }
        }
    }

    /// <summary>Writes (re + i im) * w[k] to o[0], o[1], with w a table of (cos, -sin) pairs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Twiddle(V re, V im, ref float w, int k, ref V o)
    {
        V wr = Vector256.Create(Unsafe.Add(ref w, 2 * k)), wi = Vector256.Create(Unsafe.Add(ref w, 2 * k + 1));
        o = Vector256.FusedMultiplyAdd(re, wr, -(im * wi));
        Unsafe.Add(ref o, 1) = Vector256.FusedMultiplyAdd(re, wi, im * wr);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Radix2(ref V x, ref V y, int len, int stride, float[] tw)
    {
        var m = len / 2;
        var jump = 2 * stride * m;
        for (var p = 0; p < m; p++)
        {
            var twiddled = p != 0;
            V wr = Vector256.Create(tw[2 * p]), wi = Vector256.Create(tw[2 * p + 1]);
            for (var q = 0; q < stride; q++)
            {
                ref var a = ref Unsafe.Add(ref x, 2 * (q + stride * p));
                V a0r = a, a0i = Unsafe.Add(ref a, 1), a1r = Unsafe.Add(ref a, jump), a1i = Unsafe.Add(ref a, jump + 1);
                V b1r = a0r - a1r, b1i = a0i - a1i;
                if (twiddled) Mul(b1r, b1i, wr, wi, out b1r, out b1i);
                ref var o = ref Unsafe.Add(ref y, 2 * (q + stride * 2 * p));
                o = a0r + a1r;
                Unsafe.Add(ref o, 1) = a0i + a1i;
                Unsafe.Add(ref o, 2 * stride) = b1r;
                Unsafe.Add(ref o, 2 * stride + 1) = b1i;
            }
        }
    }

    // Radix 3 or 5: direct DFT of r inputs with the r-th roots of unity, then twiddles.
    private static void RadixOdd(ref V x, ref V y, int len, int stride, int r, float[] tw)
    {
        var m = len / r;
        var jump = 2 * stride * m;
        Span<V> ar = stackalloc V[5];
        Span<V> ai = stackalloc V[5];
        Span<float> rootRe = stackalloc float[5];
        Span<float> rootIm = stackalloc float[5];
        for (var j = 0; j < r; j++)
        {
            var (s, c) = Filters.SinCos2Pi(j, r);
            rootRe[j] = (float)c;
            rootIm[j] = (float)-s;
        }
        for (var p = 0; p < m; p++)
        {
            for (var q = 0; q < stride; q++)
            {
                ref var a = ref Unsafe.Add(ref x, 2 * (q + stride * p));
                for (var j = 0; j < r; j++)
                {
                    ar[j] = Unsafe.Add(ref a, j * jump);
                    ai[j] = Unsafe.Add(ref a, j * jump + 1);
                }
                ref var o = ref Unsafe.Add(ref y, 2 * (q + stride * r * p));
                for (var k = 0; k < r; k++)
                {
                    V sr = ar[0], si = ai[0];
                    for (var j = 1; j < r; j++)
                    {
                        var idx = j * k % r;
                        V cr = Vector256.Create(rootRe[idx]), ci = Vector256.Create(rootIm[idx]);
                        sr = Vector256.FusedMultiplyAdd(ar[j], cr, Vector256.FusedMultiplyAdd(-ai[j], ci, sr));
                        si = Vector256.FusedMultiplyAdd(ar[j], ci, Vector256.FusedMultiplyAdd(ai[j], cr, si));
                    }
                    if (k > 0 && p > 0)
                    {
                        var t = 2 * (p * (r - 1) + k - 1);
                        Mul(sr, si, Vector256.Create(tw[t]), Vector256.Create(tw[t + 1]), out sr, out si);
                    }
                    Unsafe.Add(ref o, 2 * stride * k) = sr;
                    Unsafe.Add(ref o, 2 * stride * k + 1) = si;
                }
            }
        }
    }

    /// <summary>In-place forward FFT in double precision of a power-of-two length (for plan building only).</summary>
    private static void DoubleFft(double[] a, int n)
    {
        for (int i = 1, j = 0; i < n; i++)
        {
            var bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j)
            {
                (a[2 * i], a[2 * j]) = (a[2 * j], a[2 * i]);
                (a[2 * i + 1], a[2 * j + 1]) = (a[2 * j + 1], a[2 * i + 1]);
            }
        }
        for (var len = 2; len <= n; len <<= 1)
        {
            var half = len / 2;
            for (var k = 0; k < half; k++)
            {
                var (s, c) = Filters.SinCos2Pi(k, len);
                double wr = c, wi = -s;
                for (var i = k; i < n; i += len)
                {
                    int u = 2 * i, v = 2 * (i + half);
                    double vr = a[v] * wr - a[v + 1] * wi, vi = a[v] * wi + a[v + 1] * wr;
                    a[v] = a[u] - vr;
                    a[v + 1] = a[u + 1] - vi;
                    a[u] += vr;
                    a[u + 1] += vi;
                }
            }
        }
    }
}

/// <summary>
/// Real FFT of length N on eight signals at once (lanes), as numpy.fft.rfft / irfft. Even N packs the
/// signal into N/2 complex samples (z[k] = x[2k] + i x[2k+1]) and untangles the half-length transform;
/// odd N runs the full complex transform. The buffer holds the N samples in order (one vector each) on
/// input and the N/2+1 bins interleaved [re, im] on output, so it needs <see cref="BufferLength"/> vectors.
/// </summary>
internal sealed class RealFftPlan
{
    private static readonly ConcurrentDictionary<int, RealFftPlan> Plans = new();

    private readonly ComplexFftPlan _complex;
    private readonly float[] _post = [];

    private RealFftPlan(int n)
    {
        N = n;
        if (n % 2 == 0)
        {
            _complex = ComplexFftPlan.Get(n / 2);
            _post = new float[n + 2];
            for (var k = 0; k <= n / 2; k++)
            {
                var (s, c) = Filters.SinCos2Pi(k, n);
                _post[2 * k] = (float)c;
                _post[2 * k + 1] = (float)-s;
            }
            BufferLength = n + 2;
        }
        else
        {
            _complex = ComplexFftPlan.Get(n);
            BufferLength = 2 * n;
        }
        ScratchLength = _complex.ScratchLength;
    }

    /// <summary>Signal length.</summary>
    public int N { get; }

    /// <summary>Number of bins, N/2 + 1.</summary>
    public int Bins => N / 2 + 1;

    /// <summary>Vectors the data buffer must hold.</summary>
    public int BufferLength { get; }

    /// <summary>Vectors of scratch needed besides the buffer.</summary>
    public int ScratchLength { get; }

    /// <summary>The cached plan for length <paramref name="n"/> (2..16384).</summary>
    public static RealFftPlan Get(int n)
    {
        if (n < 2 || n > 16384) throw new ArgumentOutOfRangeException(nameof(n), $"n_fft must be in 2..16384, was {n}.");
        return Plans.GetOrAdd(n, static k => new RealFftPlan(k));
    }

    /// <summary>rfft: buffer[0..N) holds samples on input; buffer[2k], buffer[2k+1] hold bin k on output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Forward(Span<V> buffer, Span<V> scratch)
    {
        if (N % 2 == 1)
        {
            for (var i = N - 1; i >= 0; i--)
            {
                buffer[2 * i] = buffer[i];
                buffer[2 * i + 1] = V.Zero;
            }
            _complex.Forward(buffer[..(2 * N)], scratch);
            return;
        }
        var h = N / 2;
        _complex.Forward(buffer[..N], scratch);
        var half = Vector256.Create(0.5f);
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
            // E = (Zk + conj Zj) / 2, O = -i (Zk - conj Zj) / 2.
            V er = (zkr + zjr) * half, ei = (zki - zji) * half;
            V or = (zki + zji) * half, oi = (zjr - zkr) * half;
            V wr = Vector256.Create(_post[2 * k]), wi = Vector256.Create(_post[2 * k + 1]);
            V wor = Vector256.FusedMultiplyAdd(or, wr, -(oi * wi));
            V woi = Vector256.FusedMultiplyAdd(or, wi, oi * wr);
            Unsafe.Add(ref b, 2 * k) = er + wor;
            Unsafe.Add(ref b, 2 * k + 1) = ei + woi;
            if (j != k)
            {
                Unsafe.Add(ref b, 2 * j) = er - wor;
                Unsafe.Add(ref b, 2 * j + 1) = woi - ei;
            }
        }
    }

    /// <summary>irfft (scaled 1/N): buffer[2k], buffer[2k+1] hold bin k on input (imaginary parts of bin 0 and,
    /// for even N, bin N/2 are ignored); buffer[0..N) holds the samples on output.</summary>
    public void Inverse(Span<V> buffer, Span<V> scratch)
    {
        if (N % 2 == 1)
        {
            var bins = Bins;
            buffer[1] = V.Zero;
            for (var k = 1; k < bins; k++)
            {
                buffer[2 * (N - k)] = buffer[2 * k];
                buffer[2 * (N - k) + 1] = -buffer[2 * k + 1];
            }
            // Inverse through the forward transform of the conjugate (conjugate symmetric: same real part).
            for (var k = 0; k < N; k++) buffer[2 * k + 1] = -buffer[2 * k + 1];
            _complex.Forward(buffer[..(2 * N)], scratch);
            var scale = Vector256.Create(1f / N);
            for (var i = 0; i < N; i++) buffer[i] = buffer[2 * i] * scale;
            return;
        }
        var h = N / 2;
        var halfV = Vector256.Create(0.5f);
        ref var b = ref buffer[0];
        V x0 = buffer[0], xh = buffer[2 * h];
        for (var k = 1; 2 * k <= h; k++)
        {
            var j = h - k;
            V xkr = Unsafe.Add(ref b, 2 * k), xki = Unsafe.Add(ref b, 2 * k + 1);
            V xjr = Unsafe.Add(ref b, 2 * j), xji = Unsafe.Add(ref b, 2 * j + 1);
            // E = (Xk + conj Xj) / 2; O = (Xk - conj Xj) / 2 * conj(W^k); Zk = E + i O; Zj = conj(E) + i conj(O).
            V er = (xkr + xjr) * halfV, ei = (xki - xji) * halfV;
            V dr = (xkr - xjr) * halfV, di = (xki + xji) * halfV;
            V wr = Vector256.Create(_post[2 * k]), wi = Vector256.Create(-_post[2 * k + 1]);
            V or = Vector256.FusedMultiplyAdd(dr, wr, -(di * wi));
            V oi = Vector256.FusedMultiplyAdd(dr, wi, di * wr);
            // Store conjugated Z so that the forward FFT computes the inverse.
            Unsafe.Add(ref b, 2 * k) = er - oi;
            Unsafe.Add(ref b, 2 * k + 1) = -(ei + or);
            if (j != k)
            {
                Unsafe.Add(ref b, 2 * j) = er + oi;
                Unsafe.Add(ref b, 2 * j + 1) = -(or - ei);
            }
        }
        buffer[0] = (x0 + xh) * halfV;
        buffer[1] = -((x0 - xh) * halfV);
        _complex.Forward(buffer[..N], scratch);
        var s2 = Vector256.Create(1f / h);
        var ns2 = -s2;
        for (var k = 0; k < h; k++)
        {
            buffer[2 * k] *= s2;
            buffer[2 * k + 1] *= ns2;
        }
    }
}

/// <summary>Moves data between row-major float rows and lane-major vectors (8x8 transposes with AVX).</summary>
internal static class Lanes
{
    /// <summary>dst[i] lane j = src[start + j * stride + i] for i &lt; len and j &lt; rows; lanes j &gt;= rows are zero.</summary>
    public static void Load(ReadOnlySpan<float> src, int start, int stride, int rows, int len, Span<V> dst) =>
        Load(src, start, stride, rows, len, dst, default);

    /// <summary>dst[i] lane j = src[start + j * stride + i] * window[i] (window empty: times 1) for i &lt; len and
    /// j &lt; rows; lanes j &gt;= rows are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Load(ReadOnlySpan<float> src, int start, int stride, int rows, int len, Span<V> dst, ReadOnlySpan<float> window)
    {
        var windowed = !window.IsEmpty;
        if (windowed && window.Length < len) throw new ArgumentException("window is shorter than the frame.", nameof(window));
        ref var s0 = ref Unsafe.AsRef(in src[0]);
        var i = 0;
        if (rows is >= 1 and <= 8 && System.Runtime.Intrinsics.X86.Avx.IsSupported && len >= 8)
        {
            ref var d = ref dst[0];
            if (start + (rows - 1L) * stride + len > src.Length) throw new ArgumentOutOfRangeException(nameof(src));
            // Blocks of 8; a ragged end is covered by one last block overlapping the previous one.
            for (; i < len; i += 8)
            {
                if (i + 8 > len) i = len - 8;
                ref var r = ref Unsafe.Add(ref s0, start + i);
                Transpose8(
                    Vector256.LoadUnsafe(ref r), Row(ref r, 1, stride, rows),
                    Row(ref r, 2, stride, rows), Row(ref r, 3, stride, rows),
                    Row(ref r, 4, stride, rows), Row(ref r, 5, stride, rows),
                    Row(ref r, 6, stride, rows), Row(ref r, 7, stride, rows),
                    ref Unsafe.Add(ref d, i));
                if (windowed)
                {
                    ref var w = ref Unsafe.AsRef(in window[i]);
                    for (var l = 0; l < 8; l++)
                        Unsafe.Add(ref d, i + l) *= Vector256.Create(Unsafe.Add(ref w, l));
                }
            }
        }
        Span<float> lane = stackalloc float[8];
        for (; i < len; i++)
        {
            lane.Clear();
            for (var j = 0; j < rows; j++) lane[j] = src[start + j * stride + i];
            dst[i] = Vector256.Create((ReadOnlySpan<float>)lane);
            if (windowed) dst[i] *= Vector256.Create(window[i]);
        }
    }

    /// <summary>Eight floats of row j (zero for rows past the last).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static V Row(ref float r, int j, int stride, int rows) =>
        j < rows ? Vector256.LoadUnsafe(ref Unsafe.Add(ref r, j * stride)) : V.Zero;

    /// <summary>dst[start + j * stride + i] = src[i] lane j for i &lt; len and j &lt; rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Store(ReadOnlySpan<V> src, int len, Span<float> dst, int start, int stride, int rows)
    {
        var i = 0;
        if (rows is >= 1 and <= 8 && System.Runtime.Intrinsics.X86.Avx.IsSupported && len >= 8)
        {
            if (start + (rows - 1L) * stride + len > dst.Length) throw new ArgumentOutOfRangeException(nameof(dst));
            ref var d0 = ref dst[0];
            Span<V> t = stackalloc V[8];
            for (; i < len; i += 8)
            {
                if (i + 8 > len) i = len - 8;
                ref var s = ref Unsafe.AsRef(in src[i]);
                Transpose8(s, Unsafe.Add(ref s, 1), Unsafe.Add(ref s, 2), Unsafe.Add(ref s, 3),
                    Unsafe.Add(ref s, 4), Unsafe.Add(ref s, 5), Unsafe.Add(ref s, 6), Unsafe.Add(ref s, 7), ref t[0]);
                ref var r = ref Unsafe.Add(ref d0, start + i);
                for (var j = 0; j < rows; j++) t[j].StoreUnsafe(ref Unsafe.Add(ref r, j * stride));
            }
        }
        for (; i < len; i++)
        {
            var v = src[i];
            for (var j = 0; j < rows; j++) dst[start + j * stride + i] = v[j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(V r0, V r1, V r2, V r3, V r4, V r5, V r6, V r7, ref V o)
    {
        var t0 = System.Runtime.Intrinsics.X86.Avx.UnpackLow(r0, r1);
        var t1 = System.Runtime.Intrinsics.X86.Avx.UnpackHigh(r0, r1);
        var t2 = System.Runtime.Intrinsics.X86.Avx.UnpackLow(r2, r3);
        var t3 = System.Runtime.Intrinsics.X86.Avx.UnpackHigh(r2, r3);
        var t4 = System.Runtime.Intrinsics.X86.Avx.UnpackLow(r4, r5);
        var t5 = System.Runtime.Intrinsics.X86.Avx.UnpackHigh(r4, r5);
        var t6 = System.Runtime.Intrinsics.X86.Avx.UnpackLow(r6, r7);
        var t7 = System.Runtime.Intrinsics.X86.Avx.UnpackHigh(r6, r7);
        var u0 = System.Runtime.Intrinsics.X86.Avx.Shuffle(t0, t2, 0x44);
        var u1 = System.Runtime.Intrinsics.X86.Avx.Shuffle(t0, t2, 0xEE);
        var u2 = System.Runtime.Intrinsics.X86.Avx.Shuffle(t1, t3, 0x44);
        var u3 = System.Runtime.Intrinsics.X86.Avx.Shuffle(t1, t3, 0xEE);
        var u4 = System.Runtime.Intrinsics.X86.Avx.Shuffle(t4, t6, 0x44);
        var u5 = System.Runtime.Intrinsics.X86.Avx.Shuffle(t4, t6, 0xEE);
        var u6 = System.Runtime.Intrinsics.X86.Avx.Shuffle(t5, t7, 0x44);
        var u7 = System.Runtime.Intrinsics.X86.Avx.Shuffle(t5, t7, 0xEE);
        o = System.Runtime.Intrinsics.X86.Avx.Permute2x128(u0, u4, 0x20);
        Unsafe.Add(ref o, 1) = System.Runtime.Intrinsics.X86.Avx.Permute2x128(u1, u5, 0x20);
        Unsafe.Add(ref o, 2) = System.Runtime.Intrinsics.X86.Avx.Permute2x128(u2, u6, 0x20);
        Unsafe.Add(ref o, 3) = System.Runtime.Intrinsics.X86.Avx.Permute2x128(u3, u7, 0x20);
        Unsafe.Add(ref o, 4) = System.Runtime.Intrinsics.X86.Avx.Permute2x128(u0, u4, 0x31);
        Unsafe.Add(ref o, 5) = System.Runtime.Intrinsics.X86.Avx.Permute2x128(u1, u5, 0x31);
        Unsafe.Add(ref o, 6) = System.Runtime.Intrinsics.X86.Avx.Permute2x128(u2, u6, 0x31);
        Unsafe.Add(ref o, 7) = System.Runtime.Intrinsics.X86.Avx.Permute2x128(u3, u7, 0x31);
    }
}
