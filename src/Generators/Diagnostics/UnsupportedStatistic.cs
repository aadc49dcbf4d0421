using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB006: Statistic not supported by the feature.</summary>
    internal static class UnsupportedStatistic
    {
        public const string Id = "HYB006";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Statistic not supported by the feature",
            global::Hybrid.Features.Schemas.LayoutProblem.FormatOf(global::Hybrid.Features.Schemas.LayoutRule.UnsupportedStatistic),
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
