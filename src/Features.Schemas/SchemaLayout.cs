using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Hybrid.Features.Schemas;

/// <summary>
/// The run-time half of the schema layout rules, shared by every schema that is not generated at compile time
/// (run-time variants of a generated schema, one-member schemas of <c>features --transform</c>): parameter
/// validation with the generator's wording (HYB008/HYB009), member layout (rows, frames, widths, offsets),
/// column names, the row shape and the fingerprint. Each rule mirrors src/Generators/Layout.cs and Parser.cs
/// line for line, so that a schema laid out here with a generated schema's parameters and members gets that
/// schema's names, shape and fingerprint exactly (the tests check this for every predefined schema and for a
/// schema using every kind and option).
/// </summary>
internal static class SchemaLayout
{
    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    private static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>librosa's frame count (centred frames pad frame_length / 2 on both sides); 0 when too short.</summary>
    internal static int FrameCount(int frameLength, int hop, bool center, int samples)
    {
        var padded = (long)samples + (center ? 2 * (frameLength / 2) : 0);
        return padded < frameLength ? 0 : (int)(1 + (padded - frameLength) / hop);
    }

    /// <summary>The ArgumentException of an invalid parameter, worded as the generator's HYB008 diagnostic;
    /// <see cref="ArgumentException.ParamName"/> is the librosa name.</summary>
    private static ArgumentException Invalid(string schema, string librosaName, string expected, string actual) =>
        new($"Feature schema '{schema}': {librosaName} must be {expected}, was {actual}.", librosaName);

    /// <summary>The ArgumentException of conflicting parameters, worded as the generator's HYB009 diagnostic.</summary>
    private static ArgumentException Conflict(string schema, string librosaName, string message) =>
        new($"Feature schema '{schema}': {message}.", librosaName);

    /// <summary>
    /// Checks resolved parameters with the generator's rules (Parser.ValidateParameters): the first problem is
    /// thrown as an <see cref="ArgumentException"/> whose ParamName is the librosa name (sr, clip_samples,
    /// n_fft, hop_length, win_length, n_mels, fmin, fmax, power, top_db, n_mfcc, lifter, tuning, roll_percent, pcen)
    /// and whose message gives the valid range, e.g. "n_fft must be in 2..16384, was 1".
    /// </summary>
    internal static void Validate(string schema, FeatureParameters p)
    {
        if (p.SampleRate <= 0) throw Invalid(schema, "sr", "positive", I(p.SampleRate));
        if (p.ClipSamples < 0) throw Invalid(schema, "clip_samples", "0 (any length) or positive", I(p.ClipSamples));
        if (p.NFft < 2 || p.NFft > 16384) throw Invalid(schema, "n_fft", "in 2..16384", I(p.NFft));
        if (p.HopLength < 1) throw Invalid(schema, "hop_length", "positive", I(p.HopLength));
        if (p.WinLength < 1) throw Invalid(schema, "win_length", "positive", I(p.WinLength));
        if (!Enum.IsDefined(p.Window)) throw Invalid(schema, "window", "a defined WindowKind", I((int)p.Window));
        if (!Enum.IsDefined(p.PadMode)) throw Invalid(schema, "pad_mode", "a defined PadMode", I((int)p.PadMode));
        if (!Enum.IsDefined(p.Norm)) throw Invalid(schema, "norm", "a defined MelNorm", I((int)p.Norm));
        if (p.NMels <= 0) throw Invalid(schema, "n_mels", "positive", I(p.NMels));
        if (!(p.FMin >= 0) || double.IsInfinity(p.FMin)) throw Invalid(schema, "fmin", "a finite frequency of at least 0 Hz", D(p.FMin));
        if (!(p.FMax > 0) || double.IsInfinity(p.FMax)) throw Invalid(schema, "fmax", "a positive finite frequency", D(p.FMax));
        if (!(p.Power > 0) || double.IsInfinity(p.Power)) throw Invalid(schema, "power", "positive and finite", D(p.Power));
        if (p.TopDb is { } topDb && !(topDb > 0)) throw Invalid(schema, "top_db", "positive (or none to keep everything)", D(topDb));
        if (p.NMfcc <= 0) throw Invalid(schema, "n_mfcc", "positive", I(p.NMfcc));
        if (!(p.Lifter >= 0) || double.IsInfinity(p.Lifter)) throw Invalid(schema, "lifter", "0 or positive", D(p.Lifter));
        if (!(p.Tuning >= -0.5 && p.Tuning < 0.5)) throw Invalid(schema, "tuning", "in [-0.5, 0.5)", D(p.Tuning));
        if (!(p.RollPercent > 0 && p.RollPercent < 1)) throw Invalid(schema, "roll_percent", "in (0, 1)", D(p.RollPercent));
        if (p.Pcen is { } pcen)
        {
            if (!(pcen.TimeConstant > 0) || double.IsInfinity(pcen.TimeConstant)) throw Invalid(schema, "pcen", "TIME_CONSTANT:GAIN:BIAS:POWER with a time constant > 0 s (finite)", D(pcen.TimeConstant));
            if (!(pcen.Gain >= 0) || double.IsInfinity(pcen.Gain)) throw Invalid(schema, "pcen", "TIME_CONSTANT:GAIN:BIAS:POWER with a gain >= 0 (finite)", D(pcen.Gain));
            if (!(pcen.Bias >= 0) || double.IsInfinity(pcen.Bias)) throw Invalid(schema, "pcen", "TIME_CONSTANT:GAIN:BIAS:POWER with a bias >= 0 (finite)", D(pcen.Bias));
            if (!(pcen.Power >= 0) || double.IsInfinity(pcen.Power)) throw Invalid(schema, "pcen", "TIME_CONSTANT:GAIN:BIAS:POWER with a power >= 0 (finite)", D(pcen.Power));
            if (!(pcen.Eps > 0) || !(pcen.InputScale > 0) || double.IsInfinity(pcen.Eps) || double.IsInfinity(pcen.InputScale))
                throw Invalid(schema, "pcen", "settings with eps and input scale > 0", D(pcen.Eps) + " and " + D(pcen.InputScale));
        }
        if (p.HopLength > p.NFft)
            throw Conflict(schema, "hop_length", $"hop_length ({I(p.HopLength)}) must not exceed n_fft ({I(p.NFft)}), or samples would be skipped between frames");
        if (p.WinLength > p.NFft)
            throw Conflict(schema, "win_length", $"win_length ({I(p.WinLength)}) must not exceed n_fft ({I(p.NFft)})");
        if (p.FMax > p.SampleRate / 2.0)
            throw Conflict(schema, "fmax", $"fmax ({D(p.FMax)} Hz) must not exceed the Nyquist frequency sr / 2 ({D(p.SampleRate / 2.0)} Hz)");
        if (p.FMin >= p.FMax)
            throw Conflict(schema, "fmin", $"fmin ({D(p.FMin)} Hz) must be below fmax ({D(p.FMax)} Hz)");
    }

