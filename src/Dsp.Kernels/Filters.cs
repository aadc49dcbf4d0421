using System.Collections.Concurrent;

namespace Hybrid.Dsp;

/// <summary>
/// Plans shared by every engine: windows, mel filter banks, DCT and chroma matrices, FFT twiddles and
/// Savitzky-Golay delta weights. Each is computed once per configuration in double precision, rounded to
/// float32 and cached (thread-safe). The returned arrays are shared: treat them as read-only.
/// </summary>
public static class Filters
{
    private static readonly ConcurrentDictionary<object, float[]> Cache = new();

    private static float[] Cached(object key, Func<double[]> build) =>
        Cache.GetOrAdd(key, _ => Array.ConvertAll(build(), v => (float)v));

    /// <summary>
    /// Periodic window of <paramref name="winLength"/> samples (scipy.signal.get_window with fftbins=True),
    /// zero-padded and centred in <paramref name="nFft"/> samples as librosa.util.pad_center does
    /// (left padding (nFft - winLength) / 2). Shape [nFft].
    /// </summary>
    public static float[] Window(WindowKind kind, int winLength, int nFft)
    {
        if (winLength < 1 || winLength > nFft)
            throw new ArgumentOutOfRangeException(nameof(winLength), $"win_length must be in 1..n_fft ({nFft}), was {winLength}.");
        return Cached(("window", kind, winLength, nFft), () =>
        {
            var w = new double[nFft];
            var left = (nFft - winLength) / 2;
            for (var i = 0; i < winLength; i++)
            {
                var x = 2.0 * Math.PI * i / winLength;
                w[left + i] = kind switch
                {
                    WindowKind.Hann => 0.5 - 0.5 * Math.Cos(x),
                    WindowKind.Hamming => 0.54 - 0.46 * Math.Cos(x),
                    WindowKind.Blackman => 0.42 - 0.5 * Math.Cos(x) + 0.08 * Math.Cos(2.0 * x),
                    WindowKind.Rectangular => 1.0,
                    _ => throw new ArgumentOutOfRangeException(nameof(kind), $"Unknown window kind {kind}."),
                };
            }
            return w;
        });
    }

    /// <summary>Hz to mels (librosa.hz_to_mel): Slaney's linear-then-log scale, or HTK's 2595 log10(1 + f/700).</summary>
    public static double HzToMel(double hz, bool htk)
    {
        if (htk) return 2595.0 * Math.Log10(1.0 + hz / 700.0);
        const double fSp = 200.0 / 3.0, minLogHz = 1000.0, minLogMel = minLogHz / fSp;
        var logStep = Math.Log(6.4) / 27.0;
        return hz >= minLogHz ? minLogMel + Math.Log(hz / minLogHz) / logStep : hz / fSp;
    }

    /// <summary>Mels to Hz (librosa.mel_to_hz), the inverse of <see cref="HzToMel"/>.</summary>
    public static double MelToHz(double mel, bool htk)
    {
        if (htk) return 700.0 * (Math.Pow(10.0, mel / 2595.0) - 1.0);
        const double fSp = 200.0 / 3.0, minLogHz = 1000.0, minLogMel = minLogHz / fSp;
        var logStep = Math.Log(6.4) / 27.0;
        return mel >= minLogMel ? minLogHz * Math.Exp(logStep * (mel - minLogMel)) : fSp * mel;
    }

