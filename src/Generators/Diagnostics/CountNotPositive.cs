using Hybrid.Features.Schemas;
using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB004: Feature count must be positive.</summary>
    internal static class CountNotPositive
    {
        public const string Id = "HYB004";

        // The message is the run time's too (Features.Schemas/Shared/LayoutRules.cs), so both say the same.
        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id, "Feature count must be positive", LayoutProblem.FormatOf(LayoutRule.CountNotPositive), Categories.FeatureSchema, DiagnosticSeverity.Error, isEnabledByDefault: true);
    }
}
