using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>One complex float, returned by the device helpers.</summary>
internal struct Cf
{
    public float Re;
    public float Im;

    public Cf(float re, float im)
    {
        Re = re;
        Im = im;
    }
}

/// <summary>Where an FFT job reads its transforms from (<see cref="FftJob.InMode"/>).</summary>
internal static class FftIn
{
    /// <summary>Complex [batch, n, 2].</summary>
    public const int Complex = 0;
    /// <summary>Real [batch, n] (imaginary parts zero).</summary>
    public const int Real = 1;
    /// <summary>Half spectrum [batch, n/2+1, 2], extended by Hermitian symmetry (irfft).</summary>
    public const int Hermitian = 2;
    /// <summary>STFT frame: transform g = clip * frames + t reads clip samples t*hop - padLeft + j (padded), times the window.</summary>
    public const int Frame = 3;
    /// <summary>iSTFT frame: half spectrum of frame t of clip b from [batch, bins, frames, 2], extended by Hermitian symmetry.</summary>
    public const int SpectrumFrame = 4;
}

/// <summary>Where an FFT job writes its transforms (<see cref="FftJob.OutMode"/>).</summary>
internal static class FftOut
{
    /// <summary>Complex [batch, n, 2].</summary>
    public const int Complex = 0;
    /// <summary>Half spectrum [batch, n/2+1, 2] (rfft).</summary>
    public const int Half = 1;
    /// <summary>Real parts [batch, n] (irfft).</summary>
    public const int Real = 2;
    /// <summary>STFT layout [batch, bins, frames] (power or magnitude) or [batch, bins, frames, 2] (complex).</summary>
    public const int Spectrum = 3;
}

/// <summary>
/// Everything a batched FFT launch needs besides its buffers. Transforms of length <see cref="N"/> run as
/// power-of-two transforms of length <see cref="M"/>: M = N for powers of two, else Bluestein's chirp-z
/// convolution with M = next power of two at least 2N - 1 (Bluestein 1970; Rabiner, Schafer and Rader 1969).
/// </summary>
internal struct FftJob
{
    public int N;
    public int M;
    public int Log2M;
    public int Bluestein;
    public int Inverse;
    public float Scale;
    public int InMode;
    public int OutMode;
    public int OutCount;
    // framing (InMode Frame / SpectrumFrame, OutMode Spectrum)
    public int Frames;
    public int Hop;
    public int PadLeft;
    public int Samples;
    public int PadMode;
    public int SpectrumKind;
    public int Bins;
    // real input of even power-of-two length N packed as N/2 complex values z[j] = x[2j] + i x[2j+1] (shared path only)
    public int Packed;
    // the twiddle table is for length M * TwStride (2 when packed: the table of length N serves the N/2-point stages)
    public int TwStride;
}

/// <summary>
/// Batched FFT kernels: radix-2 Stockham autosort transforms (Stockham 1966; the GPU formulation of
/// Govindaraju et al., SC 2008) in shared memory with one group per transform when the power-of-two length M
/// is at most <see cref="MaxShared"/>, otherwise one global-memory pass per radix-2 stage over the whole batch.
/// Real input of even power-of-two length runs as a half-length complex transform of the packed even/odd samples,
/// unpacked into bins 0..N/2 when stored. Lengths that are not powers of two use Bluestein's algorithm on top. Twiddles and chirps are computed on
/// the host in double precision and uploaded once per length.
/// </summary>
internal static class FftKernels
{
    /// <summary>Largest power-of-two length transformed inside one group (two ping-pong buffers of M complex floats = 32 KB).</summary>
    internal const int MaxShared = 2048;

    private const int SharedFloats = 2 * MaxShared;

    // ---------------------------------------------------------------- device helpers

