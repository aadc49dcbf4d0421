using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// Max pooling over 2 x 2 windows with stride 2 (the common case of <see cref="ManagedNn.Pool2DForward"/> and
/// <see cref="ManagedNn.Pool2DBackward"/>), one output row at a time, eight outputs per AVX2 step: the two input rows
/// are split into the left and right cells of each window with in-lane shuffles, so outputs are processed in the
/// lane order [0, 1, 4, 5, 2, 3, 6, 7] and the gradient is interleaved back with unpacks. Results equal the scalar
/// loop's bit for bit: the maximum (+0 above -0, as MathF.Max), and the gradient routed to the first maximal cell
/// (row-major) of each window. A block whose
/// window holds a NaN falls back to the scalar loop, whose MathF.Max propagates it.
/// </summary>
internal static unsafe class NnPool2x2
{
    /// <summary>y[ow] = max of the window at (2 ow, 2 ow + 1) of rows r0 and r1, ow in [0, outWidth).</summary>
    internal static void ForwardRow(float* r0, float* r1, float* y, int outWidth)
    {
        int ow = 0;
        if (Avx2.IsSupported)
        {
            for (; ow + 8 <= outWidth; ow += 8)
            {
                Split(r0 + 2 * ow, out var a, out var b);
                Split(r1 + 2 * ow, out var c, out var d);
                if (HasNaN(a, b, c, d)) break;
                var m = Max(Max(a, b), Max(c, d));
                Vector256.Store(FromLaneOrder(m), y + ow);
            }
        }
        for (; ow < outWidth; ow++)
            y[ow] = MathF.Max(MathF.Max(r0[2 * ow], r0[2 * ow + 1]), MathF.Max(r1[2 * ow], r1[2 * ow + 1]));
    }

    /// <summary>Routes dy[ow] to the first maximal cell of each window and writes zeros to the other three cells
    /// (d0 and d1 are the gradient rows of r0 and r1).</summary>
    internal static void BackwardRow(float* r0, float* r1, float* dy, float* d0, float* d1, int outWidth)
    {
        int ow = 0;
        if (Avx2.IsSupported)
        {
            for (; ow + 8 <= outWidth; ow += 8)
            {
                Split(r0 + 2 * ow, out var a, out var b);
                Split(r1 + 2 * ow, out var c, out var d);
                if (HasNaN(a, b, c, d)) break;
                var m = Avx.Max(Avx.Max(a, b), Avx.Max(c, d));
                var g = ToLaneOrder(Vector256.Load(dy + ow));
                var ea = Avx.CompareEqual(a, m);
                var eb = Avx.AndNot(ea, Avx.CompareEqual(b, m));
                var eab = Avx.Or(ea, eb);
                var ec = Avx.AndNot(eab, Avx.CompareEqual(c, m));
                var ed = Avx.AndNot(Avx.Or(eab, ec), Vector256<float>.AllBitsSet);
                Merge(Avx.And(g, ea), Avx.And(g, eb), d0 + 2 * ow);
                Merge(Avx.And(g, ec), Avx.And(g, ed), d1 + 2 * ow);
            }
        }
        for (; ow < outWidth; ow++)
        {
            int i = 2 * ow;
            float a = r0[i], b = r0[i + 1], c = r1[i], d = r1[i + 1];
            float m = MathF.Max(MathF.Max(a, b), MathF.Max(c, d));
            int gBits = BitConverter.SingleToInt32Bits(dy[ow]);
            int ea = Mask(a == m), eb = Mask(b == m) & ~ea, ec = Mask(c == m) & ~(ea | eb), ed = ~(ea | eb | ec);
            d0[i] = BitConverter.Int32BitsToSingle(gBits & ea);
            d0[i + 1] = BitConverter.Int32BitsToSingle(gBits & eb);
            d1[i] = BitConverter.Int32BitsToSingle(gBits & ec);
            d1[i + 1] = BitConverter.Int32BitsToSingle(gBits & ed);
        }
    }

    /// <summary>All bits set when <paramref name="condition"/> holds, else 0 (without a branch).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Mask(bool condition) => -(int)Unsafe.As<bool, byte>(ref condition);

    /// <summary>Left (even) and right (odd) cells of 8 windows from 16 floats, in lane order [0, 1, 4, 5, 2, 3, 6, 7].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Split(float* src, out Vector256<float> even, out Vector256<float> odd)
    {
        var lo = Vector256.Load(src);
        var hi = Vector256.Load(src + 8);
        even = Avx.Shuffle(lo, hi, 0x88);
        odd = Avx.Shuffle(lo, hi, 0xDD);
    }

    /// <summary>Writes 8 (left, right) pairs given in lane order back to 16 consecutive floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Merge(Vector256<float> left, Vector256<float> right, float* dst)
    {
        Vector256.Store(Avx.UnpackLow(left, right), dst);
        Vector256.Store(Avx.UnpackHigh(left, right), dst + 8);
    }

    /// <summary>Natural order [0..7] to lane order [0, 1, 4, 5, 2, 3, 6, 7] (and back: the permutation is its own inverse).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ToLaneOrder(Vector256<float> v) =>
        Avx2.Permute4x64(v.AsDouble(), 0xD8).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> FromLaneOrder(Vector256<float> v) => ToLaneOrder(v);

    /// <summary>MathF.Max for numbers: maxps returns its second operand for equal inputs, so +0 and -0 are resolved
    /// by a bitwise and (the positive zero wins, as in MathF.Max).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Max(Vector256<float> a, Vector256<float> b) =>
        Avx.BlendVariable(Avx.Max(a, b), Avx.And(a, b), Avx.CompareEqual(a, b));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool HasNaN(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d) =>
        Avx.MoveMask(Avx.Or(Avx.CompareUnordered(a, b), Avx.CompareUnordered(c, d))) != 0;
}
