// Shared source (see LayoutRules.cs): the types the layout rules take and give, free of Roslyn and of the run
// time's public plan types, so that the generator's equatable model can hold them. netstandard2.0 and net10.0.
using System.Globalization;

namespace Hybrid.Features.Schemas
{
    /// <summary>A schema's DSP parameters with every default resolved, as the layout rules and the fingerprint see
    /// them (librosa names; enums as their numeric values; <see cref="TopDb"/> +infinity when everything is kept).</summary>
    internal sealed record LayoutParameters(
        int SampleRate,
        int ClipSamples,
        int NFft,
        int HopLength,
        int WinLength,
        int Window,
        bool Center,
        int PadMode,
        int NMels,
        double FMin,
        double FMax,
        bool Htk,
        int Norm,
        double Power,
        double TopDb,
        int NMfcc,
        double Lifter,
        double Tuning,
        double RollPercent,
        bool EstimateTuning);

    /// <summary>A scattering member's parameters (kymatio's names; T 0 means 2^J; Segments 1 means the whole clip).</summary>
    internal sealed record ScatteringSettings(int J, int Q, int T, int MaxOrder, double LogEpsilon, bool PeakNormalize, int Segments);

    /// <summary>
    /// One member as the layout sees it. Given to <see cref="LayoutRules.LayMember"/> it is the declaration (Rows is
    /// the MFCC count, Frames the waveform's samples, FrameLength and HopLength 0 for the schema's n_fft and hop,
    /// Pooled for chroma pooled over bins); returned, every field holds its laid-out value (Offset is set by
    /// <see cref="LayoutRules.Arrange"/>).
    /// </summary>
    internal sealed record LayoutMember(
        string Property,
        FeatureKind Kind,
        Statistic Statistic,
        string Column,
        int Offset,
        int Width,
        int Rows,
        int Frames,
        bool Pooled,
        bool Decibels,
        int DeltaOrder,
        int DeltaWidth,
        int FrameLength,
        int HopLength,
        ScatteringSettings? Scattering);

    /// <summary>The rule a schema breaks; each is one generator diagnostic and one run-time ArgumentException.</summary>
    internal enum LayoutRule
    {
        /// <summary>HYB008: a parameter outside its range. Args: name, expected, actual.</summary>
        InvalidParameter,
        /// <summary>HYB007: parameters that contradict each other. Args: message.</summary>
        ConflictingParameters,
        /// <summary>HYB004: a count that is not positive. Args: property, what, value.</summary>
        CountNotPositive,
        /// <summary>HYB006: a statistic the feature does not support. Args: property, feature, statistic, hint.</summary>
        UnsupportedStatistic,
        /// <summary>HYB005: two members produce one column name. Args: column, first owner, second owner.</summary>
        DuplicateColumnName,
        /// <summary>HYB009: time series whose frame counts differ. Args: first, its frames, other, its frames.</summary>
        FrameCountMismatch,
    }

    /// <summary>One broken rule: which, the librosa parameter a run-time caller should blame (ArgumentException's
    /// ParamName), the attribute argument that set it (schema-level rules; null otherwise), the member's index (-1
    /// for the schema) and the message arguments that follow the schema's name.</summary>
    internal sealed record LayoutProblem(LayoutRule Rule, string ParamName, string? Argument, int Member, string[] Args)
    {
        /// <summary>The message format of each rule, {0} being the schema: the generator's diagnostics and the run
        /// time's exceptions both use these.</summary>
        public static string FormatOf(LayoutRule rule)
        {
            switch (rule)
            {
                case LayoutRule.InvalidParameter: return "Feature schema '{0}': {1} must be {2}, was {3}";
                case LayoutRule.ConflictingParameters: return "Feature schema '{0}': {1}";
                case LayoutRule.CountNotPositive: return "'{0}.{1}': {2} must be positive, was {3}";
                case LayoutRule.UnsupportedStatistic: return "'{0}.{1}': {2} does not support the statistic {3}; {4}";
                case LayoutRule.DuplicateColumnName: return "Feature schema '{0}': column '{1}' is produced by both '{2}' and '{3}'; give one of them another Column";
                default: return "Feature schema '{0}': time-series members '{1}' ({2} frames) and '{3}' ({4} frames) must have the same frame count to form one image; align their hop and frame lengths or keep one as a statistic";
            }
        }

        /// <summary>The message for schema <paramref name="schema"/>, ending with a full stop.</summary>
        public string Message(string schema)
        {
            var args = new object[Args.Length + 1];
            args[0] = schema;
            for (var i = 0; i < Args.Length; i++) args[i + 1] = Args[i];
            return string.Format(CultureInfo.InvariantCulture, FormatOf(Rule), args) + ".";
        }
    }
}
