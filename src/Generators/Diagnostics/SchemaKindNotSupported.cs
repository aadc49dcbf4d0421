using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB002: Feature schema kind not supported.</summary>
    internal static class SchemaKindNotSupported
    {
        public const string Id = "HYB002";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Feature schema kind not supported",
            "'{0}' is {1}; a feature schema must be a top-level, non-generic, non-abstract partial record, record struct or struct",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
