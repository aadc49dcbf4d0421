using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB008: Invalid DSP parameter.</summary>
    internal static class InvalidParameter
    {
        public const string Id = "HYB008";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Invalid DSP parameter",
            "Feature schema '{0}': {1} must be {2}, was {3}",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
