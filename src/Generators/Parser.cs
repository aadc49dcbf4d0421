using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Threading;
using Hybrid.Features.Schemas;
using Hybrid.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Hybrid.Generators
{
    /// <summary>
    /// Turns a [FeatureSchema] type into a <see cref="SchemaModel"/>: reads the schema and member attributes,
    /// resolves librosa's defaults, validates everything (collecting diagnostics) and lays the members out.
    /// </summary>
    internal static class Parser
    {
        internal const string SchemaAttributeName = "Hybrid.Features.Schemas.FeatureSchemaAttribute";
        private const string SchemasNamespace = "Hybrid.Features.Schemas";
        private const string FeatureAttributeBase = "FeatureAttribute";

        public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            var diagnostics = new List<DiagnosticInfo>();
            var type = (INamedTypeSymbol)context.TargetSymbol;
            var syntax = (TypeDeclarationSyntax)context.TargetNode;
            var typeName = type.Name;
            var typeLocation = syntax.Identifier.GetLocation();

            if (!syntax.Modifiers.Any(SyntaxKind.PartialKeyword))
                diagnostics.Add(DiagnosticInfo.Create(SchemaNotPartial.Descriptor, typeLocation, typeName));

            var declaration = syntax switch
            {
                RecordDeclarationSyntax r when r.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword) => "record struct",
                RecordDeclarationSyntax => "record",
                StructDeclarationSyntax => "struct",
                _ => "class",
            };
            string? kindProblem =
                declaration == "class" ? "a class" :
                type.ContainingType != null ? "nested in '" + type.ContainingType.Name + "'" :
                type.TypeParameters.Length > 0 ? "generic" :
                type.IsAbstract ? "abstract" : null;
            if (kindProblem != null)
                diagnostics.Add(DiagnosticInfo.Create(SchemaKindNotSupported.Descriptor, typeLocation, typeName, kindProblem));
            // A schema that is not partial, or of a kind the generator cannot complete, reports only that: the
            // member checks would only repeat the one problem in other words.
            var isPartial = syntax.Modifiers.Any(SyntaxKind.PartialKeyword);
            var kindDiagnostics = !isPartial || kindProblem != null ? diagnostics.Count : -1;
            if (syntax.ParameterList != null)
                diagnostics.Add(DiagnosticInfo.Create(SchemaHasParameterList.Descriptor, syntax.ParameterList.GetLocation(), typeName));

            var attribute = context.Attributes[0];
            var attributeSyntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
            var schemaName = attribute.ConstructorArguments.Length > 0 && attribute.ConstructorArguments[0].Value is string n ? n : typeName;
            var parameters = ReadParameters(attribute);
            var checks = new Checks(typeName, diagnostics, attributeSyntax);
            foreach (var problem in LayoutRules.CheckParameters(parameters, declared: true)) checks.Report(problem);

            var members = new List<MemberModel>();
            var memberLocations = new List<Location>();
            foreach (var symbol in type.GetMembers())
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!(symbol is IPropertySymbol property)) continue;
                var featureAttributes = property.GetAttributes().Where(IsFeatureAttribute).ToList();
                if (featureAttributes.Count == 0) continue;
                var location = property.Locations.FirstOrDefault() ?? typeLocation;
                if (featureAttributes.Count > 1)
                    diagnostics.Add(DiagnosticInfo.Create(MultipleFeatureAttributes.Descriptor, location, typeName, property.Name,
                        featureAttributes.Count.ToString(CultureInfo.InvariantCulture)));
                var member = ReadMember(property, featureAttributes[0], parameters, typeName, location, diagnostics, cancellationToken);
                if (member != null)
                {
                    members.Add(member);
                    memberLocations.Add(location);
                }
            }
            if (members.Count == 0)
                diagnostics.Add(DiagnosticInfo.Create(SchemaHasNoMembers.Descriptor, typeLocation, typeName));

            // Layout: offsets in declaration order, column names and the shape (the rules shared with the run time).
            var problems = new List<LayoutProblem>();
            var (laidOut, names, shape) = LayoutRules.Arrange(members.Select(m => m.Layout).ToList(), problems);
            foreach (var problem in problems) diagnostics.Add(ToDiagnostic(problem, typeName, memberLocations[problem.Member]));
            var models = members.Select((m, i) => m with { Layout = laidOut[i] }).ToArray();

            var membersArray = new EquatableArray<MemberModel>(models);
            var shapeArray = new EquatableArray<int>(shape);
            var fingerprint = SchemaFingerprint.Compute(parameters, laidOut, shape, pcen: null);
            if (kindDiagnostics >= 0) diagnostics.RemoveRange(kindDiagnostics, diagnostics.Count - kindDiagnostics);
            // A partial class is completed with throwing property bodies (as any invalid schema is), so that the
            // compiler does not add one CS9248 per member to the kind diagnostic.
            var emittable = isPartial && (kindProblem == null
                || (declaration == "class" && type.ContainingType == null && type.TypeParameters.Length == 0 && !type.IsAbstract));
            var model = emittable
                ? new SchemaModel(
                    type.ContainingNamespace.IsGlobalNamespace ? null : type.ContainingNamespace.ToDisplayString(),
                    typeName, declaration, declaration == "record" && type.IsSealed, schemaName, parameters, membersArray,
                    shapeArray, new EquatableArray<string>(names), fingerprint, diagnostics.Count > 0,
                    LocationInfo.From(attributeSyntax?.GetLocation() ?? typeLocation))
                : null;
            return new ParseResult(model, new EquatableArray<DiagnosticInfo>(diagnostics.ToArray()));
        }

        private static bool IsFeatureAttribute(AttributeData a)
        {
            for (var t = a.AttributeClass?.BaseType; t != null; t = t.BaseType)
                if (t.Name == FeatureAttributeBase && t.ContainingNamespace.ToDisplayString() == SchemasNamespace) return true;
            return false;
        }

        private static LayoutParameters ReadParameters(AttributeData a)
        {
            var named = new Dictionary<string, TypedConstant>();
            foreach (var pair in a.NamedArguments) named[pair.Key] = pair.Value;
            int Int(string key, int fallback) => named.TryGetValue(key, out var v) && v.Value is int i ? i : fallback;
            double Double(string key, double fallback) => named.TryGetValue(key, out var v) && v.Value is double d ? d : fallback;
            bool Bool(string key, bool fallback) => named.TryGetValue(key, out var v) && v.Value is bool b ? b : fallback;

            var sr = Int("SampleRate", 22050);
            var nFft = Int("NFft", 2048);
            var hop = Int("HopLength", 0);
            var win = Int("WinLength", 0);
            var fMax = Double("FMax", 0.0);
            return new LayoutParameters(
                SampleRate: sr,
                ClipSamples: Int("ClipSamples", 0),
                NFft: nFft,
                HopLength: hop == 0 ? System.Math.Max(1, nFft / 4) : hop,
                WinLength: win == 0 ? nFft : win,
                Window: Int("Window", 0),
                Center: Bool("Center", true),
                PadMode: Int("PadMode", 0),
                NMels: Int("NMels", 128),
                FMin: Double("FMin", 0.0),
                FMax: fMax == 0.0 ? sr / 2.0 : fMax,
                Htk: Bool("Htk", false),
                Norm: Int("Norm", 1),
                Power: Double("Power", 2.0),
                TopDb: Double("TopDb", 80.0),
                NMfcc: Int("NMfcc", 20),
                Lifter: Double("Lifter", 0.0),
                Tuning: Double("Tuning", 0.0),
                RollPercent: Double("RollPercent", 0.85),
                EstimateTuning: Bool("EstimateTuning", false));
        }

        /// <summary>Reports parameter problems at the named argument that set them, else at the attribute.</summary>
        private sealed class Checks
        {
            private readonly string _type;
            private readonly List<DiagnosticInfo> _diagnostics;
            private readonly AttributeSyntax? _attribute;

            public Checks(string type, List<DiagnosticInfo> diagnostics, AttributeSyntax? attribute)
            {
                _type = type;
                _diagnostics = diagnostics;
                _attribute = attribute;
            }

            public Location? At(string argument)
            {
                var arg = _attribute?.ArgumentList?.Arguments.FirstOrDefault(x => x.NameEquals?.Name.Identifier.ValueText == argument);
                return arg?.GetLocation() ?? _attribute?.GetLocation();
            }

            public void Report(LayoutProblem problem) => _diagnostics.Add(ToDiagnostic(problem, _type, At(problem.Argument ?? "")));
        }

        /// <summary>The diagnostic of a broken layout rule, at <paramref name="location"/>.</summary>
        private static DiagnosticInfo ToDiagnostic(LayoutProblem problem, string typeName, Location? location)
        {
            DiagnosticDescriptor descriptor;
            switch (problem.Rule)
            {
                case LayoutRule.InvalidParameter: descriptor = InvalidParameter.Descriptor; break;
                case LayoutRule.ConflictingParameters: descriptor = ConflictingParameters.Descriptor; break;
                case LayoutRule.CountNotPositive: descriptor = CountNotPositive.Descriptor; break;
                case LayoutRule.UnsupportedStatistic: descriptor = UnsupportedStatistic.Descriptor; break;
                case LayoutRule.DuplicateColumnName: descriptor = DuplicateColumnName.Descriptor; break;
                default: descriptor = FrameCountMismatch.Descriptor; break;
            }
            var args = new string[problem.Args.Length + 1];
            args[0] = typeName;
            problem.Args.CopyTo(args, 1);
            return DiagnosticInfo.Create(descriptor, location, args);
        }

        private static FeatureKind? KindOf(INamedTypeSymbol? attributeClass)
        {
            if (attributeClass == null) return null;
            switch (attributeClass.Name)
            {
                case "SpectralCentroidAttribute": return FeatureKind.SpectralCentroid;
                case "SpectralBandwidthAttribute": return FeatureKind.SpectralBandwidth;
                case "SpectralRolloffAttribute": return FeatureKind.SpectralRolloff;
                case "SpectralFlatnessAttribute": return FeatureKind.SpectralFlatness;
                case "ZeroCrossingRateAttribute": return FeatureKind.ZeroCrossingRate;
                case "RmsAttribute": return FeatureKind.Rms;
                case "ChromaAttribute": return FeatureKind.Chroma;
                case "MfccAttribute": return FeatureKind.Mfcc;
                case "MfccDeltaAttribute": return FeatureKind.MfccDelta;
                case "MelBandsAttribute": return FeatureKind.MelBands;
                case "WaveformAttribute": return FeatureKind.Waveform;
                case "ScatteringAttribute": return FeatureKind.Scattering;
                default: return null;
            }
        }

        private static MemberModel? ReadMember(IPropertySymbol property, AttributeData attribute, LayoutParameters p, string typeName,
            Location location, List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
        {
            var kind = KindOf(attribute.AttributeClass);
            if (kind == null) return null;
            var declaredType = property.Type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat);
            var declarationSyntax = property.DeclaringSyntaxReferences.Select(r => r.GetSyntax(cancellationToken)).OfType<PropertyDeclarationSyntax>().FirstOrDefault();
            var isPartialDefinition = declarationSyntax != null
                && declarationSyntax.Modifiers.Any(SyntaxKind.PartialKeyword)
                && !property.IsStatic
                && declarationSyntax.ExpressionBody == null
                && declarationSyntax.AccessorList != null
                && declarationSyntax.AccessorList.Accessors.All(x => x.Body == null && x.ExpressionBody == null);

            // Constructor arguments by parameter name; named arguments by property name.
            int? count = null, samples = null, scatJ = null, scatQ = null;
            var statistic = kind == FeatureKind.Waveform ? Statistic.TimeSeries : Statistic.Mean;
            var ctor = attribute.AttributeConstructor;
            for (var i = 0; ctor != null && i < ctor.Parameters.Length && i < attribute.ConstructorArguments.Length; i++)
            {
                var value = attribute.ConstructorArguments[i].Value;
                switch (ctor.Parameters[i].Name)
                {
                    case "statistic" when value is int s: statistic = (Statistic)s; break;
                    case "count" when value is int k: count = k; break;
                    case "samples" when value is int k: samples = k; break;
                    case "j" when value is int k: scatJ = k; break;
                    case "q" when value is int k: scatQ = k; break;
                }
            }
            var named = new Dictionary<string, object?>();
            foreach (var pair in attribute.NamedArguments) named[pair.Key] = pair.Value.Value;
            T Named<T>(string key, T fallback) => named.TryGetValue(key, out var v) && v is T t ? t : fallback;

            var column = Named<string?>("Column", null) ?? Layout.SnakeCase(property.Name);
            var declaration = new LayoutMember(
                Property: property.Name,
                Kind: kind.Value,
                Statistic: statistic,
                Column: column,
                Offset: 0,
                Width: 0,
                Rows: 0,
                Frames: samples.GetValueOrDefault(),
                Pooled: !Named("PerBin", false),
                Decibels: Named("Decibels", true),
                DeltaOrder: Named("Order", 1),
                DeltaWidth: Named("Width", 9),
                FrameLength: Named("FrameLength", 0),
                HopLength: Named("HopLength", 0),
                Scattering: kind == FeatureKind.Scattering
                    ? new ScatteringSettings(scatJ.GetValueOrDefault(), scatQ.GetValueOrDefault(), Named("T", 0), Named("MaxOrder", 2),
                        Named("LogEpsilon", 1e-6), Named("PeakNormalize", false), Named("Segments", 1))
                    : null);
            var problems = new List<LayoutProblem>();
            var laid = LayoutRules.LayMember(p, declaration, count, 0, declared: true, problems);
            foreach (var problem in problems) diagnostics.Add(ToDiagnostic(problem, typeName, location));

            var isScalar = LayoutRules.IsScalar(laid);
            var expectedType = isScalar ? "float" : "global::System.ReadOnlyMemory<float>";
            if (!isPartialDefinition)
            {
                diagnostics.Add(DiagnosticInfo.Create(MemberNotPartialProperty.Descriptor, location, typeName, property.Name,
                    isScalar ? "float" : "ReadOnlyMemory<float>"));
                return null;
            }
            if (declaredType != expectedType)
            {
                diagnostics.Add(DiagnosticInfo.Create(MemberTypeMismatch.Descriptor, location, typeName, property.Name,
                    isScalar ? "float" : "ReadOnlyMemory<float>", kind.Value.ToString(), laid.Statistic.ToString(),
                    property.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat)));
                laid = laid with { Width = 1 };
            }
            return new MemberModel(SyntaxFacts.GetText(property.DeclaredAccessibility), declaredType, isScalar, laid);
        }
    }
}
