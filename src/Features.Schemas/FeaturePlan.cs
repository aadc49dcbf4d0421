using System.Globalization;
using Hybrid.Dsp;

namespace Hybrid.Features.Schemas;

/// <summary>What a schema member computes (one per feature attribute).</summary>
public enum FeatureKind
{
    /// <summary>librosa.feature.spectral_centroid.</summary>
    SpectralCentroid,
    /// <summary>librosa.feature.spectral_bandwidth.</summary>
    SpectralBandwidth,
    /// <summary>librosa.feature.spectral_rolloff.</summary>
    SpectralRolloff,
    /// <summary>librosa.feature.spectral_flatness.</summary>
    SpectralFlatness,
    /// <summary>librosa.feature.zero_crossing_rate.</summary>
    ZeroCrossingRate,
    /// <summary>librosa.feature.rms.</summary>
    Rms,
    /// <summary>librosa.feature.chroma_stft.</summary>
    Chroma,
    /// <summary>librosa.feature.mfcc.</summary>
    Mfcc,
    /// <summary>librosa.feature.delta of the MFCCs.</summary>
    MfccDelta,
    /// <summary>librosa.feature.melspectrogram (optionally in dB).</summary>
    MelBands,
    /// <summary>The raw waveform.</summary>
    Waveform,
}

/// <summary>
/// One member of a schema's extraction plan, as emitted by the generator: what to compute, how to
/// summarise it, and where its <see cref="Width"/> floats go in a row.
/// </summary>
public sealed record FeatureMember
{
    /// <summary>The C# property holding the member.</summary>
    public required string Property { get; init; }

    /// <summary>What is computed.</summary>
    public required FeatureKind Kind { get; init; }

    /// <summary>Statistic over frames, or <see cref="Statistic.TimeSeries"/>.</summary>
    public required Statistic Statistic { get; init; }

    /// <summary>Column base name (see <see cref="FeatureAttribute"/> for how columns are numbered).</summary>
    public required string Column { get; init; }

    /// <summary>Index of the member's first float in a row.</summary>
    public required int Offset { get; init; }

    /// <summary>Floats in the row: Rows for a statistic, Rows x Frames for a time series, 1 when pooled.</summary>
    public required int Width { get; init; }

    /// <summary>Rows computed per frame: 1 for scalar features, 12 for chroma, the count for MFCC and deltas,
    /// n_mels for mel bands, 1 for the waveform.</summary>
    public required int Rows { get; init; }

    /// <summary>Frames of a time series (samples for the waveform); 0 for a statistic.</summary>
    public int Frames { get; init; }

    /// <summary>Chroma only: the statistic runs over all bins and frames (one column).</summary>
    public bool Pooled { get; init; }

    /// <summary>Mel bands only: converted with power_to_db.</summary>
    public bool Decibels { get; init; }

    /// <summary>MFCC deltas only: derivative order (1 or 2).</summary>
    public int DeltaOrder { get; init; }

    /// <summary>MFCC deltas only: Savitzky-Golay width (odd, at least 3).</summary>
    public int DeltaWidth { get; init; }

    /// <summary>ZCR and RMS only: samples per frame.</summary>
    public int FrameLength { get; init; }

    /// <summary>ZCR and RMS only: samples between frames.</summary>
    public int HopLength { get; init; }

    /// <summary>One line describing the member, e.g. "mfcc: Mfcc[20] Mean at 6..26".</summary>
    public string Describe() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Column}: {Kind}[{Rows}{(Pooled ? ", pooled" : "")}] {Statistic}{(Frames > 0 ? $" x {Frames} frames" : "")} at {Offset}..{Offset + Width}");
}

/// <summary>
/// A schema's DSP parameters with every default resolved (librosa names; hop, win_length and fmax are the
/// effective values). These and the layout are what the schema's fingerprint hashes.
/// </summary>
public sealed record FeatureParameters
{
    /// <summary>Sampling rate in Hz.</summary>
    public required int SampleRate { get; init; }

