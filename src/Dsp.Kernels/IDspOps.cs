namespace Hybrid.Dsp;

/// <summary>
/// Batched DSP operations shared by every engine. All tensors are float32, row-major, allocated by the
/// engine that runs the operation; the leading axis is always the batch (clips). Plans (twiddles in double
/// precision, windows, mel bases, DCT and chroma matrices) are built once per configuration and cached.
/// Parameter names and defaults mirror librosa 0.10; shapes are given as [axis, ...].
/// </summary>
public interface IDspOps
{
    /// <summary>Complex FFT of length n over the batch. input/output: [batch, n, 2] (re, im interleaved).
    /// Inverse divides by n (numpy.fft.ifft). Any n in 2..16384.</summary>
    void Fft(Tensor input, Tensor output, bool inverse = false);

    /// <summary>Real FFT (numpy.fft.rfft). input: [batch, n]; output: [batch, n/2+1, 2]. Any n in 2..16384.</summary>
    void Rfft(Tensor input, Tensor output);

    /// <summary>Inverse real FFT (numpy.fft.irfft with n given). input: [batch, n/2+1, 2]; output: [batch, n].</summary>
    void Irfft(Tensor input, Tensor output);

    /// <summary>librosa.stft (then |.|^power for Power/Magnitude). clips: [batch, samples];
    /// output: [batch, bins, frames] for Power/Magnitude, [batch, bins, frames, 2] for Complex,
    /// with bins = n_fft/2+1 and frames = <see cref="StftConfig.FrameCount"/>.</summary>
    void Stft(StftConfig config, Tensor clips, Tensor output, SpectrumKind kind = SpectrumKind.Power);

    /// <summary>librosa.istft with the window-sum normalisation (perfect reconstruction for COLA pairs).
    /// spectrum: [batch, bins, frames, 2]; output: [batch, length] (length chosen by the caller, as librosa's length).</summary>
    void Istft(StftConfig config, Tensor spectrum, Tensor output);

    /// <summary>Applies a mel filter bank (librosa.feature.melspectrogram from a spectrogram S).
    /// spectrogram: [batch, n_fft/2+1, frames]; output: [batch, n_mels, frames].</summary>
    void Mel(MelConfig config, int nFft, Tensor spectrogram, Tensor output);

    /// <summary>librosa.power_to_db with top_db applied per clip. input/output: [batch, ...] (may be the same tensor).</summary>
    void PowerToDb(DbConfig config, Tensor input, Tensor output);

    /// <summary>librosa.amplitude_to_db (20 log10, amin and ref on amplitudes, top_db per clip).</summary>
    void AmplitudeToDb(DbConfig config, Tensor input, Tensor output);

    /// <summary>MFCC from a log-power mel spectrogram (librosa.feature.mfcc with S given: DCT-II ortho over the mel
    /// axis, then optional sinusoidal lifter when lifter &gt; 0). logMel: [batch, n_mels, frames]; output: [batch, n_mfcc, frames].</summary>
    void Mfcc(int nMfcc, float lifter, Tensor logMel, Tensor output);

    /// <summary>
    /// librosa.power_to_db(librosa.feature.melspectrogram(y=clips, ...)) in one call: the STFT (|X|^2 for
    /// <see cref="SpectrumKind.Power"/>, |X| for <see cref="SpectrumKind.Magnitude"/>), the mel filter bank and
    /// power_to_db with top_db per clip. Equal to <see cref="Stft"/>, <see cref="Mel"/> and <see cref="PowerToDb"/>
    /// in turn: the managed engine runs that chain clip by clip while each clip's spectrogram is still in cache (one
    /// parallel loop per call, no batch-sized spectrogram) and gives the same bits; this default, used by the ILGPU
    /// engines, calls the three operations with a spectrogram tensor of its own.
    /// clips: [batch, samples]; output: [batch, n_mels, frames], frames = <see cref="StftConfig.FrameCount"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor has the wrong rank or shape, kind is Complex, or a configuration is
    /// invalid (as the three operations raise).</exception>
    /// <exception cref="ArgumentOutOfRangeException">amin is not positive or top_db is negative.</exception>
    void LogMelSpectrogram(StftConfig stft, MelConfig mel, DbConfig db, Tensor clips, Tensor output, SpectrumKind kind = SpectrumKind.Power)
    {
        var (batch, frames) = MelChainCheck(stft, mel, db, clips, output, mel?.NMels ?? 0, null, kind);
        MelChain(this, stft, mel!, db, clips, output, batch, frames, kind);
    }

