using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB007: Conflicting DSP parameters.</summary>
    internal static class ConflictingParameters
    {
        public const string Id = "HYB007";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Conflicting DSP parameters",
            global::Hybrid.Features.Schemas.LayoutProblem.FormatOf(global::Hybrid.Features.Schemas.LayoutRule.ConflictingParameters),
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
