using Hybrid.Features.Schemas;
using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB007: Conflicting DSP parameters.</summary>
    internal static class ConflictingParameters
    {
        public const string Id = "HYB007";

        // The message is the run time's too (Features.Schemas/Shared/LayoutRules.cs), so both say the same.
        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id, "Conflicting DSP parameters", LayoutProblem.FormatOf(LayoutRule.ConflictingParameters), Categories.FeatureSchema, DiagnosticSeverity.Error, isEnabledByDefault: true);
    }
}
