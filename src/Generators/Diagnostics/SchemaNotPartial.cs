using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB001: Feature schema must be partial.</summary>
    internal static class SchemaNotPartial
    {
        public const string Id = "HYB001";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Feature schema must be partial",
            "Feature schema '{0}' must be declared partial so that the generator can add its layout, properties and Info",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
