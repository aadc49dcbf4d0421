using Hybrid.Features.Schemas;
using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB005: Duplicate column name.</summary>
    internal static class DuplicateColumnName
    {
        public const string Id = "HYB005";

        // The message is the run time's too (Features.Schemas/Shared/LayoutRules.cs), so both say the same.
        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id, "Duplicate column name", LayoutProblem.FormatOf(LayoutRule.DuplicateColumnName), Categories.FeatureSchema, DiagnosticSeverity.Error, isEnabledByDefault: true);
    }
}
