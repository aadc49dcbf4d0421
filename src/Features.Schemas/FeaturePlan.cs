using System.Globalization;
using Hybrid.Dsp;

namespace Hybrid.Features.Schemas;

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

    /// <summary>Mel bands only: converted to dB with librosa's rule for the schema's power: power_to_db at power 2,
    /// amplitude_to_db at power 1 (power_to_db of S^(2/power) in general; see <see cref="FeatureParameters.MelDb"/>).</summary>
    public bool Decibels { get; init; }

    /// <summary>MFCC deltas only: derivative order (1 or 2).</summary>
    public int DeltaOrder { get; init; }

    /// <summary>MFCC deltas only: Savitzky-Golay width (odd, at least 3).</summary>
    public int DeltaWidth { get; init; }

    /// <summary>ZCR and RMS only: samples per frame.</summary>
    public int FrameLength { get; init; }

    /// <summary>ZCR and RMS only: samples between frames.</summary>
    public int HopLength { get; init; }

    /// <summary>Scattering: log2 of the largest wavelet scale (0 for other kinds).</summary>
    public int ScatteringJ { get; init; }

    /// <summary>Scattering: first-order wavelets per octave.</summary>
    public int ScatteringQ { get; init; }

    /// <summary>Scattering: averaging scale in samples (0: 2^J).</summary>
    public int ScatteringT { get; init; }

    /// <summary>Scattering: deepest order, 1 or 2.</summary>
    public int ScatteringMaxOrder { get; init; }

    /// <summary>Scattering with <see cref="Statistic.LogMean"/>: epsilon added before the logarithm.</summary>
    public double LogEpsilon { get; init; }

    /// <summary>Scattering: divide each clip by its peak absolute value first.</summary>
    public bool PeakNormalize { get; init; }

    /// <summary>Scattering with <see cref="Statistic.LogMean"/> or <see cref="Statistic.LogStd"/>: equal parts of the
    /// frames the statistic is taken over (1: all frames).</summary>
    public int ScatteringSegments { get; init; } = 1;

    private static readonly string[] StftNames = ["n_fft", "hop_length", "win_length", "window", "center", "pad_mode"];
    private static readonly string[] MelNames = ["n_mels", "fmin", "fmax", "htk", "norm"];
    private static readonly IReadOnlyList<string> SpectralReads = Array.AsReadOnly(StftNames);
    private static readonly IReadOnlyList<string> RolloffReads = Array.AsReadOnly([.. StftNames, "roll_percent"]);
    private static readonly IReadOnlyList<string> ChromaReads = Array.AsReadOnly([.. StftNames, "tuning"]);
    private static readonly IReadOnlyList<string> SpectrogramReads = Array.AsReadOnly([.. StftNames, "power"]);
    private static readonly IReadOnlyList<string> MelReads = Array.AsReadOnly([.. StftNames, "power", .. MelNames]);
    private static readonly IReadOnlyList<string> MelDbReads = Array.AsReadOnly([.. StftNames, "power", .. MelNames, "top_db", "pcen"]);
    private static readonly IReadOnlyList<string> MfccReads = Array.AsReadOnly([.. StftNames, "power", .. MelNames, "top_db", "n_mfcc", "lifter"]);
    private static readonly IReadOnlyList<string> ZcrReads = Array.AsReadOnly(new[] { "n_fft", "hop_length", "center" });
    private static readonly IReadOnlyList<string> RmsReads = Array.AsReadOnly(new[] { "n_fft", "hop_length", "center", "pad_mode" });
    private static readonly IReadOnlyList<string> NoReads = Array.AsReadOnly(Array.Empty<string>());

    /// <summary>
    /// The librosa parameters (<see cref="FeatureParameters.Names"/>) whose value changes what this member computes,
    /// besides sr and clip_samples, which every member reads; this is how the executor computes each kind. The
    /// spectral centroid, bandwidth, flatness and roll-off and chroma take a spectrogram whose exponent is fixed, so
    /// they read the STFT parameters (n_fft, hop_length, win_length, window, center, pad_mode) but not power; the
    /// roll-off also reads roll_percent and chroma tuning (used unless the schema estimates it per clip).
    /// The spectrogram reads the STFT parameters and power; mel bands add n_mels, fmin, fmax, htk and norm, and in
    /// dB top_db and pcen; MFCCs and their deltas read the mel parameters, top_db, n_mfcc and lifter (never pcen:
    /// MFCCs keep power_to_db). ZCR and RMS read n_fft and hop_length (their default frame and hop lengths, which
    /// run-time variants follow) and center, RMS also pad_mode. The waveform and the scattering transform read none.
    /// Used by the command line to refuse a feature option that the chosen schema would ignore.
    /// </summary>
    public IReadOnlyList<string> ParametersRead() => Kind switch
    {
        FeatureKind.SpectralCentroid or FeatureKind.SpectralBandwidth or FeatureKind.SpectralFlatness => SpectralReads,
        FeatureKind.SpectralRolloff => RolloffReads,
        FeatureKind.Chroma => ChromaReads,
        FeatureKind.Spectrogram => SpectrogramReads,
        FeatureKind.MelBands => Decibels ? MelDbReads : MelReads,
        FeatureKind.Mfcc or FeatureKind.MfccDelta => MfccReads,
        FeatureKind.ZeroCrossingRate => ZcrReads,
        FeatureKind.Rms => RmsReads,
        _ => NoReads,
    };

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

    /// <summary>
    /// Per-channel energy normalisation of dB mel bands instead of power_to_db (librosa.pcen with sr and hop_length
    /// from these parameters, b from the time constant, on the mel spectrogram scaled by 2^31 as librosa's documentation
    /// does for floating-point audio: <see cref="PcenOf"/>); null (the default): power_to_db. Applies only to mel
    /// bands declared in dB; MFCCs keep power_to_db. Run-time only (<c>pcen=true</c> or
    /// <c>pcen=TIME_CONSTANT:GAIN:BIAS:POWER</c>): no attribute declares it.
    /// </summary>
    public PcenConfig? Pcen { get; init; }

    /// <summary>The factor Hybrid applies to the mel spectrogram before PCEN: 2^31, as librosa's pcen examples scale
    /// the mel spectrogram of floating-point audio in [-1, 1] to the range of 32-bit integer audio.</summary>
    public const double PcenInputScale = 2147483648.0;

    /// <summary>
    /// The PCEN settings a <c>pcen</c> parameter text describes: "none" or "false" (null: power_to_db), "true"
    /// (librosa's defaults: time_constant 0.4 s, gain 0.98, bias 2, power 0.5, eps 1e-6) or
    /// "TIME_CONSTANT:GAIN:BIAS:POWER" (seconds, then three numbers; eps 1e-6), always with the 2^31 input scale
    /// (<see cref="PcenInputScale"/>). Throws <see cref="FormatException"/> for any other text; the ranges are checked
    /// when a schema is laid out (time_constant &gt; 0, gain, bias, power &gt;= 0).
    /// </summary>
    public static PcenConfig? PcenOf(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim().ToLowerInvariant();
        if (t is "none" or "false") return null;
        if (t == "true") return new PcenConfig(InputScale: PcenInputScale);
        var parts = t.Split(':');
        var values = new double[parts.Length];
        if (parts.Length != 4 || !parts.Select((x, i) => double.TryParse(x, NumberStyles.Float, CultureInfo.InvariantCulture, out values[i])).All(ok => ok))
            throw new FormatException($"pcen must be none, true or TIME_CONSTANT:GAIN:BIAS:POWER (four numbers), was '{text}'.");
        return new PcenConfig(values[0], values[1], values[2], values[3], InputScale: PcenInputScale);
    }

    /// <summary>The text <see cref="PcenOf"/> reads back: "none", "true" for librosa's defaults, else
    /// "TIME_CONSTANT:GAIN:BIAS:POWER" with round-trip doubles.</summary>
    public static string PcenText(PcenConfig? config) =>
        config is null ? "none"
        : config == new PcenConfig(InputScale: PcenInputScale) ? "true"
        : string.Join(":", new[] { config.TimeConstant, config.Gain, config.Bias, config.Power }.Select(Real));

    /// <summary>The librosa names of the parameters, in the order <see cref="DifferencesFrom"/> lists them.</summary>
    public static IReadOnlyList<string> Names { get; } = Array.AsReadOnly(new[]
    {
        "sr", "clip_samples", "n_fft", "hop_length", "win_length", "window", "center", "pad_mode", "n_mels", "fmin",
        "fmax", "htk", "norm", "power", "top_db", "n_mfcc", "lifter", "tuning", "roll_percent", "pcen",
    });

    /// <summary>The value of the parameter with librosa name <paramref name="name"/> as text (invariant culture,
    /// doubles round-trip; enums lower-case; top_db "none" when null; pcen as <see cref="PcenText"/>).</summary>
    public string ValueText(string name) => name switch
    {
        "sr" => Int(SampleRate),
        "clip_samples" => Int(ClipSamples),
        "n_fft" => Int(NFft),
        "hop_length" => Int(HopLength),
        "win_length" => Int(WinLength),
        "window" => Window.ToString().ToLowerInvariant(),
        "center" => Center ? "true" : "false",
        "pad_mode" => PadMode.ToString().ToLowerInvariant(),
        "n_mels" => Int(NMels),
        "fmin" => Real(FMin),
        "fmax" => Real(FMax),
        "htk" => Htk ? "true" : "false",
        "norm" => Norm.ToString().ToLowerInvariant(),
        "power" => Real(Power),
        "top_db" => TopDb is { } t ? Real(t) : "none",
        "n_mfcc" => Int(NMfcc),
        "lifter" => Real(Lifter),
        "tuning" => Real(Tuning),
        "roll_percent" => Real(RollPercent),
        "pcen" => PcenText(Pcen),
        _ => throw new ArgumentException($"Unknown feature parameter '{name}'; expected one of {string.Join(", ", Names)}.", nameof(name)),
    };

    private static string Int(int v) => v.ToString(CultureInfo.InvariantCulture);

    private static string Real(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The parameters that differ from <paramref name="other"/>, as "name=value" pairs joined by commas in
    /// the order of <see cref="Names"/> (e.g. "n_fft=512,win_length=512"); empty when all are equal.
    /// <see cref="With(string)"/> applied to <paramref name="other"/> gives these parameters back.</summary>
    public string DifferencesFrom(FeatureParameters other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return string.Join(",", Names.Where(n => ValueText(n) != other.ValueText(n)).Select(n => n + "=" + ValueText(n)));
    }

    /// <summary>
    /// These parameters with the "name=value" pairs of <paramref name="settings"/> (comma-separated librosa names,
    /// as <see cref="DifferencesFrom"/> writes them) applied; an empty text changes nothing. The result is not
    /// validated (a schema's <c>WithParameters</c> does that). Throws <see cref="FormatException"/> naming the pair
    /// that is not name=value, has an unknown name or a value of the wrong type.
    /// </summary>
    public FeatureParameters With(string settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var p = this;
        foreach (var pair in settings.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0) throw new FormatException($"Feature parameters '{settings}': '{pair}' is not name=value.");
            var name = pair[..eq].Trim();
            var text = pair[(eq + 1)..].Trim();
            int AsInt() => int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
                : throw new FormatException($"Feature parameters '{settings}': {name} must be an integer, was '{text}'.");
            double AsReal() => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                : throw new FormatException($"Feature parameters '{settings}': {name} must be a number, was '{text}'.");
            bool AsBool() => bool.TryParse(text, out var v) ? v
                : throw new FormatException($"Feature parameters '{settings}': {name} must be true or false, was '{text}'.");
            PcenConfig? AsPcen()
            {
                try { return PcenOf(text); }
                catch (FormatException e) { throw new FormatException($"Feature parameters '{settings}': {e.Message}", e); }
            }
            T AsEnum<T>() where T : struct, Enum => Enum.TryParse<T>(text, ignoreCase: true, out var v) && Enum.IsDefined(v) ? v
                : throw new FormatException($"Feature parameters '{settings}': {name} must be one of {string.Join(", ", Enum.GetNames<T>()).ToLowerInvariant()}, was '{text}'.");
            p = name switch
            {
                "sr" => p with { SampleRate = AsInt() },
                "clip_samples" => p with { ClipSamples = AsInt() },
                "n_fft" => p with { NFft = AsInt() },
                "hop_length" => p with { HopLength = AsInt() },
                "win_length" => p with { WinLength = AsInt() },
                "window" => p with { Window = AsEnum<WindowKind>() },
                "center" => p with { Center = AsBool() },
                "pad_mode" => p with { PadMode = AsEnum<PadMode>() },
                "n_mels" => p with { NMels = AsInt() },
                "fmin" => p with { FMin = AsReal() },
                "fmax" => p with { FMax = AsReal() },
                "htk" => p with { Htk = AsBool() },
                "norm" => p with { Norm = AsEnum<MelNorm>() },
                "power" => p with { Power = AsReal() },
                "top_db" => p with { TopDb = text == "none" ? null : AsReal() },
                "n_mfcc" => p with { NMfcc = AsInt() },
                "lifter" => p with { Lifter = AsReal() },
                "tuning" => p with { Tuning = AsReal() },
                "roll_percent" => p with { RollPercent = AsReal() },
                "pcen" => p with { Pcen = AsPcen() },
                _ => throw new FormatException($"Feature parameters '{settings}': unknown parameter '{name}'; expected one of {string.Join(", ", Names)}."),
            };
        }
        return p;
    }

    /// <summary>The STFT every spectral member shares.</summary>
    public StftConfig Stft => new(NFft, HopLength, WinLength, Window, Center, PadMode);

    /// <summary>The mel filter bank of mel-based members.</summary>
    public MelConfig Mel => new(SampleRate, NMels, FMin, FMax, Htk, Norm);

    /// <summary>power_to_db settings (ref 1, amin 1e-10, top_db per clip). MFCCs always take power_to_db of the
    /// mel spectrogram at the schema's power, as librosa.feature.mfcc does.</summary>
    public DbConfig Db => new(1.0, 1e-10, TopDb);

    /// <summary>
    /// The dB conversion of dB mel bands, librosa's rule for the power the mel spectrogram S was computed at:
    /// power_to_db(S) (ref 1, amin 1e-10) at power 2; amplitude_to_db(S) (ref 1, amin 1e-5, which librosa computes
    /// as power_to_db(S^2, amin 1e-10)) at power 1; power_to_db(S^(2/power)) at any other power. Returns the
    /// exponent applied to S first (1 at power 2, 2/power otherwise except 1 at power 1, where amplitude_to_db
    /// squares internally) and whether the amplitude form is used. top_db is applied per clip.
    /// </summary>
    public (DbConfig Config, bool Amplitude, double Exponent) MelDb =>
        Power == 2.0 ? (Db, false, 1.0)
        : Power == 1.0 ? (new DbConfig(1.0, 1e-5, TopDb), true, 1.0)
        : (Db, false, 2.0 / Power);
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
