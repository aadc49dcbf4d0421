using Hybrid.Dsp;

namespace Hybrid.Features.Schemas;

/// <summary>
/// Marks a <c>partial</c> record, record struct or struct as a feature schema. The Hybrid generator adds a fixed
/// layout (<c>Length</c>, <c>Shape</c>, per-member <c>Offset</c>/<c>Width</c> constants), the column <c>Names</c>,
/// a <c>Fingerprint</c>, construction from and copy to <see cref="Span{T}"/>, and a static <c>Info</c>
/// (<see cref="FeatureSchemaInfo"/>) whose <c>Extract</c> computes a batch of clips on an <see cref="Engine"/>.
/// Members are partial properties carrying one feature attribute each (<see cref="MfccAttribute"/>,
/// <see cref="SpectralCentroidAttribute"/>, ...). DSP parameters use librosa's names and 0.10 defaults;
/// 0 in <see cref="HopLength"/>, <see cref="WinLength"/> and <see cref="FMax"/> means librosa's default
/// (n_fft / 4, n_fft and sr / 2).
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, Inherited = false, AllowMultiple = false)]
public sealed class FeatureSchemaAttribute : Attribute
{
    /// <summary>Declares a schema registered under <paramref name="name"/> (e.g. "genre").</summary>
    public FeatureSchemaAttribute(string name) => Name = name;

    /// <summary>The schema's name, as used by <c>--schema</c> and <see cref="Schemas.ByName"/>.</summary>
    public string Name { get; }

    /// <summary>Sampling rate in Hz of the clips the schema is computed from (librosa's sr). Default 22,050.</summary>
    public int SampleRate { get; set; } = 22050;

    /// <summary>Samples per clip; required (positive) when a member keeps a time series, 0 means any length.</summary>
    public int ClipSamples { get; set; }

    /// <summary>FFT length in samples, 2..16384 (librosa's n_fft). Default 2048.</summary>
    public int NFft { get; set; } = 2048;

    /// <summary>Samples between frames (hop_length); 0 means n_fft / 4.</summary>
    public int HopLength { get; set; }

    /// <summary>Window length, at most n_fft (win_length); 0 means n_fft.</summary>
    public int WinLength { get; set; }

    /// <summary>Analysis window (periodic). Default Hann.</summary>
    public WindowKind Window { get; set; } = WindowKind.Hann;

    /// <summary>Centre frames by padding n_fft / 2 on both sides. Default true.</summary>
    public bool Center { get; set; } = true;

    /// <summary>Padding used when centred. Default zeros (librosa 0.10's 'constant').</summary>
    public PadMode PadMode { get; set; } = PadMode.Constant;

    /// <summary>Number of mel bands (n_mels). Default 128.</summary>
    public int NMels { get; set; } = 128;

    /// <summary>Lowest mel edge in Hz (fmin). Default 0.</summary>
    public double FMin { get; set; }

    /// <summary>Highest mel edge in Hz (fmax); 0 means sr / 2.</summary>
    public double FMax { get; set; }

    /// <summary>Use the HTK mel formula instead of Slaney's (htk). Default false.</summary>
    public bool Htk { get; set; }

    /// <summary>Mel filter normalisation (norm). Default Slaney.</summary>
    public MelNorm Norm { get; set; } = MelNorm.Slaney;

    /// <summary>Exponent of the magnitude spectrogram fed to the mel filters (power). Default 2.</summary>
    public double Power { get; set; } = 2.0;

    /// <summary>Dynamic range in dB kept below each clip's maximum by power_to_db (top_db), positive;
    /// <see cref="double.PositiveInfinity"/> keeps everything. Default 80.</summary>
    public double TopDb { get; set; } = 80.0;

    /// <summary>MFCC count used by <see cref="MfccAttribute"/> and <see cref="MfccDeltaAttribute"/> members
    /// that give no count (n_mfcc). Default 20.</summary>
    public int NMfcc { get; set; } = 20;

