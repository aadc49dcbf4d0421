using System.Globalization;

namespace Hybrid.Features.Schemas;

/// <summary>
/// The run-time face of the schema layout rules for every schema that is not generated at compile time (run-time
/// variants of a generated schema, one-member schemas of <c>features --transform</c>). The rules themselves are
/// <see cref="LayoutRules"/> (Shared/LayoutRules.cs), the very source the generator compiles, so a schema laid out
/// here with a generated schema's parameters and members gets that schema's names, shape and fingerprint, and is
/// refused where the generator reports a diagnostic, with the diagnostic's wording. This file only converts between
/// the public plan types (<see cref="FeatureParameters"/>, <see cref="FeatureMember"/>) and the shared ones, and
/// turns the first broken rule into an <see cref="ArgumentException"/>.
/// </summary>
internal static class SchemaLayout
{
    /// <summary>librosa's frame count (<see cref="LayoutRules.FrameCount"/>).</summary>
    internal static int FrameCount(int frameLength, int hop, bool center, int samples) =>
        LayoutRules.FrameCount(frameLength, hop, center, samples);

    /// <summary>The parameters as the shared rules see them (enums as numbers, top_db none as +infinity).</summary>
    internal static LayoutParameters ToLayout(FeatureParameters p) => new(
        p.SampleRate, p.ClipSamples, p.NFft, p.HopLength, p.WinLength, (int)p.Window, p.Center, (int)p.PadMode, p.NMels,
        p.FMin, p.FMax, p.Htk, (int)p.Norm, p.Power, p.TopDb ?? double.PositiveInfinity, p.NMfcc, p.Lifter, p.Tuning,
        p.RollPercent, p.EstimateTuning);

    /// <summary>A member as the shared rules see it.</summary>
    internal static LayoutMember ToLayout(FeatureMember m) => new(
        m.Property, m.Kind, m.Statistic, m.Column, m.Offset, m.Width, m.Rows, m.Frames, m.Pooled, m.Decibels, m.DeltaOrder,
        m.DeltaWidth, m.FrameLength, m.HopLength,
        m.Kind == FeatureKind.Scattering
            ? new ScatteringSettings(m.ScatteringJ, m.ScatteringQ, m.ScatteringT, m.ScatteringMaxOrder, m.LogEpsilon, m.PeakNormalize, m.ScatteringSegments)
            : null);

    private static ArgumentException Refuse(string schema, LayoutProblem problem) => new(problem.Message(schema), problem.ParamName);

    private static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The ArgumentException of an invalid PCEN setting, worded as the generator's HYB008 diagnostic.</summary>
    private static ArgumentException InvalidPcen(string schema, string expected, string actual) =>
        Refuse(schema, new LayoutProblem(LayoutRule.InvalidParameter, "pcen", null, -1, ["pcen", expected, actual]));

    /// <summary>
    /// Checks resolved parameters with the generator's rules (<see cref="LayoutRules.CheckParameters"/>, then the
    /// run-time-only pcen): the first problem is thrown as an <see cref="ArgumentException"/> whose ParamName is the
    /// librosa name (sr, clip_samples, n_fft, hop_length, win_length, window, pad_mode, norm, n_mels, fmin, fmax, power,
    /// top_db, n_mfcc, lifter, tuning, roll_percent, pcen) and whose message gives the valid range, e.g.
    /// "n_fft must be in 2..16384, was 1". Out-of-range values come before conflicts between parameters.
    /// </summary>
    internal static void Validate(string schema, FeatureParameters p)
    {
        var problems = LayoutRules.CheckParameters(ToLayout(p), declared: false);
        foreach (var problem in problems)
            if (problem.Rule == LayoutRule.InvalidParameter) throw Refuse(schema, problem);
        if (p.Pcen is { } pcen)
        {
            if (!(pcen.TimeConstant > 0) || double.IsInfinity(pcen.TimeConstant)) throw InvalidPcen(schema, "TIME_CONSTANT:GAIN:BIAS:POWER with a time constant > 0 s (finite)", D(pcen.TimeConstant));
            if (!(pcen.Gain >= 0) || double.IsInfinity(pcen.Gain)) throw InvalidPcen(schema, "TIME_CONSTANT:GAIN:BIAS:POWER with a gain >= 0 (finite)", D(pcen.Gain));
            if (!(pcen.Bias >= 0) || double.IsInfinity(pcen.Bias)) throw InvalidPcen(schema, "TIME_CONSTANT:GAIN:BIAS:POWER with a bias >= 0 (finite)", D(pcen.Bias));
            if (!(pcen.Power >= 0) || double.IsInfinity(pcen.Power)) throw InvalidPcen(schema, "TIME_CONSTANT:GAIN:BIAS:POWER with a power >= 0 (finite)", D(pcen.Power));
            if (!(pcen.Eps > 0) || !(pcen.InputScale > 0) || double.IsInfinity(pcen.Eps) || double.IsInfinity(pcen.InputScale))
                throw InvalidPcen(schema, "settings with eps and input scale > 0", D(pcen.Eps) + " and " + D(pcen.InputScale));
        }
        if (problems.Count > 0) throw Refuse(schema, problems[0]);
    }