    /// <summary>Reads element j (0 &lt;= j &lt; M) of transform g, zero beyond N, chirp-premultiplied under Bluestein.</summary>
    internal static Cf Load(ArrayView<float> input, ArrayView<float> chirp, ArrayView<float> window, FftJob job, int g, int j)
    {
        if (j >= job.N) return new Cf(0f, 0f);
        Cf v;
        if (job.InMode == FftIn.Complex)
        {
            long at = ((long)g * job.N + j) * 2;
            v = new Cf(input[at], input[at + 1]);
        }
        else if (job.InMode == FftIn.Real)
        {
            v = new Cf(input[(long)g * job.N + j], 0f);
        }
        else if (job.InMode == FftIn.Hermitian)
        {
            int half = job.N / 2 + 1;
            int k = j < half ? j : job.N - j;
            long at = ((long)g * half + k) * 2;
            v = new Cf(input[at], j < half ? input[at + 1] : -input[at + 1]);
        }
        else if (job.InMode == FftIn.Frame)
        {
            int clip = g / job.Frames;
            int t = g - clip * job.Frames;
            int p = PaddedIndex(t * job.Hop + j - job.PadLeft, job.Samples, job.PadMode);
            float x = p < 0 ? 0f : input[(long)clip * job.Samples + p];
            v = new Cf(x * window[j], 0f);
        }
        else
        {
            int clip = g / job.Frames;
            int t = g - clip * job.Frames;
            int k = j < job.Bins ? j : job.N - j;
            long at = (((long)clip * job.Bins + k) * job.Frames + t) * 2;
            v = new Cf(input[at], j < job.Bins ? input[at + 1] : -input[at + 1]);
        }
        if (job.Bluestein != 0)
        {
            float cr = chirp[2 * j];
            float ci = job.Inverse != 0 ? -chirp[2 * j + 1] : chirp[2 * j + 1];
            v = new Cf(v.Re * cr - v.Im * ci, v.Re * ci + v.Im * cr);
        }
        return v;
    }

    /// <summary>
    /// Maps a position of the padded signal to a sample index of a clip of length n (numpy.pad modes):
    /// -1 for a zero (constant padding), mirrored without repeating the edge (reflect), or clamped (edge).
    /// </summary>
    internal static int PaddedIndex(int p, int n, int padMode)
    {
        if (p >= 0 && p < n) return p;
        if (padMode == (int)Dsp.PadMode.Constant) return -1;
        if (padMode == (int)Dsp.PadMode.Edge || n == 1) return p < 0 ? 0 : n - 1;
        int period = 2 * (n - 1);
        int q = p % period;
        if (q < 0) q += period;
        return q < n ? q : period - q;
    }

    /// <summary>Writes output element k (0 &lt;= k &lt; OutCount) of transform g from the transform's value v.</summary>
    internal static void Store(ArrayView<float> output, ArrayView<float> chirp, FftJob job, int g, int k, Cf v)
    {
        if (job.Bluestein != 0)
        {
            float cr = chirp[2 * k];
            float ci = job.Inverse != 0 ? -chirp[2 * k + 1] : chirp[2 * k + 1];
            v = new Cf(v.Re * cr - v.Im * ci, v.Re * ci + v.Im * cr);
        }
        float re = v.Re * job.Scale;
        float im = v.Im * job.Scale;
        if (job.OutMode == FftOut.Complex || job.OutMode == FftOut.Half)
        {
            long at = ((long)g * job.OutCount + k) * 2;
            output[at] = re;
            output[at + 1] = im;
        }
        else if (job.OutMode == FftOut.Real)
        {
            output[(long)g * job.OutCount + k] = re;
        }
        else
        {
            int clip = g / job.Frames;
            int t = g - clip * job.Frames;
            long cell = ((long)clip * job.Bins + k) * job.Frames + t;
            float power = re * re + im * im;
            if (job.SpectrumKind == (int)Dsp.SpectrumKind.Power) output[cell] = power;
            else if (job.SpectrumKind == (int)Dsp.SpectrumKind.Magnitude) output[cell] = XMath.Sqrt(power);
            else
            {
                output[cell * 2] = re;
                output[cell * 2 + 1] = im;
            }
        }
    }

