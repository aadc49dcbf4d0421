using System.Collections.Concurrent;

namespace Hybrid.Dsp;

/// <summary>
/// Settings of the 1-D scattering transform with kymatio 0.4's names (<c>Scattering1D(J, shape, Q, T, max_order)</c>):
/// Morlet wavelets built in the Fourier domain, Q per octave at the first order and one per octave at the second,
/// a Gaussian low-pass of scale T, reflect padding to a power of two and per-filter subsampling.
/// </summary>
/// <param name="J">Log2 of the largest wavelet scale: 1 &lt;= J and 2^J &lt;= the signal length.</param>
/// <param name="Q">First-order wavelets per octave, at least 1 (the second order always has 1).</param>
/// <param name="T">Averaging scale of the low-pass filter in samples: a power of two, at most the signal length;
/// null means 2^J (kymatio's default). The output has one frame per T samples.</param>
/// <param name="MaxOrder">1 or 2: the deepest scattering order computed.</param>
public sealed record ScatteringConfig(int J, int Q = 1, int? T = null, int MaxOrder = 2)
{
    /// <summary>Largest supported padded length (the managed engine's FFT plans go up to 32,768 points).</summary>
    public const int MaxPaddedLength = 32768;

    /// <summary>The averaging scale in samples (T, or 2^J when T is null).</summary>
    public int Averaging => T ?? (J is >= 0 and < 31 ? 1 << J : int.MaxValue);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid parameter and its limits for signals of
    /// <paramref name="length"/> samples: J &lt; 1 or 2^J &gt; length, Q &lt; 1, T not a power of two or above the
    /// length, max_order not 1 or 2, or a padded length above <see cref="MaxPaddedLength"/>.</summary>
    public void Validate(int length)
    {
        if (length < 2) throw new ArgumentException($"length: the scattering transform needs signals of at least 2 samples, was {length}.", nameof(length));
        if (J < 1 || J > 30 || (1L << J) > length)
            throw new ArgumentException($"J must be at least 1 with 2^J at most the signal length ({length}), was {J}.", nameof(J));
        if (Q < 1 || Q > 64) throw new ArgumentException($"Q must be in 1..64 (wavelets per octave), was {Q}.", nameof(Q));
        if (T is { } t && (t < 1 || (t & (t - 1)) != 0 || t > length))
            throw new ArgumentException($"T must be a power of two in 1..{length} (the signal length), was {t}.", nameof(T));
        if (MaxOrder is not (1 or 2)) throw new ArgumentException($"max_order must be 1 or 2, was {MaxOrder}.", nameof(MaxOrder));
    }
}

/// <summary>One filter of a scattering filter bank, real-valued in the Fourier domain (kymatio's filter dictionaries).</summary>
public sealed class ScatteringFilter
{
    private readonly ConcurrentDictionary<int, double[]> _levels = new();

    internal ScatteringFilter(double xi, double sigma, int j, double[] fourier)
    {
        Xi = xi;
        Sigma = sigma;
        J = j;
        Fourier = fourier;
        _levels[0] = fourier;
    }

    /// <summary>Centre frequency in cycles per sample (0.5 is Nyquist); 0 for the low-pass filter.</summary>
    public double Xi { get; }

    /// <summary>Bandwidth (standard deviation of the Gaussian) in cycles per sample.</summary>
    public double Sigma { get; }

    /// <summary>Log2 of the largest subsampling the filter allows without aliasing (log2 T for the low-pass).</summary>
    public int J { get; }

    /// <summary>The filter at the padded length N, at the frequencies of numpy.fft.fftfreq(N). Shape [N]; read-only.</summary>
    public double[] Fourier { get; }

    /// <summary>The filter periodised for signals subsampled by 2^level: entry k is the sum of
    /// <see cref="Fourier"/>[k + p N / 2^level] over p (kymatio 0.4's levels). Shape [N / 2^level]; read-only.</summary>
    public double[] Level(int level)
    {
        if (level < 0 || (Fourier.Length >> level) < 1 || (Fourier.Length >> level << level) != Fourier.Length)
            throw new ArgumentOutOfRangeException(nameof(level), $"level must be in 0..log2({Fourier.Length}), was {level}.");
        return _levels.GetOrAdd(level, l =>
        {
            var m = Fourier.Length >> l;
            var r = new double[m];
            for (var p = 0; p < 1 << l; p++)
                for (var k = 0; k < m; k++)
                    r[k] += Fourier[p * m + k];
            return r;
        });
    }
}

