using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>Which per-frame statistic <see cref="SpectralKernels.StatKernel"/> computes.</summary>
internal static class SpectralStat
{
    public const int Centroid = 0;
    public const int Bandwidth = 1;
    public const int Rolloff = 2;
    public const int Flatness = 3;
}

/// <summary>
/// Per-frame spectral statistics (librosa.feature.spectral_centroid, _bandwidth, _rolloff, _flatness, chroma_stft)
/// over [batch, bins, frames] spectrograms and framed waveform statistics (zero_crossing_rate, rms) over
/// [batch, samples] clips. One thread per (clip, frame), frames fastest, looping over bins (reads coalesced
/// across neighbouring threads) or over the frame's samples.
/// </summary>
internal static class SpectralKernels
{
    /// <summary>float32's smallest normal number (numpy.finfo(float32).tiny), librosa's normalisation threshold.</summary>
    private const float Tiny = 1.17549435e-38f;

    /// <summary>
    /// Output [b, t] for i = b * frames + t. binHz = sr / n_fft; param is p (bandwidth), roll_percent (rolloff) or
    /// power (flatness); amin is flatness' floor.
    /// </summary>
    internal static void StatKernel(Index1D i, ArrayView<float> s, ArrayView<float> output, int bins, int frames, int stat, float binHz, float param, float amin)
    {
        int t = i % frames;
        int b = i / frames;
        long basis = (long)b * bins * frames + t;
        if (stat == SpectralStat.Flatness)
        {
            float logSum = 0f;
            float sum = 0f;
            for (int k = 0; k < bins; k++)
            {
                float v = s[basis + (long)k * frames];
                float x = param == 2f ? v * v : (param == 1f ? XMath.Abs(v) : XMath.Pow(XMath.Abs(v), param));
                x = XMath.Max(amin, x);
                logSum += XMath.Log(x);
                sum += x;
            }
            output[i] = XMath.Exp(logSum / bins) / (sum / bins);
            return;
        }
        if (stat == SpectralStat.Rolloff)
        {
            float total = 0f;
            for (int k = 0; k < bins; k++) total += s[basis + (long)k * frames];
            float threshold = param * total;
            float cumulative = 0f;
            int found = bins - 1;
            for (int k = 0; k < bins; k++)
            {
                cumulative += s[basis + (long)k * frames];
                if (cumulative >= threshold)
                {
                    found = k;
                    break;
                }
            }
            output[i] = found * binHz;
            return;
        }
        float norm = 0f;
        float weighted = 0f;
        for (int k = 0; k < bins; k++)
        {
            float v = s[basis + (long)k * frames];
            norm += XMath.Abs(v);
            weighted += k * binHz * v;
        }
        float scale = norm < Tiny ? 1f : 1f / norm;
        float centroid = weighted * scale;
        if (stat == SpectralStat.Centroid)
        {
            output[i] = centroid;
            return;
        }
        float spread = 0f;
        for (int k = 0; k < bins; k++)
        {
            float v = s[basis + (long)k * frames] * scale;
            float dev = XMath.Abs(k * binHz - centroid);
            spread += v * (param == 2f ? dev * dev : (param == 1f ? dev : XMath.Pow(dev, param)));
        }
        output[i] = param == 2f ? XMath.Sqrt(spread) : (param == 1f ? spread : XMath.Pow(spread, 1f / param));
    }

