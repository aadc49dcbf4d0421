using System.Text;
using Hybrid.Dsp;

namespace Hybrid.Features.Schemas;

/// <summary>
/// A feature schema at run time: the layout of one row (<see cref="Length"/> floats shaped
/// <see cref="Shape"/>, columns <see cref="Names"/>), the <see cref="Fingerprint"/> over layout and DSP
/// parameters, and the extraction plan (<see cref="Members"/>) that <see cref="Extract(Engine, Tensor, Span{float})"/>
/// runs through <see cref="IDspOps"/>. Instances are created by generated code (each schema's static
/// <c>Info</c>); find the predefined ones with <see cref="Schemas.ByName"/>.
/// </summary>
public sealed class FeatureSchemaInfo
{
    private readonly FeatureMember[] _members;

    /// <summary>Called by generated code. Checks that the members tile [0, names.Length) in order and that
    /// the shape holds exactly that many floats.</summary>
    public FeatureSchemaInfo(string name, Type schemaType, string fingerprint, FeatureParameters parameters,
        int[] shape, string[] names, FeatureMember[] members)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(schemaType);
        ArgumentNullException.ThrowIfNull(fingerprint);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(members);
        var offset = 0;
        foreach (var m in members)
        {
            if (m.Offset != offset || m.Width < 1)
                throw new ArgumentException($"Schema '{name}': member '{m.Property}' starts at {m.Offset} with width {m.Width}; expected it to start at {offset} with a positive width.", nameof(members));
            offset += m.Width;
        }
        long product = 1;
        foreach (var d in shape) product *= d;
        if (offset != names.Length || product != names.Length)
            throw new ArgumentException($"Schema '{name}': members cover {offset} floats, shape [{string.Join(", ", shape)}] holds {product}, and there are {names.Length} column names; all three must agree.", nameof(names));
        Name = name;
        SchemaType = schemaType;
        Fingerprint = fingerprint;
        Parameters = parameters;
        Shape = Array.AsReadOnly((int[])shape.Clone());
        Names = Array.AsReadOnly((string[])names.Clone());
        _members = (FeatureMember[])members.Clone();
        Members = Array.AsReadOnly(_members);
        Base = this;
        Variant = "";
    }

    /// <summary>
    /// A schema laid out at run time: the members' offsets, widths, rows and frames, the column names, the shape
    /// and the fingerprint are computed from <paramref name="parameters"/> with the generator's rules, so a
    /// schema built here from a generated schema's parameters and members equals that schema. Used for one-member
    /// schemas (<c>features --transform</c>); variants of a generated schema come from <see cref="WithParameters"/>.
    /// Throws <see cref="ArgumentException"/> naming the librosa parameter (ParamName) and its valid range when a
    /// parameter is invalid or the members cannot be laid out (e.g. a time series without a clip length).
    /// </summary>
    /// <param name="name">Registry-style name used in messages.</param>
    /// <param name="parameters">Resolved DSP parameters (every default spelled out).</param>
    /// <param name="members">The plan in row order; Offset, Width and Frames (except a waveform's sample count)
    /// are recomputed, Rows is kept for MFCCs and recomputed for the other kinds.</param>
    public static FeatureSchemaInfo Create(string name, FeatureParameters parameters, IReadOnlyList<FeatureMember> members)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(members);
        SchemaLayout.Validate(name, parameters);
        var (laid, names, shape) = SchemaLayout.Lay(name, parameters, members);
        return new FeatureSchemaInfo(name, typeof(FeatureSchemaInfo), SchemaLayout.Fingerprint(parameters, laid, shape), parameters, shape, names, laid);
    }

    /// <summary>
    /// A run-time variant of this schema's declaration (<see cref="Base"/>) with other DSP parameters: the same
    /// members, re-laid out for <paramref name="parameters"/> (mel bands take n_mels rows; every MFCC and delta
    /// member takes n_mfcc rows when n_mfcc differs from the declaration's; ZCR/RMS frame and hop lengths equal to
    /// the declaration's n_fft and hop_length follow the new ones; a waveform as long as the declared clip follows
    /// clip_samples; time series get the frame count of the new clip length), with its own column names, shape and
    /// fingerprint (computed exactly as the generator computes a declaration's). Extraction runs through the same
    /// executor as every schema. Parameters equal to the declaration's return the declaration itself.
    /// Throws <see cref="ArgumentException"/> whose ParamName is the librosa name of the offending parameter and
    /// whose message gives the valid range, worded as the generator's diagnostics (e.g.
    /// "Feature schema 'genre': n_fft must be in 2..16384, was 1.").
    /// </summary>
    public FeatureSchemaInfo WithParameters(FeatureParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var declaration = Base;
        if (parameters == declaration.Parameters) return declaration;
        var b = declaration.Parameters;
        SchemaLayout.Validate(Name, parameters);
        var members = declaration._members.Select(m => m with
        {
            Rows = m.Kind is FeatureKind.Mfcc or FeatureKind.MfccDelta && parameters.NMfcc != b.NMfcc ? parameters.NMfcc : m.Rows,
            FrameLength = m.FrameLength == b.NFft ? parameters.NFft : m.FrameLength,
            HopLength = m.HopLength == b.HopLength ? parameters.HopLength : m.HopLength,
            Frames = m.Kind == FeatureKind.Waveform && m.Frames == b.ClipSamples && parameters.ClipSamples > 0 ? parameters.ClipSamples : m.Frames,
        }).ToArray();
        var (laid, names, shape) = SchemaLayout.Lay(Name, parameters, members);
        var fingerprint = SchemaLayout.Fingerprint(parameters, laid, shape);
        if (fingerprint == declaration.Fingerprint) return declaration;
        return new FeatureSchemaInfo(Name, SchemaType, fingerprint, parameters, shape, names, laid)
        {
            Base = declaration,
            Variant = parameters.DifferencesFrom(b),
        };
    }

    /// <summary>The compile-time declaration this schema is a variant of (the schema itself when it is not one).</summary>
    public FeatureSchemaInfo Base { get; private init; }

    /// <summary>The parameters in which this variant differs from <see cref="Base"/>, as
    /// <see cref="FeatureParameters.DifferencesFrom"/> writes them ("n_fft=512,win_length=512"); empty for a
    /// declaration. <c>Base.WithParameters(Base.Parameters.With(Variant))</c> gives this schema back.</summary>
    public string Variant { get; private init; }

    /// <summary>True when this schema is a run-time variant of a declaration.</summary>
    public bool IsVariant => !ReferenceEquals(Base, this);

    /// <summary>The schema's registered name (e.g. "genre").</summary>
    public string Name { get; }

    /// <summary>The generated C# type.</summary>
    public Type SchemaType { get; }

    /// <summary>Floats per row (per clip).</summary>
    public int Length => Names.Count;

    /// <summary>Shape of one row: [Length] for statistics, [rows, frames] for a time-series "image",
    /// [samples] for a raw waveform.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>Column names in row order (a CSV header without filename and label).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Lower-case SHA-256 hex over the layout and every resolved DSP parameter, computed at build time;
    /// equal fingerprints mean interchangeable feature rows.</summary>
    public string Fingerprint { get; }

    /// <summary>The resolved DSP parameters.</summary>
    public FeatureParameters Parameters { get; }

    /// <summary>Sampling rate in Hz the clips must have.</summary>
    public int SampleRate => Parameters.SampleRate;

    /// <summary>Samples each clip must have; 0 means any length.</summary>
    public int ClipSamples => Parameters.ClipSamples;

    /// <summary>The extraction plan, one entry per member in row order.</summary>
    public IReadOnlyList<FeatureMember> Members { get; }

    /// <summary>
    /// True when changing the librosa parameter <paramref name="name"/> (one of <see cref="FeatureParameters.Names"/>)
    /// changes what this schema computes: sr and clip_samples always; any other when a member reads it
    /// (<see cref="FeatureMember.ParametersRead"/>). Throws <see cref="ArgumentException"/> for a name that is not a
    /// feature parameter.
    /// </summary>
    public bool Reads(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!FeatureParameters.Names.Contains(name))
            throw new ArgumentException($"Unknown feature parameter '{name}'; expected one of {string.Join(", ", FeatureParameters.Names)}.", nameof(name));
        return name is "sr" or "clip_samples" || _members.Any(m => m.ParametersRead().Contains(name));
    }

    /// <summary>A multi-line description of the parameters and the plan.</summary>
    public string Describe()
    {
        var p = Parameters;
        var sb = new StringBuilder();
        sb.Append(FormattableString.Invariant($"schema {Name} ({SchemaType.Name}): {Length} floats, shape [{string.Join(", ", Shape)}], fingerprint {Fingerprint}\n"));
        sb.Append(FormattableString.Invariant($"  sr {p.SampleRate}, clip {(p.ClipSamples > 0 ? p.ClipSamples.ToString(System.Globalization.CultureInfo.InvariantCulture) : "any")} samples, n_fft {p.NFft}, hop {p.HopLength}, win {p.WinLength}, {p.Window}, center {p.Center}, pad {p.PadMode}\n"));
        sb.Append(FormattableString.Invariant($"  n_mels {p.NMels}, fmin {p.FMin}, fmax {p.FMax}, htk {p.Htk}, norm {p.Norm}, power {p.Power}, top_db {(p.TopDb is { } t ? t.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none")}, n_mfcc {p.NMfcc}, lifter {p.Lifter}, tuning {p.Tuning}, roll_percent {p.RollPercent}{(p.Pcen is null ? "" : ", pcen " + FeatureParameters.PcenText(p.Pcen))}\n"));
        foreach (var m in _members) sb.Append("  ").Append(m.Describe()).Append('\n');
        return sb.ToString();
    }

    /// <summary>
    /// Computes <paramref name="clips"/> ([batch, samples] on <paramref name="engine"/>, at <see cref="SampleRate"/>)
    /// into <paramref name="destination"/> ([batch * Length], row b at b * Length). One STFT is shared by every
    /// spectral member; the mel spectrogram, its dB and the MFCCs are computed once and shared too.
    /// Throws <see cref="SchemaMismatchException"/> when the clip length differs from <see cref="ClipSamples"/>
    /// (when that is set) or the destination has the wrong size.
    /// </summary>
    public void Extract(Engine engine, Tensor clips, Span<float> destination) =>
        FeatureExecutor.Run(this, _members, engine, clips, destination);

    /// <summary>As <see cref="Extract(Engine, Tensor, Span{float})"/>, returning a new [batch * Length] array.</summary>
    public float[] Extract(Engine engine, Tensor clips)
    {
        ArgumentNullException.ThrowIfNull(clips);
        var batch = clips.Rank == 2 ? clips.Shape[0] : 0;
        var result = new float[checked(batch * Length)];
        Extract(engine, clips, result);
        return result;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Name}{(IsVariant ? "(" + Variant + ")" : "")} [{string.Join(" x ", Shape)}] {Fingerprint[..Math.Min(12, Fingerprint.Length)]}";
}
