using System.Numerics;
using Hybrid.Dsp;
using Hybrid.Dsp.Managed;

namespace Hybrid.Features.Schemas;

/// <summary>
/// Runs a schema's plan through <see cref="IDspOps"/>: each intermediate (spectrogram per exponent, mel,
/// dB mel, MFCC, deltas, chroma, framed waveform features) is computed at most once per call for the whole
/// batch, copied to the host once, and every member is reduced (statistic) or copied (time series) from it.
/// </summary>
internal static class FeatureExecutor
{
    /// <summary>A computed batch of per-frame values on the host: [batch, rows, frames] from Data[Start].
    /// Managed tensors are read in place; other engines' tensors are downloaded once.</summary>
    private readonly record struct Block(float[] Data, int Start, int Rows, int Frames);

    internal static void Run(FeatureSchemaInfo info, FeatureMember[] members, Engine engine, Tensor clips, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(clips);
        if (clips.Rank != 2)
            throw new SchemaMismatchException(info.Name, $"clips must have shape [batch, samples], was [{string.Join(", ", clips.Shape)}].");
        if (!ReferenceEquals(clips.Engine, engine))
            throw new ArgumentException($"clips live on engine '{clips.Engine.Name}', not on the given engine '{engine.Name}'.", nameof(clips));
        int batch = clips.Shape[0], samples = clips.Shape[1];
        if (info.ClipSamples > 0 && samples != info.ClipSamples)
            throw new SchemaMismatchException(info.Name, $"clips must have {info.ClipSamples} samples, had {samples}; cut or zero-pad them first.");
        if (destination.Length != (long)batch * info.Length)
            throw new SchemaMismatchException(info.Name, $"destination must hold batch x Length = {batch} x {info.Length} = {(long)batch * info.Length} floats, had {destination.Length}.");
        if (batch == 0) return;

        using var run = new Intermediates(info, engine, clips, samples);
        foreach (var m in members)
        {
            var block = run.BlockFor(m);
            if (m.Statistic == Statistic.TimeSeries && m.Kind != FeatureKind.Waveform && block.Frames != m.Frames)
                throw new SchemaMismatchException(info.Name, $"member '{m.Property}' has {block.Frames} frames for {samples} samples, the layout expects {m.Frames}.");
            Write(m, block, batch, info.Length, destination);
        }
    }

    private static void Write(FeatureMember m, Block block, int batch, int length, Span<float> destination)
    {
        var f = block.Frames;
        for (var b = 0; b < batch; b++)
        {
            var row = destination.Slice(b * length + m.Offset, m.Width);
            var source = block.Data.AsSpan(block.Start + b * block.Rows * f, block.Rows * f);
            if (m.Kind == FeatureKind.Waveform)
            {
                var n = Math.Min(f, m.Frames);
                source[..n].CopyTo(row);
                row[n..].Clear();
            }
            else if (m.Statistic == Statistic.TimeSeries)
            {
                source[..(m.Rows * f)].CopyTo(row);
            }
            else if (m.Pooled)
            {
                row[0] = Reduce(m.Statistic, source);
            }
            else
            {
                for (var r = 0; r < m.Rows; r++) row[r] = Reduce(m.Statistic, source.Slice(r * f, f));
            }
        }
    }

