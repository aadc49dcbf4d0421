namespace Hybrid.Dsp;

/// <summary>Analysis window shapes (periodic, as <c>scipy.signal.get_window(..., fftbins=True)</c> used by librosa).</summary>
public enum WindowKind
{
    /// <summary>Periodic Hann: 0.5 - 0.5 cos(2 pi n / N).</summary>
    Hann,
    /// <summary>Periodic Hamming: 0.54 - 0.46 cos(2 pi n / N).</summary>
    Hamming,
    /// <summary>Periodic Blackman: 0.42 - 0.5 cos(2 pi n / N) + 0.08 cos(4 pi n / N).</summary>
    Blackman,
    /// <summary>All ones (librosa's 'boxcar' / 'rectangular').</summary>
    Rectangular,
}

/// <summary>How a centred STFT pads the signal by n_fft/2 on both sides (numpy.pad modes, as librosa's pad_mode).</summary>
public enum PadMode
{
    /// <summary>Zeros (librosa 0.10's default).</summary>
    Constant,
    /// <summary>Mirror without repeating the edge sample (numpy 'reflect').</summary>
    Reflect,
    /// <summary>Repeat the edge sample (numpy 'edge').</summary>
    Edge,
}

/// <summary>Mel filter normalisation (librosa.filters.mel's <c>norm</c>).</summary>
public enum MelNorm
{
    /// <summary>No normalisation: triangles peak at 1.</summary>
    None,
    /// <summary>Slaney area normalisation: each triangle scaled by 2 / (f_high - f_low).</summary>
    Slaney,
}

/// <summary>What an STFT writes per time-frequency cell.</summary>
public enum SpectrumKind
{
    /// <summary>|X|^2 (librosa power=2).</summary>
    Power,
    /// <summary>|X| (librosa power=1).</summary>
    Magnitude,
    /// <summary>Re and Im interleaved in a trailing axis of length 2.</summary>
    Complex,
}

