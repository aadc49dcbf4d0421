using Microsoft.CodeAnalysis;

namespace Hybrid.Generators.Diagnostics
{
    /// <summary>HYB015: Schema name already declared by a referenced assembly (a predefined schema's, or another
    /// library's).</summary>
    internal static class SchemaNameTaken
    {
        public const string Id = "HYB015";

        public static readonly DiagnosticDescriptor Descriptor = new DiagnosticDescriptor(
            Id,
            "Schema name declared by a referenced assembly",
            "Feature schema name '{0}' of '{1}' is already declared by '{2}' in the referenced assembly {3}; names select schemas (--schema, model files) and must be unique across the loaded assemblies: give '{1}' another name",
            Categories.FeatureSchema,
            DiagnosticSeverity.Error,
            isEnabledByDefault: true);
    }
}