    /// <summary>Sinusoidal cepstral lifter (lifter); 0 disables it. Default 0.</summary>
    public double Lifter { get; set; }

    /// <summary>Chroma tuning deviation in fractions of a bin, in [-0.5, 0.5) (tuning). Default 0.</summary>
    public double Tuning { get; set; }

    /// <summary>Estimate each clip's chroma tuning from its power spectrogram instead of using
    /// <see cref="Tuning"/>, as librosa.feature.chroma_stft does with its default tuning=None
    /// (<c>Hybrid.Dsp.Tuning.ChromaStft</c>). Default false; true enters the schema's fingerprint.</summary>
    public bool EstimateTuning { get; set; }

    /// <summary>Energy fraction below the roll-off frequency, in (0, 1) (roll_percent). Default 0.85.</summary>
    public double RollPercent { get; set; } = 0.85;
}

/// <summary>
/// Base of the member attributes: marks a <c>partial</c> property of a <see cref="FeatureSchemaAttribute"/> type
/// as one feature. Columns are named after <see cref="Column"/>, or the property name in snake_case
/// (SpectralCentroid becomes spectral_centroid); a member of width 1 gives one column of that name, a vector
/// gives name1..nameN, a multi-row time series gives name{row}_{frame} (both 1-based).
/// Scalar features with a statistic are <c>float</c> properties; every other member is
/// <c>ReadOnlyMemory&lt;float&gt;</c> ([rows] or [rows, frames] in row-major order).
/// </summary>
[AttributeUsage(AttributeTargets.Property, Inherited = false, AllowMultiple = false)]
public abstract class FeatureAttribute : Attribute
{
    /// <summary>Sets the statistic.</summary>
    protected FeatureAttribute(Statistic statistic) => Statistic = statistic;

    /// <summary>How frames are summarised, or <see cref="Statistic.TimeSeries"/> to keep them.</summary>
    public Statistic Statistic { get; }

    /// <summary>Column base name; null means the property name in snake_case.</summary>
    public string? Column { get; set; }
}

/// <summary>librosa.feature.spectral_centroid (Hz) of the magnitude spectrogram; one value per frame.</summary>
public sealed class SpectralCentroidAttribute : FeatureAttribute
{
    /// <summary>The mean over frames.</summary>
    public SpectralCentroidAttribute() : base(Statistic.Mean) { }

    /// <summary>The given statistic over frames, or the time series.</summary>
    public SpectralCentroidAttribute(Statistic statistic) : base(statistic) { }
}

/// <summary>librosa.feature.spectral_bandwidth (p 2, Hz) of the magnitude spectrogram; one value per frame.</summary>
public sealed class SpectralBandwidthAttribute : FeatureAttribute
{
    /// <summary>The mean over frames.</summary>
    public SpectralBandwidthAttribute() : base(Statistic.Mean) { }

    /// <summary>The given statistic over frames, or the time series.</summary>
    public SpectralBandwidthAttribute(Statistic statistic) : base(statistic) { }
}

/// <summary>librosa.feature.spectral_rolloff (Hz, the schema's RollPercent) of the magnitude spectrogram.</summary>
public sealed class SpectralRolloffAttribute : FeatureAttribute
{
    /// <summary>The mean over frames.</summary>
    public SpectralRolloffAttribute() : base(Statistic.Mean) { }

    /// <summary>The given statistic over frames, or the time series.</summary>
    public SpectralRolloffAttribute(Statistic statistic) : base(statistic) { }
}

/// <summary>librosa.feature.spectral_flatness (amin 1e-10, power 2) of the magnitude spectrogram; in [0, 1].</summary>
public sealed class SpectralFlatnessAttribute : FeatureAttribute
{
    /// <summary>The mean over frames.</summary>
    public SpectralFlatnessAttribute() : base(Statistic.Mean) { }

    /// <summary>The given statistic over frames, or the time series.</summary>
    public SpectralFlatnessAttribute(Statistic statistic) : base(statistic) { }
}

