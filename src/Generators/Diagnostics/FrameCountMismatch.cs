using Hybrid.Features.Schemas;
using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB009: Time-series members have different frame counts.</summary>
    internal static class FrameCountMismatch
    {
        public const string Id = "HYB009";

        // The message is the run time's too (Features.Schemas/Shared/LayoutRules.cs), so both say the same.
        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id, "Time-series members have different frame counts", LayoutProblem.FormatOf(LayoutRule.FrameCountMismatch), Categories.FeatureSchema, DiagnosticSeverity.Error, isEnabledByDefault: true);
    }
}
