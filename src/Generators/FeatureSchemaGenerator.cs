using System;
using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Hybrid.Generators
{
    /// <summary>
    /// Generates the layout, typed properties, column names, fingerprint and extraction plan of every
    /// <c>[FeatureSchema]</c> partial record or struct, and reports HYB001..HYB015 for invalid schemas.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class FeatureSchemaGenerator : IIncrementalGenerator
    {
        /// <summary>Name of the step producing one parse result per schema (for incremental-caching tests).</summary>
        public const string TrackingName = "FeatureSchemas";

        /// <inheritdoc />
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var schemas = context.SyntaxProvider.ForAttributeWithMetadataName(
                Parser.SchemaAttributeName,
                static (node, _) => node is TypeDeclarationSyntax,
                static (ctx, ct) => Parser.Parse(ctx, ct))
                .WithTrackingName(TrackingName);

            context.RegisterSourceOutput(schemas, static (spc, result) =>
            {
                foreach (var d in result.Diagnostics) spc.ReportDiagnostic(d.ToDiagnostic());
                if (result.Model != null) spc.AddSource(Emitter.HintName(result.Model), Emitter.Emit(result.Model));
            });

            // Schema names must be unique across the compilation (HYB014) and must not repeat a name that a referenced
            // assembly declares (HYB015), compared case-insensitively as Schemas.ByName looks them up.
            var names = schemas
                .Where(static r => r.Model != null)
                .Select(static (r, _) => new SchemaName(r.Model!.SchemaName, r.Model.TypeName, r.Model.Location))
                .Collect();
            var referenced = context.CompilationProvider.Select(static (c, ct) => ReferencedSchemas.Find(c, ct));
            context.RegisterSourceOutput(names.Combine(referenced), static (spc, input) =>
            {
                var (all, inReferences) = input;
                var first = new Dictionary<string, SchemaName>(StringComparer.OrdinalIgnoreCase);
                foreach (var n in all)
                {
                    if (ReferencedSchemas.Named(inReferences, n.Name) is { } taken)
                        spc.ReportDiagnostic(Diagnostic.Create(Diagnostics.SchemaNameTaken.Descriptor, n.Location?.ToLocation(), n.Name, n.TypeName, taken.TypeName, taken.Assembly));
                    else if (first.TryGetValue(n.Name, out var owner))
                        spc.ReportDiagnostic(Diagnostic.Create(Diagnostics.DuplicateSchemaName.Descriptor, n.Location?.ToLocation(), n.Name, owner.TypeName, n.TypeName));
                    else first[n.Name] = n;
                }
            });

            // Every valid schema registers itself with Schemas when its assembly's module is initialised, so that
            // Schemas.ByName finds a user's schemas once their assembly is loaded. Needs ModuleInitializerAttribute
            // (.NET 5 and later); on older targets the schemas are still generated, only not self-registered.
            var registrations = schemas
                .Where(static r => r.Model != null && !r.Model.HasErrors)
                .Select(static (r, _) => (r.Model!.Namespace == null ? "global::" : "global::" + r.Model.Namespace + ".") + r.Model.TypeName)
                .Collect();
            var canInitialise = context.CompilationProvider.Select(static (c, _) =>
                c.GetTypeByMetadataName("System.Runtime.CompilerServices.ModuleInitializerAttribute") != null
                && c.GetTypeByMetadataName("Hybrid.Features.Schemas.Schemas") != null);
            context.RegisterSourceOutput(registrations.Combine(canInitialise), static (spc, input) =>
            {
                var (types, enabled) = input;
                if (enabled && types.Length > 0) spc.AddSource("FeatureSchemaRegistration.g.cs", Emitter.EmitRegistration(types));
            });
        }
    }
}
