using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB009: Time-series members have different frame counts.</summary>
    internal static class FrameCountMismatch
    {
        public const string Id = "HYB009";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Time-series members have different frame counts",
            "Feature schema '{0}': time-series members '{1}' ({2} frames) and '{3}' ({4} frames) must have the same frame count to form one image; align their hop and frame lengths or keep one as a statistic",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
