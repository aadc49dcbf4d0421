using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB008: Invalid DSP parameter.</summary>
    internal static class InvalidParameter
    {
        public const string Id = "HYB008";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Invalid DSP parameter",
            global::Hybrid.Features.Schemas.LayoutProblem.FormatOf(global::Hybrid.Features.Schemas.LayoutRule.InvalidParameter),
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