    /// <summary>
    /// librosa.feature.mfcc(y=clips, ...) in one call: <see cref="LogMelSpectrogram"/> then the DCT-II ortho over the
    /// mel axis with the optional sinusoidal lifter (<see cref="Mfcc(int, float, Tensor, Tensor)"/>). When
    /// <paramref name="logMel"/> is given it receives the log-mel spectrogram as well. Bitwise equal to the chain on
    /// the managed engine, which runs it clip by clip in cache; this default calls the operations in turn.
    /// clips: [batch, samples]; output: [batch, n_mfcc, frames]; logMel (optional): [batch, n_mels, frames].
    /// </summary>
    /// <exception cref="ArgumentException">A tensor has the wrong rank or shape, kind is Complex, or a configuration is
    /// invalid.</exception>
    /// <exception cref="ArgumentOutOfRangeException">amin is not positive, top_db or lifter is negative.</exception>
    void Mfcc(StftConfig stft, MelConfig mel, DbConfig db, int nMfcc, float lifter, Tensor clips, Tensor output,
        Tensor? logMel = null, SpectrumKind kind = SpectrumKind.Power)
    {
        var (batch, frames) = MelChainCheck(stft, mel, db, clips, output, nMfcc, logMel, kind);
        var own = logMel is null ? clips.Engine.Allocate(batch, mel!.NMels, frames) : null;
        try
        {
            var target = logMel ?? own!;
            MelChain(this, stft, mel!, db, clips, target, batch, frames, kind);
            Mfcc(nMfcc, lifter, target, output);
        }
        finally
        {
            own?.Dispose();
        }
    }

    /// <summary>Checks the arguments of the fused mel chain (<see cref="LogMelSpectrogram"/>,
    /// <see cref="Mfcc(StftConfig, MelConfig, DbConfig, int, float, Tensor, Tensor, Tensor, SpectrumKind)"/>): output
    /// [batch, rows, frames], logMel (when given) [batch, n_mels, frames]; returns the batch and the frame count.</summary>
    internal static (int Batch, int Frames) MelChainCheck(StftConfig stft, MelConfig? mel, DbConfig db, Tensor clips, Tensor output,
        int rows, Tensor? logMel, SpectrumKind kind)
    {
        ArgumentNullException.ThrowIfNull(stft);
        ArgumentNullException.ThrowIfNull(mel);
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(clips);
        ArgumentNullException.ThrowIfNull(output);
        if (kind == SpectrumKind.Complex)
            throw new ArgumentException("kind: a mel spectrogram is computed from Power or Magnitude, was Complex.", nameof(kind));
        stft.Validate();
        if (clips.Rank != 2)
            throw new ArgumentException($"clips: expected shape [batch, samples], was [{string.Join(", ", clips.Shape)}].", nameof(clips));
        int batch = clips.Shape[0], frames = stft.FrameCount(clips.Shape[1]);
        ExpectShape(output, nameof(output), batch, rows, frames);
        if (logMel is not null) ExpectShape(logMel, nameof(logMel), batch, mel.NMels, frames);
        return (batch, frames);

        static void ExpectShape(Tensor t, string name, int batch, int rows, int frames)
        {
            if (t.Rank != 3 || t.Shape[0] != batch || t.Shape[1] != rows || t.Shape[2] != frames)
                throw new ArgumentException($"{name}: expected shape [{batch}, {rows}, {frames}], was [{string.Join(", ", t.Shape)}].", name);
        }
    }

    /// <summary>Stft, Mel and PowerToDb (in place on <paramref name="output"/>) in turn, through a spectrogram of
    /// [batch, bins, frames] allocated on the clips' engine for the call.</summary>
    internal static void MelChain(IDspOps ops, StftConfig stft, MelConfig mel, DbConfig db, Tensor clips, Tensor output,
        int batch, int frames, SpectrumKind kind)
    {
        using var spectrum = clips.Engine.Allocate(batch, stft.Bins, frames);
        ops.Stft(stft, clips, spectrum, kind);
        ops.Mel(mel, stft.NFft, spectrum, output);
        ops.PowerToDb(db, output, output);
    }

    /// <summary>librosa.feature.delta (Savitzky-Golay, mode 'interp') along the last axis.
    /// input/output: [batch, features, frames]; width odd and at least 3; order 1 or 2.</summary>
    void Delta(int width, int order, Tensor input, Tensor output);

    /// <summary>librosa.feature.spectral_centroid from a magnitude spectrogram. s: [batch, bins, frames]; output: [batch, frames].</summary>
    void SpectralCentroid(int sampleRate, int nFft, Tensor s, Tensor output);

    /// <summary>librosa.feature.spectral_bandwidth (norm=True, exponent p). s: [batch, bins, frames]; output: [batch, frames].</summary>
    void SpectralBandwidth(int sampleRate, int nFft, float p, Tensor s, Tensor output);

    /// <summary>librosa.feature.spectral_rolloff. s: [batch, bins, frames]; output: [batch, frames].</summary>
    void SpectralRolloff(int sampleRate, int nFft, float rollPercent, Tensor s, Tensor output);