/// <summary>
/// Short-time Fourier transform settings with librosa.stft's names and 0.10 defaults
/// (n_fft 2048, hop n_fft/4, win_length n_fft, periodic Hann, center with zero padding).
/// </summary>
/// <param name="NFft">FFT length in samples, 2..16384.</param>
/// <param name="HopLength">Samples between frame starts; null means NFft / 4.</param>
/// <param name="WinLength">Window length, at most NFft, centred in the frame; null means NFft.</param>
/// <param name="Window">Window shape.</param>
/// <param name="Center">Pad NFft/2 on both sides so frame t is centred on sample t * hop.</param>
/// <param name="PadMode">Padding used when <paramref name="Center"/> is true.</param>
public sealed record StftConfig(
    int NFft = 2048,
    int? HopLength = null,
    int? WinLength = null,
    WindowKind Window = WindowKind.Hann,
    bool Center = true,
    PadMode PadMode = PadMode.Constant)
{
    /// <summary>Effective hop length.</summary>
    public int Hop => HopLength ?? NFft / 4;

    /// <summary>Effective window length.</summary>
    public int Win => WinLength ?? NFft;

    /// <summary>Number of frequency bins of a real STFT: NFft / 2 + 1.</summary>
    public int Bins => NFft / 2 + 1;

    /// <summary>Frames produced for a clip of <paramref name="samples"/> samples (librosa's count).</summary>
    public int FrameCount(int samples)
    {
        var padded = Center ? samples + 2 * (NFft / 2) : samples;
        if (padded < NFft) throw new ArgumentException($"n_fft={NFft} is longer than the (padded) signal of {padded} samples.", nameof(samples));
        return 1 + (padded - NFft) / Hop;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid parameter.</summary>
    public void Validate()
    {
        if (NFft < 2 || NFft > 16384) throw new ArgumentException($"n_fft must be in 2..16384, was {NFft}.", nameof(NFft));
        if (Hop < 1) throw new ArgumentException($"hop_length must be at least 1, was {Hop}.", nameof(HopLength));
        if (Win < 1 || Win > NFft) throw new ArgumentException($"win_length must be in 1..n_fft ({NFft}), was {Win}.", nameof(WinLength));
    }
}

/// <summary>Mel filter bank settings (librosa.filters.mel's names and defaults: Slaney scale and norm).</summary>
/// <param name="SampleRate">Sampling rate in Hz (librosa's sr).</param>
/// <param name="NMels">Number of mel bands.</param>
/// <param name="FMin">Lowest edge in Hz.</param>
/// <param name="FMax">Highest edge in Hz; null means sr / 2.</param>
/// <param name="Htk">Use the HTK mel formula instead of Slaney's.</param>
/// <param name="Norm">Filter normalisation.</param>
public sealed record MelConfig(
    int SampleRate = 22050,
    int NMels = 128,
    double FMin = 0.0,
    double? FMax = null,
    bool Htk = false,
    MelNorm Norm = MelNorm.Slaney)
{
    /// <summary>Effective upper edge in Hz.</summary>
    public double FMaxOrNyquist => FMax ?? SampleRate / 2.0;
}

/// <summary>
/// Decibel conversion settings (librosa.power_to_db: 10 log10(max(amin, S) / ref), then values below
/// max - top_db clipped). Unlike librosa on a stacked array, top_db is applied per clip, never across a batch.
/// </summary>
/// <param name="Ref">Reference value (librosa's ref as a number).</param>
/// <param name="Amin">Floor applied before the logarithm.</param>
/// <param name="TopDb">Dynamic range kept below each clip's maximum; null keeps everything.</param>
public sealed record DbConfig(double Ref = 1.0, double Amin = 1e-10, double? TopDb = 80.0);

/// <summary>
/// Per-channel energy normalisation settings (librosa.pcen's names and defaults, librosa 0.10.2). The smoothing
/// coefficient b is derived from <see cref="TimeConstant"/>, the sampling rate and the hop (librosa's b=None).
/// </summary>
/// <param name="TimeConstant">Time constant of the smoothing filter in seconds, &gt; 0 (librosa's default 0.4).</param>
/// <param name="Gain">Exponent of the adaptive gain control, &gt;= 0 (librosa's alpha, default 0.98).</param>
/// <param name="Bias">Bias added before compression, &gt;= 0 (librosa's delta, default 2).</param>
/// <param name="Power">Compression exponent, &gt;= 0 (librosa's r, default 0.5; 0 is log1p compression).</param>
/// <param name="Eps">Floor added to the smoothed energy, &gt; 0 (default 1e-6).</param>
/// <param name="InputScale">Factor applied to S before PCEN, &gt; 0 (librosa.pcen itself: 1; Hybrid's mel features
/// use 2^31, as librosa's documentation does for floating-point audio in [-1, 1]).</param>
public sealed record PcenConfig(
    double TimeConstant = 0.4,
    double Gain = 0.98,
    double Bias = 2.0,
    double Power = 0.5,
    double Eps = 1e-6,
    double InputScale = 1.0)
{
    /// <summary>
    /// librosa's smoothing coefficient for b=None: with T = time_constant * sr / hop_length frames,
    /// b = (sqrt(1 + 4 T^2) - 1) / (2 T^2), in (0, 1]. Throws ArgumentOutOfRangeException for a non-positive
    /// sampling rate or hop.
    /// </summary>
    public double Coefficient(int sampleRate, int hopLength)
    {
        if (sampleRate <= 0) throw new ArgumentOutOfRangeException(nameof(sampleRate), sampleRate, "sr must be positive.");
        if (hopLength <= 0) throw new ArgumentOutOfRangeException(nameof(hopLength), hopLength, "hop_length must be positive.");
        var t = TimeConstant * sampleRate / hopLength;
        return (Math.Sqrt(1 + 4 * t * t) - 1) / (2 * t * t);
    }

    /// <summary>Throws ArgumentOutOfRangeException naming the first setting outside librosa.pcen's domain
    /// (time_constant &gt; 0, gain, bias and power &gt;= 0, eps &gt; 0, all finite; input scale &gt; 0).</summary>
    public void Validate()
    {
        if (!(TimeConstant > 0) || double.IsInfinity(TimeConstant)) throw new ArgumentOutOfRangeException(nameof(TimeConstant), TimeConstant, "time_constant must be positive and finite.");
        if (!(Gain >= 0) || double.IsInfinity(Gain)) throw new ArgumentOutOfRangeException(nameof(Gain), Gain, "gain must be non-negative and finite.");
        if (!(Bias >= 0) || double.IsInfinity(Bias)) throw new ArgumentOutOfRangeException(nameof(Bias), Bias, "bias must be non-negative and finite.");
        if (!(Power >= 0) || double.IsInfinity(Power)) throw new ArgumentOutOfRangeException(nameof(Power), Power, "power must be non-negative and finite.");
        if (!(Eps > 0) || double.IsInfinity(Eps)) throw new ArgumentOutOfRangeException(nameof(Eps), Eps, "eps must be positive and finite.");
        if (!(InputScale > 0) || double.IsInfinity(InputScale)) throw new ArgumentOutOfRangeException(nameof(InputScale), InputScale, "the input scale must be positive and finite.");
    }
}
