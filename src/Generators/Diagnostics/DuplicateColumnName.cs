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
            "Feature schema '{0}': column '{1}' is produced by both '{2}' and '{3}'; give one of them another Column",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