    /// <summary>Samples per clip; 0 means any length (statistics only).</summary>
    public required int ClipSamples { get; init; }

    /// <summary>FFT length.</summary>
    public required int NFft { get; init; }

    /// <summary>Hop length.</summary>
    public required int HopLength { get; init; }

    /// <summary>Window length.</summary>
    public required int WinLength { get; init; }

    /// <summary>Analysis window.</summary>
    public required WindowKind Window { get; init; }

    /// <summary>Centred frames.</summary>
    public required bool Center { get; init; }

    /// <summary>Padding when centred.</summary>
    public required PadMode PadMode { get; init; }

    /// <summary>Mel bands.</summary>
    public required int NMels { get; init; }

    /// <summary>Lowest mel edge in Hz.</summary>
    public required double FMin { get; init; }

    /// <summary>Highest mel edge in Hz.</summary>
    public required double FMax { get; init; }

    /// <summary>HTK mel formula.</summary>
    public required bool Htk { get; init; }

    /// <summary>Mel filter normalisation.</summary>
    public required MelNorm Norm { get; init; }

    /// <summary>Exponent of the magnitude spectrogram fed to the mel filters.</summary>
    public required double Power { get; init; }

    /// <summary>power_to_db's top_db per clip; null keeps everything.</summary>
    public required double? TopDb { get; init; }

    /// <summary>Default MFCC count.</summary>
    public required int NMfcc { get; init; }

    /// <summary>Cepstral lifter (0: none).</summary>
    public required double Lifter { get; init; }

    /// <summary>Chroma tuning in fractions of a bin.</summary>
    public required double Tuning { get; init; }

    /// <summary>Chroma tuning estimated per clip (librosa's tuning=None) instead of <see cref="Tuning"/>.</summary>
    public bool EstimateTuning { get; init; }

    /// <summary>Spectral roll-off energy fraction.</summary>
    public required double RollPercent { get; init; }

    /// <summary>The STFT every spectral member shares.</summary>
    public StftConfig Stft => new(NFft, HopLength, WinLength, Window, Center, PadMode);

    /// <summary>The mel filter bank of mel-based members.</summary>
    public MelConfig Mel => new(SampleRate, NMels, FMin, FMax, Htk, Norm);

    /// <summary>power_to_db settings (ref 1, amin 1e-10, top_db per clip).</summary>
    public DbConfig Db => new(1.0, 1e-10, TopDb);
}

/// <summary>
/// Raised when data does not fit a feature schema (wrong clip length, wrong destination size, a file
/// written for another schema); the message names the schema and what was expected.
/// </summary>
public sealed class SchemaMismatchException : Exception
{
    /// <summary>Creates the exception for schema <paramref name="schema"/>.</summary>
    public SchemaMismatchException(string schema, string problem)
        : base($"Feature schema '{schema}': {problem}")
    {
        Schema = schema;
        Problem = problem;
    }

    /// <summary>The schema's name.</summary>
    public string Schema { get; }

    /// <summary>What did not fit.</summary>
    public string Problem { get; }
}

/// <summary>
/// Implemented by every generated schema type: its static <see cref="FeatureSchemaInfo"/>, construction from a
/// row of floats and copy back. Use it as a generic constraint (<c>where T : IFeatureSchema&lt;T&gt;</c>).
/// </summary>
public interface IFeatureSchema<TSelf> where TSelf : IFeatureSchema<TSelf>
{
    /// <summary>The schema's layout, fingerprint and extraction plan.</summary>
    static abstract FeatureSchemaInfo Info { get; }

    /// <summary>Creates a value from one row of <c>Info.Length</c> floats (copied).</summary>
    static abstract TSelf FromSpan(ReadOnlySpan<float> row);

    /// <summary>Copies the value's <c>Info.Length</c> floats into <paramref name="destination"/>.</summary>
    void CopyTo(Span<float> destination);
}
