using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB005: Duplicate column name.</summary>
    internal static class DuplicateColumnName
    {
        public const string Id = "HYB005";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Duplicate column name",
            global::Hybrid.Features.Schemas.LayoutProblem.FormatOf(global::Hybrid.Features.Schemas.LayoutRule.DuplicateColumnName),
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
