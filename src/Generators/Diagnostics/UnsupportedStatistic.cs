using Hybrid.Features.Schemas;
using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB006: Statistic not supported by the feature.</summary>
    internal static class UnsupportedStatistic
    {
        public const string Id = "HYB006";

        // The message is the run time's too (Features.Schemas/Shared/LayoutRules.cs), so both say the same.
        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id, "Statistic not supported by the feature", LayoutProblem.FormatOf(LayoutRule.UnsupportedStatistic), Categories.FeatureSchema, DiagnosticSeverity.Error, isEnabledByDefault: true);
    }
}