    /// <summary>Mean, population std, min or max of <paramref name="values"/>, accumulated in double.</summary>
    internal static float Reduce(Statistic statistic, ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) return float.NaN;
        switch (statistic)
        {
            case Statistic.Min:
            {
                var min = values[0];
                foreach (var v in values) if (v < min || float.IsNaN(v)) min = v;
                return min;
            }
            case Statistic.Max:
            {
                var max = values[0];
                foreach (var v in values) if (v > max || float.IsNaN(v)) max = v;
                return max;
            }
            // LogMean and LogStd blocks already hold the statistic of log(|S| + epsilon) (one frame): their mean is it.
            case Statistic.Mean or Statistic.Std or Statistic.LogMean or Statistic.LogStd:
            {
                double sum = 0;
                foreach (var v in values) sum += v;
                var mean = sum / values.Length;
                if (statistic != Statistic.Std) return (float)mean;
                double squares = 0;
                foreach (var v in values) squares += (v - mean) * (v - mean);
                return (float)Math.Sqrt(squares / values.Length);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(statistic), statistic, "Expected Mean, Std, Min or Max.");
        }
    }

    /// <summary>destination = source ^ exponent elementwise (SIMD for the common square); may alias.</summary>
    internal static void Raise(ReadOnlySpan<float> source, Span<float> destination, double exponent)
    {
        var i = 0;
        if (exponent == 2.0)
        {
            if (Vector.IsHardwareAccelerated)
            {
                for (; i <= source.Length - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var v = new Vector<float>(source[i..]);
                    (v * v).CopyTo(destination[i..]);
                }
            }
            for (; i < source.Length; i++) destination[i] = source[i] * source[i];
            return;
        }
        for (; i < source.Length; i++) destination[i] = (float)Math.Pow(source[i], exponent);
    }

    /// <summary>The intermediates of one Extract call, computed lazily and released at the end.</summary>
    private sealed class Intermediates(FeatureSchemaInfo info, Engine engine, Tensor clips, int samples) : IDisposable
    {
        private readonly FeatureParameters _p = info.Parameters;
        private readonly int _batch = clips.Shape[0];
        private readonly List<Tensor> _owned = [];
        private readonly List<float[]> _rented = [];
        private readonly Dictionary<double, Tensor> _spectra = [];
        private readonly Dictionary<(FeatureKind, int, int), Block> _blocks = [];
        private readonly Dictionary<(ScatteringConfig, bool), Block> _scattering = [];
        private Tensor? _mel;
        private Tensor? _melDb;
        private Tensor? _melPowerDb;
        private Tensor? _mfcc;
        private int _frames = -1;

        private IDspOps Dsp => engine.Dsp;

        private int Frames
        {
            get
            {
                if (_frames >= 0) return _frames;
                var n = SchemaLayout.FrameCount(_p.NFft, _p.HopLength, _p.Center, samples);
                if (n < 1)
                    throw new SchemaMismatchException(info.Name, $"clips of {samples} samples are shorter than n_fft = {_p.NFft}{(_p.Center ? " after centring" : "")}.");
                return _frames = n;
            }
        }

        private int Bins => _p.NFft / 2 + 1;

        private Tensor Allocate(params int[] shape)
        {
            Tensor t;
            if (engine is ManagedEngine managed)
            {
                long length = 1;
                foreach (var d in shape) length = checked(length * d);
                var data = HostBuffers.Rent(checked((int)length));
                _rented.Add(data);
                t = managed.Wrap(data, shape);
            }
            else t = engine.Allocate(shape);
            _owned.Add(t);
            return t;
        }

        private static Block Download(Tensor t, int rows, int frames) =>
            t is ManagedTensor m ? new(m.Data, m.Offset, rows, frames) : new(t.ToArray(), 0, rows, frames);

        /// <summary>|STFT|^exponent, [batch, bins, frames]. The STFT runs once: directly as power or magnitude
        /// when only one exponent is needed, else as magnitude raised to each exponent.</summary>
        private Tensor Spectrum(double exponent)
        {
            if (_spectra.TryGetValue(exponent, out var cached)) return cached;
            var exponents = Exponents();
            Tensor result;
            if (exponents.Count == 1 && exponent is 1.0 or 2.0)
            {
                result = Allocate(_batch, Bins, Frames);
                Dsp.Stft(_p.Stft, clips, result, exponent == 2.0 ? SpectrumKind.Power : SpectrumKind.Magnitude);
            }
            else
            {
                if (!_spectra.TryGetValue(1.0, out var magnitude))
                {
                    magnitude = Allocate(_batch, Bins, Frames);
                    Dsp.Stft(_p.Stft, clips, magnitude, SpectrumKind.Magnitude);
                    _spectra[1.0] = magnitude;
                    if (exponent == 1.0) return magnitude;
                }
                result = Allocate(_batch, Bins, Frames);
                if (magnitude is ManagedTensor source && result is ManagedTensor target)
                    Raise(source.Span, target.Span, exponent);
                else
                {
                    var raised = magnitude.ToArray();
                    Raise(raised, raised, exponent);
                    result.CopyFrom(raised);
                }
            }
            _spectra[exponent] = result;
            return result;
        }

        private HashSet<double> Exponents()
        {
            var set = new HashSet<double>();
            foreach (var m in info.Members)
            {
                switch (m.Kind)
                {
                    case FeatureKind.SpectralCentroid or FeatureKind.SpectralBandwidth or FeatureKind.SpectralRolloff or FeatureKind.SpectralFlatness:
                        set.Add(1.0);
                        break;
                    case FeatureKind.Chroma:
                        set.Add(2.0);
                        break;
                    case FeatureKind.Mfcc or FeatureKind.MfccDelta or FeatureKind.MelBands or FeatureKind.Spectrogram:
                        set.Add(_p.Power);
                        break;
                }
            }
            return set;
        }

        private Tensor Mel()
        {
            if (_mel is not null) return _mel;
            _mel = Allocate(_batch, _p.NMels, Frames);
            Dsp.Mel(_p.Mel, _p.NFft, Spectrum(_p.Power), _mel);
            return _mel;
        }

        /// <summary>
        /// Whether the schema reads the mel chain only at its ends (power_to_db of the mel spectrogram, MFCCs and their
        /// deltas): no member reads the spectrogram, the linear mel bands, another dB rule or PCEN, and the power is 1
        /// or 2. Then one fused call (<see cref="IDspOps.LogMelSpectrogram"/> or the MFCC from clips) computes them
        /// without a batch-sized spectrogram, with the same values as the chain.
        /// </summary>
        private bool FusesMelChain => _fuses ??= _p.Power is 1.0 or 2.0 && info.Members.All(m => m.Kind switch
        {
            FeatureKind.Spectrogram or FeatureKind.Chroma or FeatureKind.SpectralCentroid or FeatureKind.SpectralBandwidth
                or FeatureKind.SpectralRolloff or FeatureKind.SpectralFlatness => false,
            FeatureKind.MelBands => m.Decibels && _p.Pcen is null && _p.MelDb is (_, false, 1.0),
            _ => true,
        });

        private bool? _fuses;

        /// <summary>The fused mel chain: the MFCCs (as many as the largest member asks for) when a member reads them,
        /// with the log-mel spectrogram beside them when a member reads that too, else the log-mel spectrogram alone.</summary>
        private void RunFusedMelChain()
        {
            var kind = _p.Power == 2.0 ? SpectrumKind.Power : SpectrumKind.Magnitude;
            var count = MfccCount();
            if (count == 0 || info.Members.Any(m => m.Kind == FeatureKind.MelBands))
                _melPowerDb = Allocate(_batch, _p.NMels, Frames);
            if (count == 0)
            {
                Dsp.LogMelSpectrogram(_p.Stft, _p.Mel, _p.Db, clips, _melPowerDb!, kind);
                return;
            }
            _mfcc = Allocate(_batch, count, Frames);
            Dsp.Mfcc(_p.Stft, _p.Mel, _p.Db, count, (float)_p.Lifter, clips, _mfcc, _melPowerDb, kind);
        }

        /// <summary>The largest MFCC count any member asks for (0 when none reads MFCCs).</summary>
        private int MfccCount()
        {
            var count = 0;
            foreach (var m in info.Members)
                if (m.Kind is FeatureKind.Mfcc or FeatureKind.MfccDelta) count = Math.Max(count, m.Rows);
            return count;
        }

        /// <summary>power_to_db of the mel spectrogram (librosa.feature.mfcc's input at any power).</summary>
        private Tensor MelPowerDb()
        {
            if (_melPowerDb is not null) return _melPowerDb;
            if (FusesMelChain && _mfcc is null)
            {
                RunFusedMelChain();
                return _melPowerDb!;
            }
            _melPowerDb = Allocate(_batch, _p.NMels, Frames);
            Dsp.PowerToDb(_p.Db, Mel(), _melPowerDb);
            return _melPowerDb;
        }

        /// <summary>dB mel bands: librosa's rule for the schema's power (<see cref="FeatureParameters.MelDb"/>);
        /// the same tensor as <see cref="MelPowerDb"/> at power 2. With <see cref="FeatureParameters.Pcen"/>, PCEN of
        /// the mel spectrogram (scaled by 2^31) in its place (<see cref="Pcen.Apply(PcenConfig, int, int, Tensor, Tensor)"/>,
        /// on the host for engines other than managed).</summary>
        private Tensor MelDb()
        {
            if (_melDb is not null) return _melDb;
            if (_p.Pcen is { } pcen)
            {
                _melDb = Allocate(_batch, _p.NMels, Frames);
                Pcen.Apply(pcen, _p.SampleRate, _p.HopLength, Mel(), _melDb);
                return _melDb;
            }
            var (config, amplitude, exponent) = _p.MelDb;
            if (!amplitude && exponent == 1.0) return _melDb = MelPowerDb();
            _melDb = Allocate(_batch, _p.NMels, Frames);
            if (amplitude) Dsp.AmplitudeToDb(config, Mel(), _melDb);
            else
            {
                var raised = Allocate(_batch, _p.NMels, Frames);
                var mel = Mel();
                if (mel is ManagedTensor source && raised is ManagedTensor target) Raise(source.Span, target.Span, exponent);
                else
                {
                    var host = mel.ToArray();
                    Raise(host, host, exponent);
                    raised.CopyFrom(host);
                }
                Dsp.PowerToDb(config, raised, _melDb);
            }
            return _melDb;
        }

        /// <summary>MFCCs with the largest count any member asks for (DCT rows do not depend on the count).</summary>
        private Tensor Mfcc()
        {
            if (_mfcc is not null) return _mfcc;
            if (FusesMelChain && _melPowerDb is null)
            {
                RunFusedMelChain();
                return _mfcc!;
            }
            var count = MfccCount();
            _mfcc = Allocate(_batch, count, Frames);
            Dsp.Mfcc(count, (float)_p.Lifter, MelPowerDb(), _mfcc);
            return _mfcc;
        }

        private Block Framed(FeatureMember m)
        {
            var n = SchemaLayout.FrameCount(m.FrameLength, m.HopLength, _p.Center, samples);
            if (n < 1)
                throw new SchemaMismatchException(info.Name, $"clips of {samples} samples are shorter than the frame length {m.FrameLength} of '{m.Property}'.");
            var output = Allocate(_batch, n);
            if (m.Kind == FeatureKind.Rms) Dsp.Rms(m.FrameLength, m.HopLength, _p.Center, _p.PadMode, clips, output);
            else Dsp.ZeroCrossingRate(m.FrameLength, m.HopLength, _p.Center, clips, output);
            return Download(output, 1, n);
        }

        /// <summary>Scattering1D of the clips (each divided by its peak first when asked): [batch, paths, frames]; for
        /// LogMean over the whole clip the engine's time average of log(|S| + epsilon) of every path but order 0
        /// ([batch, paths - 1, 1]); for LogStd or LogMean over parts, the statistic of log(|S| + epsilon) of every path but
        /// order 0 per part, reduced on the host from the coefficients ([batch, (paths - 1) * parts, 1]).</summary>
        private Block Scattering(FeatureMember m)
        {
            var config = new ScatteringConfig(m.ScatteringJ, m.ScatteringQ, m.ScatteringT == 0 ? null : m.ScatteringT, m.ScatteringMaxOrder);
            ScatteringFilterBank bank;
            try
            {
                bank = Filters.Scattering1D(config, samples);
            }
            catch (ArgumentException e)
            {
                throw new SchemaMismatchException(info.Name, $"member '{m.Property}': {e.Message}");
            }
            var paths = bank.Paths.Count;
            var log = m.Statistic is Statistic.LogMean or Statistic.LogStd;
            var parts = log ? m.ScatteringSegments : 1;
            if (parts < 1 || parts > bank.Frames)
                throw new SchemaMismatchException(info.Name, $"member '{m.Property}' takes its statistic over {parts} parts, the scattering transform gives {bank.Frames} frames.");
            if (m.Rows != (log ? (paths - 1) * parts : paths))
                throw new SchemaMismatchException(info.Name,
                    $"member '{m.Property}' has {m.Rows} rows, the scattering transform gives {paths} paths{(parts > 1 ? $" ({parts} parts each)" : "")}.");
            if (m.Statistic == Statistic.LogStd || parts > 1)
                return LogStatistic(m, Coefficients(config, m.PeakNormalize, paths, bank.Frames), paths, parts);
            var input = PeakNormalized(m.PeakNormalize);
            if (log)
            {
                // The engine reduces over frames (on the device for the ILGPU engines): one frame per row here.
                var means = Allocate(_batch, paths - 1);
                Dsp.ScatteringLogMean(config, m.LogEpsilon, input, means);
                return Download(means, paths - 1, 1);
            }
            return Coefficients(config, m.PeakNormalize, paths, bank.Frames);
        }

        /// <summary>Scattering1D of the clips, each divided by its peak first when asked, once per configuration:
        /// [batch, paths, frames].</summary>
        private Block Coefficients(ScatteringConfig config, bool peakNormalize, int paths, int frames)
        {
            if (_scattering.TryGetValue((config, peakNormalize), out var cached)) return cached;
            var output = Allocate(_batch, paths, frames);
            Dsp.Scattering1D(config, PeakNormalized(peakNormalize), output);
            return _scattering[(config, peakNormalize)] = Download(output, paths, frames);
        }

        /// <summary>Mean (LogMean) or population standard deviation (LogStd) of log(|S| + epsilon) over each of
        /// <paramref name="parts"/> equal parts of the frames (frame f in part floor(f * parts / frames)), for every path
        /// but order 0, path-major: [batch, (paths - 1) * parts, 1]. The logarithm of each float32 coefficient is rounded
        /// to float32 and accumulated in double, as <see cref="IDspOps.ScatteringLogMean"/> does.</summary>
        private Block LogStatistic(FeatureMember m, Block s, int paths, int parts)
        {
            int frames = s.Frames, rows = (paths - 1) * parts;
            var result = new float[(long)_batch * rows];
            var logs = new float[frames];
            for (var b = 0; b < _batch; b++)
                for (var p = 1; p < paths; p++)
                {
                    var source = s.Data.AsSpan(s.Start + (b * paths + p) * frames, frames);
                    for (var f = 0; f < frames; f++) logs[f] = (float)Math.Log(Math.Abs(source[f]) + m.LogEpsilon);
                    for (var k = 0; k < parts; k++)
                    {
                        int from = (k * frames + parts - 1) / parts, to = ((k + 1) * frames + parts - 1) / parts;
                        var part = logs[from..to];
                        double sum = 0;
                        foreach (var v in part) sum += v;
                        var mean = sum / part.Length;
                        var value = mean;
                        if (m.Statistic == Statistic.LogStd)
                        {
                            double squares = 0;
                            foreach (var v in part) squares += (v - mean) * (v - mean);
                            value = Math.Sqrt(squares / part.Length);
                        }
                        result[(long)b * rows + (p - 1) * parts + k] = (float)value;
                    }
                }
            return new Block(result, 0, rows, 1);
        }

        /// <summary>The clips, or a copy with each clip divided by its peak absolute value (silent clips stay zero).</summary>
        private Tensor PeakNormalized(bool peakNormalize)
        {
            var input = clips;
            if (peakNormalize)
            {
                var host = clips.ToArray();
                for (var b = 0; b < _batch; b++)
                {
                    var clip = host.AsSpan(b * samples, samples);
                    var peak = 0f;
                    foreach (var v in clip) peak = Math.Max(peak, Math.Abs(v));
                    if (peak > 0) foreach (ref var v in clip) v /= peak;
                }
                input = Allocate(_batch, samples);
                input.CopyFrom(host);
            }
            return input;
        }

        internal Block BlockFor(FeatureMember m)
        {
            var key = m.Kind switch
            {
                FeatureKind.ZeroCrossingRate or FeatureKind.Rms => (m.Kind, m.FrameLength, m.HopLength),
                FeatureKind.MfccDelta => (m.Kind, m.DeltaOrder, m.DeltaWidth),
                FeatureKind.MelBands => (m.Kind, m.Decibels ? 1 : 0, 0),
                FeatureKind.Scattering => (m.Kind, m.Offset, 0),
                _ => (m.Kind, 0, 0),
            };
            if (_blocks.TryGetValue(key, out var cached)) return cached;
            Block block;
            switch (m.Kind)
            {
                case FeatureKind.Waveform:
                    block = Download(clips, 1, samples);
                    break;
                case FeatureKind.ZeroCrossingRate or FeatureKind.Rms:
                    block = Framed(m);
                    break;
                case FeatureKind.SpectralCentroid:
                {
                    var output = Allocate(_batch, Frames);
                    Dsp.SpectralCentroid(_p.SampleRate, _p.NFft, Spectrum(1.0), output);
                    block = Download(output, 1, Frames);
                    break;
                }
                case FeatureKind.SpectralBandwidth:
                {
                    var output = Allocate(_batch, Frames);
                    Dsp.SpectralBandwidth(_p.SampleRate, _p.NFft, 2f, Spectrum(1.0), output);
                    block = Download(output, 1, Frames);
                    break;
                }
                case FeatureKind.SpectralRolloff:
                {
                    var output = Allocate(_batch, Frames);
                    Dsp.SpectralRolloff(_p.SampleRate, _p.NFft, (float)_p.RollPercent, Spectrum(1.0), output);
                    block = Download(output, 1, Frames);
                    break;
                }
                case FeatureKind.SpectralFlatness:
                {
                    var output = Allocate(_batch, Frames);
                    Dsp.SpectralFlatness(1e-10f, 2f, Spectrum(1.0), output);
                    block = Download(output, 1, Frames);
                    break;
                }
                case FeatureKind.Chroma:
                {
                    var output = Allocate(_batch, 12, Frames);
                    if (_p.EstimateTuning) Hybrid.Dsp.Tuning.ChromaStft(engine, Spectrum(2.0), _p.SampleRate, _p.NFft, 12, output);
                    else Dsp.Chroma(_p.SampleRate, _p.NFft, 12, (float)_p.Tuning, Spectrum(2.0), output);
                    block = Download(output, 12, Frames);
                    break;
                }
                case FeatureKind.MelBands:
                    block = Download(m.Decibels ? MelDb() : Mel(), _p.NMels, Frames);
                    break;
                case FeatureKind.Spectrogram:
                    block = Download(Spectrum(_p.Power), Bins, Frames);
                    break;
                case FeatureKind.Mfcc:
                {
                    var mfcc = Mfcc();
                    block = Download(mfcc, mfcc.Shape[1], Frames);
                    break;
                }
                case FeatureKind.MfccDelta:
                {
                    var mfcc = Mfcc();
                    var output = Allocate(mfcc.Shape);
                    Dsp.Delta(m.DeltaWidth, m.DeltaOrder, mfcc, output);
                    block = Download(output, mfcc.Shape[1], Frames);
                    break;
                }
                case FeatureKind.Scattering:
                    block = Scattering(m);
                    break;
                default:
                    throw new SchemaMismatchException(info.Name, $"member '{m.Property}' has unknown kind {m.Kind}.");
            }
            _blocks[key] = block;
            return block;
        }

        public void Dispose()
        {
            foreach (var t in _owned) t.Dispose();
            foreach (var data in _rented) HostBuffers.Return(data);
            _rented.Clear();
        }
    }

    /// <summary>
    /// The managed engine's intermediates (spectrograms, mel bands, chroma ...) reused from one Extract call to the
    /// next: a 30 s track's spectrogram is 5 MB, and fresh arrays of that size come from new pages that the kernel
    /// maps and zeroes on first touch, which made a batch's first pass over its spectrogram several times slower than
    /// the transform itself. Arrays of at least 64 Ki floats are kept by exact length, at most 512 MiB in all (the
    /// rest is left to the collector); a rented array is zero-filled, as Engine.Allocate's are. Thread-safe.
    /// </summary>
    private static class HostBuffers
    {
        private const int MinLength = 1 << 16;
        private const long Capacity = 1L << 27;
        private static readonly Dictionary<int, Stack<float[]>> Free = [];
        private static long _held;

        public static float[] Rent(int length)
        {
            if (length >= MinLength)
            {
                float[]? data = null;
                lock (Free)
                {
                    if (Free.TryGetValue(length, out var stack) && stack.Count > 0)
                    {
                        data = stack.Pop();
                        _held -= length;
                    }
                }
                if (data is not null)
                {
                    Array.Clear(data);
                    return data;
                }
            }
            return new float[length];
        }

        public static void Return(float[] data)
        {
            if (data.Length < MinLength) return;
            lock (Free)
            {
                if (_held + data.Length > Capacity) return;
                if (!Free.TryGetValue(data.Length, out var stack)) Free[data.Length] = stack = new Stack<float[]>();
                stack.Push(data);
                _held += data.Length;
            }
        }
    }
}
