namespace Hybrid.Features.Schemas;

/// <summary>
/// The music-genre write-up's table (GTZAN at 22,050 Hz): the means over time of chroma_stft (pooled over the
/// 12 bins), rms ("rmse"), spectral centroid, bandwidth and roll-off, zero-crossing rate and 20 MFCCs, with
/// librosa's defaults (n_fft 2048, hop 512; chroma with each clip's estimated tuning, chroma_stft's tuning=None). Header: chroma_stft rmse spectral_centroid spectral_bandwidth
/// rolloff zero_crossing_rate mfcc1 ... mfcc20 (26 columns). Registered as "genre".
/// </summary>
[FeatureSchema("genre", SampleRate = 22050, EstimateTuning = true)]
public sealed partial record GenreFeatures
{
    /// <summary>Mean chroma over 12 bins and all frames (np.mean(chroma_stft)).</summary>
    [Chroma(Statistic.Mean)]
    public partial float ChromaStft { get; }

    /// <summary>Mean frame RMS.</summary>
    [Rms(Statistic.Mean)]
    public partial float Rmse { get; }

    /// <summary>Mean spectral centroid in Hz.</summary>
    [SpectralCentroid(Statistic.Mean)]
    public partial float SpectralCentroid { get; }

    /// <summary>Mean spectral bandwidth in Hz.</summary>
    [SpectralBandwidth(Statistic.Mean)]
    public partial float SpectralBandwidth { get; }

    /// <summary>Mean 85 % roll-off frequency in Hz.</summary>
    [SpectralRolloff(Statistic.Mean)]
    public partial float Rolloff { get; }

    /// <summary>Mean zero-crossing rate.</summary>
    [ZeroCrossingRate(Statistic.Mean)]
    public partial float ZeroCrossingRate { get; }

    /// <summary>Means of MFCC 1..20 over frames.</summary>
    [Mfcc(20, Statistic.Mean)]
    public partial ReadOnlyMemory<float> Mfcc { get; }
}

/// <summary>
/// The UrbanSound8K write-up's vector: the mean over time of 40 MFCCs at 22,050 Hz
/// (np.mean(librosa.feature.mfcc(y, sr, n_mfcc=40).T, axis=0)); columns mfcc1..mfcc40. Registered as "mfcc-mean40".
/// </summary>
[FeatureSchema("mfcc-mean40", SampleRate = 22050, NMfcc = 40)]
public sealed partial record MfccMean40Features
{
    /// <summary>Means of MFCC 1..40 over frames.</summary>
    [Mfcc(40, Statistic.Mean)]
    public partial ReadOnlyMemory<float> Mfcc { get; }
}

/// <summary>
/// A log-mel "image" for FSDD: clips of 8,192 samples at 8 kHz, n_fft 256, hop 128, 40 Slaney mel bands,
/// power_to_db with top_db 80 per clip; shape [40, 65] (mels x frames), columns log_mel{mel}_{frame}.
/// Registered as "logmel-fsdd".
/// </summary>
[FeatureSchema("logmel-fsdd", SampleRate = 8000, ClipSamples = 8192, NFft = 256, HopLength = 128, NMels = 40)]
public sealed partial record LogMelFsddFeatures
{
    /// <summary>Log-power mel spectrogram, [40, 65] row-major.</summary>
    [MelBands(Statistic.TimeSeries)]
    public partial ReadOnlyMemory<float> LogMel { get; }
}

/// <summary>
/// The raw waveform of 8,192 samples at 8 kHz for 1-D convolutional models; shape [8192], columns
/// waveform1..waveform8192. Registered as "raw8192".
/// </summary>
[FeatureSchema("raw8192", SampleRate = 8000, ClipSamples = 8192)]
public sealed partial record Raw8192Features
{
    /// <summary>The clip's samples.</summary>
    [Waveform(8192)]
    public partial ReadOnlyMemory<float> Waveform { get; }
}

/// <summary>The registry of predefined schemas, by the names <c>--schema</c> accepts.</summary>
public static class Schemas
{
    /// <summary>Every predefined schema: genre, mfcc-mean40, logmel-fsdd, raw8192.</summary>
    public static IReadOnlyList<FeatureSchemaInfo> All { get; } = Array.AsReadOnly(new[]
    {
        GenreFeatures.Info,
        MfccMean40Features.Info,
        LogMelFsddFeatures.Info,
        Raw8192Features.Info,
    });

    /// <summary>The registered names, in the order of <see cref="All"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = Array.AsReadOnly(All.Select(s => s.Name).ToArray());

    /// <summary>The schema registered as <paramref name="name"/> (case-insensitive); throws
    /// <see cref="ArgumentException"/> listing the known names otherwise.</summary>
    public static FeatureSchemaInfo ByName(string name) =>
        TryGetByName(name, out var info)
            ? info
            : throw new ArgumentException($"Unknown feature schema '{name}'; expected one of: {string.Join(", ", Names)}.", nameof(name));

    /// <summary>Looks a schema up by name (case-insensitive).</summary>
    public static bool TryGetByName(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FeatureSchemaInfo? info)
    {
        info = All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
        return info is not null;
    }
}
