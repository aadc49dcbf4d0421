using Hybrid.Dsp.Managed;

namespace Hybrid.Dsp;

/// <summary>
/// Per-channel energy normalisation (Wang et al., "Trainable frontend for robust and far-field keyword spotting",
/// ICASSP 2017), mirroring librosa.pcen of librosa 0.10.2 with its defaults for b (derived from the time constant),
/// max_size 1, ref None, axis -1 (time) and zi None. For each row (a channel: one mel band of one clip) of a
/// spectrogram S, with x = InputScale * S:
/// <list type="number">
/// <item>M = scipy.signal.lfilter([b], [1, b - 1], x, zi=lfilter_zi([b], [1, b - 1])): M[t] = b x[t] + (1 - b) M[t - 1]
/// with M[-1] = 1 (librosa 0.10.2's initial state is the filter's steady state for a constant input of 1, not of the
/// first frame);</item>
/// <item>smooth = exp(-gain (log(eps) + log1p(M / eps))), i.e. (eps + M)^-gain;</item>
/// <item>out = bias^power expm1(power log1p(x smooth / bias)), i.e. (x smooth + bias)^power - bias^power; log1p(x smooth)
/// when power is 0; exp(power (log x + log smooth)) when bias is 0.</item>
/// </list>
/// Computed in double precision on the host (as librosa computes float32 input in float64), rows independent; the
/// result is rounded to float32. Runs the same on every engine: tensors of other engines are copied to the host and back.
/// </summary>
public static class Pcen
{
    /// <summary>
    /// PCEN of <paramref name="s"/>: [batch, rows, frames] (e.g. a mel spectrogram, n_mels rows, non-negative
    /// energies) into <paramref name="destination"/> of the same shape, on the tensors' engine; the filter runs along
    /// the last (frame) axis. <paramref name="sampleRate"/> (Hz) and <paramref name="hopLength"/> (samples) set the
    /// frame rate that converts the time constant (librosa's sr and hop_length). May not alias.
    /// Throws ArgumentException for mismatched shapes or engines, ArgumentOutOfRangeException for invalid settings.
    /// </summary>
    public static void Apply(PcenConfig config, int sampleRate, int hopLength, Tensor s, Tensor destination)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(destination);
        if (s.Rank != 3) throw new ArgumentException($"s: expected [batch, rows, frames], was [{string.Join(", ", s.Shape)}].", nameof(s));
        if (!s.Shape.SequenceEqual(destination.Shape))
            throw new ArgumentException($"destination: expected [{string.Join(", ", s.Shape)}], was [{string.Join(", ", destination.Shape)}].", nameof(destination));
        if (!ReferenceEquals(s.Engine, destination.Engine))
            throw new ArgumentException($"s lives on engine '{s.Engine.Name}', destination on '{destination.Engine.Name}'.", nameof(destination));
        int rows = s.Shape[0] * s.Shape[1], frames = s.Shape[2];
        if (s is ManagedTensor source && destination is ManagedTensor target)
        {
            Apply(config, sampleRate, hopLength, source.Span, target.Span, rows, frames);
            return;
        }
        var host = s.ToArray();
        Apply(config, sampleRate, hopLength, host, host, rows, frames);
        destination.CopyFrom(host);
    }

    /// <summary>
    /// PCEN of <paramref name="s"/>: <paramref name="rows"/> x <paramref name="frames"/> row-major (each row filtered
    /// along its frames) into <paramref name="destination"/> (same size; may be the same memory). See
    /// <see cref="Apply(PcenConfig, int, int, Tensor, Tensor)"/>.
    /// </summary>
    public static void Apply(PcenConfig config, int sampleRate, int hopLength, ReadOnlySpan<float> s, Span<float> destination, int rows, int frames)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (rows < 0 || frames < 0 || s.Length != (long)rows * frames)
            throw new ArgumentOutOfRangeException(nameof(rows), $"s holds {s.Length} values, expected rows x frames = {rows} x {frames}.");
        if (destination.Length != s.Length)
            throw new ArgumentException($"destination holds {destination.Length} values, expected {s.Length}.", nameof(destination));
        var b = config.Coefficient(sampleRate, hopLength);
        double scale = config.InputScale, gain = config.Gain, bias = config.Bias, power = config.Power, eps = config.Eps;
        var logEps = Math.Log(eps);
        var biasPower = Math.Pow(bias, power);
        var a = 1.0 - b;
        for (var r = 0; r < rows; r++)
        {
            var row = r * frames;
            // scipy's lfilter_zi([b], [1, b - 1]) is 1 - b: the state of the filter that has seen 1 forever.
            var state = a;
            for (var t = 0; t < frames; t++)
            {
                var x = scale * s[row + t];
                // Direct form II transposed, as scipy.signal.lfilter: y = b x + z; z = (1 - b) y.
                var m = b * x + state;
                state = a * m;
                var smooth = Math.Exp(-gain * (logEps + LogOnePlus(m / eps)));
                double y;
                if (power == 0) y = LogOnePlus(x * smooth);
                else if (bias == 0) y = Math.Exp(power * (Math.Log(x) + Math.Log(smooth)));
                else y = biasPower * ExpMinusOne(power * LogOnePlus(x * smooth / bias));
                destination[row + t] = (float)y;
            }
        }
    }

    /// <summary>log(1 + x), accurate for small x (numpy.log1p).</summary>
    internal static double LogOnePlus(double x)
    {
        var u = 1.0 + x;
        if (double.IsPositiveInfinity(u) || double.IsNaN(u)) return Math.Log(u);
        // Goldberg's correction: exact up to rounding for |x| small, plain log otherwise.
        return u == 1.0 ? x : Math.Log(u) * x / (u - 1.0);
    }

    /// <summary>exp(x) - 1, accurate for small x (numpy.expm1).</summary>
    internal static double ExpMinusOne(double x)
    {
        if (Math.Abs(x) >= 0.5) return Math.Exp(x) - 1.0;
        var u = Math.Exp(x);
        if (u == 1.0) return x;
        var um1 = u - 1.0;
        return um1 == -1.0 ? -1.0 : um1 * x / Math.Log(u);
    }
}
