using ILGPU;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>
/// Short-time Fourier transform and its inverse (librosa.stft / librosa.istft). The forward transform is one
/// fused FFT launch: each transform reads its frame straight from the clips (centre padding, window) and writes
/// |X|^2, |X| or X into [batch, bins, frames]; no framed copy of the signal is made. The inverse runs a batched
/// Hermitian inverse FFT per frame, then one gather kernel per output sample does the overlap-add and divides by
/// the window sum of squares.
/// </summary>
internal static class StftKernels
{
    /// <summary>Window of length win centred in n_fft zeros, uploaded once per (window, win, n_fft).</summary>
    private sealed record WindowKey(WindowKind Window, int Win, int NFft);

    internal static ArrayView<float> Window(IlgpuEngine engine, StftConfig config) =>
        engine.Plan(new WindowKey(config.Window, config.Win, config.NFft),
            () => new DevicePlan(engine.Upload(Filters.Window(config.Window, config.Win, config.NFft))))[0];

    /// <summary>clips: [batch, samples]; output: [batch, bins, frames] or [batch, bins, frames, 2].</summary>
    internal static void Stft(IlgpuEngine engine, StftConfig config, ArrayView<float> clips, int batch, int samples, ArrayView<float> output, SpectrumKind kind)
    {
        int frames = config.FrameCount(samples);
        var job = new FftJob
        {
            N = config.NFft,
            Inverse = 0,
            Scale = 1f,
            InMode = FftIn.Frame,
            OutMode = FftOut.Spectrum,
            OutCount = config.Bins,
            Frames = frames,
            Hop = config.Hop,
            PadLeft = config.Center ? config.NFft / 2 : 0,
            Samples = samples,
            PadMode = (int)config.PadMode,
            SpectrumKind = (int)kind,
            Bins = config.Bins,
        };
        FftKernels.Run(engine, job, checked(batch * frames), clips, output, Window(engine, config));
    }

    /// <summary>
    /// Output sample i = clip * length + j: overlap-add of the windowed inverse transforms of the frames covering
    /// padded position p = j + padLeft, divided by the window's sum of squares there when it exceeds float32's
    /// smallest normal number (librosa.istft's rule).
    /// </summary>
    internal static void OverlapAddKernel(Index1D i, ArrayView<float> frames, ArrayView<float> window, ArrayView<float> output, int length, int nFft, int hop, int frameCount, int padLeft)
    {
        int clip = i / length;
        int j = i - clip * length;
        int p = j + padLeft;
        int last = p / hop;
        if (last > frameCount - 1) last = frameCount - 1;
        int first = p - nFft + 1;
        first = first <= 0 ? 0 : (first + hop - 1) / hop;
        float sum = 0f;
        float norm = 0f;
        for (int t = first; t <= last; t++)
        {
            int q = p - t * hop;
            float w = window[q];
            sum += frames[((long)clip * frameCount + t) * nFft + q] * w;
            norm += w * w;
        }
        output[i] = norm > 1.17549435e-38f ? sum / norm : sum;
    }

    /// <summary>spectrum: [batch, bins, frames, 2]; output: [batch, length].</summary>
    internal static void Istft(IlgpuEngine engine, StftConfig config, ArrayView<float> spectrum, int batch, int frames, ArrayView<float> output, int length)
    {
        int nFft = config.NFft;
        long frameFloats = (long)batch * frames * nFft;
        if (frameFloats == 0 || length == 0) return;
        using var buffer = engine.Accelerator.Allocate1D<float>(frameFloats);
        var job = new FftJob
        {
            N = nFft,
            Inverse = 1,
            Scale = 1f / nFft,
            InMode = FftIn.SpectrumFrame,
            OutMode = FftOut.Real,
            OutCount = nFft,
            Frames = frames,
            Bins = config.Bins,
        };
        var window = Window(engine, config);
        FftKernels.Run(engine, job, checked(batch * frames), spectrum, buffer.View, window);
        var ola = OverlapAdd(engine);
        ola(checked(batch * length), buffer.View, window, output, length, nFft, config.Hop, frames, config.Center ? nFft / 2 : 0);
        engine.Wait();
    }

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int> OverlapAdd(IlgpuEngine engine) =>
        engine.Kernel("istft.ola", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int>(OverlapAddKernel));

    internal static void Compile(IlgpuEngine engine) => OverlapAdd(engine);
}