    /// <summary>
    /// Mel filter bank (librosa.filters.mel): triangles between n_mels + 2 points evenly spaced on the mel
    /// scale from fmin to fmax, over the FFT bin frequencies k * sr / n_fft, with Slaney area normalisation
    /// (2 / (f_high - f_low)) or none. Shape [n_mels, n_fft/2 + 1], row-major.
    /// </summary>
    public static float[] Mel(MelConfig config, int nFft)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (nFft < 2) throw new ArgumentOutOfRangeException(nameof(nFft), $"n_fft must be at least 2, was {nFft}.");
        if (config.NMels < 1) throw new ArgumentOutOfRangeException(nameof(config), $"n_mels must be at least 1, was {config.NMels}.");
        if (config.SampleRate < 1) throw new ArgumentOutOfRangeException(nameof(config), $"sr must be positive, was {config.SampleRate}.");
        if (config.FMin < 0 || config.FMaxOrNyquist <= config.FMin)
            throw new ArgumentOutOfRangeException(nameof(config), $"fmin ({config.FMin}) must be non-negative and below fmax ({config.FMaxOrNyquist}).");
        return Cached(("mel", config with { FMax = config.FMaxOrNyquist }, nFft), () =>
        {
            int nMels = config.NMels, bins = nFft / 2 + 1;
            var melMin = HzToMel(config.FMin, config.Htk);
            var melMax = HzToMel(config.FMaxOrNyquist, config.Htk);
            var melF = new double[nMels + 2];
            for (var i = 0; i < melF.Length; i++)
                melF[i] = MelToHz(melMin + (melMax - melMin) * i / (nMels + 1), config.Htk);
            var w = new double[nMels * bins];
            for (var m = 0; m < nMels; m++)
            {
                double lowDiff = melF[m + 1] - melF[m], highDiff = melF[m + 2] - melF[m + 1];
                var enorm = config.Norm == MelNorm.Slaney ? 2.0 / (melF[m + 2] - melF[m]) : 1.0;
                for (var k = 0; k < bins; k++)
                {
                    var f = (double)config.SampleRate * k / nFft;
                    var lower = (f - melF[m]) / lowDiff;
                    var upper = (melF[m + 2] - f) / highDiff;
                    w[m * bins + k] = Math.Max(0.0, Math.Min(lower, upper)) * enorm;
                }
            }
            return w;
        });
    }

    /// <summary>
    /// Orthonormal DCT-II matrix (scipy.fft.dct type 2, norm 'ortho', as librosa.feature.mfcc applies over the
    /// mel axis): M[k, n] = sqrt((k == 0 ? 1 : 2) / n_mels) cos(pi k (2n + 1) / (2 n_mels)). Shape [n_mfcc, n_mels].
    /// </summary>
    public static float[] DctOrtho(int nMfcc, int nMels)
    {
        if (nMels < 1) throw new ArgumentOutOfRangeException(nameof(nMels), $"n_mels must be at least 1, was {nMels}.");
        if (nMfcc < 1 || nMfcc > nMels) throw new ArgumentOutOfRangeException(nameof(nMfcc), $"n_mfcc must be in 1..n_mels ({nMels}), was {nMfcc}.");
        return Cached(("dct", nMfcc, nMels), () =>
        {
            var m = new double[nMfcc * nMels];
            for (var k = 0; k < nMfcc; k++)
            {
                var scale = Math.Sqrt((k == 0 ? 1.0 : 2.0) / nMels);
                for (var n = 0; n < nMels; n++)
                    m[k * nMels + n] = scale * Math.Cos(Math.PI * k * (2 * n + 1) / (2.0 * nMels));
            }
            return m;
        });
    }

    /// <summary>
    /// Chroma filter bank with librosa's defaults (librosa.filters.chroma: ctroct 5, octwidth 2, norm 2, base_c).
    /// <paramref name="tuning"/> is in fractions of a chroma bin. Shape [n_chroma, n_fft/2 + 1], row-major.
    /// </summary>
    public static float[] Chroma(int sampleRate, int nFft, int nChroma, float tuning) =>
        Chroma(sampleRate, nFft, nChroma, tuning, ctroct: 5.0, octwidth: 2.0, norm: 2.0, baseC: true);

    /// <summary>
    /// Chroma filter bank (librosa.filters.chroma, every parameter): for each FFT bin a Gaussian bump around its
    /// pitch class (width one chroma bin or the bin spacing, whichever is larger), each bin's column normalised
    /// (<paramref name="norm"/>: null for none, <see cref="double.PositiveInfinity"/> for the maximum,
    /// <see cref="double.NegativeInfinity"/> for the minimum, 0 for the count of non-zeros, p &gt; 0 for the p-norm;
    /// columns whose norm is below the smallest normal double are left as they are), then weighted by a Gaussian
    /// over octaves centred on <paramref name="ctroct"/> (octaves above A0 = 27.5 Hz) with half-width
    /// <paramref name="octwidth"/> (null: flat), and rolled to start at C when <paramref name="baseC"/> (else at A).
    /// <paramref name="tuning"/> is in fractions of a chroma bin. Shape [n_chroma, n_fft/2 + 1], row-major; computed
    /// in double precision and cached. Throws ArgumentOutOfRangeException for sr or n_chroma below 1, n_fft below 2,
    /// a non-finite ctroct or tuning, an octwidth that is not positive, or a negative (finite) norm.
    /// </summary>
    public static float[] Chroma(int sampleRate, int nFft, int nChroma, float tuning, double ctroct, double? octwidth, double? norm, bool baseC)
    {
        if (sampleRate < 1) throw new ArgumentOutOfRangeException(nameof(sampleRate), $"sr must be positive, was {sampleRate}.");
        if (nFft < 2) throw new ArgumentOutOfRangeException(nameof(nFft), $"n_fft must be at least 2, was {nFft}.");
        if (nChroma < 1) throw new ArgumentOutOfRangeException(nameof(nChroma), $"n_chroma must be at least 1, was {nChroma}.");
        if (!float.IsFinite(tuning)) throw new ArgumentOutOfRangeException(nameof(tuning), $"tuning must be finite, was {tuning}.");
        if (!double.IsFinite(ctroct)) throw new ArgumentOutOfRangeException(nameof(ctroct), $"ctroct must be finite, was {ctroct}.");
        if (octwidth is { } w0 && !(w0 > 0 && double.IsFinite(w0)))
            throw new ArgumentOutOfRangeException(nameof(octwidth), $"octwidth must be a positive number or null (flat weighting), was {w0}.");
        if (norm is { } p0 && (double.IsNaN(p0) || (double.IsFinite(p0) && p0 < 0)))
            throw new ArgumentOutOfRangeException(nameof(norm), $"norm must be null, 0, a positive p or +/-infinity, was {p0}.");
        return Cached(("chroma", sampleRate, nFft, nChroma, tuning, ctroct, octwidth, norm, baseC), () =>
        {
            var a440 = 440.0 * Math.Pow(2.0, tuning / (double)nChroma);
            var frq = new double[nFft];
            for (var i = 1; i < nFft; i++)
                frq[i] = nChroma * Math.Log2((double)sampleRate * i / nFft / (a440 / 16.0));
            frq[0] = nFft > 1 ? frq[1] - 1.5 * nChroma : 0.0;
            var width = new double[nFft];
            for (var i = 0; i < nFft - 1; i++) width[i] = Math.Max(frq[i + 1] - frq[i], 1.0);
            width[nFft - 1] = 1.0;
            var half = Math.Round(nChroma / 2.0, MidpointRounding.ToEven);
            var wts = new double[nChroma * nFft];
            for (var i = 0; i < nFft; i++)
            {
                for (var c = 0; c < nChroma; c++)
                {
                    var d = frq[i] - c + half + 10.0 * nChroma;
                    d = d - nChroma * Math.Floor(d / nChroma) - half;
                    var g = 2.0 * d / width[i];
                    wts[c * nFft + i] = Math.Exp(-0.5 * g * g);
                }
                var length = 1.0;
                if (norm is { } p)
                {
                    if (double.IsPositiveInfinity(p))
                    {
                        length = 0.0;
                        for (var c = 0; c < nChroma; c++) length = Math.Max(length, Math.Abs(wts[c * nFft + i]));
                    }
                    else if (double.IsNegativeInfinity(p))
                    {
                        length = double.PositiveInfinity;
                        for (var c = 0; c < nChroma; c++) length = Math.Min(length, Math.Abs(wts[c * nFft + i]));
                    }
                    else if (p == 0)
                    {
                        length = 0.0;
                        for (var c = 0; c < nChroma; c++) length += wts[c * nFft + i] != 0 ? 1.0 : 0.0;
                    }
                    else
                    {
                        var sum = 0.0;
                        for (var c = 0; c < nChroma; c++) sum += Math.Pow(Math.Abs(wts[c * nFft + i]), p);
                        length = Math.Pow(sum, 1.0 / p);
                    }
                    if (length < double.Epsilon * 4503599627370496.0) length = 1.0; // below the smallest normal double
                }
                var scale = 1.0 / length;
                if (octwidth is { } ow)
                {
                    var octave = (frq[i] / nChroma - ctroct) / ow;
                    scale *= Math.Exp(-0.5 * octave * octave);
                }
                for (var c = 0; c < nChroma; c++) wts[c * nFft + i] *= scale;
            }
            int bins = nFft / 2 + 1, shift = baseC ? 3 * (nChroma / 12) : 0;
            var result = new double[nChroma * bins];
            for (var c = 0; c < nChroma; c++)
            {
                var src = ((c + shift) % nChroma + nChroma) % nChroma;
                Array.Copy(wts, src * nFft, result, c * bins, bins);
            }
            return result;
        });
    }

    private static readonly ConcurrentDictionary<(ScatteringConfig, int), ScatteringFilterBank> ScatteringBanks = new();

    /// <summary>
    /// kymatio 0.4's 1-D scattering filter bank (Morlet wavelets and the Gaussian low-pass in the Fourier domain, at
    /// the padded length and every subsampling level) for signals of <paramref name="length"/> samples, with its
    /// padding, frame count and path metadata (kymatio's <c>meta()</c>). Built once per configuration in double
    /// precision and cached; treat the arrays as read-only.
    /// </summary>
    /// <exception cref="ArgumentException">A parameter is out of range (<see cref="ScatteringConfig.Validate"/>).</exception>
    public static ScatteringFilterBank Scattering1D(ScatteringConfig config, int length)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate(length);
        return ScatteringBanks.GetOrAdd((config, length), static key => new ScatteringFilterBank(key.Item1, key.Item2));
    }

    /// <summary>
    /// FFT twiddle factors exp(-2 pi i k / n) for k in [0, n), computed in double precision.
    /// Shape [n, 2] (cos, -sin interleaved).
    /// </summary>
    public static float[] Twiddles(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"n must be at least 1, was {n}.");
        return Cached(("twiddles", n), () =>
        {
            var t = new double[2 * n];
            for (var k = 0; k < n; k++)
            {
                var (s, c) = SinCos2Pi(k, n);
                t[2 * k] = c;
                t[2 * k + 1] = -s;
            }
            return t;
        });
    }

    /// <summary>sin and cos of 2 pi k / n, exact at multiples of pi/4 (reduces by symmetry before calling Math).</summary>
    internal static (double Sin, double Cos) SinCos2Pi(long k, long n)
    {
        k %= n;
        if (k < 0) k += n;
        // Exact values at quarter turns keep butterflies free of spurious tiny terms.
        if (4 * k % n == 0)
        {
            return (4 * k / n) switch
            {
                0 => (0.0, 1.0),
                1 => (1.0, 0.0),
                2 => (0.0, -1.0),
                _ => (-1.0, 0.0),
            };
        }
        var angle = 2.0 * Math.PI * k / n;
        return Math.SinCos(angle);
    }

    /// <summary>
    /// Weights of librosa.feature.delta (scipy.signal.savgol_filter with polyorder = deriv = order, mode 'interp'):
    /// row p (0 &lt;= p &lt; width) holds the weights that give the derivative at position p of a window of
    /// <paramref name="width"/> frames, from the least-squares polynomial fit of degree <paramref name="order"/>.
    /// Interior frames use row width/2 on the window centred on them; the first and last width/2 frames use the
    /// rows of the first and last window. Shape [width, width].
    /// </summary>
    public static float[] DeltaWeights(int width, int order)
    {
        if (width < 3 || width % 2 == 0) throw new ArgumentOutOfRangeException(nameof(width), $"width must be an odd integer of at least 3, was {width}.");
        if (order < 1 || order > 2) throw new ArgumentOutOfRangeException(nameof(order), $"order must be 1 or 2, was {order}.");
        if (order >= width) throw new ArgumentOutOfRangeException(nameof(order), $"order ({order}) must be below width ({width}).");
        return Cached(("delta", width, order), () =>
        {
            // Fit on centred positions x = j - half for conditioning; derivatives are shift-invariant.
            int half = width / 2, terms = order + 1;
            var vtv = new double[terms, terms];
            for (var j = 0; j < width; j++)
                for (var a = 0; a < terms; a++)
                    for (var b = 0; b < terms; b++)
                        vtv[a, b] += Math.Pow(j - half, a) * Math.Pow(j - half, b);
            var inv = Invert(vtv);
            var result = new double[width * width];
            for (var p = 0; p < width; p++)
            {
                // d^order/dx^order of sum_a c_a x^a at x = p - half.
                var d = new double[terms];
                for (var a = order; a < terms; a++)
                    d[a] = Factorial(a) / Factorial(a - order) * Math.Pow(p - half, a - order);
                for (var j = 0; j < width; j++)
                {
                    var s = 0.0;
                    for (var a = 0; a < terms; a++)
                        for (var b = 0; b < terms; b++)
                            s += d[a] * inv[a, b] * Math.Pow(j - half, b);
                    result[p * width + j] = s;
                }
            }
            return result;
        });
    }

    private static double Factorial(int n)
    {
        var f = 1.0;
        for (var i = 2; i <= n; i++) f *= i;
        return f;
    }

    private static double[,] Invert(double[,] m)
    {
        var n = m.GetLength(0);
        var a = (double[,])m.Clone();
        var inv = new double[n, n];
        for (var i = 0; i < n; i++) inv[i, i] = 1.0;
        for (var col = 0; col < n; col++)
        {
            var pivot = col;
            for (var r = col + 1; r < n; r++)
                if (Math.Abs(a[r, col]) > Math.Abs(a[pivot, col])) pivot = r;
            for (var c = 0; c < n; c++)
            {
                (a[col, c], a[pivot, c]) = (a[pivot, c], a[col, c]);
                (inv[col, c], inv[pivot, c]) = (inv[pivot, c], inv[col, c]);
            }
            var p = a[col, col];
            for (var c = 0; c < n; c++) { a[col, c] /= p; inv[col, c] /= p; }
            for (var r = 0; r < n; r++)
            {
                if (r == col) continue;
                var f = a[r, col];
                for (var c = 0; c < n; c++) { a[r, c] -= f * a[col, c]; inv[r, c] -= f * inv[col, c]; }
            }
        }
        return inv;
    }
}
