using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>
/// Kernels along the feature axis of [batch, features, frames] spectrograms: mel projection
/// (librosa.feature.melspectrogram from S), power_to_db / amplitude_to_db with a per-clip maximum,
/// MFCC (DCT-II ortho plus lifter, librosa.feature.mfcc) and Savitzky-Golay deltas (librosa.feature.delta).
/// One thread per output cell, the frame index fastest, so neighbouring threads read neighbouring frames
/// (coalesced) while looping over the reduced axis; filter banks and matrices are cached plans.
/// </summary>
internal static class MelKernels
{
    private const int ReduceThreads = 256;

    // ---------------------------------------------------------------- mel

    /// <summary>
    /// out[b, m, t] = sum over k in [lo[m], hi[m]) of W[m, k] S[b, k, t]. The mel bank is banded (each filter is a
    /// triangle over a few bins), so only its non-zero band is visited: the product costs O(bins) per frame, not O(mels x bins).
    /// </summary>
    internal static void MelKernel(Index1D i, ArrayView<float> s, ArrayView<float> basis, ArrayView<float> bands, ArrayView<float> output, int bins, int mels, int frames)
    {
        int t = i % frames;
        int row = i / frames;
        int m = row % mels;
        int b = row / mels;
        int lo = (int)bands[2 * m];
        int hi = (int)bands[2 * m + 1];
        long sBase = (long)b * bins * frames + t;
        long wBase = (long)m * bins;
        float acc = 0f;
        for (int k = lo; k < hi; k++) acc += basis[wBase + k] * s[sBase + (long)k * frames];
        output[i] = acc;
    }

    private sealed record MelKey(MelConfig Config, int NFft);

    internal static void Mel(IlgpuEngine engine, MelConfig config, int nFft, ArrayView<float> s, int batch, int frames, ArrayView<float> output)
    {
        int bins = nFft / 2 + 1;
        if (batch == 0 || frames == 0) return;
        var plan = engine.Plan(new MelKey(config, nFft), () =>
        {
            var basis = Filters.Mel(config, nFft);
            var bands = new float[2 * config.NMels];
            for (int m = 0; m < config.NMels; m++)
            {
                int lo = 0, hi = 0;
                for (int k = 0; k < bins; k++)
                {
                    if (basis[m * bins + k] == 0f) continue;
                    if (hi == 0) lo = k;
                    hi = k + 1;
                }
                bands[2 * m] = lo;
                bands[2 * m + 1] = hi;
            }
            return new DevicePlan(engine.Upload(basis), engine.Upload(bands));
        });
        MelLoaded(engine)(checked(batch * config.NMels * frames), s, plan[0], plan[1], output, bins, config.NMels, frames);
    }

    // ---------------------------------------------------------------- decibels

    /// <summary>One group per clip: max[clip] = largest element of the clip (|x| when amplitude is set), by a strided
    /// load then a tree reduction in shared memory.</summary>
    internal static void ClipMaxKernel(ArrayView<float> input, ArrayView<float> max, int perClip, int amplitude)
    {
        var shared = SharedMemory.Allocate<float>(ReduceThreads);
        int clip = Grid.IdxX;
        int tid = Group.IdxX;
        int threads = Group.DimX;
        long basis = (long)clip * perClip;
        float best = float.NegativeInfinity;
        for (int j = tid; j < perClip; j += threads)
        {
            float v = input[basis + j];
            if (amplitude != 0) v = XMath.Abs(v);
            best = XMath.Max(best, v);
        }
        shared[tid] = best;
        Group.Barrier();
        for (int stride = 1; stride < threads; stride <<= 1)
        {
            if ((tid & (2 * stride - 1)) == 0 && tid + stride < threads)
                shared[tid] = XMath.Max(shared[tid], shared[tid + stride]);
            Group.Barrier();
        }
        if (tid == 0) max[clip] = shared[0];
    }

    /// <summary>
    /// out = 10 log10(max(amin, x)) - refDb (x = |v|^2 and amin squared when amplitude is set), floored at the clip's
    /// maximum in dB minus topDb when topDb &gt;= 0.
    /// </summary>
    internal static void DbKernel(Index1D i, ArrayView<float> input, ArrayView<float> max, ArrayView<float> output, int perClip, float amin, float refDb, float topDb, int amplitude)
    {
        float v = input[i];
        if (amplitude != 0) v = v * v;
        float db = 10f * XMath.Log10(XMath.Max(amin, v)) - refDb;
        if (topDb >= 0f)
        {
            float peak = max[i / perClip];
            if (amplitude != 0) peak = peak * peak;
            float floor = 10f * XMath.Log10(XMath.Max(amin, peak)) - refDb - topDb;
            db = XMath.Max(db, floor);
        }
        output[i] = db;
    }