    /// <summary>
    /// Butterfly j (0 &lt;= j &lt; M/2) of the radix-2 Stockham stage whose sub-transforms have length ns:
    /// reads src[j] and src[j + M/2], writes dst[(j / ns) * 2ns + j % ns] and that + ns. Twiddles: exp(-2 pi i q / M), q &lt; M/2.
    /// </summary>
    internal static void Butterfly(ArrayView<float> src, long srcBase, ArrayView<float> dst, long dstBase, ArrayView<float> twiddles, int twStride, int m, int ns, int inverse, int j)
    {
        int half = m >> 1;
        int k = j & (ns - 1);
        long a = srcBase + 2L * j;
        long b = srcBase + 2L * (j + half);
        float ar = src[a], ai = src[a + 1], br = src[b], bi = src[b + 1];
        int q = k * (half / ns) * twStride;
        float wr = twiddles[2 * q];
        float wi = inverse != 0 ? -twiddles[2 * q + 1] : twiddles[2 * q + 1];
        float tr = br * wr - bi * wi;
        float ti = br * wi + bi * wr;
        long d = dstBase + 2L * (((j - k) << 1) + k);
        long e = d + 2L * ns;
        dst[d] = ar + tr;
        dst[d + 1] = ai + ti;
        dst[e] = ar - tr;
        dst[e + 1] = ai - ti;
    }

    /// <summary>All log2 M stages of one transform held in shared memory, starting in a (start 0) or b (start 1).
    /// The result lies in a when (start + log2 M) is even.</summary>
    private static void SharedStages(ArrayView<float> a, ArrayView<float> b, ArrayView<float> twiddles, int twStride, int m, int log2M, int inverse, int start)
    {
        int tid = Group.IdxX;
        int threads = Group.DimX;
        int half = m >> 1;
        int ns = 1;
        for (int stage = 0; stage < log2M; stage++)
        {
            bool fromA = ((stage + start) & 1) == 0;
            for (int j = tid; j < half; j += threads)
            {
                if (fromA) Butterfly(a, 0, b, 0, twiddles, twStride, m, ns, inverse, j);
                else Butterfly(b, 0, a, 0, twiddles, twStride, m, ns, inverse, j);
            }
            Group.Barrier();
            ns <<= 1;
        }
    }

    /// <summary>Multiplies element j of the buffer by the Bluestein kernel spectrum (forward or inverse half of bhat).</summary>
    private static void MulBhat(ArrayView<float> x, long at, ArrayView<float> bhat, FftJob job, int j)
    {
        long q = 2L * (job.Inverse != 0 ? job.M + j : j);
        float br = bhat[q], bi = bhat[q + 1];
        float xr = x[at], xi = x[at + 1];
        x[at] = xr * br - xi * bi;
        x[at + 1] = xr * bi + xi * br;
    }

    // ---------------------------------------------------------------- kernels

    /// <summary>
    /// One group per transform (grid = transforms): loads the transform into shared memory, runs the Stockham
    /// stages (and under Bluestein the pointwise product and the inverse pass), and writes OutCount outputs.
    /// Requires M &lt;= <see cref="MaxShared"/>.
    /// </summary>
    internal static void SharedKernel(ArrayView<float> input, ArrayView<float> output, ArrayView<float> twiddles, ArrayView<float> chirp, ArrayView<float> bhat, ArrayView<float> window, FftJob job)
    {
        var a = SharedMemory.Allocate<float>(SharedFloats);
        var b = SharedMemory.Allocate<float>(SharedFloats);
        int g = Grid.IdxX;
        int tid = Group.IdxX;
        int threads = Group.DimX;
        for (int j = tid; j < job.M; j += threads)
        {
            if (job.Packed != 0)
            {
                a[2 * j] = Load(input, chirp, window, job, g, 2 * j).Re;
                a[2 * j + 1] = Load(input, chirp, window, job, g, 2 * j + 1).Re;
            }
            else
            {
                var v = Load(input, chirp, window, job, g, j);
                a[2 * j] = v.Re;
                a[2 * j + 1] = v.Im;
            }
        }
        Group.Barrier();
        int inverse = job.Bluestein != 0 ? 0 : job.Inverse;
        SharedStages(a, b, twiddles, job.TwStride, job.M, job.Log2M, inverse, 0);
        bool inA = (job.Log2M & 1) == 0;
        if (job.Bluestein != 0)
        {
            for (int j = tid; j < job.M; j += threads)
            {
                if (inA) MulBhat(a, 2L * j, bhat, job, j);
                else MulBhat(b, 2L * j, bhat, job, j);
            }
            Group.Barrier();
            SharedStages(a, b, twiddles, job.TwStride, job.M, job.Log2M, 1, inA ? 0 : 1);
            inA = true;
        }
        for (int k = tid; k < job.OutCount; k += threads)
        {
            Cf v;
            if (job.Packed != 0) v = inA ? Unpack(a, twiddles, job.M, k) : Unpack(b, twiddles, job.M, k);
            else v = inA ? new Cf(a[2 * k], a[2 * k + 1]) : new Cf(b[2 * k], b[2 * k + 1]);
            Store(output, chirp, job, g, k, v);
        }
    }

