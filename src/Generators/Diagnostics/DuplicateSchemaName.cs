using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB014: Duplicate schema name.</summary>
    internal static class DuplicateSchemaName
    {
        public const string Id = "HYB014";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Duplicate schema name",
            "Feature schema name '{0}' is used by both '{1}' and '{2}'; names select schemas (--schema) and must be unique in a project",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
