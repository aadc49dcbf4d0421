using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB011: Feature member has the wrong type.</summary>
    internal static class MemberTypeMismatch
    {
        public const string Id = "HYB011";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Feature member has the wrong type",
            "'{0}.{1}' must have type {2} for {3} with {4}, was {5}",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