    /// <summary>
    /// Bin k (0 &lt;= k &lt;= M) of the real FFT of length 2M from Z, the M-point FFT of z[j] = x[2j] + i x[2j+1]:
    /// X[k] = E + W^k O with E = (Z[k] + conj Z[M-k]) / 2, O = (Z[k] - conj Z[M-k]) / 2i, W = exp(-2 pi i / 2M).
    /// </summary>
    private static Cf Unpack(ArrayView<float> z, ArrayView<float> twiddles, int m, int k)
    {
        int p = k == m ? 0 : k;
        int q = k == 0 ? 0 : m - k;
        float zr = z[2 * p], zi = z[2 * p + 1];
        float cr = z[2 * q], ci = -z[2 * q + 1];
        float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
        float odr = 0.5f * (zi - ci), odi = -0.5f * (zr - cr);
        float wr = twiddles[2 * k], wi = twiddles[2 * k + 1];
        return new Cf(er + wr * odr - wi * odi, ei + wr * odi + wi * odr);
    }

    /// <summary>Global path, step 1: work[g, j] = Load(g, j) for every (transform, j &lt; M).</summary>
    internal static void GlobalLoadKernel(Index1D i, ArrayView<float> input, ArrayView<float> work, ArrayView<float> chirp, ArrayView<float> window, FftJob job)
    {
        int g = i / job.M;
        int j = i - g * job.M;
        var v = Load(input, chirp, window, job, g, j);
        work[2L * i] = v.Re;
        work[2L * i + 1] = v.Im;
    }

    /// <summary>Global path, one radix-2 Stockham stage over every transform: i = g * M/2 + j.</summary>
    internal static void GlobalStageKernel(Index1D i, ArrayView<float> src, ArrayView<float> dst, ArrayView<float> twiddles, int m, int ns, int inverse)
    {
        int half = m >> 1;
        int g = i / half;
        int j = i - g * half;
        long basis = 2L * g * m;
        Butterfly(src, basis, dst, basis, twiddles, 1, m, ns, inverse, j);
    }

    /// <summary>Global path, Bluestein's pointwise product with the kernel spectrum.</summary>
    internal static void GlobalBhatKernel(Index1D i, ArrayView<float> work, ArrayView<float> bhat, FftJob job)
    {
        int g = i / job.M;
        int j = i - g * job.M;
        MulBhat(work, 2L * i, bhat, job, j);
    }

    /// <summary>Global path, last step: Store(g, k) for every (transform, k &lt; OutCount).</summary>
    internal static void GlobalStoreKernel(Index1D i, ArrayView<float> work, ArrayView<float> output, ArrayView<float> chirp, FftJob job)
    {
        int g = i / job.OutCount;
        int k = i - g * job.OutCount;
        long at = 2L * ((long)g * job.M + k);
        Store(output, chirp, job, g, k, new Cf(work[at], work[at + 1]));
    }

    // ---------------------------------------------------------------- host side