/// <summary>librosa.feature.zero_crossing_rate of the waveform (fraction of sign changes per frame).</summary>
public sealed class ZeroCrossingRateAttribute : FeatureAttribute
{
    /// <summary>The mean over frames.</summary>
    public ZeroCrossingRateAttribute() : base(Statistic.Mean) { }

    /// <summary>The given statistic over frames, or the time series.</summary>
    public ZeroCrossingRateAttribute(Statistic statistic) : base(statistic) { }

    /// <summary>Samples per frame (frame_length); 0 means the schema's n_fft.</summary>
    public int FrameLength { get; set; }

    /// <summary>Samples between frames (hop_length); 0 means the schema's hop length.</summary>
    public int HopLength { get; set; }
}

/// <summary>librosa.feature.rms of the waveform (root mean square per frame; the genre write-up's "rmse").</summary>
public sealed class RmsAttribute : FeatureAttribute
{
    /// <summary>The mean over frames.</summary>
    public RmsAttribute() : base(Statistic.Mean) { }

    /// <summary>The given statistic over frames, or the time series.</summary>
    public RmsAttribute(Statistic statistic) : base(statistic) { }

    /// <summary>Samples per frame (frame_length); 0 means the schema's n_fft.</summary>
    public int FrameLength { get; set; }

    /// <summary>Samples between frames (hop_length); 0 means the schema's hop length.</summary>
    public int HopLength { get; set; }
}

/// <summary>
/// librosa.feature.chroma_stft (12 pitch classes, power spectrogram, the schema's Tuning). By default the
/// statistic runs over all 12 bins and all frames, giving one column (the genre write-up's
/// <c>np.mean(chroma_stft)</c>); with <see cref="PerBin"/> each bin gets its own column (12), and a time
/// series keeps [12, frames].
/// </summary>
public sealed class ChromaAttribute : FeatureAttribute
{
    /// <summary>The mean over bins and frames.</summary>
    public ChromaAttribute() : base(Statistic.Mean) { }

    /// <summary>The given statistic, or the [12, frames] time series (which needs <see cref="PerBin"/>).</summary>
    public ChromaAttribute(Statistic statistic) : base(statistic) { }

    /// <summary>Keep the 12 bins apart (12 columns) instead of pooling them.</summary>
    public bool PerBin { get; set; }
}

/// <summary>librosa.feature.mfcc: DCT-II (ortho) of the log-power mel spectrogram (power_to_db, top_db per clip).</summary>
public sealed class MfccAttribute : FeatureAttribute
{
    /// <summary>The schema's NMfcc coefficients, each averaged over frames.</summary>
    public MfccAttribute() : base(Statistic.Mean) { }

    /// <summary>The schema's NMfcc coefficients with the given statistic, or the [n_mfcc, frames] series.</summary>
    public MfccAttribute(Statistic statistic) : base(statistic) { }

    /// <summary><paramref name="count"/> coefficients (n_mfcc, at most n_mels) with the given statistic.</summary>
    public MfccAttribute(int count, Statistic statistic) : base(statistic) => Count = count;

    /// <summary>Number of coefficients; 0 means the schema's NMfcc.</summary>
    public int Count { get; }
}

/// <summary>librosa.feature.delta (Savitzky-Golay, mode 'interp') of the MFCCs along time.</summary>
public sealed class MfccDeltaAttribute : FeatureAttribute
{
    /// <summary>First-order deltas of the schema's NMfcc coefficients, averaged over frames.</summary>
    public MfccDeltaAttribute() : base(Statistic.Mean) { }

    /// <summary>Deltas of the schema's NMfcc coefficients with the given statistic.</summary>
    public MfccDeltaAttribute(Statistic statistic) : base(statistic) { }

    /// <summary>Deltas of <paramref name="count"/> coefficients with the given statistic.</summary>
    public MfccDeltaAttribute(int count, Statistic statistic) : base(statistic) => Count = count;

    /// <summary>Number of coefficients; 0 means the schema's NMfcc.</summary>
    public int Count { get; }