    /// <summary>
    /// Lays members out for parameters <paramref name="p"/> with the generator's rules (<see cref="LayoutRules.LayMember"/>
    /// and <see cref="LayoutRules.Arrange"/>): rows (12 for chroma, n_mels for mel bands, n_fft / 2 + 1 for a
    /// spectrogram, the member's Rows for MFCCs, the scattering paths of J, Q, max_order and the segments), frames of
    /// time series from the clip length, widths, offsets in order, column names and the shape. Throws
    /// <see cref="ArgumentException"/> naming the parameter (ParamName: n_mfcc, clip_samples, hop_length or members)
    /// at the first broken rule, worded as the generator's diagnostic: a statistic the kind does not support, a time
    /// series without a clip length, clips shorter than a frame, more MFCCs than mel bands, a delta order or width out
    /// of range or wider than the clip's frames, negative ZCR/RMS frame or hop lengths, scattering scales longer than
    /// the clip, PCEN without dB mel bands, duplicate column names, time series whose frame counts differ.
    /// </summary>
    internal static (FeatureMember[] Members, string[] Names, int[] Shape) Lay(string schema, FeatureParameters p, IReadOnlyList<FeatureMember> members)
    {
        if (members.Count == 0) throw new ArgumentException($"Feature schema '{schema}': a schema needs at least one member.", nameof(members));
        var layout = ToLayout(p);
        var problems = new List<LayoutProblem>();
        var laid = new LayoutMember[members.Count];
        for (var i = 0; i < members.Count; i++)
        {
            laid[i] = LayoutRules.LayMember(layout, ToLayout(members[i]), members[i].Rows, i, declared: false, problems);
            if (problems.Count > 0) throw Refuse(schema, problems[0]);
        }
        if (p.Pcen is not null && !laid.Any(m => m.Kind == FeatureKind.MelBands && m.Decibels))
            throw Refuse(schema, new LayoutProblem(LayoutRule.ConflictingParameters, "pcen", null, -1,
                ["pcen replaces power_to_db of mel bands in dB, and the schema has none (MFCCs keep power_to_db)"]));
        var (arranged, names, shape) = LayoutRules.Arrange(laid, problems);
        if (problems.Count > 0) throw Refuse(schema, problems[0]);
        var result = new FeatureMember[members.Count];
        for (var i = 0; i < members.Count; i++)
        {
            var l = arranged[i];
            result[i] = members[i] with
            {
                Offset = l.Offset,
                Width = l.Width,
                Rows = l.Rows,
                Frames = l.Frames,
                Pooled = l.Pooled,
                Decibels = l.Decibels,
                DeltaOrder = l.DeltaOrder,
                DeltaWidth = l.DeltaWidth,
                FrameLength = l.FrameLength,
                HopLength = l.HopLength,
            };
        }
        return (result, names, shape);
    }

    /// <summary>
    /// The generator's fingerprint (<see cref="SchemaFingerprint.Compute"/>) of a run-time schema: SHA-256 (lower-case
    /// hex) over every resolved DSP parameter (PCEN too, when set), the shape and each member's layout and options.
    /// </summary>
    internal static string Fingerprint(FeatureParameters p, IReadOnlyList<FeatureMember> members, IReadOnlyList<int> shape) =>
        SchemaFingerprint.Compute(ToLayout(p), members.Select(ToLayout).ToList(), shape, PcenLine(p));

    /// <summary>The fingerprint's pcen value: the six settings' bit patterns; null without PCEN.</summary>
    private static string? PcenLine(FeatureParameters p) =>
        p.Pcen is { } pcen
            ? string.Join(" ", new[] { pcen.TimeConstant, pcen.Gain, pcen.Bias, pcen.Power, pcen.Eps, pcen.InputScale }.Select(SchemaFingerprint.Bits))
            : null;
}