/// <summary>One output path of the scattering transform (a row of kymatio's <c>meta()</c>).</summary>
/// <param name="Order">0, 1 or 2.</param>
/// <param name="N1">Index of the first-order wavelet in <see cref="ScatteringFilterBank.Psi1"/>, or -1.</param>
/// <param name="N2">Index of the second-order wavelet in <see cref="ScatteringFilterBank.Psi2"/>, or -1.</param>
/// <param name="Xi1">First-order centre frequency (cycles per sample), NaN at order 0.</param>
/// <param name="Sigma1">First-order bandwidth, NaN at order 0.</param>
/// <param name="J1">First-order scale, -1 at order 0.</param>
/// <param name="Xi2">Second-order centre frequency, NaN below order 2.</param>
/// <param name="Sigma2">Second-order bandwidth, NaN below order 2.</param>
/// <param name="J2">Second-order scale, -1 below order 2.</param>
public sealed record ScatteringPath(int Order, int N1, int N2, double Xi1, double Sigma1, int J1, double Xi2, double Sigma2, int J2);

/// <summary>
/// kymatio 0.4's 1-D scattering filter bank for one configuration and signal length (scattering_filter_factory
/// with the Andén generator: sigma0 = 0.1, r_psi = sqrt(1/2), alpha = 5), its padding and its path order
/// (order 0, every first-order path, then the second-order paths with j2 &gt; j1, grouped by the first-order filter).
/// Built in double precision once per (J, Q, T, max_order, length) and cached by <see cref="Filters.Scattering1D"/>.
/// </summary>
public sealed class ScatteringFilterBank
{
    private const double Sigma0 = 0.1;
    private const double Alpha = 5.0;
    private static readonly double RPsi = Math.Sqrt(0.5);

    internal ScatteringFilterBank(ScatteringConfig config, int length)
    {
        config.Validate(length);
        Config = config;
        Length = length;
        var t = config.Averaging;
        Log2T = Log2Floor(t);

        // Padding: three times the temporal support of the low-pass at the input length, capped below 3 * length.
        var phiInput = Morlet(length, 0.0, Sigma0 / t);
        var minToPad = 3 * TemporalSupport(phiInput, 1e-3);
        var jMaxSupport = Log2Floor(3L * length - 2);
        var jPad = Math.Min(Log2Ceil(length + 2L * minToPad), jMaxSupport);
        if (jPad > 15)
            throw new ArgumentException(
                $"length: signals of {length} samples with T = {t} pad to 2^{jPad} samples; at most {ScatteringConfig.MaxPaddedLength} are supported.",
                nameof(length));
        PaddedLength = 1 << jPad;
        PadLeft = (PaddedLength - length) / 2;
        PadRight = PaddedLength - length - PadLeft;

        int start = PadLeft, end = PadLeft + length;
        for (var j = 1; j <= Log2T; j++)
        {
            start = start / 2 + start % 2;
            end = end / 2 + end % 2;
        }
        FrameStart = start;
        Frames = end - start;

        var n = PaddedLength;
        var psi1 = new List<ScatteringFilter>();
        foreach (var (xi, sigma) in Anden(config.J, config.Q))
            psi1.Add(new ScatteringFilter(xi, sigma, MaxSubsampling(xi, sigma), Morlet(n, xi, sigma)));
        Psi1 = psi1;
        var psi2 = new List<ScatteringFilter>();
        if (config.MaxOrder == 2)
            foreach (var (xi, sigma) in Anden(config.J, 1))
                psi2.Add(new ScatteringFilter(xi, sigma, MaxSubsampling(xi, sigma), Morlet(n, xi, sigma)));
        Psi2 = psi2;
        Phi = new ScatteringFilter(0.0, Sigma0 / t, Log2T, Morlet(n, 0.0, Sigma0 / t));

        var paths = new List<ScatteringPath> { new(0, -1, -1, double.NaN, double.NaN, -1, double.NaN, double.NaN, -1) };
        for (var a = 0; a < psi1.Count; a++)
            paths.Add(new(1, a, -1, psi1[a].Xi, psi1[a].Sigma, psi1[a].J, double.NaN, double.NaN, -1));
        for (var a = 0; a < psi1.Count; a++)
            for (var b = 0; b < psi2.Count; b++)
                if (psi2[b].J > psi1[a].J)
                    paths.Add(new(2, a, b, psi1[a].Xi, psi1[a].Sigma, psi1[a].J, psi2[b].Xi, psi2[b].Sigma, psi2[b].J));
        Paths = paths;
    }

    /// <summary>The configuration.</summary>
    public ScatteringConfig Config { get; }

    /// <summary>Input signal length in samples.</summary>
    public int Length { get; }

