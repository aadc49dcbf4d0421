using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>A grid-stride launch: the thread with index i handles elements i, i + Stride, ... below Total (few
/// threads each doing many elements on ilgpu-cpu, where every simulated thread is costly; about one each on a GPU).</summary>
internal struct ScatterRange
{
    public int Total;
    public int Stride;
}

/// <summary>One radix-2 Stockham stage of a batched double-precision FFT (<see cref="ScatteringKernels.FftStageKernel"/>).</summary>
internal struct ScatterFftStage
{
    /// <summary>Transform length (a power of two).</summary>
    public int M;
    /// <summary>Length of the sub-transforms merged by this stage (1, 2, 4 ... M/2).</summary>
    public int Ns;
    /// <summary>Padded length / M: the step through the plan's twiddle table exp(-2 pi i q / N).</summary>
    public int TwStride;
    /// <summary>1 for the inverse transform (conjugated twiddles, no scaling).</summary>
    public int Inverse;
}

/// <summary>
/// One batched periodised product (<see cref="ScatteringKernels.FoldKernel"/>): for clip c and row r of the launch,
/// out[c, DstRow(r), d] = Scale * sum_p in[c, r][d + p OutLength] * filter_r[d + p OutLength], d &lt; OutLength, p &lt;
/// InLength / OutLength. Row r's source offset, clip stride, filter offset and destination row are the four ints at
/// rows[4 (RowTable + r)].
/// </summary>
internal struct ScatterFold
{
    public int RowTable;
    public int Rows;
    public int InLength;
    public int OutLength;
    public int DstRows;
    public double Scale;
}

/// <summary>
/// kymatio 0.4's Scattering1D (<see cref="IDspOps.Scattering1D"/>) on the ILGPU engines, in double precision like the
/// managed engine (float32 FFTs of the padded signal leave a noise floor near 1e-8 that moves log(|S| + 1e-6) by 1e-2
/// on quiet frames; kymatio's numpy backend computes in float64). Per chunk of clips, every step a batched launch
/// over clips and filters: reflect padding into complex rows, FFT of the padded signals, then for the first-order
/// wavelets grouped by subsampling 2^k1 a product with each wavelet periodised to N / 2^k1 points (kymatio's
/// subsampling in frequency), inverse FFT, modulus, FFT, and the low-pass of every path periodised to N / T points;
/// the second-order paths the same way from the first-order spectra, grouped by (k1, k2). One inverse FFT of every
/// low-pass product, and the kept frames (kymatio's unpadding) are written as float32 [clips, paths, frames], or reduced
/// on the device to the log-scattering time average [clips, paths - 1].
/// FFTs are radix-2 Stockham stages in global memory (Stockham 1966), one launch per stage over every row of a group.
/// The filters (taps below 1e-15 of a filter's peak zeroed, as the managed plan drops them), the twiddles and the
/// per-row tables are uploaded once per filter bank and cached with the engine's plans.
/// </summary>
internal static class ScatteringKernels
{
    // ---------------------------------------------------------------- kernels

    /// <summary>work[c, p] = (x[first + c, reflect(p - padLeft)], 0) for i = c * n + p: numpy's 'reflect' padding
    /// (the edge sample not repeated) of clips of <paramref name="length"/> samples to <paramref name="n"/>.</summary>
    internal static void PadKernel(Index1D index, ArrayView<float> clips, ArrayView<double> work, int first, int length, int n, int padLeft, ScatterRange range)
    {
        for (int i = index; i < range.Total; i += range.Stride)
        {
            int c = i / n;
            int p = i - c * n;
            int q = FftKernels.PaddedIndex(p - padLeft, length, (int)Dsp.PadMode.Reflect);
            work[2L * i] = clips[(long)(first + c) * length + q];
            work[2L * i + 1] = 0.0;
        }
    }

    /// <summary>One radix-2 Stockham stage over rows of length M: i = row * M/2 + j; reads src[j] and src[j + M/2] of the
    /// row, writes dst[(j / ns) 2ns + j % ns] and that + ns.</summary>
    internal static void FftStageKernel(Index1D index, ArrayView<double> src, ArrayView<double> dst, ArrayView<double> twiddles, ScatterFftStage stage, ScatterRange range)
    {
        for (int i = index; i < range.Total; i += range.Stride) Butterfly(i, src, dst, twiddles, stage);
    }

    private static void Butterfly(int i, ArrayView<double> src, ArrayView<double> dst, ArrayView<double> twiddles, ScatterFftStage stage)
    {
        int half = stage.M >> 1;
        int row = i / half;
        int j = i - row * half;
        int k = j & (stage.Ns - 1);
        long basis = 2L * row * stage.M;
        long a = basis + 2L * j;
        long b = basis + 2L * (j + half);
        double ar = src[a], ai = src[a + 1], br = src[b], bi = src[b + 1];
        int q = k * (half / stage.Ns) * stage.TwStride;
        double wr = twiddles[2 * q];
        double wi = stage.Inverse != 0 ? -twiddles[2 * q + 1] : twiddles[2 * q + 1];
        double tr = br * wr - bi * wi;
        double ti = br * wi + bi * wr;
        long d = basis + 2L * (((j - k) << 1) + k);
        long e = d + 2L * stage.Ns;
        dst[d] = ar + tr;
        dst[d + 1] = ai + ti;
        dst[e] = ar - tr;
        dst[e + 1] = ai - ti;
    }

    /// <summary>dst[i] = src[i] (brings an odd number of Stockham stages back to the data buffer).</summary>
    internal static void CopyKernel(Index1D index, ArrayView<double> src, ArrayView<double> dst, ScatterRange range)
    {
        for (int i = index; i < range.Total; i += range.Stride) dst[i] = src[i];
    }

    /// <summary>work[i] = (|work[i]|, 0) for complex element i.</summary>
    internal static void ModulusKernel(Index1D index, ArrayView<double> work, ScatterRange range)
    {
        for (int i = index; i < range.Total; i += range.Stride)
        {
            double re = work[2L * i], im = work[2L * i + 1];
            work[2L * i] = XMath.Sqrt(re * re + im * im);
            work[2L * i + 1] = 0.0;
        }
    }

    /// <summary>One periodised product (<see cref="ScatterFold"/>): i = (c * Rows + r) * OutLength + d.</summary>
    internal static void FoldKernel(Index1D index, ArrayView<double> src, ArrayView<double> dst, ArrayView<double> filters, ArrayView<int> rows, ScatterFold fold, ScatterRange range)
    {
        for (int i = index; i < range.Total; i += range.Stride) Fold(i, src, dst, filters, rows, fold);
    }

    private static void Fold(int i, ArrayView<double> src, ArrayView<double> dst, ArrayView<double> filters, ArrayView<int> rows, ScatterFold fold)
    {
        int d = i % fold.OutLength;
        int t = i / fold.OutLength;
        int r = t % fold.Rows;
        int c = t / fold.Rows;
        int at = 4 * (fold.RowTable + r);
        long from = rows[at] + (long)c * rows[at + 1];
        int filter = rows[at + 2];
        double re = 0.0, im = 0.0;
        for (int s = d; s < fold.InLength; s += fold.OutLength)
        {
            double w = filters[filter + s];
            if (w != 0.0)
            {
                re += src[2 * (from + s)] * w;
                im += src[2 * (from + s) + 1] * w;
            }
        }
        long o = ((long)c * fold.DstRows + rows[at + 3]) * fold.OutLength + d;
        dst[2 * o] = re * fold.Scale;
        dst[2 * o + 1] = im * fold.Scale;
    }

    /// <summary>output[(first + c), path, f] = Re low[c, path, start + f] as float32 for i = (c * paths + path) * frames + f
    /// (kymatio's unpadding of the subsampled output).</summary>
    internal static void UnpadKernel(Index1D index, ArrayView<double> low, ArrayView<float> output, int first, int paths, int frames, int outLength, int start, ScatterRange range)
    {
        for (int i = index; i < range.Total; i += range.Stride)
        {
            int f = i % frames;
            int row = i / frames;
            output[(long)first * paths * frames + i] = (float)low[2 * ((long)row * outLength + start + f)];
        }
    }

    /// <summary>output[first + c, path - 1] = mean over f of log(|Re low[c, path, start + f]| + epsilon) for every path
    /// but order 0, i = c * (paths - 1) + path - 1, in double precision (the log-scattering time average).</summary>
    internal static void LogMeanKernel(Index1D index, ArrayView<double> low, ArrayView<float> output, int first, int paths, int frames, int outLength, int start, double epsilon, ScatterRange range)
    {
        for (int i = index; i < range.Total; i += range.Stride)
        {
            int c = i / (paths - 1);
            int path = i - c * (paths - 1) + 1;
            long basis = ((long)c * paths + path) * outLength + start;
            double sum = 0.0;
            for (int f = 0; f < frames; f++) sum += XMath.Log(XMath.Abs(low[2 * (basis + f)]) + epsilon);
            output[(long)first * (paths - 1) + i] = (float)(sum / frames);
        }
    }

    // ---------------------------------------------------------------- plan

    internal sealed record PlanKey(ScatteringFilterBank Bank);

    /// <summary>A batched product step of the plan: its row-table slice and lengths.</summary>
    internal sealed record Step(ScatterFold Fold);

    /// <summary>Second-order paths of one (k1, k2): the wavelet products to length M2, then their low-pass.</summary>
    internal sealed record SecondGroup(int Rows, int M2, Step Wavelet, Step Lowpass);

    /// <summary>First-order paths of one k1: the wavelet products to length M1, their low-pass, and the second-order groups fed by them.</summary>
    internal sealed record FirstGroup(int Rows, int M1, Step Wavelet, Step Lowpass, SecondGroup[] Children);

    /// <summary>The device side of one filter bank: twiddles of the padded length, every filter at the level it is
    /// applied (zeroed below 1e-15 of its peak), the row tables, the launch structure, and a work area reused by every
    /// call (grown when a larger chunk of clips needs it).</summary>
    internal sealed class Plan : IDisposable
    {
        private readonly IlgpuEngine _engine;
        private MemoryBuffer1D<double, Stride1D.Dense>? _work;

        internal Plan(IlgpuEngine engine, ScatteringFilterBank bank)
        {
            _engine = engine;
            Bank = bank;
            int n = bank.PaddedLength, log2T = bank.Log2T;
            OutLength = n >> log2T;
            var filters = new List<double>();
            var offsets = new Dictionary<(int Kind, int Index, int Level), int>();
            int FilterAt(int kind, int index, int level)
            {
                if (offsets.TryGetValue((kind, index, level), out var at)) return at;
                var f = kind == 0 ? bank.Phi : kind == 1 ? bank.Psi1[index] : bank.Psi2[index];
                var values = f.Level(level);
                double peak = 0;
                foreach (var v in values) peak = Math.Max(peak, Math.Abs(v));
                at = filters.Count;
                foreach (var v in values) filters.Add(Math.Abs(v) <= 1e-15 * peak ? 0.0 : v);
                offsets[(kind, index, level)] = at;
                return at;
            }
            var table = new List<int>();
            var pathOf = new Dictionary<(int N1, int N2), int>();
            for (var p = 0; p < bank.Paths.Count; p++) pathOf[(bank.Paths[p].N1, bank.Paths[p].N2)] = p;
            var paths = bank.Paths.Count;
            Step Add(List<(int From, int Stride, int Filter, int DstRow)> rows, int inLength, int outLength, int dstRows, double scale)
            {
                var fold = new ScatterFold { RowTable = table.Count / 4, Rows = rows.Count, InLength = inLength, OutLength = outLength, DstRows = dstRows, Scale = scale };
                foreach (var (from, stride, filter, dst) in rows) table.AddRange([from, stride, filter, dst]);
                return new Step(fold);
            }

            // Order 0: the padded signal's spectrum through phi, periodised to N / T.
            Zero = Add([(0, n, FilterAt(0, 0, 0), 0)], n, OutLength, paths, 1.0 / (1 << log2T) / OutLength);
            var groups = new List<FirstGroup>();
            long maxU1 = 0, maxU2 = 0;
            foreach (var k1Group in Enumerable.Range(0, bank.Psi1.Count).GroupBy(a => Math.Min(bank.Psi1[a].J, log2T)).OrderBy(g => g.Key))
            {
                int k1 = k1Group.Key, m1 = n >> k1;
                var members = k1Group.ToArray();
                int rows1 = members.Length;
                maxU1 = Math.Max(maxU1, (long)rows1 * m1);
                var wavelet = Add(members.Select((a, r) => (0, n, FilterAt(1, a, 0), r)).ToList(), n, m1, rows1, 1.0 / (1 << k1) / m1);
                var lowpass = Add(members.Select((a, r) => (r * m1, rows1 * m1, FilterAt(0, 0, k1), pathOf[(a, -1)])).ToList(),
                    m1, OutLength, paths, 1.0 / (1 << (log2T - k1)) / OutLength);
                var children = new List<SecondGroup>();
                var pairs = new List<(int Row, int A, int B, int K2)>();
                for (var r = 0; r < rows1; r++)
                    for (var b = 0; b < bank.Psi2.Count; b++)
                        if (bank.Psi2[b].J > bank.Psi1[members[r]].J)
                            pairs.Add((r, members[r], b, Math.Max(Math.Min(bank.Psi2[b].J, log2T) - k1, 0)));
                foreach (var k2Group in pairs.GroupBy(p => p.K2).OrderBy(g => g.Key))
                {
                    int k2 = k2Group.Key, m2 = m1 >> k2;
                    var items = k2Group.ToArray();
                    int rows2 = items.Length;
                    maxU2 = Math.Max(maxU2, (long)rows2 * m2);
                    var w2 = Add(items.Select((it, r) => (it.Row * m1, rows1 * m1, FilterAt(2, it.B, k1), r)).ToList(), m1, m2, rows2, 1.0 / (1 << k2) / m2);
                    var l2 = Add(items.Select((it, r) => (r * m2, rows2 * m2, FilterAt(0, 0, k1 + k2), pathOf[(it.A, it.B)])).ToList(),
                        m2, OutLength, paths, 1.0 / (1 << (log2T - k1 - k2)) / OutLength);
                    children.Add(new SecondGroup(rows2, m2, w2, l2));
                }
                groups.Add(new FirstGroup(rows1, m1, wavelet, lowpass, children.ToArray()));
            }
            First = groups.ToArray();
            // Complex elements per clip of each work region: padded spectrum, first- and second-order rows, low-pass rows.
            U1PerClip = maxU1;
            U2PerClip = maxU2;
            LowPerClip = (long)paths * OutLength;
            ScratchPerClip = Math.Max(Math.Max(n, maxU1), Math.Max(maxU2, LowPerClip));
            var tw = new double[2 * n];
            for (var q = 0; q < n; q++)
            {
                var (sin, cos) = Filters.SinCos2Pi(q, n);
                tw[2 * q] = cos;
                tw[2 * q + 1] = -sin;
            }
            Twiddles = Upload(engine, tw);
            Taps = Upload(engine, filters.ToArray());
            var ints = table.ToArray();
            Rows = engine.Accelerator.Allocate1D<int>(Math.Max(ints.Length, 1));
            engine.Transfers.Record(TransferKind.HostToDevice, (long)ints.Length * sizeof(int));
            Rows.View.SubView(0, ints.Length).CopyFromCPU(ints);
        }

        public ScatteringFilterBank Bank { get; }
        public int OutLength { get; }
        public Step Zero { get; }
        public FirstGroup[] First { get; }
        public long U1PerClip { get; }
        public long U2PerClip { get; }
        public long LowPerClip { get; }
        public long ScratchPerClip { get; }
        public MemoryBuffer1D<double, Stride1D.Dense> Twiddles { get; }
        public MemoryBuffer1D<double, Stride1D.Dense> Taps { get; }
        public MemoryBuffer1D<int, Stride1D.Dense> Rows { get; }

        /// <summary>Complex elements of work area per clip.</summary>
        public long PerClip => Bank.PaddedLength + U1PerClip + U2PerClip + LowPerClip + ScratchPerClip;

        /// <summary>The work area for <paramref name="clips"/> clips (doubles), allocated or grown on demand.</summary>
        public ArrayView<double> Work(int clips)
        {
            var doubles = 2 * PerClip * clips;
            if (_work is null || _work.Length < doubles)
            {
                _engine.Wait();
                _work?.Dispose();
                _work = _engine.Accelerator.Allocate1D<double>(doubles);
            }
            return _work.View.SubView(0, doubles);
        }

        private static MemoryBuffer1D<double, Stride1D.Dense> Upload(IlgpuEngine engine, double[] data)
        {
            var buffer = engine.Accelerator.Allocate1D<double>(Math.Max(data.Length, 1));
            engine.Transfers.Record(TransferKind.HostToDevice, (long)data.Length * sizeof(double));
            if (data.Length > 0) buffer.View.SubView(0, data.Length).CopyFromCPU(data);
            return buffer;
        }

        public void Dispose()
        {
            _work?.Dispose();
            Twiddles.Dispose();
            Taps.Dispose();
            Rows.Dispose();
        }
    }

    // ---------------------------------------------------------------- host side

    /// <summary>Bytes of double-precision work area a chunk of clips may use (the batch is cut into chunks under it).</summary>
    private static long WorkBudget(IlgpuEngine engine) =>
        engine.Accelerator.AcceleratorType == AcceleratorType.CPU ? 256L << 20 : Math.Min(engine.Accelerator.MemorySize / 8, 4L << 30);

    /// <summary>Scattering1D of <paramref name="batch"/> clips of the bank's length from <paramref name="clips"/>
    /// [batch, length] into <paramref name="output"/> [batch, paths, frames], or with a positive
    /// <paramref name="logEpsilon"/> the log-scattering time average [batch, paths - 1]; shapes are checked by the caller.</summary>
    internal static void Run(IlgpuEngine engine, ScatteringFilterBank bank, ArrayView<float> clips, ArrayView<float> output, int batch, double logEpsilon = 0)
    {
        if (batch == 0) return;
        var plan = engine.Plan(new PlanKey(bank), () => new Plan(engine, bank));
        var perClipBytes = 16 * plan.PerClip;
        var chunk = (int)Math.Clamp(WorkBudget(engine) / perClipBytes, 1, batch);
        // Index1D is an int: keep every launch's element count below 2^31.
        chunk = (int)Math.Min(chunk, int.MaxValue / (2 * plan.ScratchPerClip));
        var k = Launchers.For(engine);
        for (var first = 0; first < batch; first += chunk)
            Chunk(engine, plan, k, clips, output, first, Math.Min(chunk, batch - first), logEpsilon);
    }

    private static void Chunk(IlgpuEngine engine, Plan plan, Launchers k, ArrayView<float> clips, ArrayView<float> output, int first, int count, double logEpsilon)
    {
        var bank = plan.Bank;
        int n = bank.PaddedLength, paths = bank.Paths.Count;
        var work = plan.Work(count);
        long at = 0;
        ArrayView<double> Region(long complexPerClip)
        {
            var v = work.SubView(at, Math.Max(2 * complexPerClip * count, 2));
            at += 2 * complexPerClip * count;
            return v;
        }
        var x0 = Region(n);
        var u1 = Region(plan.U1PerClip);
        var u2 = Region(plan.U2PerClip);
        var low = Region(plan.LowPerClip);
        var scratch = Region(plan.ScratchPerClip);
        ArrayView<double> filters = plan.Taps.View;
        ArrayView<int> rows = plan.Rows.View;

        k.Pad(count * n, clips, x0, first, bank.Length, n, bank.PadLeft);
        Fft(plan, k, x0, scratch, count, n, inverse: false);
        Fold(k, plan.Zero, x0, low, filters, rows, count);
        foreach (var g in plan.First)
        {
            var rows1 = (long)g.Rows * g.M1 * count;
            Fold(k, g.Wavelet, x0, u1, filters, rows, count);
            Fft(plan, k, u1, scratch, count * g.Rows, g.M1, inverse: true);
            k.Modulus((int)rows1, u1);
            Fft(plan, k, u1, scratch, count * g.Rows, g.M1, inverse: false);
            Fold(k, g.Lowpass, u1, low, filters, rows, count);
            foreach (var s in g.Children)
            {
                var rows2 = (long)s.Rows * s.M2 * count;
                Fold(k, s.Wavelet, u1, u2, filters, rows, count);
                Fft(plan, k, u2, scratch, count * s.Rows, s.M2, inverse: true);
                k.Modulus((int)rows2, u2);
                Fft(plan, k, u2, scratch, count * s.Rows, s.M2, inverse: false);
                Fold(k, s.Lowpass, u2, low, filters, rows, count);
            }
        }
        Fft(plan, k, low, scratch, count * paths, plan.OutLength, inverse: true);
        if (logEpsilon > 0)
            k.LogMean(count * (paths - 1), low, output, first, paths, bank.Frames, plan.OutLength, bank.FrameStart, logEpsilon);
        else
            k.Unpad(count * paths * bank.Frames, low, output, first, paths, bank.Frames, plan.OutLength, bank.FrameStart);
    }

    private static void Fold(Launchers k, Step step, ArrayView<double> src, ArrayView<double> dst, ArrayView<double> filters, ArrayView<int> rows, int count) =>
        k.Fold(count * step.Fold.Rows * step.Fold.OutLength, src, dst, filters, rows, step.Fold);

    /// <summary>In-place FFT (unscaled; inverse with conjugated twiddles) of <paramref name="count"/> rows of
    /// <paramref name="m"/> complex points at the start of <paramref name="data"/>, ping-ponging through scratch.</summary>
    private static void Fft(Plan plan, Launchers k, ArrayView<double> data, ArrayView<double> scratch, int count, int m, bool inverse)
    {
        if (m <= 1 || count == 0) return;
        long doubles = 2L * count * m;
        ArrayView<double> a = data.SubView(0, doubles), b = scratch.SubView(0, doubles);
        var stages = 0;
        for (var ns = 1; ns < m; ns <<= 1, stages++)
        {
            k.Stage(count * (m / 2), a, b, plan.Twiddles.View, new ScatterFftStage { M = m, Ns = ns, TwStride = plan.Bank.PaddedLength / m, Inverse = inverse ? 1 : 0 });
            (a, b) = (b, a);
        }
        if ((stages & 1) != 0) k.Copy((int)doubles, a, b);
    }

    /// <summary>The loaded kernels of one engine.</summary>
    private sealed class Launchers
    {
        private Action<Index1D, ArrayView<float>, ArrayView<double>, int, int, int, int, ScatterRange> _pad = null!;
        private Action<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, ScatterFftStage, ScatterRange> _stage = null!;
        private Action<Index1D, ArrayView<double>, ArrayView<double>, ScatterRange> _copy = null!;
        private Action<Index1D, ArrayView<double>, ScatterRange> _modulus = null!;
        private Action<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, ArrayView<int>, ScatterFold, ScatterRange> _fold = null!;
        private Action<Index1D, ArrayView<double>, ArrayView<float>, int, int, int, int, int, ScatterRange> _unpad = null!;
        private Action<Index1D, ArrayView<double>, ArrayView<float>, int, int, int, int, int, double, ScatterRange> _logMean = null!;
        private int _threads;

        /// <summary>Threads of a launch over <paramref name="total"/> elements and its grid stride.</summary>
        private (int Threads, ScatterRange Range) Launch(int total)
        {
            var threads = Math.Max(1, Math.Min(total, _threads));
            return (threads, new ScatterRange { Total = total, Stride = threads });
        }

        public void Pad(int total, ArrayView<float> clips, ArrayView<double> work, int first, int length, int n, int padLeft)
        {
            var (t, r) = Launch(total);
            _pad(t, clips, work, first, length, n, padLeft, r);
        }

        public void Stage(int total, ArrayView<double> src, ArrayView<double> dst, ArrayView<double> twiddles, ScatterFftStage stage)
        {
            var (t, r) = Launch(total);
            _stage(t, src, dst, twiddles, stage, r);
        }

        public void Copy(int total, ArrayView<double> src, ArrayView<double> dst)
        {
            var (t, r) = Launch(total);
            _copy(t, src, dst, r);
        }

        public void Modulus(int total, ArrayView<double> work)
        {
            var (t, r) = Launch(total);
            _modulus(t, work, r);
        }

        public void Fold(int total, ArrayView<double> src, ArrayView<double> dst, ArrayView<double> filters, ArrayView<int> rows, ScatterFold fold)
        {
            var (t, r) = Launch(total);
            _fold(t, src, dst, filters, rows, fold, r);
        }

        public void Unpad(int total, ArrayView<double> low, ArrayView<float> output, int first, int paths, int frames, int outLength, int start)
        {
            var (t, r) = Launch(total);
            _unpad(t, low, output, first, paths, frames, outLength, start, r);
        }

        public void LogMean(int total, ArrayView<double> low, ArrayView<float> output, int first, int paths, int frames, int outLength, int start, double epsilon)
        {
            var (t, r) = Launch(total);
            _logMean(t, low, output, first, paths, frames, outLength, start, epsilon, r);
        }

        /// <summary>The kernels of an engine. A GPU launches up to 16 threads per hardware thread (about one element each
        /// for the sizes of a chunk); ilgpu-cpu one per simulated hardware thread, each looping over many elements.</summary>
        public static Launchers For(IlgpuEngine engine)
        {
            var acc = engine.Accelerator;
            return new Launchers
            {
                _threads = acc.AcceleratorType == AcceleratorType.CPU ? Math.Max(1, acc.MaxNumThreads) : (int)Math.Min(int.MaxValue / 2, 16L * acc.MaxNumThreads),
                _pad = engine.Kernel("scattering.pad", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<double>, int, int, int, int, ScatterRange>(PadKernel)),
                _stage = engine.Kernel("scattering.stage", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, ScatterFftStage, ScatterRange>(FftStageKernel)),
                _copy = engine.Kernel("scattering.copy", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, ScatterRange>(CopyKernel)),
                _modulus = engine.Kernel("scattering.modulus", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ScatterRange>(ModulusKernel)),
                _fold = engine.Kernel("scattering.fold", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, ArrayView<int>, ScatterFold, ScatterRange>(FoldKernel)),
                _unpad = engine.Kernel("scattering.unpad", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<float>, int, int, int, int, int, ScatterRange>(UnpadKernel)),
                _logMean = engine.Kernel("scattering.logmean", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<float>, int, int, int, int, int, double, ScatterRange>(LogMeanKernel)),
            };
        }
    }

    /// <summary>Loads every scattering kernel (used to surface compile failures when an engine is created).</summary>
    internal static void Compile(IlgpuEngine engine) => Launchers.For(engine);
}
