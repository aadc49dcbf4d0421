using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB013: Several feature attributes on one member.</summary>
    internal static class MultipleFeatureAttributes
    {
        public const string Id = "HYB013";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Several feature attributes on one member",
            "'{0}.{1}' carries {2} feature attributes; give each feature its own property",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