    /// <summary>True for members whose rows are numbered (MFCC, deltas, mel bands, spectrogram, per-bin chroma).</summary>
    private static bool HasNumberedRows(FeatureMember m) =>
        m.Kind is FeatureKind.Mfcc or FeatureKind.MfccDelta or FeatureKind.MelBands or FeatureKind.Spectrogram or FeatureKind.Scattering
        || (m.Kind == FeatureKind.Chroma && !m.Pooled);

    /// <summary>Columns of a member in row order (the generator's Layout.ColumnNames): a scalar statistic is
    /// "name"; numbered rows with a statistic are name1..nameR; a one-row time series (or the waveform) is
    /// name1..nameT; a numbered-row time series is name{r}_{t}, row-major (all 1-based).</summary>
    internal static IEnumerable<string> ColumnNames(FeatureMember m)
    {
        if (m.Statistic != Statistic.TimeSeries)
        {
            if (m.Width == 1 && !HasNumberedRows(m)) yield return m.Column;
            else
                for (var r = 1; r <= m.Width; r++) yield return m.Column + I(r);
            yield break;
        }
        var frames = m.Frames < 1 ? 1 : m.Frames;
        if (!HasNumberedRows(m))
        {
            for (var t = 1; t <= m.Width; t++) yield return m.Column + I(t);
            yield break;
        }
        for (var i = 0; i < m.Width; i++)
            yield return m.Column + I(i / frames + 1) + "_" + I(i % frames + 1);
    }