    /// <summary>Device tables for transforms of length n: [0] twiddles (M/2 complex), [1] chirp (n complex),
    /// [2] Bluestein kernel spectra, forward then inverse (2 x M complex, scaled by 1/M).</summary>
    internal sealed record FftPlanKey(int N);

    internal static (DevicePlan Plan, int M, int Log2M, bool Bluestein) GetPlan(IlgpuEngine engine, int n)
    {
        bool pow2 = (n & (n - 1)) == 0;
        int m = pow2 ? n : NextPow2(2 * n - 1);
        int log2M = System.Numerics.BitOperations.Log2((uint)m);
        var plan = engine.Plan(new FftPlanKey(n), () => BuildPlan(engine, n, m, pow2));
        return (plan, m, log2M, !pow2);
    }

    private static DevicePlan BuildPlan(IlgpuEngine engine, int n, int m, bool pow2)
    {
        var tw = Filters.Twiddles(m); // exp(-2 pi i q / m), q < m; the kernels read q < m/2
        if (pow2) return new DevicePlan(engine.Upload(tw), engine.Upload([0f, 0f]), engine.Upload([0f, 0f]));

        // chirp c[k] = exp(-i pi k^2 / n), with k^2 reduced modulo 2n so the angle stays exact in double.
        var cRe = new double[n];
        var cIm = new double[n];
        var chirp = new float[2 * n];
        for (int k = 0; k < n; k++)
        {
            long k2 = (long)k * k % (2L * n);
            double angle = -Math.PI * k2 / n;
            cRe[k] = Math.Cos(angle);
            cIm[k] = Math.Sin(angle);
            chirp[2 * k] = (float)cRe[k];
            chirp[2 * k + 1] = (float)cIm[k];
        }
        var bhat = new float[4 * m];
        for (int direction = 0; direction < 2; direction++)
        {
            // kernel b[k] = conj(chirp_direction[k]) on k = -(n-1)..n-1, wrapped modulo m; forward chirp is c, inverse conj(c).
            var re = new double[m];
            var im = new double[m];
            for (int k = 0; k < n; k++)
            {
                double br = cRe[k];
                double bi = direction == 0 ? -cIm[k] : cIm[k];
                re[k] = br;
                im[k] = bi;
                if (k > 0)
                {
                    re[m - k] = br;
                    im[m - k] = bi;
                }
            }
            HostFft(re, im);
            for (int j = 0; j < m; j++)
            {
                bhat[2 * (direction * m + j)] = (float)(re[j] / m);
                bhat[2 * (direction * m + j) + 1] = (float)(im[j] / m);
            }
        }
        return new DevicePlan(engine.Upload(tw), engine.Upload(chirp), engine.Upload(bhat));
    }