    /// <summary>log2 T: the output has one frame per 2^Log2T padded samples.</summary>
    public int Log2T { get; }

    /// <summary>Length after reflect padding (a power of two).</summary>
    public int PaddedLength { get; }

    /// <summary>Samples of reflect padding before the signal.</summary>
    public int PadLeft { get; }

    /// <summary>Samples of reflect padding after the signal.</summary>
    public int PadRight { get; }

    /// <summary>First kept frame of the subsampled padded signal (kymatio's ind_start[log2 T]).</summary>
    public int FrameStart { get; }

    /// <summary>Output frames per path.</summary>
    public int Frames { get; }

    /// <summary>The Gaussian low-pass phi (sigma = 0.1 / T).</summary>
    public ScatteringFilter Phi { get; }

    /// <summary>First-order wavelets, highest centre frequency first (Q per octave, then the constant-bandwidth ones).</summary>
    public IReadOnlyList<ScatteringFilter> Psi1 { get; }

    /// <summary>Second-order wavelets (one per octave); empty when max_order is 1.</summary>
    public IReadOnlyList<ScatteringFilter> Psi2 { get; }

    /// <summary>Output paths in kymatio's order (the path axis of the output).</summary>
    public IReadOnlyList<ScatteringPath> Paths { get; }

    /// <summary>Largest k with 2^k &lt;= v (v &gt;= 1).</summary>
    internal static int Log2Floor(long v)
    {
        var k = 0;
        while ((2L << k) <= v) k++;
        return k;
    }

    /// <summary>Smallest k with 2^k &gt;= v (v &gt;= 1).</summary>
    private static int Log2Ceil(long v)
    {
        var k = 0;
        while ((1L << k) < v) k++;
        return k;
    }

    /// <summary>Centre frequencies and bandwidths of Andén's filter bank (as ScatNet): a geometric progression of ratio
    /// 2^(1/Q) from xi_max while sigma stays above sigma0 / 2^J, then Q - 1 filters of constant bandwidth below.</summary>
    private static IEnumerable<(double Xi, double Sigma)> Anden(int j, int q)
    {
        var xi = Math.Max(1.0 / (1.0 + Math.Pow(2.0, 3.0 / q)), 0.35);
        var sigma = SigmaPsi(xi, q);
        var sigmaMin = Sigma0 / Math.Pow(2, j);
        var step = Math.Pow(2, 1.0 / q);
        if (sigma <= sigmaMin) xi = sigma;
        else
        {
            yield return (xi, sigma);
            while (sigma > sigmaMin * step)
            {
                xi /= step;
                sigma /= step;
                yield return (xi, sigma);
            }
        }
        var elbow = xi;
        for (var k = 0; k < q - 1; k++)
        {
            xi -= 1.0 / q * elbow;
            yield return (xi, sigmaMin);
        }
    }

    /// <summary>Bandwidth making neighbouring wavelets of a Q-per-octave family meet at r_psi of their peak.</summary>
    private static double SigmaPsi(double xi, int q)
    {
        var factor = 1.0 / Math.Pow(2, 1.0 / q);
        var term1 = (1 - factor) / (1 + factor);
        var term2 = 1.0 / Math.Sqrt(2 * Math.Log(1.0 / RPsi));
        return xi * term1 * term2;
    }

    /// <summary>Largest j with xi + alpha sigma below 2^-(j+1) (no aliasing after subsampling by 2^j).</summary>
    private static int MaxSubsampling(double xi, double sigma)
    {
        var upper = Math.Min(Math.Abs(xi) + Alpha * sigma, 0.5);
        return (int)Math.Floor(-Math.Log2(upper)) - 1;
    }

