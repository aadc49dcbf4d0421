namespace Hybrid.Dsp.Ilgpu;

/// <summary>
/// <see cref="IDspOps"/> as ILGPU kernels. Each method checks its tensors' engine and shapes (naming the
/// parameter and the expected shape), then queues batched launches on the engine's stream; results are ready
/// after <see cref="Engine.Synchronize"/> or on the next copy to the host.
/// </summary>
internal sealed class IlgpuDsp : IDspOps
{
    private readonly IlgpuEngine _engine;

    internal IlgpuDsp(IlgpuEngine engine) => _engine = engine;

    /// <summary>Loads every kernel (compile check).</summary>
    internal void CompileAll()
    {
        FftKernels.Compile(_engine);
        StftKernels.Compile(_engine);
        MelKernels.Compile(_engine);
        SpectralKernels.Compile(_engine);
        ScatteringKernels.Compile(_engine);
    }

    public void Fft(Tensor input, Tensor output, bool inverse = false)
    {
        var x = Get(input, nameof(input), 3);
        int batch = x.Shape[0], n = x.Shape[1];
        CheckLength(n, nameof(input));
        if (x.Shape[2] != 2) throw Shape(nameof(input), $"[batch, n, 2]", x);
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), batch, n, 2);
        var job = new FftJob { N = n, Inverse = inverse ? 1 : 0, Scale = inverse ? 1f / n : 1f, InMode = FftIn.Complex, OutMode = FftOut.Complex, OutCount = n };
        FftKernels.Run(_engine, job, batch, x.View, y.View, x.View);
    }

    public void Rfft(Tensor input, Tensor output)
    {
        var x = Get(input, nameof(input), 2);
        int batch = x.Shape[0], n = x.Shape[1];
        CheckLength(n, nameof(input));
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), batch, n / 2 + 1, 2);
        var job = new FftJob { N = n, Scale = 1f, InMode = FftIn.Real, OutMode = FftOut.Half, OutCount = n / 2 + 1 };
        FftKernels.Run(_engine, job, batch, x.View, y.View, x.View);
    }

    public void Irfft(Tensor input, Tensor output)
    {
        var y = Get(output, nameof(output), 2);
        int batch = y.Shape[0], n = y.Shape[1];
        CheckLength(n, nameof(output));
        var x = Get(input, nameof(input));
        x.RequireShape(nameof(input), batch, n / 2 + 1, 2);
        var job = new FftJob { N = n, Inverse = 1, Scale = 1f / n, InMode = FftIn.Hermitian, OutMode = FftOut.Real, OutCount = n };
        FftKernels.Run(_engine, job, batch, x.View, y.View, x.View);
    }

    public void Stft(StftConfig config, Tensor clips, Tensor output, SpectrumKind kind = SpectrumKind.Power)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var x = Get(clips, nameof(clips), 2);
        int batch = x.Shape[0], samples = x.Shape[1];
        int frames = config.FrameCount(samples);
        if (config.Center && config.PadMode == PadMode.Reflect && samples < 2)
            throw new ArgumentException($"clips: reflect padding needs at least 2 samples, clips have {samples}.", nameof(clips));
        var y = Get(output, nameof(output));
        if (kind == SpectrumKind.Complex) y.RequireShape(nameof(output), batch, config.Bins, frames, 2);
        else y.RequireShape(nameof(output), batch, config.Bins, frames);
        StftKernels.Stft(_engine, config, x.View, batch, samples, y.View, kind);
    }

    public void Istft(StftConfig config, Tensor spectrum, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var s = Get(spectrum, nameof(spectrum), 4);
        if (s.Shape[1] != config.Bins || s.Shape[3] != 2) throw Shape(nameof(spectrum), $"[batch, {config.Bins}, frames, 2]", s);
        var y = Get(output, nameof(output), 2);
        if (y.Shape[0] != s.Shape[0]) throw Shape(nameof(output), $"[{s.Shape[0]}, length]", y);
        StftKernels.Istft(_engine, config, s.View, s.Shape[0], s.Shape[2], y.View, y.Shape[1]);
    }

    public void Mel(MelConfig config, int nFft, Tensor spectrogram, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.NMels < 1) throw new ArgumentException($"n_mels must be at least 1, was {config.NMels}.", nameof(config));
        var s = Get(spectrogram, nameof(spectrogram), 3);
        if (s.Shape[1] != nFft / 2 + 1) throw Shape(nameof(spectrogram), $"[batch, {nFft / 2 + 1}, frames] for n_fft {nFft}", s);
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), s.Shape[0], config.NMels, s.Shape[2]);
        MelKernels.Mel(_engine, config, nFft, s.View, s.Shape[0], s.Shape[2], y.View);
    }

    public void PowerToDb(DbConfig config, Tensor input, Tensor output) => Db(config, input, output, amplitude: false);

    public void AmplitudeToDb(DbConfig config, Tensor input, Tensor output) => Db(config, input, output, amplitude: true);

    private void Db(DbConfig config, Tensor input, Tensor output, bool amplitude)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Amin <= 0) throw new ArgumentException($"amin must be positive, was {config.Amin}.", nameof(config));
        if (config.TopDb is < 0) throw new ArgumentException($"top_db must be non-negative, was {config.TopDb}.", nameof(config));
        var x = Get(input, nameof(input), -1);
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), x.Shape);
        int batch = x.Shape[0];
        int perClip = batch == 0 ? 0 : checked((int)(x.Length / batch));
        MelKernels.Db(_engine, config, x.View, y.View, batch, perClip, amplitude);
    }

    public void Mfcc(int nMfcc, float lifter, Tensor logMel, Tensor output)
    {
        var x = Get(logMel, nameof(logMel), 3);
        int nMels = x.Shape[1];
        if (nMfcc < 1 || nMfcc > nMels) throw new ArgumentOutOfRangeException(nameof(nMfcc), $"n_mfcc must be in 1..n_mels ({nMels}), was {nMfcc}.");
        if (lifter < 0) throw new ArgumentOutOfRangeException(nameof(lifter), $"lifter must be non-negative, was {lifter}.");
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), x.Shape[0], nMfcc, x.Shape[2]);
        MelKernels.Mfcc(_engine, nMfcc, lifter, x.View, x.Shape[0], nMels, x.Shape[2], y.View);
    }

    public void Delta(int width, int order, Tensor input, Tensor output)
    {
        if (width < 3 || width % 2 == 0) throw new ArgumentOutOfRangeException(nameof(width), $"width must be odd and at least 3, was {width}.");
        if (order is not (1 or 2)) throw new ArgumentOutOfRangeException(nameof(order), $"order must be 1 or 2, was {order}.");
        var x = Get(input, nameof(input), 3);
        int frames = x.Shape[2];
        if (frames < width) throw new ArgumentException($"input: delta width {width} needs at least {width} frames, input has {frames}.", nameof(input));
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), x.Shape);
        MelKernels.Delta(_engine, width, order, x.View, x.Length, frames, y.View);
    }

    public void SpectralCentroid(int sampleRate, int nFft, Tensor s, Tensor output) =>
        Stat(SpectralStat.Centroid, sampleRate, nFft, s, output, 0f, 0f);

    public void SpectralBandwidth(int sampleRate, int nFft, float p, Tensor s, Tensor output)
    {
        if (!(p > 0)) throw new ArgumentOutOfRangeException(nameof(p), $"p must be positive, was {p}.");
        Stat(SpectralStat.Bandwidth, sampleRate, nFft, s, output, p, 0f);
    }

    public void SpectralRolloff(int sampleRate, int nFft, float rollPercent, Tensor s, Tensor output)
    {
        if (!(rollPercent > 0 && rollPercent < 1)) throw new ArgumentOutOfRangeException(nameof(rollPercent), $"roll_percent must be in (0, 1), was {rollPercent}.");
        Stat(SpectralStat.Rolloff, sampleRate, nFft, s, output, rollPercent, 0f);
    }

    public void SpectralFlatness(float amin, float power, Tensor s, Tensor output)
    {
        if (!(amin > 0)) throw new ArgumentOutOfRangeException(nameof(amin), $"amin must be positive, was {amin}.");
        if (!(power > 0)) throw new ArgumentOutOfRangeException(nameof(power), $"power must be positive, was {power}.");
        var x = Get(s, nameof(s), 3);
        Stat(SpectralStat.Flatness, 1, 2 * (x.Shape[1] - 1), s, output, power, amin);
    }

    private void Stat(int stat, int sampleRate, int nFft, Tensor s, Tensor output, float param, float amin)
    {
        if (sampleRate < 1) throw new ArgumentOutOfRangeException(nameof(sampleRate), $"sample rate must be positive, was {sampleRate}.");
        var x = Get(s, nameof(s), 3);
        if (stat != SpectralStat.Flatness && x.Shape[1] != nFft / 2 + 1) throw Shape(nameof(s), $"[batch, {nFft / 2 + 1}, frames] for n_fft {nFft}", x);
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), x.Shape[0], x.Shape[2]);
        SpectralKernels.Stat(_engine, stat, x.View, x.Shape[0], x.Shape[1], x.Shape[2], y.View, (float)((double)sampleRate / nFft), param, amin);
    }

    public void ZeroCrossingRate(int frameLength, int hopLength, bool center, Tensor clips, Tensor output) =>
        Framed(0, frameLength, hopLength, center, PadMode.Edge, clips, output);

    public void Rms(int frameLength, int hopLength, bool center, PadMode padMode, Tensor clips, Tensor output) =>
        Framed(1, frameLength, hopLength, center, padMode, clips, output);

    private void Framed(int kind, int frameLength, int hopLength, bool center, PadMode padMode, Tensor clips, Tensor output)
    {
        if (frameLength < 1) throw new ArgumentOutOfRangeException(nameof(frameLength), $"frame_length must be at least 1, was {frameLength}.");
        if (hopLength < 1) throw new ArgumentOutOfRangeException(nameof(hopLength), $"hop_length must be at least 1, was {hopLength}.");
        var x = Get(clips, nameof(clips), 2);
        int samples = x.Shape[1];
        int padLeft = center ? frameLength / 2 : 0;
        int padded = samples + 2 * padLeft;
        if (padded < frameLength) throw new ArgumentException($"clips: frame_length {frameLength} is longer than the (padded) signal of {padded} samples.", nameof(clips));
        if (center && padMode == PadMode.Reflect && samples < 2) throw new ArgumentException($"clips: reflect padding needs at least 2 samples, clips have {samples}.", nameof(clips));
        if (samples == 0 && padMode != PadMode.Constant) throw new ArgumentException("clips: edge padding needs at least 1 sample.", nameof(clips));
        int frames = 1 + (padded - frameLength) / hopLength;
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), x.Shape[0], frames);
        SpectralKernels.Frame(_engine, kind, x.View, x.Shape[0], samples, frames, frameLength, hopLength, padLeft, padMode, y.View);
    }

    public void Chroma(int sampleRate, int nFft, int nChroma, float tuning, Tensor s, Tensor output)
    {
        if (sampleRate < 1) throw new ArgumentOutOfRangeException(nameof(sampleRate), $"sample rate must be positive, was {sampleRate}.");
        if (nChroma < 1) throw new ArgumentOutOfRangeException(nameof(nChroma), $"n_chroma must be at least 1, was {nChroma}.");
        if (!float.IsFinite(tuning)) throw new ArgumentOutOfRangeException(nameof(tuning), $"tuning must be finite, was {tuning}.");
        var x = Get(s, nameof(s), 3);
        if (x.Shape[1] != nFft / 2 + 1) throw Shape(nameof(s), $"[batch, {nFft / 2 + 1}, frames] for n_fft {nFft}", x);
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), x.Shape[0], nChroma, x.Shape[2]);
        SpectralKernels.Chroma(_engine, sampleRate, nFft, nChroma, tuning, x.View, x.Shape[0], x.Shape[2], y.View);
    }

    /// <summary>Scattering1D as ILGPU kernels in double precision (<see cref="ScatteringKernels"/>): every step on the
    /// device, batched over clips and filters, the filter bank uploaded once and cached with the engine's plans.</summary>
    public void Scattering1D(ScatteringConfig config, Tensor clips, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(config);
        var x = Get(clips, nameof(clips), 2);
        int batch = x.Shape[0], samples = x.Shape[1];
        var bank = Filters.Scattering1D(config, samples);
        var y = Get(output, nameof(output));
        y.RequireShape(nameof(output), batch, bank.Paths.Count, bank.Frames);
        ScatteringKernels.Run(_engine, bank, x.View, y.View, batch);
    }

    /// <summary>The log-scattering time average reduced on the device from the double-precision coefficients (no
    /// [batch, paths, frames] copy to the host).</summary>
    public void ScatteringLogMean(ScatteringConfig config, double epsilon, Tensor clips, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(config);
        var x = Get(clips, nameof(clips), 2);
        var y = Get(output, nameof(output));
        var bank = IDspOps.ScatteringLogMeanCheck(config, epsilon, clips, output);
        ScatteringKernels.Run(_engine, bank, x.View, y.View, x.Shape[0], epsilon);
    }

    /// <summary>The tensor's device storage; rank checked unless <paramref name="rank"/> is 0, at least 1 when -1.</summary>
    private IlgpuTensor Get(Tensor t, string name, int rank = 0)
    {
        var it = _engine.Expect(t, name);
        if (rank > 0 && it.Rank != rank) throw new ArgumentException($"{name}: expected a rank-{rank} tensor, was [{string.Join(", ", it.Shape)}].", name);
        if (rank < 0 && it.Rank < 1) throw new ArgumentException($"{name}: expected a tensor with a batch axis, was a scalar.", name);
        return it;
    }

    private static void CheckLength(int n, string name)
    {
        if (n < 2 || n > 16384) throw new ArgumentException($"{name}: FFT length must be in 2..16384, was {n}.", name);
    }

    private static ArgumentException Shape(string name, string expected, Tensor actual) =>
        new($"{name}: expected shape {expected}, was [{string.Join(", ", actual.Shape)}].", name);
}
