using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB003: Feature schema has no members.</summary>
    internal static class SchemaHasNoMembers
    {
        public const string Id = "HYB003";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Feature schema has no members",
            "Feature schema '{0}' has no feature members; declare at least one partial property with a feature attribute such as [Mfcc(20, Statistic.Mean)] public partial ReadOnlyMemory<float> Mfcc {{ get; }}",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
