using Hybrid.Features.Schemas;
using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB008: Invalid DSP parameter.</summary>
    internal static class InvalidParameter
    {
        public const string Id = "HYB008";

        // The message is the run time's too (Features.Schemas/Shared/LayoutRules.cs), so both say the same.
        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id, "Invalid DSP parameter", LayoutProblem.FormatOf(LayoutRule.InvalidParameter), Categories.FeatureSchema, DiagnosticSeverity.Error, isEnabledByDefault: true);
    }
}