    /// <summary>Derivative order, 1 or 2 (order). Default 1.</summary>
    public int Order { get; set; } = 1;

    /// <summary>Odd filter width of at least 3, at most the frame count (width). Default 9.</summary>
    public int Width { get; set; } = 9;
}

/// <summary>
/// librosa.feature.melspectrogram (n_mels rows, the schema's power) converted by power_to_db (top_db per
/// clip) unless <see cref="Decibels"/> is false.
/// </summary>
public sealed class MelBandsAttribute : FeatureAttribute
{
    /// <summary>Each band averaged over frames.</summary>
    public MelBandsAttribute() : base(Statistic.Mean) { }

    /// <summary>Each band with the given statistic, or the [n_mels, frames] series (a log-mel "image").</summary>
    public MelBandsAttribute(Statistic statistic) : base(statistic) { }

    /// <summary>Convert to dB with power_to_db (ref 1, amin 1e-10, the schema's TopDb). Default true.</summary>
    public bool Decibels { get; set; } = true;
}

/// <summary>
/// The raw waveform: the first <see cref="Samples"/> samples of each clip, zero-padded at the end when the
/// clip is shorter (for 1-D convolutional models). Always a time series of one row.
/// </summary>
public sealed class WaveformAttribute : FeatureAttribute
{
    /// <summary>Keeps <paramref name="samples"/> samples.</summary>
    public WaveformAttribute(int samples) : base(Statistic.TimeSeries) => Samples = samples;

    /// <summary>Number of samples kept, positive.</summary>
    public int Samples { get; }
}

/// <summary>
/// kymatio 0.4's 1-D scattering transform of the clip (<see cref="IDspOps.Scattering1D"/>, Andén and Mallat 2014)
/// summarised over frames: <see cref="Statistic.LogMean"/> keeps log(|S| + <see cref="LogEpsilon"/>) averaged over
/// frames for every path except order 0 (kymatio's spoken-digit example), <see cref="Statistic.LogStd"/> its standard
/// deviation over frames, both optionally per part of the clip (<see cref="Segments"/>), <see cref="Statistic.Mean"/>
/// the plain mean of every path. Needs the schema's ClipSamples (2^J and T must not exceed it). Rows are numbered scattering paths
/// in kymatio's order.
/// </summary>
public sealed class ScatteringAttribute : FeatureAttribute
{
    /// <summary>Scattering of scale 2^<paramref name="j"/> with <paramref name="q"/> first-order wavelets per octave.</summary>
    public ScatteringAttribute(int j, int q, Statistic statistic) : base(statistic)
    {
        J = j;
        Q = q;
    }

    /// <summary>Log2 of the largest wavelet scale, 1..log2(ClipSamples).</summary>
    public int J { get; }

    /// <summary>First-order wavelets per octave, 1..64.</summary>
    public int Q { get; }

    /// <summary>Averaging scale in samples, a power of two up to ClipSamples; 0 means 2^J.</summary>
    public int T { get; set; }

    /// <summary>Deepest order, 1 or 2 (default 2).</summary>
    public int MaxOrder { get; set; } = 2;

    /// <summary>Added to |S| before the logarithm of <see cref="Statistic.LogMean"/>, positive (default 1e-6).</summary>
    public double LogEpsilon { get; set; } = 1e-6;

    /// <summary>Divide each clip by its peak absolute value first (kymatio's spoken-digit example); silent clips stay zero.</summary>
    public bool PeakNormalize { get; set; }

    /// <summary>With <see cref="Statistic.LogMean"/> or <see cref="Statistic.LogStd"/>: the statistic is taken over this
    /// many equal consecutive parts of the frames instead of all of them (1..frames, default 1), so that the row keeps
    /// the clip's coarse temporal order; rows are path-major (path 1's parts, then path 2's, ...). Frame f belongs to
    /// part floor(f * Segments / frames).</summary>
    public int Segments { get; set; } = 1;
}
