using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB010: Feature member must be a partial property.</summary>
    internal static class MemberNotPartialProperty
    {
        public const string Id = "HYB010";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Feature member must be a partial property",
            "'{0}.{1}' carries a feature attribute but is not a non-static partial property without a body; declare it as 'public partial {2} {1} {{ get; }}'",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