    /// <summary>In-place forward radix-2 FFT in double precision (power-of-two length), for plan construction only.</summary>
    internal static void HostFft(double[] re, double[] im)
    {
        int n = re.Length;
        for (int i = 1, j = 0; i < n; i++)
        {
            int bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j)
            {
                (re[i], re[j]) = (re[j], re[i]);
                (im[i], im[j]) = (im[j], im[i]);
            }
        }
        for (int len = 2; len <= n; len <<= 1)
        {
            int halfLen = len >> 1;
            for (int k = 0; k < halfLen; k++)
            {
                double angle = -2.0 * Math.PI * k / len;
                double wr = Math.Cos(angle), wi = Math.Sin(angle);
                for (int s = 0; s < n; s += len)
                {
                    int a = s + k, b = a + halfLen;
                    double tr = re[b] * wr - im[b] * wi;
                    double ti = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
        }
    }

    internal static int NextPow2(int x)
    {
        int p = 1;
        while (p < x) p <<= 1;
        return p;
    }

    /// <summary>
    /// Runs <paramref name="transforms"/> transforms described by <paramref name="job"/> (N, Inverse, Scale, modes and
    /// framing filled in by the caller; M, Log2M and Bluestein filled in here).
    /// </summary>
    internal static void Run(IlgpuEngine engine, FftJob job, int transforms, ArrayView<float> input, ArrayView<float> output, ArrayView<float> window)
    {
        if (transforms == 0 || job.OutCount == 0) return;
        var (plan, m, log2M, bluestein) = GetPlan(engine, job.N);
        job.M = m;
        job.Log2M = log2M;
        job.Bluestein = bluestein ? 1 : 0;
        job.TwStride = 1;
        if (!bluestein && job.N >= 4 && m / 2 <= MaxShared && (job.InMode == FftIn.Real || job.InMode == FftIn.Frame))
        {
            // real input: one N/2-point complex transform of the even/odd samples, unpacked into bins 0..N/2
            m /= 2;
            job.M = m;
            job.Log2M = log2M - 1;
            job.Packed = 1;
            job.TwStride = 2;
        }
        if (m <= MaxShared)
        {
            var kernel = SharedKernelLoaded(engine);
            int threads = Math.Min(engine.GroupSize, Math.Max(1, m / 2));
            kernel(new KernelConfig(transforms, threads), input, output, plan[0], plan[1], plan[2], window, job);
            return;
        }
        long complexCount = (long)transforms * m;
        if (complexCount * 2 > int.MaxValue) throw new ArgumentException($"FFT batch too large for one launch: {transforms} transforms of padded length {m}.");
        // the work area is shared by the engine's operations: enqueue under its lock (launches then run in stream order)
        lock (engine.ScratchGate)
        {
            RunGlobal(engine, job, transforms, input, output, window, plan, complexCount);
        }
    }

    private static void RunGlobal(IlgpuEngine engine, FftJob job, int transforms, ArrayView<float> input, ArrayView<float> output, ArrayView<float> window, DevicePlan plan, long complexCount)
    {
        int m = job.M, log2M = job.Log2M;
        bool bluestein = job.Bluestein != 0;
        var scratch = engine.Scratch(4 * complexCount);
        ArrayView<float> a = scratch.SubView(0, 2 * complexCount);
        ArrayView<float> b = scratch.SubView(2 * complexCount, 2 * complexCount);
        var load = LoadKernel(engine);
        var stage = StageKernel(engine);
        var mul = BhatKernel(engine);
        var store = StoreKernel(engine);
        load((int)complexCount, input, a, plan[1], window, job);
        int butterflies = (int)(complexCount / 2);
        int passInverse = bluestein ? 0 : job.Inverse;
        for (int s = 0, ns = 1; s < log2M; s++, ns <<= 1)
        {
            stage(butterflies, a, b, plan[0], m, ns, passInverse);
            (a, b) = (b, a);
        }
        if (bluestein)
        {
            mul((int)complexCount, a, plan[2], job);
            for (int s = 0, ns = 1; s < log2M; s++, ns <<= 1)
            {
                stage(butterflies, a, b, plan[0], m, ns, 1);
                (a, b) = (b, a);
            }
        }
        store(checked(transforms * job.OutCount), a, output, plan[1], job);
    }

    private static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftJob> SharedKernelLoaded(IlgpuEngine engine) =>
        engine.Kernel("fft.shared", acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftJob>(SharedKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftJob> LoadKernel(IlgpuEngine engine) =>
        engine.Kernel("fft.load", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftJob>(GlobalLoadKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> StageKernel(IlgpuEngine engine) =>
        engine.Kernel("fft.stage", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(GlobalStageKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, FftJob> BhatKernel(IlgpuEngine engine) =>
        engine.Kernel("fft.bhat", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, FftJob>(GlobalBhatKernel));

    private static Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftJob> StoreKernel(IlgpuEngine engine) =>
        engine.Kernel("fft.store", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, FftJob>(GlobalStoreKernel));

    /// <summary>Loads every FFT kernel (used to surface compile failures when an engine is created).</summary>
    internal static void Compile(IlgpuEngine engine)
    {
        SharedKernelLoaded(engine);
        LoadKernel(engine);
        StageKernel(engine);
        BhatKernel(engine);
        StoreKernel(engine);
    }
}
