using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Hybrid.Generators
{
    /// <summary>Mirrors Hybrid.Features.Schemas.FeatureKind (the emitter writes these names).</summary>
    internal enum FeatureKind
    {
        SpectralCentroid,
        SpectralBandwidth,
        SpectralRolloff,
        SpectralFlatness,
        ZeroCrossingRate,
        Rms,
        Chroma,
        Mfcc,
        MfccDelta,
        MelBands,
        Waveform,
        Scattering,
    }

    /// <summary>Mirrors Hybrid.Features.Schemas.Statistic.</summary>
    internal enum Statistic
    {
        Mean,
        Std,
        Min,
        Max,
        TimeSeries,
        LogMean,
        LogStd,
    }

    /// <summary>Resolved DSP parameters of a schema (librosa names; enums as their numeric values).</summary>
    internal sealed record ParametersModel(
        int SampleRate,
        int ClipSamples,
        int NFft,
        int HopLength,
        int WinLength,
        int Window,
        bool Center,
        int PadMode,
        int NMels,
        double FMin,
        double FMax,
        bool Htk,
        int Norm,
        double Power,
        double TopDb,
        int NMfcc,
        double Lifter,
        double Tuning,
        double RollPercent,
        bool EstimateTuning);

    /// <summary>One schema member with its place in the layout.</summary>
    internal sealed record MemberModel(
        string Property,
        string Accessibility,
        string DeclaredType,
        FeatureKind Kind,
        Statistic Statistic,
        string Column,
        int Offset,
        int Width,
        int Rows,
        int Frames,
        bool Pooled,
        bool Decibels,
        int DeltaOrder,
        int DeltaWidth,
        int FrameLength,
        int HopLength,
        bool IsScalar,
        ScatteringModel? Scattering = null);

    /// <summary>A [Scattering] member's parameters (T 0 means 2^J).</summary>
    internal sealed record ScatteringModel(int J, int Q, int T, int MaxOrder, double LogEpsilon, bool PeakNormalize, int Segments);

    /// <summary>Everything the emitter needs for one schema type; free of Roslyn symbols.</summary>
    internal sealed record SchemaModel(
        string? Namespace,
        string TypeName,
        string Declaration,
        bool IsSealedRecordClass,
        string SchemaName,
        ParametersModel Parameters,
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
