namespace Hybrid.Dsp;

/// <summary>
/// Tuning estimation as librosa.estimate_tuning: parabolic-interpolated spectral peaks (librosa.piptrack on the
/// magnitude STFT), kept where their magnitude reaches the median, folded to deviations from the equal-tempered
/// A440 grid in fractions of a bin, and the most common deviation (histogram of resolution-wide bins) returned.
/// The result feeds <see cref="IDspOps.Chroma"/>'s <c>tuning</c>.
/// </summary>
public static class Tuning
{
    /// <summary>
    /// Estimated tuning of each clip in fractions of a bin, in [-0.5, 0.5). clips: [batch, samples] on
    /// <paramref name="engine"/>. Defaults mirror librosa.estimate_tuning (n_fft 2048, hop n_fft/4, Hann,
    /// centred with zero padding, fmin 150 Hz, fmax 4000 Hz, peak threshold 0.1 of each frame's maximum,
    /// resolution 0.01, 12 bins per octave). A clip without peaks gives 0.
    /// </summary>
    public static float[] Estimate(Engine engine, Tensor clips, int sampleRate, int nFft = 2048, int? hopLength = null,
        double fMin = 150.0, double fMax = 4000.0, double threshold = 0.1, double resolution = 0.01, int binsPerOctave = 12)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(clips);
        if (clips.Rank != 2) throw new ArgumentException($"clips: expected [batch, samples], was [{string.Join(", ", clips.Shape)}].", nameof(clips));
        if (sampleRate < 1) throw new ArgumentOutOfRangeException(nameof(sampleRate), $"sr must be positive, was {sampleRate}.");
        if (!(resolution > 0 && resolution < 1)) throw new ArgumentOutOfRangeException(nameof(resolution), $"resolution must be in (0, 1), was {resolution}.");
        if (binsPerOctave < 1) throw new ArgumentOutOfRangeException(nameof(binsPerOctave), $"bins_per_octave must be positive, was {binsPerOctave}.");
        var config = new StftConfig(nFft, hopLength);
        config.Validate();
        int batch = clips.Shape[0], bins = config.Bins, frames = config.FrameCount(clips.Shape[1]);
        using var spectrum = engine.Allocate(batch, bins, frames);
        engine.Dsp.Stft(config, clips, spectrum, SpectrumKind.Magnitude);
        var s = spectrum.ToArray();
        var result = new float[batch];
        for (var c = 0; c < batch; c++)
            result[c] = EstimateOne(s.AsSpan(c * bins * frames, bins * frames), bins, frames, sampleRate, nFft,
                Math.Max(fMin, 0.0), Math.Min(fMax, sampleRate / 2.0), threshold, resolution, binsPerOctave);
        return result;
    }

    /// <summary>piptrack's S * (S &gt; ref): values at or under the frame's threshold count as zero.</summary>
    private static float Gate(float v, double floor) => v > floor ? v : 0f;

    private static float EstimateOne(ReadOnlySpan<float> s, int bins, int frames, int sampleRate, int nFft,
        double fMin, double fMax, double threshold, double resolution, int binsPerOctave)
    {
        // piptrack: peaks per frame, their interpolated frequency and magnitude.
        var pitches = new List<double>();
        var mags = new List<double>();
        var frameMax = new float[frames];
        for (var k = 0; k < bins; k++)
            for (var t = 0; t < frames; t++) frameMax[t] = Math.Max(frameMax[t], s[k * frames + t]);
        for (var t = 0; t < frames; t++)
        {
            var floor = threshold * frameMax[t];
            for (var k = 1; k < bins - 1; k++)
            {
                var f = (double)sampleRate * k / nFft;
                if (f < fMin || f >= fMax) continue;
                float here = Gate(s[k * frames + t], floor), below = Gate(s[(k - 1) * frames + t], floor), above = Gate(s[(k + 1) * frames + t], floor);
                if (!(here > below && here >= above)) continue;
                double prev = s[(k - 1) * frames + t], cur = s[k * frames + t], next = s[(k + 1) * frames + t];
                var avg = 0.5 * (next - prev);
                var curvature = 2 * cur - next - prev;
                var shift = avg / (curvature + (Math.Abs(curvature) < 1.17549435e-38 ? 1.0 : 0.0));
                var pitch = (k + shift) * sampleRate / nFft;
                if (pitch <= 0) continue;
                pitches.Add(pitch);
                mags.Add(cur + 0.5 * avg * shift);
            }
        }
        if (pitches.Count == 0) return 0f;
        var sorted = mags.ToArray();
        Array.Sort(sorted);
        var median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
        // pitch_tuning: histogram of deviations from the A440 grid.
        var nBins = (int)Math.Ceiling(1.0 / resolution);
        var counts = new int[nBins];
        var any = false;
        for (var i = 0; i < pitches.Count; i++)
        {
            if (mags[i] < median) continue;
            var octs = Math.Log2(pitches[i] / (440.0 / 16.0));
            var residual = binsPerOctave * octs % 1.0;
            if (residual < 0) residual += 1.0;
            if (residual >= 0.5) residual -= 1.0;
            var bin = (int)Math.Floor((residual + 0.5) / (1.0 / nBins));
            counts[Math.Clamp(bin, 0, nBins - 1)]++;
            any = true;
        }
        if (!any) return 0f;
        var best = 0;
        for (var b = 1; b < nBins; b++)
            if (counts[b] > counts[best]) best = b;
        return (float)(-0.5 + best * (1.0 / nBins));
    }
}
