using System.Buffers;
using System.Runtime.Intrinsics;
using Hybrid.Dsp.Managed;

namespace Hybrid.Dsp;

/// <summary>
/// Tuning estimation as librosa 0.10's estimate_tuning: spectral peaks found by piptrack (local maxima of the
/// spectrogram above a fraction of each frame's maximum, refined by parabolic interpolation), kept where their
/// interpolated magnitude reaches the median over all peaks, folded by pitch_tuning to deviations from the
/// equal-tempered A440 grid in fractions of a bin, and the left edge of the fullest histogram bin returned.
/// Also chroma_stft with librosa's default tuning=None: the tuning of each clip estimated from its own power
/// spectrogram (<see cref="ChromaStft"/>). The arithmetic follows librosa's single-precision path for float32 input.
/// </summary>
public static class Tuning
{
    private const float TinySingle = 1.17549435e-38f;

    /// <summary>
    /// Estimated tuning of each clip in fractions of a bin, in [-0.5, 0.5) (librosa.estimate_tuning(y=...)).
    /// clips: [batch, samples] on <paramref name="engine"/>; the magnitude STFT (Hann, centred, zero padding) is
    /// searched. Defaults mirror librosa (n_fft 2048, hop n_fft/4, fmin 150 Hz, fmax 4000 Hz, threshold 0.1 of each
    /// frame's maximum, resolution 0.01, 12 bins per octave). A clip without peaks gives 0.
    /// Throws ArgumentException for a clips tensor that is not [batch, samples] and ArgumentOutOfRangeException
    /// for a non-positive sr or bins_per_octave or a resolution outside (0, 1).
    /// </summary>
    public static float[] Estimate(Engine engine, Tensor clips, int sampleRate, int nFft = 2048, int? hopLength = null,
        double fMin = 150.0, double fMax = 4000.0, double threshold = 0.1, double resolution = 0.01, int binsPerOctave = 12)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(clips);
        if (clips.Rank != 2) throw new ArgumentException($"clips: expected [batch, samples], was [{string.Join(", ", clips.Shape)}].", nameof(clips));
        CheckArguments(sampleRate, resolution, binsPerOctave);
        var config = new StftConfig(nFft, hopLength);
        config.Validate();
        int batch = clips.Shape[0], bins = config.Bins, frames = config.FrameCount(clips.Shape[1]);
        using var spectrum = engine.Allocate(batch, bins, frames);
        engine.Dsp.Stft(config, clips, spectrum, SpectrumKind.Magnitude);
        var s = spectrum.ToArray();
        var result = new float[batch];
        for (var c = 0; c < batch; c++)
            result[c] = EstimateFromSpectrogram(s.AsSpan(c * bins * frames, bins * frames), bins, frames, sampleRate,
                fMin, fMax, threshold, resolution, binsPerOctave);
        return result;
    }

    /// <summary>
    /// librosa.estimate_tuning(S=s, sr=...) for one spectrogram s: [bins, frames] row-major (n_fft = 2 (bins - 1)),
    /// searched as given (chroma_stft passes its power spectrogram). Returns the tuning in fractions of a bin, in
    /// [-0.5, 0.5); 0 when no peak is found. Throws ArgumentOutOfRangeException for bad sizes or parameters.
    /// </summary>
    public static float EstimateFromSpectrogram(ReadOnlySpan<float> s, int bins, int frames, int sampleRate,
        double fMin = 150.0, double fMax = 4000.0, double threshold = 0.1, double resolution = 0.01, int binsPerOctave = 12)
    {
        CheckArguments(sampleRate, resolution, binsPerOctave);
        if (bins < 2) throw new ArgumentOutOfRangeException(nameof(bins), $"a spectrogram needs at least 2 bins, had {bins}.");
        if (frames < 0 || s.Length != (long)bins * frames)
            throw new ArgumentOutOfRangeException(nameof(frames), $"s holds {s.Length} values, expected bins x frames = {bins} x {frames}.");
        var nFft = 2 * (bins - 1);
        fMin = Math.Max(fMin, 0.0);
        fMax = Math.Min(fMax, sampleRate / 2.0);
        var step = sampleRate / 2.0 / (bins - 1);
        // Bins whose centre frequency lies in [fMin, fMax) (piptrack's freq_mask), edges excluded.
        int first = 1, last = 0;
        for (var k = 1; k < bins - 1; k++)
        {
            var f = k * step;
            if (!(fMin <= f && f < fMax)) continue;
            if (last < first) first = k;
            last = k;
        }
        if (last < first || frames == 0) return 0f;
        // Every buffer is rented: a local maximum along frequency is at most every other bin of the band.
        var capacity = ((last - first) / 2 + 1) * frames;
        var frameRef = ArrayPool<float>.Shared.Rent(frames);
        var pitches = ArrayPool<float>.Shared.Rent(capacity);
        var mags = ArrayPool<float>.Shared.Rent(capacity);
        try
        {
            // piptrack's ref: threshold times each frame's maximum over all bins (and 0), eight frames at a time.
            var reference = frameRef.AsSpan(0, frames);
            reference.Clear();
            for (var k = 0; k < bins; k++) MaxInto(s.Slice(k * frames, frames), reference);
            for (var t = 0; t < frames; t++) reference[t] = (float)(threshold * reference[t]);
            // Thresholded local maxima along frequency, with parabolic shift and interpolated magnitude.
            var count = 0;
            for (var k = first; k <= last; k++)
            {
                var f = k * step;
                if (!(fMin <= f && f < fMax)) continue;
                ReadOnlySpan<float> below = s.Slice((k - 1) * frames, frames), here = s.Slice(k * frames, frames), above = s.Slice((k + 1) * frames, frames);
                for (var t = 0; t < frames; t++)
                {
                    var floor = reference[t];
                    float cur = here[t], prev = below[t], next = above[t];
                    if (!(cur > floor)) continue;
                    float lower = prev > floor ? prev : 0f, upper = next > floor ? next : 0f;
                    if (!(cur > lower && cur >= upper)) continue;
                    // Parabola through the three bins; a vertex more than a bin away is not trusted (shift 0).
                    var a = next + prev - 2f * cur;
                    var b = (next - prev) / 2f;
                    var shift = Math.Abs(b) >= Math.Abs(a) ? 0f : -b / a;
                    var pitch = (float)((k + (double)shift) * sampleRate / nFft);
                    if (pitch > 0f)
                    {
                        pitches[count] = pitch;
                        mags[count] = cur + 0.5f * b * shift;
                        count++;
                    }
                }
            }
            if (count == 0) return 0f;
            // Peaks whose magnitude reaches the median of all peaks.
            var sorted = ArrayPool<float>.Shared.Rent(count);
            float median;
            try
            {
                var span = sorted.AsSpan(0, count);
                mags.AsSpan(0, count).CopyTo(span);
                span.Sort();
                median = count % 2 == 1 ? span[count / 2] : (span[count / 2 - 1] + span[count / 2]) / 2f;
            }
            finally
            {
                ArrayPool<float>.Shared.Return(sorted);
            }
            var kept = 0;
            for (var i = 0; i < count; i++)
                if (mags[i] >= median) pitches[kept++] = pitches[i];
            return PitchTuning(pitches.AsSpan(0, kept), resolution, binsPerOctave);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(frameRef);
            ArrayPool<float>.Shared.Return(pitches);
            ArrayPool<float>.Shared.Return(mags);
        }
    }

    /// <summary>max[t] = max(max[t], x[t]) eight lanes at a time (Math.Max's rule: NaN wins, +0 above -0).</summary>
    private static void MaxInto(ReadOnlySpan<float> x, Span<float> max)
    {
        var t = 0;
        for (; t + 8 <= max.Length; t += 8)
            Vector256.Max(Vector256.Create(x.Slice(t, 8)), Vector256.Create(max.Slice(t, 8))).CopyTo(max.Slice(t, 8));
        for (; t < max.Length; t++) max[t] = Math.Max(max[t], x[t]);
    }

    /// <summary>
    /// librosa.pitch_tuning: the deviation of frequencies (Hz; non-positive ones ignored) from the A440 grid of
    /// binsPerOctave bins, folded into [-0.5, 0.5), histogrammed over ceil(1 / resolution) equal bins, and the left
    /// edge of the fullest (the first on ties) returned. 0 for no frequencies.
    /// </summary>
    public static float PitchTuning(IReadOnlyList<float> frequencies, double resolution = 0.01, int binsPerOctave = 12)
    {
        ArgumentNullException.ThrowIfNull(frequencies);
        var copy = new float[frequencies.Count];
        for (var i = 0; i < copy.Length; i++) copy[i] = frequencies[i];
        return PitchTuning(copy, resolution, binsPerOctave);
    }

    private static float PitchTuning(ReadOnlySpan<float> frequencies, double resolution, int binsPerOctave)
    {
        CheckArguments(1, resolution, binsPerOctave);
        var nBins = (int)Math.Ceiling(1.0 / resolution);
        Span<double> edges = nBins < 1024 ? stackalloc double[nBins + 1] : new double[nBins + 1];
        var width = 1.0 / nBins;
        for (var j = 0; j < nBins; j++) edges[j] = -0.5 + j * width;
        edges[nBins] = 0.5;
        Span<int> counts = nBins <= 1024 ? stackalloc int[nBins] : new int[nBins];
        counts.Clear();
        var any = false;
        foreach (var f in frequencies)
        {
            if (!(f > 0f)) continue;
            any = true;
            // hz_to_octs in single precision, as for float32 input.
            var octs = MathF.Log2(f / (440f / 16f));
            var residual = binsPerOctave * octs % 1f;
            if (residual < 0f) residual += 1f;
            if (residual >= 0.5f) residual -= 1f;
            double r = residual;
            var j = Math.Clamp((int)Math.Floor((r + 0.5) / width), 0, nBins - 1);
            if (r < edges[j]) j--;
            else if (j < nBins - 1 && r >= edges[j + 1]) j++;
            if (j >= 0 && j < nBins && r >= edges[0] && r <= edges[nBins]) counts[j]++;
        }
        if (!any) return 0f;
        var best = 0;
        for (var j = 1; j < nBins; j++)
            if (counts[j] > counts[best]) best = j;
        return (float)edges[best];
    }

    /// <summary>
    /// librosa.feature.chroma_stft with tuning=None from a power spectrogram: each clip's tuning is estimated from
    /// its own spectrogram (estimate_tuning(S=power, sr, bins_per_octave=n_chroma)), then its chroma computed with
    /// that tuning by <see cref="IDspOps.Chroma"/> (default filter bank, per-frame infinity-norm normalisation).
    /// power: [batch, n_fft/2 + 1, frames]; output: [batch, nChroma, frames], both on <paramref name="engine"/>.
    /// On the managed engine the clips run in parallel and in place (no copy of the spectrogram); elsewhere the
    /// spectrogram is read to the host for the estimates and clips of equal tuning are computed together.
    /// Returns the tuning used for each clip. Throws ArgumentException for mismatched shapes.
    /// </summary>
    public static float[] ChromaStft(Engine engine, Tensor power, int sampleRate, int nFft, int nChroma, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(power);
        ArgumentNullException.ThrowIfNull(output);
        if (power.Rank != 3) throw new ArgumentException($"power: expected [batch, bins, frames], was [{string.Join(", ", power.Shape)}].", nameof(power));
        int batch = power.Shape[0], bins = power.Shape[1], frames = power.Shape[2];
        power.RequireShape(nameof(power), batch, nFft / 2 + 1, frames);
        output.RequireShape(nameof(output), batch, nChroma, frames);
        if (engine is ManagedEngine managed && power is ManagedTensor source && output is ManagedTensor target)
        {
            // In place on the managed engine, clips in parallel: each clip's tuning from its own rows of the power
            // spectrogram, then its chroma with that tuning's filter bank (cached per tuning) into its output rows.
            var estimated = new float[batch];
            Parallel.For(0, batch, managed.Parallel, c =>
            {
                var clip = source.Slice(c, 1);
                estimated[c] = EstimateFromSpectrogram(clip.Span, bins, frames, sampleRate, binsPerOctave: nChroma);
                managed.Dsp.Chroma(sampleRate, nFft, nChroma, estimated[c], clip, target.Slice(c, 1));
            });
            return estimated;
        }
        var host = power.ToArray();
        var tunings = new float[batch];
        for (var c = 0; c < batch; c++)
            tunings[c] = EstimateFromSpectrogram(host.AsSpan(c * bins * frames, bins * frames), bins, frames, sampleRate, binsPerOctave: nChroma);
        // Clips that share a tuning (estimates fall on a 0.01 grid) are computed together.
        var result = new float[(long)batch * nChroma * frames];
        foreach (var group in Enumerable.Range(0, batch).GroupBy(c => tunings[c]))
        {
            var members = group.ToArray();
            var input = new float[(long)members.Length * bins * frames];
            for (var i = 0; i < members.Length; i++)
                host.AsSpan(members[i] * bins * frames, bins * frames).CopyTo(input.AsSpan(i * bins * frames));
            using var part = engine.FromHost(input, members.Length, bins, frames);
            using var chroma = engine.Allocate(members.Length, nChroma, frames);
            engine.Dsp.Chroma(sampleRate, nFft, nChroma, group.Key, part, chroma);
            var values = chroma.ToArray();
            for (var i = 0; i < members.Length; i++)
                values.AsSpan(i * nChroma * frames, nChroma * frames).CopyTo(result.AsSpan(members[i] * nChroma * frames));
        }
        output.CopyFrom(result);
        return tunings;
    }

    private static void CheckArguments(int sampleRate, double resolution, int binsPerOctave)
    {
        if (sampleRate < 1) throw new ArgumentOutOfRangeException(nameof(sampleRate), $"sr must be positive, was {sampleRate}.");
        if (!(resolution > 0 && resolution < 1)) throw new ArgumentOutOfRangeException(nameof(resolution), $"resolution must be in (0, 1), was {resolution}.");
        if (binsPerOctave < 1) throw new ArgumentOutOfRangeException(nameof(binsPerOctave), $"bins_per_octave must be positive, was {binsPerOctave}.");
    }
}