    /// <summary>Fourier transform at fftfreq(n) of a Morlet wavelet (xi != 0) or Gaussian (xi == 0) of bandwidth sigma,
    /// periodised over 2P - 1 periods, with the Gaussian correction that zeroes the wavelet's mean, normalised to unit
    /// L1 norm in time (kymatio's morlet_1d).</summary>
    internal static double[] Morlet(int n, double xi, double sigma)
    {
        var p = Math.Min((int)Math.Ceiling(Math.Sqrt(-2 * sigma * sigma * Math.Log(1e-7)) + 1), 5);
        var periods = 2 * p - 1;
        var low = new double[n];
        var gabor = xi != 0 ? new double[n] : null;
        var s2 = 2 * sigma * sigma;
        for (var r = 0; r < periods; r++)
            for (var k = 0; k < n; k++)
            {
                var f = ((double)(1 - p) * n + (double)r * n + k) / n;
                var fl = p == 1 ? (k < (n + 1) / 2 ? (double)k / n : (double)(k - n) / n) : f;
                low[k] += Math.Exp(-(fl * fl) / s2);
                if (gabor is not null) gabor[k] += Math.Exp(-((f - xi) * (f - xi)) / s2);
            }
        for (var k = 0; k < n; k++)
        {
            low[k] /= periods;
            if (gabor is not null) gabor[k] /= periods;
        }
        var filter = low;
        if (gabor is not null)
        {
            var kappa = gabor[0] / low[0];
            for (var k = 0; k < n; k++) gabor[k] -= kappa * low[k];
            filter = gabor;
        }
        var re = (double[])filter.Clone();
        var im = new double[n];
        DoubleDft.Inverse(re, im);
        double l1 = 0;
        for (var k = 0; k < n; k++) l1 += Math.Sqrt(re[k] * re[k] + im[k] * im[k]);
        for (var k = 0; k < n; k++) filter[k] /= l1;
        return filter;
    }

    /// <summary>Smallest half-support N with the L1 norm of the filter's tail beyond N (first half) at most
    /// <paramref name="criterion"/> (kymatio's compute_temporal_support); half the length if none.</summary>
    private static int TemporalSupport(double[] fourier, double criterion)
    {
        var n = fourier.Length;
        var re = (double[])fourier.Clone();
        var im = new double[n];
        DoubleDft.Inverse(re, im);
        var half = n / 2;
        var residual = new double[half];
        double acc = 0;
        for (var i = half - 1; i >= 0; i--)
        {
            acc += Math.Sqrt(re[i] * re[i] + im[i] * im[i]);
            residual[i] = acc;
        }
        for (var i = 0; i < half; i++)
            if (residual[i] <= criterion) return i + 1;
        return half;
    }
}

/// <summary>Double-precision DFT of any length for plan building (radix 2, Bluestein's chirp-z otherwise).</summary>
internal static class DoubleDft
{
    /// <summary>In-place inverse DFT x[n] = (1/N) sum X[k] exp(2 pi i kn / N).</summary>
    public static void Inverse(double[] re, double[] im)
    {
        var n = re.Length;
        for (var i = 0; i < n; i++) im[i] = -im[i];
        Forward(re, im);
        for (var i = 0; i < n; i++)
        {
            re[i] /= n;
            im[i] = -im[i] / n;
        }
    }

    /// <summary>In-place forward DFT X[k] = sum x[n] exp(-2 pi i kn / N).</summary>
    public static void Forward(double[] re, double[] im)
    {
        var n = re.Length;
        if ((n & (n - 1)) == 0)
        {
            Radix2(re, im);
            return;
        }
        var m = 1;
        while (m < 2 * n - 1) m <<= 1;
        double[] ar = new double[m], ai = new double[m], br = new double[m], bi = new double[m];
        var wr = new double[n];
        var wi = new double[n];
        for (var k = 0; k < n; k++)
        {
            var (s, c) = Filters.SinCos2Pi((long)k * k % (2L * n), 2L * n);
            wr[k] = c;
            wi[k] = -s;
            ar[k] = re[k] * c + im[k] * s;
            ai[k] = im[k] * c - re[k] * s;
            br[k] = c;
            bi[k] = s;
            if (k > 0)
            {
                br[m - k] = c;
                bi[m - k] = s;
            }
        }
        Radix2(ar, ai);
        Radix2(br, bi);
        for (var k = 0; k < m; k++)
        {
            var r = ar[k] * br[k] - ai[k] * bi[k];
            var i = ar[k] * bi[k] + ai[k] * br[k];
            ar[k] = r;
            ai[k] = -i;
        }
        Radix2(ar, ai);
        for (var k = 0; k < n; k++)
        {
            double cr = ar[k] / m, ci = -ai[k] / m;
            re[k] = cr * wr[k] - ci * wi[k];
            im[k] = cr * wi[k] + ci * wr[k];
        }
    }

    private static void Radix2(double[] re, double[] im)
    {
        var n = re.Length;
        for (int i = 1, j = 0; i < n; i++)
        {
            var bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j)
            {
                (re[i], re[j]) = (re[j], re[i]);
                (im[i], im[j]) = (im[j], im[i]);
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
                    var v = i + half;
                    double vr = re[v] * wr - im[v] * wi, vi = re[v] * wi + im[v] * wr;
                    re[v] = re[i] - vr;
                    im[v] = im[i] - vi;
                    re[i] += vr;
                    im[i] += vi;
                }
            }
        }
    }
}
