using System.Collections.ObjectModel;
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
    }

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

    /// <summary>A multi-line description of the parameters and the plan.</summary>
    public string Describe()
    {
        var p = Parameters;
        var sb = new StringBuilder();
        sb.Append(FormattableString.Invariant($"schema {Name} ({SchemaType.Name}): {Length} floats, shape [{string.Join(", ", Shape)}], fingerprint {Fingerprint}\n"));
        sb.Append(FormattableString.Invariant($"  sr {p.SampleRate}, clip {(p.ClipSamples > 0 ? p.ClipSamples.ToString(System.Globalization.CultureInfo.InvariantCulture) : "any")} samples, n_fft {p.NFft}, hop {p.HopLength}, win {p.WinLength}, {p.Window}, center {p.Center}, pad {p.PadMode}\n"));
        sb.Append(FormattableString.Invariant($"  n_mels {p.NMels}, fmin {p.FMin}, fmax {p.FMax}, htk {p.Htk}, norm {p.Norm}, power {p.Power}, top_db {(p.TopDb is { } t ? t.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none")}, n_mfcc {p.NMfcc}, lifter {p.Lifter}, tuning {p.Tuning}, roll_percent {p.RollPercent}\n"));
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
    public override string ToString() => $"{Name} [{string.Join(" x ", Shape)}] {Fingerprint[..Math.Min(12, Fingerprint.Length)]}";
}