    /// <summary>
    /// Lays members out for parameters <paramref name="p"/> (the generator's Parser.ReadMember and layout steps):
    /// rows (12 for chroma, n_mels for mel bands, n_fft / 2 + 1 for a spectrogram, the member's count for
    /// MFCCs), frames of time series from the clip length, widths, offsets in order, column names and the
    /// shape. Throws <see cref="ArgumentException"/> naming the parameter when a member cannot be laid out
    /// (a time series without a clip length, clips shorter than a frame, more MFCCs than mel bands, a delta
    /// wider than the clip's frames, time series whose frame counts differ).
    /// </summary>
    internal static (FeatureMember[] Members, string[] Names, int[] Shape) Lay(string schema, FeatureParameters p, IReadOnlyList<FeatureMember> members)
    {
        if (members.Count == 0) throw new ArgumentException($"Feature schema '{schema}': a schema needs at least one member.", nameof(members));
        var laid = new FeatureMember[members.Count];
        var offset = 0;
        for (var i = 0; i < members.Count; i++)
        {
            var m = members[i];
            var rows = m.Kind switch
            {
                FeatureKind.Chroma => 12,
                FeatureKind.MelBands => p.NMels,
                FeatureKind.Spectrogram => p.NFft / 2 + 1,
                FeatureKind.Mfcc or FeatureKind.MfccDelta => m.Rows,
                // Scattering paths depend on J, Q and max_order only (the generator counted them).
                FeatureKind.Scattering => m.Rows,
                _ => 1,
            };
            if (m.Kind is FeatureKind.Mfcc or FeatureKind.MfccDelta)
            {
                if (rows < 1) throw Invalid(schema, "n_mfcc", "positive", I(rows));
                if (rows > p.NMels)
                    throw Conflict(schema, "n_mfcc", $"'{m.Property}' asks for {I(rows)} MFCCs, but the DCT of n_mels = {I(p.NMels)} bands gives at most {I(p.NMels)}");
            }
            if (m.Kind == FeatureKind.MfccDelta && (m.DeltaOrder is not (1 or 2) || m.DeltaWidth < 3 || m.DeltaWidth % 2 == 0))
                throw new ArgumentException($"Feature schema '{schema}': '{m.Property}' needs a delta order of 1 or 2 and an odd width of at least 3, had {I(m.DeltaOrder)} and {I(m.DeltaWidth)}.", nameof(members));
            var framed = m.Kind is FeatureKind.ZeroCrossingRate or FeatureKind.Rms;
            var frameLength = framed ? (m.FrameLength > 0 ? m.FrameLength : p.NFft) : 0;
            var memberHop = framed ? (m.HopLength > 0 ? m.HopLength : p.HopLength) : 0;
            var frames = 0;
            if (m.Kind == FeatureKind.Waveform)
            {
                if (m.Frames < 1) throw Invalid(schema, "clip_samples", "positive for a waveform", I(m.Frames));
                frames = m.Frames;
            }
            else if (m.Statistic == Statistic.TimeSeries)
            {
                if (p.ClipSamples <= 0)
                    throw Conflict(schema, "clip_samples", $"'{m.Property}' keeps a time series, which needs the schema's clip_samples (the clip length in samples) to fix the frame count");
                var (frameLen, hop) = framed ? (frameLength, memberHop) : (p.NFft, p.HopLength);
                frames = FrameCount(frameLen, hop, p.Center, p.ClipSamples);
                if (frames < 1)
                    throw Conflict(schema, "clip_samples", $"'{m.Property}' has no frames: clips of {I(p.ClipSamples)} samples are shorter than the frame length {I(frameLen)}");
            }
            if (m.Kind == FeatureKind.MfccDelta && p.ClipSamples > 0)
            {
                var clipFrames = FrameCount(p.NFft, p.HopLength, p.Center, p.ClipSamples);
                if (clipFrames < m.DeltaWidth)
                    throw Conflict(schema, "clip_samples", $"'{m.Property}' has a delta width of {I(m.DeltaWidth)}, more than the {I(clipFrames)} frames of a clip");
            }
            var pooled = m.Kind == FeatureKind.Chroma && m.Pooled;
            var width = m.Statistic == Statistic.TimeSeries ? rows * frames : pooled ? 1 : rows;
            laid[i] = m with
            {
                Offset = offset,
                Width = width,
                Rows = rows,
                Frames = m.Statistic == Statistic.TimeSeries ? frames : 0,
                Pooled = pooled,
                Decibels = m.Kind == FeatureKind.MelBands && m.Decibels,
                DeltaOrder = m.Kind == FeatureKind.MfccDelta ? m.DeltaOrder : 0,
                DeltaWidth = m.Kind == FeatureKind.MfccDelta ? m.DeltaWidth : 0,
                FrameLength = frameLength,
                HopLength = memberHop,
            };
            offset += width;
        }
        if (p.Pcen is not null && !laid.Any(m => m.Kind == FeatureKind.MelBands && m.Decibels))
            throw Conflict(schema, "pcen", "pcen replaces power_to_db of mel bands in dB, and the schema has none (MFCCs keep power_to_db)");
        var series = laid.Where(m => m.Statistic == Statistic.TimeSeries && m.Frames > 0).ToList();
        foreach (var m in series.Skip(1))
            if (m.Frames != series[0].Frames)
                throw Conflict(schema, "hop_length", $"time series '{series[0].Property}' has {I(series[0].Frames)} frames and '{m.Property}' has {I(m.Frames)}; the members of one image must agree");
        var names = new List<string>(offset);
        var owners = new Dictionary<string, string>();
        foreach (var m in laid)
            foreach (var column in ColumnNames(m))
            {
                if (!owners.TryAdd(column, m.Property))
                    throw new ArgumentException($"Feature schema '{schema}': column '{column}' of '{m.Property}' is also a column of '{owners[column]}'.", nameof(members));
                names.Add(column);
            }
        var allSeries = laid.All(m => m.Statistic == Statistic.TimeSeries);
        var rowsTotal = laid.Sum(m => m.Rows);
        var shape = !allSeries || laid.Any(m => m.Frames != laid[0].Frames) ? new[] { offset }
            : rowsTotal == 1 ? new[] { laid[0].Frames }
            : new[] { rowsTotal, laid[0].Frames };
        return (laid, names.ToArray(), shape);
    }

