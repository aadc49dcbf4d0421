using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.CodeAnalysis;

namespace Hybrid.Generators
{
    /// <summary>A schema declared in a referenced assembly: its registered name, type and assembly.</summary>
    internal sealed record ReferencedSchema(string Name, string TypeName, string Assembly);

    /// <summary>
    /// Finds the <c>[FeatureSchema]</c> types of the compilation's references, so that a schema named like one of them
    /// (the predefined "genre", or a schema of another library the project uses) is reported (HYB015) instead of being
    /// refused only when both assemblies are loaded. Only the assembly that defines FeatureSchemaAttribute and the
    /// assemblies that reference it are walked.
    /// </summary>
    internal static class ReferencedSchemas
    {
        private const string SchemasAssembly = "Hybrid.Features.Schemas";

        public static EquatableArray<ReferencedSchema> Find(Compilation compilation, CancellationToken ct)
        {
            var attribute = compilation.GetTypeByMetadataName(Parser.SchemaAttributeName);
            if (attribute is null) return EquatableArray<ReferencedSchema>.Empty;
            var found = new List<ReferencedSchema>();
            foreach (var assembly in compilation.SourceModule.ReferencedAssemblySymbols)
            {
                ct.ThrowIfCancellationRequested();
                if (!DeclaresSchemas(assembly)) continue;
                Walk(assembly.GlobalNamespace, attribute, assembly.Identity.Name, found, ct);
            }
            return new EquatableArray<ReferencedSchema>(found.ToArray());
        }

        private static bool DeclaresSchemas(IAssemblySymbol assembly)
        {
            if (assembly.Identity.Name == SchemasAssembly) return true;
            foreach (var module in assembly.Modules)
                foreach (var reference in module.ReferencedAssemblies)
                    if (reference.Name == SchemasAssembly) return true;
            return false;
        }

        private static void Walk(INamespaceSymbol ns, INamedTypeSymbol attribute, string assembly, List<ReferencedSchema> found, CancellationToken ct)
        {
            foreach (var child in ns.GetNamespaceMembers()) Walk(child, attribute, assembly, found, ct);
            foreach (var type in ns.GetTypeMembers())
            {
                ct.ThrowIfCancellationRequested();
                foreach (var a in type.GetAttributes())
                {
                    if (!SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute)) continue;
                    if (a.ConstructorArguments.Length > 0 && a.ConstructorArguments[0].Value is string name)
                        found.Add(new ReferencedSchema(name, type.ToDisplayString(), assembly));
                }
            }
        }

        /// <summary>The referenced schema named <paramref name="name"/> (case-insensitive, as the registry looks names
        /// up), or null.</summary>
        public static ReferencedSchema? Named(EquatableArray<ReferencedSchema> all, string name)
        {
            foreach (var s in all)
                if (string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase)) return s;
            return null;
        }
    }
}
