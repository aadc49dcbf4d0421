using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB004: Feature count must be positive.</summary>
    internal static class CountNotPositive
    {
        public const string Id = "HYB004";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Feature count must be positive",
            global::Hybrid.Features.Schemas.LayoutProblem.FormatOf(global::Hybrid.Features.Schemas.LayoutRule.CountNotPositive),
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