    /// <summary>
    /// Zero-crossing rate (kind 0) or RMS (kind 1) of frame t of clip b: the frame starts at t * hop - padLeft of the
    /// clip padded by padMode (edge padding for the ZCR as librosa does). ZCR counts sign changes between consecutive
    /// samples, values within 1e-10 of zero counting as positive, divided by the frame length.
    /// </summary>
    internal static void FrameKernel(Index1D i, ArrayView<float> clips, ArrayView<float> output, int samples, int frames, int frameLength, int hop, int padLeft, int padMode, int kind)
    {
        int t = i % frames;
        int b = i / frames;
        long basis = (long)b * samples;
        int start = t * hop - padLeft;
        if (kind == 0)
        {
            int crossings = 0;
            bool previous = false;
            for (int j = 0; j < frameLength; j++)
            {
                int p = FftKernels.PaddedIndex(start + j, samples, (int)PadMode.Edge);
                bool negative = clips[basis + p] < -1e-10f;
                if (j > 0 && negative != previous) crossings++;
                previous = negative;
            }
            output[i] = (float)crossings / frameLength;
            return;
        }
        float sum = 0f;
        for (int j = 0; j < frameLength; j++)
        {
            int p = FftKernels.PaddedIndex(start + j, samples, padMode);
            float v = p < 0 ? 0f : clips[basis + p];
            sum += v * v;
        }
        output[i] = XMath.Sqrt(sum / frameLength);
    }

    /// <summary>
    /// Chroma of frame t of clip b: out[b, c, t] = sum over k of C[c, k] S[b, k, t], then each frame divided by its
    /// largest |value| over the chroma axis (librosa.util.normalize with norm=inf; frames whose maximum is below
    /// float32's tiny are left as they are).
    /// </summary>
    internal static void ChromaKernel(Index1D i, ArrayView<float> s, ArrayView<float> filters, ArrayView<float> output, int bins, int chroma, int frames)
    {
        int t = i % frames;
        int b = i / frames;
        long sBase = (long)b * bins * frames + t;
        long oBase = (long)b * chroma * frames + t;
        float peak = 0f;
        for (int c = 0; c < chroma; c++)
        {
            float acc = 0f;
            long fBase = (long)c * bins;
            for (int k = 0; k < bins; k++) acc += filters[fBase + k] * s[sBase + (long)k * frames];
            output[oBase + (long)c * frames] = acc;
            peak = XMath.Max(peak, XMath.Abs(acc));
        }
        if (peak < Tiny) return;
        float inv = 1f / peak;
        for (int c = 0; c < chroma; c++) output[oBase + (long)c * frames] *= inv;
    }

    internal static void Stat(IlgpuEngine engine, int stat, ArrayView<float> s, int batch, int bins, int frames, ArrayView<float> output, float binHz, float param, float amin)
    {
        if (batch == 0 || frames == 0) return;
        StatLoaded(engine)(checked(batch * frames), s, output, bins, frames, stat, binHz, param, amin);
    }

    internal static void Frame(IlgpuEngine engine, int kind, ArrayView<float> clips, int batch, int samples, int frames, int frameLength, int hop, int padLeft, PadMode padMode, ArrayView<float> output)
    {
        if (batch == 0 || frames == 0) return;
        FrameLoaded(engine)(checked(batch * frames), clips, output, samples, frames, frameLength, hop, padLeft, (int)padMode, kind);
    }

    private sealed record ChromaKey(int SampleRate, int NFft, int NChroma, float Tuning);

    internal static void Chroma(IlgpuEngine engine, int sampleRate, int nFft, int nChroma, float tuning, ArrayView<float> s, int batch, int frames, ArrayView<float> output)
    {
        if (batch == 0 || frames == 0) return;
        var plan = engine.Plan(new ChromaKey(sampleRate, nFft, nChroma, tuning),
            () => new DevicePlan(engine.Upload(Filters.Chroma(sampleRate, nFft, nChroma, tuning))));
        ChromaLoaded(engine)(checked(batch * frames), s, plan[0], output, nFft / 2 + 1, nChroma, frames);
    }

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, float, float, float> StatLoaded(IlgpuEngine engine) =>
        engine.Kernel("spectral.stat", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, float, float, float>(StatKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int> FrameLoaded(IlgpuEngine engine) =>
        engine.Kernel("spectral.frame", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int>(FrameKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> ChromaLoaded(IlgpuEngine engine) =>
        engine.Kernel("chroma", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(ChromaKernel));

    internal static void Compile(IlgpuEngine engine)
    {
        StatLoaded(engine);
        FrameLoaded(engine);
        ChromaLoaded(engine);
    }
}