    internal static void Db(IlgpuEngine engine, DbConfig config, ArrayView<float> input, ArrayView<float> output, int batch, int perClip, bool amplitude)
    {
        if (batch == 0 || perClip == 0) return;
        double refValue = amplitude ? config.Ref * config.Ref : config.Ref;
        double amin = amplitude ? config.Amin * config.Amin : config.Amin;
        float refDb = (float)(10.0 * Math.Log10(Math.Max(amin, refValue)));
        float topDb = config.TopDb is { } top ? (float)top : -1f;
        using var max = engine.Accelerator.Allocate1D<float>(batch);
        if (topDb >= 0f)
        {
            int threads = Math.Min(ReduceThreads, engine.GroupSize);
            ClipMaxLoaded(engine)(new KernelConfig(batch, threads), input, max.View, perClip, amplitude ? 1 : 0);
        }
        DbLoaded(engine)(checked(batch * perClip), input, max.View, output, perClip, (float)amin, refDb, topDb, amplitude ? 1 : 0);
        engine.Wait();
    }

    // ---------------------------------------------------------------- MFCC

    /// <summary>out[b, c, t] = sum over m of D[c, m] X[b, m, t], D the DCT-II ortho matrix with the lifter folded into its rows.</summary>
    internal static void MatrixKernel(Index1D i, ArrayView<float> x, ArrayView<float> matrix, ArrayView<float> output, int inRows, int outRows, int frames)
    {
        int t = i % frames;
        int row = i / frames;
        int c = row % outRows;
        int b = row / outRows;
        long xBase = (long)b * inRows * frames + t;
        long mBase = (long)c * inRows;
        float acc = 0f;
        for (int m = 0; m < inRows; m++) acc += matrix[mBase + m] * x[xBase + (long)m * frames];
        output[i] = acc;
    }

    private sealed record MfccKey(int NMfcc, int NMels, float Lifter);

    internal static void Mfcc(IlgpuEngine engine, int nMfcc, float lifter, ArrayView<float> logMel, int batch, int nMels, int frames, ArrayView<float> output)
    {
        if (batch == 0 || frames == 0) return;
        var plan = engine.Plan(new MfccKey(nMfcc, nMels, lifter), () =>
        {
            var dct = (float[])Filters.DctOrtho(nMfcc, nMels).Clone();
            if (lifter > 0)
            {
                for (int c = 0; c < nMfcc; c++)
                {
                    double scale = 1.0 + lifter / 2.0 * Math.Sin(Math.PI * (c + 1) / lifter);
                    for (int m = 0; m < nMels; m++) dct[c * nMels + m] = (float)(dct[c * nMels + m] * scale);
                }
            }
            return new DevicePlan(engine.Upload(dct));
        });
        MatrixLoaded(engine)(checked(batch * nMfcc * frames), logMel, plan[0], output, nMels, nMfcc, frames);
    }

    // ---------------------------------------------------------------- delta

    /// <summary>
    /// Savitzky-Golay derivative along frames with scipy's mode 'interp': interior frames use the centred
    /// coefficients (row half of the table); the first and last half-width frames evaluate the fit of the first or
    /// last window at their own position (rows 0..half-1 and half+1..width-1).
    /// </summary>
    internal static void DeltaKernel(Index1D i, ArrayView<float> x, ArrayView<float> coeffs, ArrayView<float> output, int width, int frames)
    {
        int t = i % frames;
        long rowBase = (int)i - t;
        int half = width / 2;
        int start;
        int r;
        if (t < half)
        {
            start = 0;
            r = t;
        }
        else if (t >= frames - half)
        {
            start = frames - width;
            r = t - start;
        }
        else
        {
            start = t - half;
            r = half;
        }
        float acc = 0f;
        for (int j = 0; j < width; j++) acc += coeffs[r * width + j] * x[rowBase + start + j];
        output[i] = acc;
    }

    private sealed record DeltaKey(int Width, int Order);

    internal static void Delta(IlgpuEngine engine, int width, int order, ArrayView<float> input, long cells, int frames, ArrayView<float> output)
    {
        if (cells == 0) return;
        var plan = engine.Plan(new DeltaKey(width, order), () => new DevicePlan(engine.Upload(Filters.DeltaWeights(width, order))));
        DeltaLoaded(engine)(checked((int)cells), input, plan[0], output, width, frames);
    }

    // ---------------------------------------------------------------- loading

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> MelLoaded(IlgpuEngine engine) =>
        engine.Kernel("mel", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(MelKernel));

    private static Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> ClipMaxLoaded(IlgpuEngine engine) =>
        engine.Kernel("db.max", acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(ClipMaxKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float, float, int> DbLoaded(IlgpuEngine engine) =>
        engine.Kernel("db", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float, float, int>(DbKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> MatrixLoaded(IlgpuEngine engine) =>
        engine.Kernel("matrix", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(MatrixKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> DeltaLoaded(IlgpuEngine engine) =>
        engine.Kernel("delta", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(DeltaKernel));

    internal static void Compile(IlgpuEngine engine)
    {
        MelLoaded(engine);
        ClipMaxLoaded(engine);
        DbLoaded(engine);
        MatrixLoaded(engine);
        DeltaLoaded(engine);
    }
}
