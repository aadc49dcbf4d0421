using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using V = System.Runtime.Intrinsics.Vector256<float>;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// IDspOps on the managed engine. Transforms run eight at a time in the lanes of 256-bit vectors (eight rows
/// of a batch, or eight consecutive STFT frames), work is split across clips (and frame blocks) with the
/// engine's parallel options, and every worker reuses its thread's <see cref="Workspace"/>, so hot loops
/// allocate nothing. STFT frames are built from the clip block by block, never materialising a padded copy
/// of the whole batch.
/// </summary>
internal sealed partial class ManagedDsp : IDspOps
{
    private const float Tiny = 1.17549435e-38f; // numpy.finfo(float32).tiny, librosa's normalisation threshold
    private const int FramesPerBlock = 128;

    private readonly ManagedEngine _engine;

    internal ManagedDsp(ManagedEngine engine) => _engine = engine;

    // ---------------------------------------------------------------- helpers

    private static ManagedTensor Check(Tensor t, string name, int rank)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        var m = ManagedEngine.Expect(t, name);
        if (m.Rank != rank)
            throw new ArgumentException($"{name}: expected a rank-{rank} tensor, was shape [{string.Join(", ", m.Shape)}].", name);
        return m;
    }

    /// <summary>Runs body(start, end) over [0, count) in contiguous ranges spread across the engine's threads: up to 32
    /// ranges a thread, self-scheduled (<see cref="Parallelism.SelfScheduled"/>), so that a thread woken late or slowed
    /// by another process leaves little for the others to wait on. The ranges never change a value: every body
    /// computes each of its items whole.</summary>
    private void ForRanges(int count, Action<int, int> body)
    {
        if (count <= 0) return;
        var chunks = Math.Min(count, _engine.MaxThreads * 32);
        // One chunk runs on the calling thread inside SelfScheduled too, so that Parallelism.MeasureWork counts it.
        Parallelism.SelfScheduled(_engine.Parallel, chunks, c =>
        {
            var start = (int)((long)count * c / chunks);
            var end = (int)((long)count * (c + 1) / chunks);
            if (end > start) body(start, end);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLanes(V v, Span<float> dst, int start, int count)
    {
        if (count == 8) v.StoreUnsafe(ref dst[start]);
        else
            for (var j = 0; j < count; j++) dst[start + j] = v[j];
    }

    // ---------------------------------------------------------------- scattering

    public void Scattering1D(ScatteringConfig config, Tensor clips, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(config);
        var x = Check(clips, nameof(clips), 2);
        int batch = x.Shape[0], samples = x.Shape[1];
        var bank = Filters.Scattering1D(config, samples);
        var y = Check(output, nameof(output), 3);
        y.RequireShape(nameof(output), batch, bank.Paths.Count, bank.Frames);
        ManagedScattering.Run(_engine.Parallel, ScatteringPlan.For(bank), x.Span, y.Span, batch);
    }

    // ---------------------------------------------------------------- FFT

    /// <summary>Transforms rows of x into rows of y eight at a time: each group of rows is loaded into lanes
    /// (inLength floats per row), transformed in place by <paramref name="transform"/>, and stored (outLength per row).</summary>
    private void RowTransform(ManagedTensor x, ManagedTensor y, int batch, int inLength, int outLength, int bufferLength,
        int scratchLength, TransformRows transform)
    {
        ForRanges((batch + 7) / 8, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (g0, g1) =>
        {
            var ws = Workspace.Current;
            var buf = ws.Vectors(0, bufferLength);
            var scratch = ws.Vectors(1, scratchLength);
            var src = x.Span;
            var dst = y.Span;
            for (var g = g0; g < g1; g++)
            {
                var rows = Math.Min(8, batch - 8 * g);
                Lanes.Load(src, 8 * g * inLength, inLength, rows, inLength, buf);
                transform(buf, scratch);
                Lanes.Store(buf, outLength, dst, 8 * g * outLength, outLength, rows);
            }
        });
    }

    private delegate void TransformRows(Span<V> buffer, Span<V> scratch);

    public void Fft(Tensor input, Tensor output, bool inverse = false)
    {
        var x = Check(input, nameof(input), 3);
        var y = Check(output, nameof(output), 3);
        int batch = x.Shape[0], n = x.Shape[1];
        if (x.Shape[2] != 2 || n < 2 || n > 16384)
            throw new ArgumentException($"input: expected shape [batch, n, 2] with n in 2..16384, was [{string.Join(", ", x.Shape)}].", nameof(input));
        y.RequireShape(nameof(output), batch, n, 2);
        var plan = ComplexFftPlan.Get(n);
        var scale = Vector256.Create(1f / n);
        RowTransform(x, y, batch, 2 * n, 2 * n, 2 * n, plan.ScratchLength, (buf, scratch) =>
        {
            // The inverse is conj(FFT(conj X)) / n.
            if (inverse)
                for (var i = 1; i < 2 * n; i += 2) buf[i] = -buf[i];
            plan.Forward(buf, scratch);
            if (inverse)
                for (var i = 0; i < 2 * n; i += 2)
                {
                    buf[i] *= scale;
                    buf[i + 1] = -buf[i + 1] * scale;
                }
        });
    }

    public void Rfft(Tensor input, Tensor output)
    {
        var x = Check(input, nameof(input), 2);
        var y = Check(output, nameof(output), 3);
        int batch = x.Shape[0], n = x.Shape[1];
        var plan = RealFftPlan.Get(n);
        y.RequireShape(nameof(output), batch, plan.Bins, 2);
        RowTransform(x, y, batch, n, 2 * plan.Bins, plan.BufferLength, plan.ScratchLength, plan.Forward);
    }

    public void Irfft(Tensor input, Tensor output)
    {
        var x = Check(input, nameof(input), 3);
        var y = Check(output, nameof(output), 2);
        int batch = y.Shape[0], n = y.Shape[1];
        var plan = RealFftPlan.Get(n);
        x.RequireShape(nameof(input), batch, plan.Bins, 2);
        RowTransform(x, y, batch, 2 * plan.Bins, n, plan.BufferLength, plan.ScratchLength, plan.Inverse);
    }

    // ---------------------------------------------------------------- STFT

    /// <summary>Copies padded[start, start + count) of a clip padded by <paramref name="pad"/> samples on both
    /// sides (numpy.pad modes) into <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FillPadded(ReadOnlySpan<float> clip, int pad, PadMode mode, int start, Span<float> dst)
    {
        var length = clip.Length;
        var i = 0;
        var count = dst.Length;
        while (i < count)
        {
            var p = start + i - pad;
            if (p >= 0 && p < length)
            {
                var run = Math.Min(count - i, length - p);
                clip.Slice(p, run).CopyTo(dst.Slice(i, run));
                i += run;
                continue;
            }
            dst[i] = mode switch
            {
                PadMode.Constant => 0f,
                PadMode.Edge => length == 0 ? 0f : clip[p < 0 ? 0 : length - 1],
                _ => length == 0 ? 0f : clip[Reflect(p, length)],
            };
            i++;
        }
    }

    private static int Reflect(int p, int length)
    {
        if (length == 1) return 0;
        var period = 2 * (length - 1);
        p %= period;
        if (p < 0) p += period;
        return p < length ? p : period - p;
    }

    /// <summary>Runs the windowed real FFT of every frame of every clip, eight frames at a time, and hands each
    /// group's spectrum (bin k of frame f + j at buf[2k], buf[2k+1] lane j) to <paramref name="sink"/>.</summary>
    private void ForEachFrameGroup<TSink>(StftConfig config, ManagedTensor clips, int frames, TSink sink)
        where TSink : IFrameSink
    {
        config.Validate();
        int batch = clips.Shape[0], samples = clips.Shape[1], nFft = config.NFft, hop = config.Hop;
        var window = Filters.Window(config.Window, config.Win, nFft);
        var plan = RealFftPlan.Get(nFft);
        var blocks = (frames + FramesPerBlock - 1) / FramesPerBlock;
        ForRanges(batch * blocks, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (u0, u1) =>
        {
            var ws = Workspace.Current;
            var buf = ws.Vectors(0, plan.BufferLength);
            var scratch = ws.Vectors(1, plan.ScratchLength);
            var segment = ws.Floats(0, (FramesPerBlock - 1) * hop + nFft);
            var all = clips.Span;
            for (var u = u0; u < u1; u++)
            {
                int clip = u / blocks, f0 = (u % blocks) * FramesPerBlock, f1 = Math.Min(frames, f0 + FramesPerBlock);
                StftBlock(config, window, plan, all.Slice(clip * samples, samples), clip, f0, f1, segment, buf, scratch, sink);
            }
        });
    }

    /// <summary>Frames [f0, f1) of one clip (at most <see cref="FramesPerBlock"/>): builds their padded segment in
    /// <paramref name="segment"/>, transforms them eight at a time and hands each group to <paramref name="sink"/> as
    /// clip <paramref name="clipIndex"/>. Every frame's spectrum depends only on its own samples, so how a caller
    /// groups clips and blocks does not change a value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StftBlock<TSink>(StftConfig config, float[] window, RealFftPlan plan, ReadOnlySpan<float> clip, int clipIndex,
        int f0, int f1, Span<float> segment, Span<V> buf, Span<V> scratch, TSink sink)
        where TSink : IFrameSink
    {
        int nFft = config.NFft, hop = config.Hop;
        var seg = segment[..((f1 - f0 - 1) * hop + nFft)];
        FillPadded(clip, config.Center ? nFft / 2 : 0, config.PadMode, f0 * hop, seg);
        for (var f = f0; f < f1; f += 8)
        {
            var rows = Math.Min(8, f1 - f);
            Lanes.Load(seg, (f - f0) * hop, hop, rows, nFft, buf, window);
            plan.Forward(buf, scratch);
            sink.Consume(clipIndex, f, rows, buf);
        }
    }

    /// <summary>Receives the spectrum of up to eight consecutive frames of one clip.</summary>
    private interface IFrameSink
    {
        void Consume(int clip, int frame, int rows, Span<V> spectrum);
    }

    /// <summary>Writes each frame group's power (or magnitude, or complex) spectrum into a [clips, bins, frames] array at
    /// <paramref name="offset"/>; frame f of the clip lands in column f - <paramref name="firstFrame"/> (0 for a whole
    /// spectrogram; a frame block's first frame when the array holds only that block, <paramref name="frames"/> wide).</summary>
    private readonly struct SpectrumSink(float[] data, int offset, int bins, int frames, SpectrumKind kind, int firstFrame = 0) : IFrameSink
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Consume(int clip, int frame, int rows, Span<V> spectrum)
        {
            var dst = data.AsSpan(offset);
            if (kind == SpectrumKind.Complex)
            {
                var baseIndex = (long)clip * bins * frames;
                for (var k = 0; k < bins; k++)
                {
                    V re = spectrum[2 * k], im = spectrum[2 * k + 1];
                    var at = (int)(2 * (baseIndex + (long)k * frames + frame - firstFrame));
                    for (var j = 0; j < rows; j++)
                    {
                        dst[at + 2 * j] = re[j];
                        dst[at + 2 * j + 1] = im[j];
                    }
                }
                return;
            }
            var rowStart = clip * bins * frames + frame - firstFrame;
            for (var k = 0; k < bins; k++)
            {
                V re = spectrum[2 * k], im = spectrum[2 * k + 1];
                var p = Vector256.FusedMultiplyAdd(re, re, im * im);
                if (kind == SpectrumKind.Magnitude) p = Vector256.Sqrt(p);
                StoreLanes(p, dst, rowStart + k * frames, rows);
            }
        }
    }

    public void Stft(StftConfig config, Tensor clips, Tensor output, SpectrumKind kind = SpectrumKind.Power)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var x = Check(clips, nameof(clips), 2);
        var y = ManagedEngine.Expect(output, nameof(output));
        int batch = x.Shape[0], frames = config.FrameCount(x.Shape[1]), bins = config.Bins;
        if (kind == SpectrumKind.Complex) y.RequireShape(nameof(output), batch, bins, frames, 2);
        else y.RequireShape(nameof(output), batch, bins, frames);
        ForEachFrameGroup(config, x, frames, new SpectrumSink(y.Data, y.Offset, bins, frames, kind));
    }

    public void Istft(StftConfig config, Tensor spectrum, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var x = Check(spectrum, nameof(spectrum), 4);
        var y = Check(output, nameof(output), 2);
        int batch = x.Shape[0], bins = config.Bins, frames = x.Shape[2], length = y.Shape[1];
        int nFft = config.NFft, hop = config.Hop;
        x.RequireShape(nameof(spectrum), y.Shape[0], bins, frames, 2);
        if (frames < 1) throw new ArgumentException("spectrum: needs at least one frame.", nameof(spectrum));
        var window = Filters.Window(config.Window, config.Win, nFft);
        var plan = RealFftPlan.Get(nFft);
        var full = nFft + hop * (frames - 1);
        // Window sum-square (librosa.filters.window_sumsquare): the overlap-added squared window.
        var wss = new float[full];
        for (var t = 0; t < frames; t++)
            for (var i = 0; i < nFft; i++) wss[t * hop + i] += window[i] * window[i];
        var start = config.Center ? nFft / 2 : 0;
        ForRanges(batch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var ws = Workspace.Current;
            var buf = ws.Vectors(0, plan.BufferLength);
            var scratch = ws.Vectors(1, plan.ScratchLength);
            var acc = ws.Floats(0, full);
            var frameRows = ws.Floats(1, 8 * nFft);
            var src = x.Span;
            var dst = y.Span;
            for (var c = c0; c < c1; c++)
            {
                acc.Clear();
                var clipBase = c * bins * frames;
                for (var f = 0; f < frames; f += 8)
                {
                    var rows = Math.Min(8, frames - f);
                    for (var k = 0; k < bins; k++)
                        GatherComplex(src, 2 * (clipBase + k * frames + f), rows, out buf[2 * k], out buf[2 * k + 1]);
                    plan.Inverse(buf, scratch);
                    for (var i = 0; i < nFft; i++) buf[i] *= Vector256.Create(window[i]);
                    // Back to one row per frame, then overlap-add each row at its hop.
                    Lanes.Store(buf, nFft, frameRows, 0, nFft, rows);
                    for (var j = 0; j < rows; j++)
                        AddTo(frameRows.Slice(j * nFft, nFft), acc.Slice((f + j) * hop, nFft));
                }
                var o = dst.Slice(c * length, length);
                for (var i = 0; i < length; i++)
                {
                    var p = start + i;
                    o[i] = p < full ? (wss[p] > Tiny ? acc[p] / wss[p] : acc[p]) : 0f;
                }
            }
        });
    }

    /// <summary>Splits the interleaved complex values src[at .. at + 2 rows) into real and imaginary lanes
    /// (lanes past <paramref name="rows"/> are zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GatherComplex(ReadOnlySpan<float> src, int at, int rows, out V re, out V im)
    {
        if (rows == 8 && System.Runtime.Intrinsics.X86.Avx2.IsSupported)
        {
            ref var p = ref Unsafe.AsRef(in src[at]);
            _ = src[at + 15];
            V a = Vector256.LoadUnsafe(ref p), b = Vector256.LoadUnsafe(ref p, 8);
            // Shuffle gives [r0 r1 r4 r5 | r2 r3 r6 r7]; swapping the middle 64-bit pairs restores frame order.
            re = System.Runtime.Intrinsics.X86.Avx2.Permute4x64(System.Runtime.Intrinsics.X86.Avx.Shuffle(a, b, 0x88).AsDouble(), 0xD8).AsSingle();
            im = System.Runtime.Intrinsics.X86.Avx2.Permute4x64(System.Runtime.Intrinsics.X86.Avx.Shuffle(a, b, 0xDD).AsDouble(), 0xD8).AsSingle();
            return;
        }
        Span<float> r = stackalloc float[8];
        Span<float> i = stackalloc float[8];
        r.Clear();
        i.Clear();
        for (var j = 0; j < rows; j++)
        {
            r[j] = src[at + 2 * j];
            i[j] = src[at + 2 * j + 1];
        }
        re = Vector256.Create((ReadOnlySpan<float>)r);
        im = Vector256.Create((ReadOnlySpan<float>)i);
    }

    /// <summary>y += x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddTo(ReadOnlySpan<float> x, Span<float> y)
    {
        var i = 0;
        ref var xr = ref Unsafe.AsRef(in x[0]);
        ref var yr = ref y[0];
        for (; i + 8 <= y.Length; i += 8)
            (Vector256.LoadUnsafe(ref xr, (nuint)i) + Vector256.LoadUnsafe(ref yr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        for (; i < y.Length; i++) y[i] += x[i];
    }

    // ---------------------------------------------------------------- mel, dB, MFCC

    /// <summary>Each matrix's row supports, kept as long as the matrix lives: the filter banks come from
    /// <see cref="Filters"/>' cache, so a batched call does not scan its bank again (W2's 128 x 1025 mel bank took about
    /// 100 us a call on one thread, while the others waited).</summary>
    private static readonly ConditionalWeakTable<float[], (int Lo, int Hi)[]> SupportCache = new();

    /// <summary>For each row of a [rows, cols] matrix, the range [lo, hi) of columns outside which it is zero; cached
    /// per matrix (<see cref="SupportCache"/>), which callers treat as read-only.</summary>
    private static (int Lo, int Hi)[] Support(float[] matrix, int rows, int cols)
    {
        if (SupportCache.TryGetValue(matrix, out var cached) && cached.Length == rows) return cached;
        var support = ScanSupport(matrix, rows, cols);
        SupportCache.AddOrUpdate(matrix, support);
        return support;
    }

    private static (int Lo, int Hi)[] ScanSupport(float[] matrix, int rows, int cols)
    {
        var result = new (int, int)[rows];
        for (var r = 0; r < rows; r++)
        {
            int lo = 0, hi = cols;
            while (lo < cols && matrix[r * cols + lo] == 0f) lo++;
            while (hi > lo && matrix[r * cols + hi - 1] == 0f) hi--;
            result[r] = (lo, hi);
        }
        return result;
    }

    /// <summary>out[r, t] = rowScale[r] * sum_{k in support(r)} w[r, k] x[k, t] for every clip:
    /// w [rows, inner], x [batch, inner, frames], out [batch, rows, frames]. Vectorised over frames; the work is split
    /// over (clip, frame block) pairs (<see cref="FrameSegments"/>), so a batch of fewer clips than threads (W2's two
    /// 30 s tracks) still keeps every thread busy. Each element's sum runs in the same order whatever the split.</summary>
    private void BandedGemm(float[] w, int rows, int inner, ManagedTensor x, ManagedTensor y, int frames)
    {
        var support = Support(w, rows, inner);
        var batch = x.Shape[0];
        var (segments, length) = FrameSegments(batch, frames);
        ForRanges(batch * segments, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (u0, u1) =>
        {
            var src = x.Span;
            var dst = y.Span;
            for (var u = u0; u < u1; u++)
            {
                int c = u / segments, t0 = (u % segments) * length, t1 = Math.Min(frames, t0 + length);
                if (t1 <= t0) continue;
                BandedRows(w, support, rows, inner, src.Slice(c * inner * frames, inner * frames), dst.Slice(c * rows * frames, rows * frames), frames, t0, t1);
            }
        });
    }

    /// <summary>Frames [t0, t1) of one clip's out[r, t] = sum_{k in support(r)} w[r, k] x[k, t] (x: [inner, frames],
    /// out: [rows, frames]), each sum a chain of fused multiply-adds in increasing k, whatever the frame range.</summary>
    private static void BandedRows(float[] w, (int Lo, int Hi)[] support, int rows, int inner, ReadOnlySpan<float> x, Span<float> output,
        int frames, int t0, int t1) =>
        BandedRows(w, support, rows, inner, x, frames, t0, output, frames, t0, t1);

    /// <summary>Frames [t0, t1) of one clip's out[r, t] = sum_{k in support(r)} w[r, k] x[k, t], where x's row k starts
    /// at k * <paramref name="xStride"/> and frame t0 is its column <paramref name="xStart"/> (a frame block of the
    /// spectrogram: stride the block's width, start 0), out: [rows, frames]. Each sum is the same chain of fused
    /// multiply-adds in increasing k as the whole-clip form, so the values do not depend on the layout of x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BandedRows(float[] w, (int Lo, int Hi)[] support, int rows, int inner, ReadOnlySpan<float> x, int xStride,
        int xStart, Span<float> output, int frames, int t0, int t1)
    {
        for (var r = 0; r < rows; r++)
        {
            var o = output.Slice(r * frames + t0, t1 - t0);
            o.Clear();
            var (lo, hi) = support[r];
            for (var k = lo; k < hi; k++)
                Axpy(w[r * inner + k], x.Slice(k * xStride + xStart, t1 - t0), o);
        }
    }

    /// <summary>
    /// How a per-clip pass over <paramref name="length"/> values per clip is split for the engine's threads: one
    /// segment per clip while the batch alone gives every thread at least four clips, else enough segments per clip
    /// for about four work items per thread, each a multiple of 8 values long (so SIMD and scalar tails fall where
    /// they fall unsplit) and at least 256 values. Returns the segments per clip and the segment length.
    /// </summary>
    private (int Segments, int Length) FrameSegments(int batch, int length)
    {
        var threads = _engine.MaxThreads;
        if (threads <= 1 || batch >= 4 * threads || length <= 256) return (1, Math.Max(length, 1));
        var wanted = (4 * threads + batch - 1) / batch;
        var segment = Math.Max(256, ((length + wanted - 1) / wanted + 7) / 8 * 8);
        return ((length + segment - 1) / segment, segment);
    }

    /// <summary>y += a x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        var av = Vector256.Create(a);
        var i = 0;
        ref var xr = ref Unsafe.AsRef(in x[0]);
        ref var yr = ref y[0];
        for (; i + 8 <= y.Length; i += 8)
            Vector256.FusedMultiplyAdd(av, Vector256.LoadUnsafe(ref xr, (nuint)i), Vector256.LoadUnsafe(ref yr, (nuint)i))
                .StoreUnsafe(ref yr, (nuint)i);
        for (; i < y.Length; i++) y[i] = MathF.FusedMultiplyAdd(a, x[i], y[i]);
    }

    public void Mel(MelConfig config, int nFft, Tensor spectrogram, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(config);
        var s = Check(spectrogram, nameof(spectrogram), 3);
        var y = Check(output, nameof(output), 3);
        int batch = s.Shape[0], bins = nFft / 2 + 1, frames = s.Shape[2];
        s.RequireShape(nameof(spectrogram), batch, bins, frames);
        y.RequireShape(nameof(output), batch, config.NMels, frames);
        BandedGemm(Filters.Mel(config, nFft), config.NMels, bins, s, y, frames);
    }

    public void PowerToDb(DbConfig config, Tensor input, Tensor output) => ToDb(config, input, output, 10f, false);

    public void AmplitudeToDb(DbConfig config, Tensor input, Tensor output) => ToDb(config, input, output, 20f, true);

    private void ToDb(DbConfig config, Tensor input, Tensor output, float factor, bool amplitude)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(input);
        var x = ManagedEngine.Expect(input, nameof(input));
        var y = ManagedEngine.Expect(output, nameof(output));
        y.RequireShape(nameof(output), x.Shape);
        var (amin, scale, offset) = DbConstants(config, factor);
        if (x.Rank == 0 || x.Length == 0) return;
        var batch = x.Shape[0];
        var row = (int)(x.Length / batch);
        // Split each clip's values into segments when the batch alone would leave threads idle: the first pass writes
        // the dB values and each segment's maximum, the second clamps each clip at its maximum minus top_db.
        var (segments, length) = FrameSegments(batch, row);
        var maxima = new float[batch * segments];
        ForRanges(batch * segments, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (u0, u1) =>
        {
            for (var u = u0; u < u1; u++)
            {
                int c = u / segments, start = (u % segments) * length, end = Math.Min(row, start + length);
                maxima[u] = float.NegativeInfinity;
                if (end <= start) continue;
                var src = x.Span.Slice(c * row + start, end - start);
                var dst = y.Span.Slice(c * row + start, end - start);
                maxima[u] = ToDbSegment(src, dst, amplitude, amin, scale, offset, factor);
                // Unsplit, the clip is clamped while its values are still in cache.
                if (segments == 1 && config.TopDb is { } clipTop) ClampBelow(dst, maxima[u] - (float)clipTop);
            }
        });
        if (config.TopDb is not { } top || segments == 1) return;
        ForRanges(batch * segments, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (u0, u1) =>
        {
            for (var u = u0; u < u1; u++)
            {
                int c = u / segments, start = (u % segments) * length, end = Math.Min(row, start + length);
                if (end <= start) continue;
                var max = float.NegativeInfinity;
                for (var j = 0; j < segments; j++) max = Math.Max(max, maxima[c * segments + j]);
                ClampBelow(y.Span.Slice(c * row + start, end - start), max - (float)top);
            }
        });
    }

    /// <summary>Checks amin and top_db and returns ToDbSegment's constants: amin as float, factor log10(2) (the SIMD
    /// path's scale of log2) and factor log10(max(amin, |ref|)).</summary>
    private static (float Amin, float Scale, float Offset) DbConstants(DbConfig config, float factor)
    {
        if (!(config.Amin > 0)) throw new ArgumentOutOfRangeException(nameof(config), $"amin must be positive, was {config.Amin}.");
        if (config.TopDb is < 0) throw new ArgumentOutOfRangeException(nameof(config), $"top_db must be non-negative, was {config.TopDb}.");
        return ((float)config.Amin, factor * (float)Math.Log10(2.0), (float)(factor * Math.Log10(Math.Max(config.Amin, Math.Abs(config.Ref)))));
    }

    /// <summary>dst[i] = max(dst[i], floor).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ClampBelow(Span<float> dst, float floor)
    {
        var floorV = Vector256.Create(floor);
        ref var dr = ref dst[0];
        var i = 0;
        for (; i + 8 <= dst.Length; i += 8)
            Vector256.Max(Vector256.LoadUnsafe(ref dr, (nuint)i), floorV).StoreUnsafe(ref dr, (nuint)i);
        for (; i < dst.Length; i++) dst[i] = Math.Max(dst[i], floor);
    }

    /// <summary>dst = factor log10(max(|src| or src, amin)) - offset (SIMD through log2 times scale, the tail in
    /// scalar); returns the largest value written.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float ToDbSegment(ReadOnlySpan<float> src, Span<float> dst, bool amplitude, float amin, float scale, float offset, float factor)
    {
        var maxV = Vector256.Create(float.NegativeInfinity);
        var aminV = Vector256.Create(amin);
        var scaleV = Vector256.Create(scale);
        var offV = Vector256.Create(offset);
        var i = 0;
        ref var sr = ref Unsafe.AsRef(in src[0]);
        ref var dr = ref dst[0];
        for (; i + 8 <= src.Length; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref sr, (nuint)i);
            if (amplitude) v = Vector256.Abs(v);
            var d = Vector256.FusedMultiplyAdd(Vector256.Log2(Vector256.Max(v, aminV)), scaleV, -offV);
            d.StoreUnsafe(ref dr, (nuint)i);
            maxV = Vector256.Max(maxV, d);
        }
        var max = float.NegativeInfinity;
        for (var j = 0; j < 8; j++) max = Math.Max(max, maxV[j]);
        for (; i < src.Length; i++)
        {
            var v = amplitude ? Math.Abs(src[i]) : src[i];
            var d = (float)(factor * Math.Log10(Math.Max(v, amin))) - offset;
            dst[i] = d;
            max = Math.Max(max, d);
        }
        return max;
    }

    public void Mfcc(int nMfcc, float lifter, Tensor logMel, Tensor output)
    {
        var x = Check(logMel, nameof(logMel), 3);
        var y = Check(output, nameof(output), 3);
        int batch = x.Shape[0], nMels = x.Shape[1], frames = x.Shape[2];
        y.RequireShape(nameof(output), batch, nMfcc, frames);
        BandedGemm(DctMatrix(nMfcc, nMels, lifter), nMfcc, nMels, x, y, frames);
    }

    /// <summary>The DCT-II ortho matrix [nMfcc, nMels] with each row scaled by librosa's sinusoidal lifter when
    /// lifter &gt; 0.</summary>
    private static float[] DctMatrix(int nMfcc, int nMels, float lifter)
    {
        if (lifter < 0) throw new ArgumentOutOfRangeException(nameof(lifter), $"lifter must be non-negative, was {lifter}.");
        var dct = Filters.DctOrtho(nMfcc, nMels);
        if (lifter > 0)
        {
            dct = (float[])dct.Clone();
            for (var k = 0; k < nMfcc; k++)
            {
                var lift = (float)(1.0 + lifter / 2.0 * Math.Sin(Math.PI * (k + 1) / lifter));
                for (var m = 0; m < nMels; m++) dct[k * nMels + m] *= lift;
            }
        }
        return dct;
    }

    public void Delta(int width, int order, Tensor input, Tensor output)
    {
        var x = Check(input, nameof(input), 3);
        var y = Check(output, nameof(output), 3);
        y.RequireShape(nameof(output), x.Shape);
        var weights = Filters.DeltaWeights(width, order);
        int rows = x.Shape[0] * x.Shape[1], frames = x.Shape[2], half = width / 2;
        if (frames < width)
            throw new ArgumentException($"input: delta with width={width} needs at least {width} frames, had {frames}.", nameof(input));
        ForRanges(rows, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (r0, r1) =>
        {
            var row = Workspace.Current.Floats(0, frames);
            var centre = weights.AsSpan(half * width, width);
            for (var r = r0; r < r1; r++)
            {
                x.Span.Slice(r * frames, frames).CopyTo(row);
                var o = y.Span.Slice(r * frames, frames);
                // Interior: the centred window.
                var interior = o[half..(frames - half)];
                interior.Clear();
                for (var j = 0; j < width; j++) Axpy(centre[j], row.Slice(j, interior.Length), interior);
                // Edges: the first and last windows' fits evaluated off-centre.
                for (var t = 0; t < half; t++)
                {
                    float a = 0f, b = 0f;
                    var wa = weights.AsSpan(t * width, width);
                    var wb = weights.AsSpan((width - half + t) * width, width);
                    for (var j = 0; j < width; j++)
                    {
                        a += wa[j] * row[j];
                        b += wb[j] * row[frames - width + j];
                    }
                    o[t] = a;
                    o[frames - half + t] = b;
                }
            }
        });
    }

    // ---------------------------------------------------------------- spectral features

    private static (ManagedTensor S, ManagedTensor Out, int Bins, int Frames) CheckSpectral(Tensor s, Tensor output, int? nFft)
    {
        var x = Check(s, nameof(s), 3);
        var y = Check(output, nameof(output), 2);
        int bins = x.Shape[1], frames = x.Shape[2];
        if (nFft is { } n && bins != n / 2 + 1)
            throw new ArgumentException($"s: expected {n / 2 + 1} bins for n_fft={n}, was {bins} (shape [{string.Join(", ", x.Shape)}]).", nameof(s));
        y.RequireShape(nameof(output), x.Shape[0], frames);
        return (x, y, bins, frames);
    }

    /// <summary>Per-frame sums over bins: total[t] = sum_k S[k, t] and weighted[t] = sum_k f_k S[k, t], in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Moments(ReadOnlySpan<float> s, int bins, int frames, double binHz, Span<double> total, Span<double> weighted)
    {
        total.Clear();
        weighted.Clear();
        for (var k = 0; k < bins; k++)
        {
            var row = s.Slice(k * frames, frames);
            var f = k * binHz;
            for (var t = 0; t < frames; t++)
            {
                total[t] += row[t];
                weighted[t] += f * row[t];
            }
        }
    }

    public void SpectralCentroid(int sampleRate, int nFft, Tensor s, Tensor output)
    {
        var (x, y, bins, frames) = CheckSpectral(s, output, nFft);
        var binHz = (double)sampleRate / nFft;
        ForRanges(x.Shape[0], [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var ws = Workspace.Current;
            var total = ws.Doubles(0, frames);
            var weighted = ws.Doubles(1, frames);
            for (var c = c0; c < c1; c++)
            {
                Moments(x.Span.Slice(c * bins * frames, bins * frames), bins, frames, binHz, total, weighted);
                var o = y.Span.Slice(c * frames, frames);
                for (var t = 0; t < frames; t++) o[t] = (float)(total[t] < Tiny ? weighted[t] : weighted[t] / total[t]);
            }
        });
    }

    public void SpectralBandwidth(int sampleRate, int nFft, float p, Tensor s, Tensor output)
    {
        var (x, y, bins, frames) = CheckSpectral(s, output, nFft);
        if (!(p > 0)) throw new ArgumentOutOfRangeException(nameof(p), $"p must be positive, was {p}.");
        var binHz = (double)sampleRate / nFft;
        ForRanges(x.Shape[0], [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var ws = Workspace.Current;
            var total = ws.Doubles(0, frames);
            var weighted = ws.Doubles(1, frames);
            var dev = ws.Doubles(2, frames);
            for (var c = c0; c < c1; c++)
            {
                var spec = x.Span.Slice(c * bins * frames, bins * frames);
                Moments(spec, bins, frames, binHz, total, weighted);
                for (var t = 0; t < frames; t++)
                {
                    var norm = total[t] < Tiny ? 1.0 : total[t];
                    weighted[t] /= norm; // centroid
                    total[t] = norm;
                }
                dev.Clear();
                for (var k = 0; k < bins; k++)
                {
                    var row = spec.Slice(k * frames, frames);
                    var f = k * binHz;
                    for (var t = 0; t < frames; t++)
                    {
                        var d = Math.Abs(f - weighted[t]);
                        var dp = p == 2f ? d * d : p == 1f ? d : Math.Pow(d, p);
                        dev[t] += row[t] / total[t] * dp;
                    }
                }
                var o = y.Span.Slice(c * frames, frames);
                for (var t = 0; t < frames; t++) o[t] = (float)(p == 2f ? Math.Sqrt(dev[t]) : Math.Pow(dev[t], 1.0 / p));
            }
        });
    }

    public void SpectralRolloff(int sampleRate, int nFft, float rollPercent, Tensor s, Tensor output)
    {
        var (x, y, bins, frames) = CheckSpectral(s, output, nFft);
        if (!(rollPercent > 0 && rollPercent < 1))
            throw new ArgumentOutOfRangeException(nameof(rollPercent), $"roll_percent must lie strictly between 0 and 1, was {rollPercent}.");
        var binHz = (double)sampleRate / nFft;
        ForRanges(x.Shape[0], [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var ws = Workspace.Current;
            var cumulative = ws.Floats(0, frames);
            var threshold = ws.Floats(1, frames);
            var found = ws.Floats(2, frames);
            for (var c = c0; c < c1; c++)
            {
                var spec = x.Span.Slice(c * bins * frames, bins * frames);
                // librosa sums in float32 (numpy.cumsum of the float32 spectrogram); mirror it.
                threshold.Clear();
                for (var k = 0; k < bins; k++)
                {
                    var row = spec.Slice(k * frames, frames);
                    for (var t = 0; t < frames; t++) threshold[t] += row[t];
                }
                for (var t = 0; t < frames; t++) threshold[t] *= rollPercent;
                cumulative.Clear();
                found.Fill(-1f);
                for (var k = 0; k < bins; k++)
                {
                    var row = spec.Slice(k * frames, frames);
                    for (var t = 0; t < frames; t++)
                    {
                        cumulative[t] += row[t];
                        if (found[t] < 0 && cumulative[t] >= threshold[t]) found[t] = (float)(k * binHz);
                    }
                }
                var o = y.Span.Slice(c * frames, frames);
                for (var t = 0; t < frames; t++) o[t] = found[t] < 0 ? (float)((bins - 1) * binHz) : found[t];
            }
        });
    }

    public void SpectralFlatness(float amin, float power, Tensor s, Tensor output)
    {
        var (x, y, bins, frames) = CheckSpectral(s, output, null);
        if (!(amin > 0)) throw new ArgumentOutOfRangeException(nameof(amin), $"amin must be positive, was {amin}.");
        if (!(power > 0)) throw new ArgumentOutOfRangeException(nameof(power), $"power must be positive, was {power}.");
        ForRanges(x.Shape[0], [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var ws = Workspace.Current;
            var logSum = ws.Doubles(0, frames);
            var sum = ws.Doubles(1, frames);
            for (var c = c0; c < c1; c++)
            {
                var spec = x.Span.Slice(c * bins * frames, bins * frames);
                logSum.Clear();
                sum.Clear();
                for (var k = 0; k < bins; k++)
                {
                    var row = spec.Slice(k * frames, frames);
                    for (var t = 0; t < frames; t++)
                    {
                        var v = power == 2f ? (double)row[t] * row[t] : Math.Pow(row[t], power);
                        v = Math.Max(amin, v);
                        logSum[t] += Math.Log(v);
                        sum[t] += v;
                    }
                }
                var o = y.Span.Slice(c * frames, frames);
                for (var t = 0; t < frames; t++) o[t] = (float)(Math.Exp(logSum[t] / bins) / (sum[t] / bins));
            }
        });
    }

    private static int FramedCount(int samples, int frameLength, int hopLength, bool center, string name)
    {
        if (frameLength < 1) throw new ArgumentOutOfRangeException(nameof(frameLength), $"frame_length must be positive, was {frameLength}.");
        if (hopLength < 1) throw new ArgumentOutOfRangeException(nameof(hopLength), $"hop_length must be positive, was {hopLength}.");
        var padded = center ? samples + 2 * (frameLength / 2) : samples;
        if (padded < frameLength)
            throw new ArgumentException($"{name}: frame_length={frameLength} is longer than the (padded) signal of {padded} samples.", name);
        return 1 + (padded - frameLength) / hopLength;
    }

    public void ZeroCrossingRate(int frameLength, int hopLength, bool center, Tensor clips, Tensor output)
    {
        var x = Check(clips, nameof(clips), 2);
        var y = Check(output, nameof(output), 2);
        int batch = x.Shape[0], samples = x.Shape[1];
        var frames = FramedCount(samples, frameLength, hopLength, center, nameof(clips));
        y.RequireShape(nameof(output), batch, frames);
        var pad = center ? frameLength / 2 : 0;
        var total = samples + 2 * pad;
        ForRanges(batch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var ws = Workspace.Current;
            var padded = ws.Floats(0, total);
            var crossings = ws.Floats(1, total + 1); // prefix counts of sign changes
            for (var c = c0; c < c1; c++)
            {
                FillPadded(x.Span.Slice(c * samples, samples), pad, PadMode.Edge, 0, padded);
                crossings[0] = 0f;
                crossings[1] = 0f;
                var previous = SignBit(padded[0]);
                for (var i = 1; i < total; i++)
                {
                    var sign = SignBit(padded[i]);
                    crossings[i + 1] = crossings[i] + (sign != previous ? 1f : 0f);
                    previous = sign;
                }
                var o = y.Span.Slice(c * frames, frames);
                for (var t = 0; t < frames; t++)
                {
                    var s = t * hopLength;
                    // Changes between samples s..s+L-1 of the frame: prefix[s + L] - prefix[s + 1].
                    o[t] = (crossings[s + frameLength] - crossings[s + 1]) / frameLength;
                }
            }
        });

        static bool SignBit(float v) => Math.Abs((double)v) > 1e-10 && v < 0;
    }

    public void Rms(int frameLength, int hopLength, bool center, PadMode padMode, Tensor clips, Tensor output)
    {
        var x = Check(clips, nameof(clips), 2);
        var y = Check(output, nameof(output), 2);
        int batch = x.Shape[0], samples = x.Shape[1];
        var frames = FramedCount(samples, frameLength, hopLength, center, nameof(clips));
        y.RequireShape(nameof(output), batch, frames);
        var pad = center ? frameLength / 2 : 0;
        var total = samples + 2 * pad;
        ForRanges(batch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var padded = Workspace.Current.Floats(0, total);
            for (var c = c0; c < c1; c++)
            {
                FillPadded(x.Span.Slice(c * samples, samples), pad, padMode, 0, padded);
                var o = y.Span.Slice(c * frames, frames);
                for (var t = 0; t < frames; t++)
                {
                    var frame = padded.Slice(t * hopLength, frameLength);
                    var sum = 0.0;
                    foreach (var v in frame) sum += (double)v * v;
                    o[t] = (float)Math.Sqrt(sum / frameLength);
                }
            }
        });
    }

    public void Chroma(int sampleRate, int nFft, int nChroma, float tuning, Tensor s, Tensor output)
    {
        var x = Check(s, nameof(s), 3);
        var y = Check(output, nameof(output), 3);
        int batch = x.Shape[0], bins = nFft / 2 + 1, frames = x.Shape[2];
        x.RequireShape(nameof(s), batch, bins, frames);
        y.RequireShape(nameof(output), batch, nChroma, frames);
        BandedGemm(Filters.Chroma(sampleRate, nFft, nChroma, tuning), nChroma, bins, x, y, frames);
        ForRanges(batch, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (c0, c1) =>
        {
            var max = Workspace.Current.Floats(0, frames);
            for (var c = c0; c < c1; c++)
            {
                var o = y.Span.Slice(c * nChroma * frames, nChroma * frames);
                max.Clear();
                for (var r = 0; r < nChroma; r++)
                    for (var t = 0; t < frames; t++) max[t] = Math.Max(max[t], Math.Abs(o[r * frames + t]));
                for (var t = 0; t < frames; t++) max[t] = max[t] < Tiny ? 1f : 1f / max[t];
                for (var r = 0; r < nChroma; r++)
                    for (var t = 0; t < frames; t++) o[r * frames + t] *= max[t];
            }
        });
    }
}