    /// <summary>
    /// SHA-256 (lower-case hex) of the canonical text (the generator's Layout.Fingerprint): every resolved DSP
    /// parameter, the shape and each member's layout and options, doubles as IEEE-754 bit patterns. The schema's
    /// C# and registry names are not part of it.
    /// </summary>
    internal static string Fingerprint(FeatureParameters p, IReadOnlyList<FeatureMember> members, IReadOnlyList<int> shape) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(CanonicalText(p, members, shape)))).ToLowerInvariant();

    /// <summary>The text <see cref="Fingerprint"/> hashes; see src/Generators/Layout.cs CanonicalText.</summary>
    internal static string CanonicalText(FeatureParameters p, IReadOnlyList<FeatureMember> members, IReadOnlyList<int> shape)
    {
        var sb = new StringBuilder();
        void Line(string key, string value) => sb.Append(key).Append('=').Append(value).Append('\n');
        static string Bits(double d) => BitConverter.DoubleToInt64Bits(d).ToString("x16", CultureInfo.InvariantCulture);
        static string Bool(bool b) => b ? "1" : "0";
        Line("format", "hybrid-feature-schema/1");
        Line("sr", I(p.SampleRate));
        Line("clip_samples", I(p.ClipSamples));
        Line("n_fft", I(p.NFft));
        Line("hop_length", I(p.HopLength));
        Line("win_length", I(p.WinLength));
        Line("window", I((int)p.Window));
        Line("center", Bool(p.Center));
        Line("pad_mode", I((int)p.PadMode));
        Line("n_mels", I(p.NMels));
        Line("fmin", Bits(p.FMin));
        Line("fmax", Bits(p.FMax));
        Line("htk", Bool(p.Htk));
        Line("norm", I((int)p.Norm));
        Line("power", Bits(p.Power));
        Line("top_db", Bits(p.TopDb ?? double.PositiveInfinity));
        Line("n_mfcc", I(p.NMfcc));
        Line("lifter", Bits(p.Lifter));
        Line("tuning", Bits(p.Tuning));
        Line("roll_percent", Bits(p.RollPercent));
        if (MelDbChanged(p, members)) Line("mel_db", "power_to_db(S^(2/power))");
        // Only when set, so that the fingerprints of schemas that do not estimate tuning stay as they were (mirrors the generator).
        if (p.EstimateTuning) Line("estimate_tuning", Bool(true));
        // Run-time only (no attribute declares PCEN), and only when set, so that every other fingerprint stays as it was.
        if (p.Pcen is { } pcen)
            Line("pcen", string.Join(" ", new[] { pcen.TimeConstant, pcen.Gain, pcen.Bias, pcen.Power, pcen.Eps, pcen.InputScale }.Select(Bits)));
        Line("shape", string.Join(",", shape.Select(I)));
        foreach (var m in members)
        {
            Line("member", string.Join("|",
                m.Kind.ToString(), m.Statistic.ToString(), m.Column, I(m.Offset), I(m.Width),
                I(m.Rows), I(m.Frames), Bool(m.Pooled), Bool(m.Decibels), I(m.DeltaOrder),
                I(m.DeltaWidth), I(m.FrameLength), I(m.HopLength))
                + (m.Kind == FeatureKind.Scattering
                    ? " scattering " + I(m.ScatteringJ) + " " + I(m.ScatteringQ) + " " + I(m.ScatteringT) + " " + I(m.ScatteringMaxOrder) + " " + Bits(m.LogEpsilon) + " " + Bool(m.PeakNormalize)
                        + (m.ScatteringSegments != 1 ? " segments " + I(m.ScatteringSegments) : "")
                    : ""));
        }
        return sb.ToString();
    }

    /// <summary>True when a schema's rows depend on the dB rule that replaced power_to_db of the mel spectrogram
    /// at every power: mel bands in dB at a power other than 2. Such schemas get a "mel_db" line, so their
    /// fingerprints differ from the rule before it.</summary>
    private static bool MelDbChanged(FeatureParameters p, IReadOnlyList<FeatureMember> members) =>
        p.Power != 2.0 && members.Any(m => m.Kind == FeatureKind.MelBands && m.Decibels);
}
