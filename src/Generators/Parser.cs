using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Threading;
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
            ValidateParameters(parameters, checks);

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

            // Layout: offsets in declaration order, then column names.
            var laidOut = new MemberModel[members.Count];
            var offset = 0;
            for (var i = 0; i < members.Count; i++)
            {
                laidOut[i] = members[i] with { Offset = offset };
                offset += members[i].Width;
            }
            var names = new List<string>(offset);
            var owners = new Dictionary<string, string>();
            foreach (var (m, i) in laidOut.Select((m, i) => (m, i)))
            {
                var reported = false;
                foreach (var column in Layout.ColumnNames(m))
                {
                    if (owners.TryGetValue(column, out var owner))
                    {
                        if (!reported)
                            diagnostics.Add(DiagnosticInfo.Create(DuplicateColumnName.Descriptor, memberLocations[i], typeName, column, owner, m.Property));
                        reported = true;
                    }
                    else owners[column] = m.Property;
                    names.Add(column);
                }
            }

            // Time-series members form one image: they must agree on frames.
            var series = laidOut.Select((m, i) => (m, i)).Where(x => x.m.Statistic == Statistic.TimeSeries && x.m.Frames > 0).ToList();
            foreach (var (m, i) in series.Skip(1))
            {
                var first = series[0].m;
                if (m.Frames != first.Frames)
                {
                    diagnostics.Add(DiagnosticInfo.Create(FrameCountMismatch.Descriptor, memberLocations[i], typeName,
                        first.Property, Layout.Invariant(first.Frames), m.Property, Layout.Invariant(m.Frames)));
                    break;
                }
            }

            var allSeries = laidOut.Length > 0 && laidOut.All(m => m.Statistic == Statistic.TimeSeries);
            var rows = laidOut.Sum(m => m.Rows);
            var shape = !allSeries || laidOut.Any(m => m.Frames != laidOut[0].Frames) ? new[] { offset }
                : rows == 1 ? new[] { laidOut[0].Frames }
                : new[] { rows, laidOut[0].Frames };

            var membersArray = new EquatableArray<MemberModel>(laidOut);
            var shapeArray = new EquatableArray<int>(shape);
            var fingerprint = Layout.Fingerprint(parameters, membersArray, shapeArray);
            if (kindDiagnostics >= 0) diagnostics.RemoveRange(kindDiagnostics, diagnostics.Count - kindDiagnostics);
            // A partial class is completed with throwing property bodies (as any invalid schema is), so that the
            // compiler does not add one CS9248 per member to the kind diagnostic.
            var emittable = isPartial && (kindProblem == null
                || (declaration == "class" && type.ContainingType == null && type.TypeParameters.Length == 0 && !type.IsAbstract));
            var model = emittable
                ? new SchemaModel(
                    type.ContainingNamespace.IsGlobalNamespace ? null : type.ContainingNamespace.ToDisplayString(),
                    typeName, declaration, declaration == "record" && type.IsSealed, schemaName, parameters, membersArray,
                    shapeArray, new EquatableArray<string>(names.ToArray()), fingerprint, diagnostics.Count > 0,
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

        private static ParametersModel ReadParameters(AttributeData a)
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
            return new ParametersModel(
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

            public void Invalid(bool bad, string argument, string librosaName, string expected, string actual)
            {
                if (bad) _diagnostics.Add(DiagnosticInfo.Create(InvalidParameter.Descriptor, At(argument), _type, librosaName, expected, actual));
            }

            public void Conflict(bool bad, string argument, string message)
            {
                if (bad) _diagnostics.Add(DiagnosticInfo.Create(ConflictingParameters.Descriptor, At(argument), _type, message));
            }
        }

        private static void ValidateParameters(ParametersModel p, Checks c)
        {
            string I(int v) => Layout.Invariant(v);
            string D(double v) => Layout.Invariant(v);
            c.Invalid(p.SampleRate <= 0, "SampleRate", "sr", "positive", I(p.SampleRate));
            c.Invalid(p.ClipSamples < 0, "ClipSamples", "clip_samples", "0 (any length) or positive", I(p.ClipSamples));
            c.Invalid(p.NFft < 2 || p.NFft > 16384, "NFft", "n_fft", "in 2..16384", I(p.NFft));
            c.Invalid(p.HopLength < 1, "HopLength", "hop_length", "0 (n_fft / 4) or positive", I(p.HopLength));
            c.Invalid(p.WinLength < 1, "WinLength", "win_length", "0 (n_fft) or positive", I(p.WinLength));
            c.Invalid(p.Window < 0 || p.Window > 3, "Window", "window", "a defined WindowKind", I(p.Window));
            c.Invalid(p.PadMode < 0 || p.PadMode > 2, "PadMode", "pad_mode", "a defined PadMode", I(p.PadMode));
            c.Invalid(p.Norm < 0 || p.Norm > 1, "Norm", "norm", "a defined MelNorm", I(p.Norm));
            c.Invalid(p.NMels <= 0, "NMels", "n_mels", "positive", I(p.NMels));
            c.Invalid(!(p.FMin >= 0) || double.IsInfinity(p.FMin), "FMin", "fmin", "a finite frequency of at least 0 Hz", D(p.FMin));
            c.Invalid(!(p.FMax > 0) || double.IsInfinity(p.FMax), "FMax", "fmax", "0 (sr / 2) or a positive finite frequency", D(p.FMax));
            c.Invalid(!(p.Power > 0) || double.IsInfinity(p.Power), "Power", "power", "positive and finite", D(p.Power));
            c.Invalid(!(p.TopDb > 0), "TopDb", "top_db", "positive (double.PositiveInfinity keeps everything)", D(p.TopDb));
            c.Invalid(p.NMfcc <= 0, "NMfcc", "n_mfcc", "positive", I(p.NMfcc));
            c.Invalid(!(p.Lifter >= 0) || double.IsInfinity(p.Lifter), "Lifter", "lifter", "0 or positive", D(p.Lifter));
            c.Invalid(!(p.Tuning >= -0.5 && p.Tuning < 0.5), "Tuning", "tuning", "in [-0.5, 0.5)", D(p.Tuning));
            c.Invalid(!(p.RollPercent > 0 && p.RollPercent < 1), "RollPercent", "roll_percent", "in (0, 1)", D(p.RollPercent));

            c.Conflict(p.HopLength > p.NFft && p.NFft >= 2, "HopLength",
                "hop_length (" + I(p.HopLength) + ") must not exceed n_fft (" + I(p.NFft) + "), or samples would be skipped between frames");
            c.Conflict(p.WinLength > p.NFft && p.NFft >= 2, "WinLength",
                "win_length (" + I(p.WinLength) + ") must not exceed n_fft (" + I(p.NFft) + ")");
            c.Conflict(p.SampleRate > 0 && p.FMax > p.SampleRate / 2.0, "FMax",
                "fmax (" + D(p.FMax) + " Hz) must not exceed the Nyquist frequency sr / 2 (" + D(p.SampleRate / 2.0) + " Hz)");
            c.Conflict(p.FMin >= 0 && p.FMax > 0 && p.FMin >= p.FMax, "FMin",
                "fmin (" + D(p.FMin) + " Hz) must be below fmax (" + D(p.FMax) + " Hz)");
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

        private static MemberModel? ReadMember(IPropertySymbol property, AttributeData attribute, ParametersModel p, string typeName,
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
            var perBin = Named("PerBin", false);
            var pooled = kind == FeatureKind.Chroma && !perBin;
            var frameLength = Named("FrameLength", 0);
            var memberHop = Named("HopLength", 0);
            var deltaOrder = kind == FeatureKind.MfccDelta ? Named("Order", 1) : 0;
            var deltaWidth = kind == FeatureKind.MfccDelta ? Named("Width", 9) : 0;
            var ok = true;

            void Count(string what, int value)
            {
                diagnostics.Add(DiagnosticInfo.Create(CountNotPositive.Descriptor, location, typeName, property.Name, what, Layout.Invariant(value)));
                ok = false;
            }
            void Invalid(string what, string expected, string actual)
            {
                diagnostics.Add(DiagnosticInfo.Create(InvalidParameter.Descriptor, location, typeName, property.Name + "'s " + what, expected, actual));
                ok = false;
            }
            void Conflict(string message)
            {
                diagnostics.Add(DiagnosticInfo.Create(ConflictingParameters.Descriptor, location, typeName, "'" + property.Name + "' " + message));
                ok = false;
            }

            if ((statistic == Statistic.LogMean || statistic == Statistic.LogStd) && kind != FeatureKind.Scattering)
            {
                diagnostics.Add(DiagnosticInfo.Create(UnsupportedStatistic.Descriptor, location, typeName, property.Name, kind.Value.ToString(),
                    statistic.ToString(), statistic.ToString() + " is for [Scattering]; use Mean, Std, Min, Max or TimeSeries"));
                statistic = Statistic.Mean;
                ok = false;
            }
            if (kind == FeatureKind.Scattering && statistic != Statistic.LogMean && statistic != Statistic.LogStd && statistic != Statistic.Mean)
            {
                diagnostics.Add(DiagnosticInfo.Create(UnsupportedStatistic.Descriptor, location, typeName, property.Name, "Scattering",
                    statistic.ToString(), "use LogMean (kymatio's log-scattering time average), LogStd or Mean"));
                statistic = Statistic.LogMean;
                ok = false;
            }
            if (statistic < Statistic.Mean || statistic > Statistic.LogStd)
            {
                diagnostics.Add(DiagnosticInfo.Create(UnsupportedStatistic.Descriptor, location, typeName, property.Name, kind.Value.ToString(),
                    "(Statistic)" + Layout.Invariant((int)statistic), "use Mean, Std, Min, Max or TimeSeries"));
                statistic = Statistic.Mean;
                ok = false;
            }
            if (pooled && statistic == Statistic.TimeSeries)
            {
                diagnostics.Add(DiagnosticInfo.Create(UnsupportedStatistic.Descriptor, location, typeName, property.Name, "Chroma pooled over bins",
                    "TimeSeries", "set PerBin = true to keep the 12 x frames chroma image"));
                ok = false;
            }

            int rows;
            switch (kind.Value)
            {
                case FeatureKind.Chroma: rows = 12; break;
                case FeatureKind.Mfcc:
                case FeatureKind.MfccDelta:
                    rows = count ?? p.NMfcc;
                    if (count.HasValue && count.Value <= 0) Count("count", count.Value);
                    else if (rows > p.NMels && p.NMels > 0)
                        Conflict("asks for " + Layout.Invariant(rows) + " MFCCs, but the DCT of n_mels = " + Layout.Invariant(p.NMels) + " bands gives at most " + Layout.Invariant(p.NMels));
                    break;
                case FeatureKind.MelBands: rows = p.NMels; break;
                default: rows = 1; break;
            }
            ScatteringModel? scattering = null;
            if (kind == FeatureKind.Scattering)
            {
                int j = scatJ.GetValueOrDefault(), q = scatQ.GetValueOrDefault(), t = Named("T", 0), maxOrder = Named("MaxOrder", 2);
                var epsilon = Named("LogEpsilon", 1e-6);
                var length = p.ClipSamples;
                if (length <= 0)
                    Conflict("is a scattering transform, which needs the schema's ClipSamples (the clip length in samples)");
                if (j < 1 || j > 30 || (length > 0 && (1L << j) > length))
                    Invalid("J", length > 0 ? "at least 1 with 2^J at most ClipSamples (" + Layout.Invariant(length) + ")" : "at least 1", Layout.Invariant(j));
                if (q < 1 || q > 64) Invalid("Q", "in 1..64", Layout.Invariant(q));
                if (t != 0 && (t < 1 || (t & (t - 1)) != 0 || (length > 0 && t > length)))
                    Invalid("T", "0 (2^J) or a power of two up to ClipSamples (" + Layout.Invariant(length) + ")", Layout.Invariant(t));
                if (maxOrder != 1 && maxOrder != 2) Invalid("max_order", "1 or 2", Layout.Invariant(maxOrder));
                if (!(epsilon > 0)) Invalid("log epsilon", "positive", Layout.Invariant(epsilon));
                var segments = Named("Segments", 1);
                // Every clip has at least floor(ClipSamples / T) frames (kymatio keeps the frames that cover the signal).
                var least = length > 0 && j >= 1 && j <= 30 ? length / (t != 0 ? t : 1 << j) : 0;
                if (segments != 1 && statistic == Statistic.Mean)
                    Conflict("sets Segments, which needs Statistic.LogMean or Statistic.LogStd");
                else if (segments < 1 || (least > 0 && segments > least))
                    Invalid("Segments", least > 0 ? "in 1.." + Layout.Invariant(least) + " (the frames of ClipSamples / T)" : "at least 1", Layout.Invariant(segments));
                scattering = new ScatteringModel(j, q, t, maxOrder, epsilon, Named("PeakNormalize", false), segments);
                if (ok)
                {
                    var paths = Layout.ScatteringPathCount(j, q, maxOrder);
                    rows = statistic == Statistic.Mean ? paths : (paths - 1) * segments;
                }
            }
            if (kind == FeatureKind.MfccDelta)
            {
                if (deltaOrder != 1 && deltaOrder != 2) Invalid("order", "1 or 2", Layout.Invariant(deltaOrder));
                if (deltaWidth < 3 || deltaWidth % 2 == 0) Invalid("width", "odd and at least 3", Layout.Invariant(deltaWidth));
            }
            if (kind == FeatureKind.ZeroCrossingRate || kind == FeatureKind.Rms)
            {
                if (frameLength < 0) Invalid("frame_length", "0 (n_fft) or positive", Layout.Invariant(frameLength));
                if (memberHop < 0) Invalid("hop_length", "0 (the schema's hop) or positive", Layout.Invariant(memberHop));
                if (frameLength == 0) frameLength = p.NFft;
                if (memberHop == 0) memberHop = p.HopLength;
            }
            else
            {
                frameLength = 0;
                memberHop = 0;
            }

            var frames = 0;
            if (kind == FeatureKind.Waveform)
            {
                if (samples.GetValueOrDefault() <= 0) Count("samples", samples.GetValueOrDefault());
                frames = samples.GetValueOrDefault();
            }
            else if (statistic == Statistic.TimeSeries && ok)
            {
                if (p.ClipSamples <= 0)
                    Conflict("keeps a time series, which needs the schema's ClipSamples (the clip length in samples) to fix the frame count");
                else
                {
                    var (frameLen, hop) = kind == FeatureKind.ZeroCrossingRate || kind == FeatureKind.Rms ? (frameLength, memberHop) : (p.NFft, p.HopLength);
                    frames = hop > 0 && frameLen > 0 ? Layout.FrameCount(frameLen, hop, p.Center, p.ClipSamples) : 0;
                    if (frames < 1 && hop > 0 && frameLen > 0)
                        Conflict("has no frames: clips of " + Layout.Invariant(p.ClipSamples) + " samples are shorter than the frame length " + Layout.Invariant(frameLen));
                }
            }
            if (kind == FeatureKind.MfccDelta && ok && deltaWidth >= 3 && p.ClipSamples > 0 && p.HopLength > 0 && p.NFft >= 2)
            {
                var clipFrames = Layout.FrameCount(p.NFft, p.HopLength, p.Center, p.ClipSamples);
                if (clipFrames < deltaWidth)
                    Conflict("has a delta width of " + Layout.Invariant(deltaWidth) + ", more than the " + Layout.Invariant(clipFrames) + " frames of a clip");
            }

            var isScalar = statistic != Statistic.TimeSeries && (pooled || kind <= FeatureKind.Rms);
            if (kind == FeatureKind.Scattering) isScalar = false;
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
                    isScalar ? "float" : "ReadOnlyMemory<float>", kind.Value.ToString(), statistic.ToString(),
                    property.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat)));
                ok = false;
            }

            var width = !ok ? 1 : statistic == Statistic.TimeSeries ? rows * frames : pooled ? 1 : rows;
            if (width < 1) width = 1;
            return new MemberModel(
                Property: property.Name,
                Accessibility: SyntaxFacts.GetText(property.DeclaredAccessibility),
                DeclaredType: declaredType,
                Kind: kind.Value,
                Statistic: statistic,
                Column: column,
                Offset: 0,
                Width: width,
                Rows: rows < 1 ? 1 : rows,
                Frames: statistic == Statistic.TimeSeries ? frames : 0,
                Pooled: pooled,
                Decibels: kind == FeatureKind.MelBands && Named("Decibels", true),
                DeltaOrder: deltaOrder,
                DeltaWidth: deltaWidth,
                FrameLength: frameLength,
                HopLength: memberHop,
                IsScalar: isScalar,
                Scattering: scattering);
        }
    }
}