    /// <summary>librosa.feature.spectral_flatness (amin 1e-10, power 2) from a magnitude spectrogram.
    /// s: [batch, bins, frames]; output: [batch, frames].</summary>
    void SpectralFlatness(float amin, float power, Tensor s, Tensor output);

    /// <summary>librosa.feature.zero_crossing_rate (threshold 1e-10, zero counts as positive, edge-padded centring).
    /// clips: [batch, samples]; output: [batch, frames].</summary>
    void ZeroCrossingRate(int frameLength, int hopLength, bool center, Tensor clips, Tensor output);

    /// <summary>librosa.feature.rms from the waveform (frames padded by padMode when centred).
    /// clips: [batch, samples]; output: [batch, frames].</summary>
    void Rms(int frameLength, int hopLength, bool center, PadMode padMode, Tensor clips, Tensor output);

    /// <summary>librosa.feature.chroma_stft from a power spectrogram with the given tuning (in fractions of a bin)
    /// and per-frame infinity-norm normalisation. s: [batch, bins, frames]; output: [batch, nChroma, frames].</summary>
    void Chroma(int sampleRate, int nFft, int nChroma, float tuning, Tensor s, Tensor output);

    /// <summary>kymatio 0.4's <c>Scattering1D(J, shape, Q, T, max_order)</c> (numpy backend, <c>out_type='array'</c>)
    /// of every clip: Morlet wavelet moduli averaged by a Gaussian low-pass of scale T and subsampled to one frame per
    /// T samples, paths in kymatio's order (order 0, first order, then second order with j2 &gt; j1; see
    /// <see cref="Filters.Scattering1D"/> for the filters and per-path metadata). Mirrors Andén and Mallat, "Deep
    /// Scattering Spectrum" (IEEE TSP 2014). clips: [batch, samples]; output: [batch, paths, frames].</summary>
    /// <exception cref="ArgumentException">A parameter is out of range for the clip length (J &lt; 1 or 2^J above it,
    /// Q &lt; 1, T not a power of two or above it, max_order not 1 or 2), or a tensor has the wrong shape.</exception>
    void Scattering1D(ScatteringConfig config, Tensor clips, Tensor output);

    /// <summary>The log-scattering time average of kymatio's spoken-digit example: for every path but order 0, the mean
    /// over frames of log(|S| + epsilon), S = <see cref="Scattering1D"/> of the clips. clips: [batch, samples];
    /// output: [batch, paths - 1]. This default computes S on the engine and reduces on the host in double precision
    /// (log of each float32 coefficient rounded to float32, then the mean); the ILGPU engines reduce on the device
    /// from their double-precision coefficients.</summary>
    /// <exception cref="ArgumentException">As <see cref="Scattering1D"/>, or epsilon not positive and finite, or an
    /// output that is not [batch, paths - 1].</exception>
    void ScatteringLogMean(ScatteringConfig config, double epsilon, Tensor clips, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(clips);
        ArgumentNullException.ThrowIfNull(output);
        var bank = ScatteringLogMeanCheck(config, epsilon, clips, output);
        int batch = clips.Shape[0], paths = bank.Paths.Count, frames = bank.Frames;
        using var s = clips.Engine.Allocate(batch, paths, frames);
        Scattering1D(config, clips, s);
        var host = s.ToArray();
        var result = new float[(long)batch * (paths - 1)];
        for (var b = 0; b < batch; b++)
            for (var p = 1; p < paths; p++)
            {
                double sum = 0;
                for (var f = 0; f < frames; f++)
                    sum += (float)Math.Log(Math.Abs(host[((long)b * paths + p) * frames + f]) + epsilon);
                result[(long)b * (paths - 1) + p - 1] = (float)(sum / frames);
            }
        output.CopyFrom(result);
    }

    /// <summary>Checks <see cref="ScatteringLogMean"/>'s arguments (the clips' rank, epsilon, the output's shape) and
    /// returns the filter bank.</summary>
    internal static ScatteringFilterBank ScatteringLogMeanCheck(ScatteringConfig config, double epsilon, Tensor clips, Tensor output)
    {
        if (!(epsilon > 0) || double.IsInfinity(epsilon))
            throw new ArgumentOutOfRangeException(nameof(epsilon), $"epsilon (added before the logarithm) must be positive and finite, was {epsilon}.");
        if (clips.Rank != 2)
            throw new ArgumentException($"clips: expected shape [batch, samples], was [{string.Join(", ", clips.Shape)}].", nameof(clips));
        var bank = Filters.Scattering1D(config, clips.Shape[1]);
        if (output.Rank != 2 || output.Shape[0] != clips.Shape[0] || output.Shape[1] != bank.Paths.Count - 1)
            throw new ArgumentException(
                $"output: expected shape [{clips.Shape[0]}, {bank.Paths.Count - 1}] (batch, paths without order 0), was [{string.Join(", ", output.Shape)}].",
                nameof(output));
        return bank;
    }
}
