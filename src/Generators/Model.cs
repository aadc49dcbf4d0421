using System;
using Hybrid.Features.Schemas;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Hybrid.Generators
{
    /// <summary>One schema member: the C# property's declaration and its place in the layout (the shared
    /// <see cref="LayoutMember"/>).</summary>
    internal sealed record MemberModel(string Accessibility, string DeclaredType, bool IsScalar, LayoutMember Layout)
    {
        public string Property => Layout.Property;
        public FeatureKind Kind => Layout.Kind;
        public Statistic Statistic => Layout.Statistic;
        public string Column => Layout.Column;
        public int Offset => Layout.Offset;
        public int Width => Layout.Width;
        public int Rows => Layout.Rows;
        public int Frames => Layout.Frames;
        public bool Pooled => Layout.Pooled;
        public bool Decibels => Layout.Decibels;
        public int DeltaOrder => Layout.DeltaOrder;
        public int DeltaWidth => Layout.DeltaWidth;
        public int FrameLength => Layout.FrameLength;
        public int HopLength => Layout.HopLength;
        public ScatteringSettings? Scattering => Layout.Scattering;
    }

    /// <summary>Everything the emitter needs for one schema type; free of Roslyn symbols.</summary>
    internal sealed record SchemaModel(
        string? Namespace,
        string TypeName,
        string Declaration,
        bool IsSealedRecordClass,
        string SchemaName,
        LayoutParameters Parameters,
        EquatableArray<MemberModel> Members,
        EquatableArray<int> Shape,
        EquatableArray<string> Names,
        string Fingerprint,
        bool HasErrors,
        LocationInfo? Location)
    {
        public int Length => Names.Count;
        public bool IsRecordClass => Declaration == "record";
        public bool IsPlainStruct => Declaration == "struct";
    }

    /// <summary>A schema's registered name, for the uniqueness check across the compilation.</summary>
    internal sealed record SchemaName(string Name, string TypeName, LocationInfo? Location);

    /// <summary>A location that can be compared and cached (Roslyn's Location holds a syntax tree).</summary>
    internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
    {
        public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

        public static LocationInfo? From(Location? location) =>
            location is null || location.SourceTree is null
                ? null
                : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
    }

    /// <summary>A diagnostic to report: its descriptor, place and message arguments.</summary>
    internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, EquatableArray<string> Arguments)
    {
        public Diagnostic ToDiagnostic()
        {
            var args = new object[Arguments.Count];
            for (var i = 0; i < args.Length; i++) args[i] = Arguments[i];
            return Diagnostic.Create(Descriptor, Location?.ToLocation(), args);
        }

        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location? location, params string[] arguments) =>
            new DiagnosticInfo(descriptor, LocationInfo.From(location), new EquatableArray<string>(arguments));
    }

    /// <summary>The parser's answer for one [FeatureSchema] type: a model to emit (null when nothing can be
    /// emitted at all) and the diagnostics to report.</summary>
    internal sealed record ParseResult(SchemaModel? Model, EquatableArray<DiagnosticInfo> Diagnostics);
}
