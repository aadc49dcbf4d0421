using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB012: Feature schema has a parameter list.</summary>
    internal static class SchemaHasParameterList
    {
        public const string Id = "HYB012";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Feature schema has a parameter list",
            "Feature schema '{0}' must not have a primary constructor parameter list; its values come from the feature row (use FromSpan)",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
