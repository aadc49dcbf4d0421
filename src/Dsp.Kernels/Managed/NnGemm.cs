using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// Single-threaded blocked SGEMM for the managed engine (the Goto/BLIS scheme): op(B) is packed into KC x NR column
/// panels, op(A) (scaled by alpha) into KC x MR row panels, and a register-tile microkernel computes each MR x NR tile
/// with FMA: 8 x 32 (16 Vector512 accumulators) where AVX-512 is available, else 6 x 16 (12 Vector256 accumulators).
/// Packing transposes 8 x 8 blocks in registers where a panel's source runs along K (op(A) not transposed,
/// op(B) transposed: the convolution weight gradient). Packing buffers are thread-static and reused.
/// Each element of C is accumulated in the same order whatever the tile shape and whatever the tiling of the caller
/// (one FMA chain per K block of KC, the block sum then added to C), so results do not depend on the SIMD width or on
/// how a product is split across threads.
/// </summary>
internal static unsafe class NnGemm
{
    /// <summary>True when the 8 x 32 AVX-512 microkernel is used.</summary>
    internal static readonly bool Wide = Avx512F.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>Rows of a register tile (the unit callers split M by).</summary>
    internal static readonly int MR = Wide ? 8 : 6;

    /// <summary>Columns of a register tile (the unit callers split N by).</summary>
    internal static readonly int NR = Wide ? 32 : 16;

    /// <summary>Depth of one packed block: fixes the summation order of every element (do not tune per machine).</summary>
    private const int KC = 256;
    private static readonly int MC = Wide ? 128 : 120;
    private const int NC = 3072;

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>C[m, n] (row stride ldc) = alpha * op(A) * op(B) + beta * C. A(i, k) is a[i * lda + k], or
    /// a[k * lda + i] when transA; B(k, j) is b[k * ldb + j], or b[j * ldb + k] when transB.</summary>
    internal static void Gemm(int m, int n, int k, float alpha, float* a, int lda, bool transA,
        float* b, int ldb, bool transB, float beta, float* c, int ldc)
    {
        if (m <= 0 || n <= 0) return;
        bool empty = k <= 0 || alpha == 0f;
        // beta = 0 with a non-empty product: the first K block stores instead of adding, so C is never read.
        if (beta != 1f && (beta != 0f || empty))
        {
            for (int i = 0; i < m; i++)
            {
                var row = new Span<float>(c + (long)i * ldc, n);
                if (beta == 0f) row.Clear();
                else ScaleInPlace(row, beta);
            }
        }
        if (empty) return;

        int mrT = MR, nrT = NR, mcT = MC;
        var packA = t_packA ??= new float[MC * KC];
        var packB = t_packB ??= new float[KC * NC];
        fixed (float* pa = packA)
        fixed (float* pb = packB)
        {
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    PackB(b, ldb, transB, pc, jc, kc, nc, nrT, pb);
                    bool overwrite = beta == 0f && pc == 0;
                    for (int ic = 0; ic < m; ic += mcT)
                    {
                        int mc = Math.Min(mcT, m - ic);
                        PackA(a, lda, transA, ic, pc, mc, kc, alpha, mrT, pa);
                        for (int jr = 0; jr < nc; jr += nrT)
                        {
                            int nr = Math.Min(nrT, nc - jr);
                            float* bPanel = pb + (long)jr * kc;
                            for (int ir = 0; ir < mc; ir += mrT)
                            {
                                int mr = Math.Min(mrT, mc - ir);
                                float* cTile = c + (long)(ic + ir) * ldc + jc + jr;
                                if (Wide) Kernel8x32(kc, pa + (long)ir * kc, bPanel, cTile, ldc, mr, nr, overwrite);
                                else Kernel6x16(kc, pa + (long)ir * kc, bPanel, cTile, ldc, mr, nr, overwrite);
                            }
                        }
                    }
                }
            }
        }
    }

    private static void ScaleInPlace(Span<float> row, float factor)
    {
        for (int j = 0; j < row.Length; j++) row[j] *= factor;
    }

    /// <summary>Writes the 8 x 8 transpose of rows r[0..7] (8 floats each) to dst + t * stride, t = 0..7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8Store(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* dst, int stride)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x20), dst + stride);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x20), dst + 2 * stride);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x20), dst + 3 * stride);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x31), dst + 4 * stride);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x31), dst + 5 * stride);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x31), dst + 6 * stride);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x31), dst + 7 * stride);
    }

    /// <summary>dst[p * stride + r] = scale * src_r[p] for r = 0..7 and p in [0, kc), where src_r = src + r * ld
    /// (eight rows that run along K): 8 x 8 register transposes, a scalar tail.</summary>
    private static void TransposePack8(float* src, long ld, int kc, float scale, float* dst, int stride)
    {
        float* s0 = src, s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld, s4 = s3 + ld, s5 = s4 + ld, s6 = s5 + ld, s7 = s6 + ld;
        int p = 0;
        if (Avx.IsSupported)
        {
            var f = Vector256.Create(scale);
            for (; p + 8 <= kc; p += 8)
            {
                Transpose8x8Store(f * Vector256.Load(s0 + p), f * Vector256.Load(s1 + p), f * Vector256.Load(s2 + p), f * Vector256.Load(s3 + p),
                    f * Vector256.Load(s4 + p), f * Vector256.Load(s5 + p), f * Vector256.Load(s6 + p), f * Vector256.Load(s7 + p),
                    dst + (long)p * stride, stride);
            }
        }
        for (; p < kc; p++)
        {
            float* d = dst + (long)p * stride;
            d[0] = scale * s0[p]; d[1] = scale * s1[p]; d[2] = scale * s2[p]; d[3] = scale * s3[p];
            d[4] = scale * s4[p]; d[5] = scale * s5[p]; d[6] = scale * s6[p]; d[7] = scale * s7[p];
        }
    }

    private static void PackA(float* a, int lda, bool transA, int ic, int pc, int mc, int kc, float alpha, int mrT, float* pa)
    {
        for (int ir = 0; ir < mc; ir += mrT)
        {
            int mr = Math.Min(mrT, mc - ir);
            float* dst = pa + (long)ir * kc;
            if (transA)
            {
                if (mr == 8 && mrT == 8)
                {
                    var f = Vector256.Create(alpha);
                    for (int p = 0; p < kc; p++)
                        Vector256.Store(f * Vector256.Load(a + (long)(pc + p) * lda + ic + ir), dst + p * 8);
                    continue;
                }
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(pc + p) * lda + ic + ir;
                    float* d = dst + p * mrT;
                    int r = 0;
                    for (; r < mr; r++) d[r] = alpha * src[r];
                    for (; r < mrT; r++) d[r] = 0f;
                }
            }
            else if (mr == 8 && mrT == 8)
            {
                TransposePack8(a + (long)(ic + ir) * lda + pc, lda, kc, alpha, dst, 8);
            }
            else if (mr == 6 && mrT == 6)
            {
                float* s0 = a + (long)(ic + ir) * lda + pc;
                float* s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda, s4 = s3 + lda, s5 = s4 + lda;
                for (int p = 0; p < kc; p++)
                {
                    float* d = dst + p * 6;
                    d[0] = alpha * s0[p]; d[1] = alpha * s1[p]; d[2] = alpha * s2[p];
                    d[3] = alpha * s3[p]; d[4] = alpha * s4[p]; d[5] = alpha * s5[p];
                }
            }
            else
            {
                for (int r = 0; r < mrT; r++)
                {
                    if (r < mr)
                    {
                        float* src = a + (long)(ic + ir + r) * lda + pc;
                        for (int p = 0; p < kc; p++) dst[p * mrT + r] = alpha * src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) dst[p * mrT + r] = 0f;
                    }
                }
            }
        }
    }

    private static void PackB(float* b, int ldb, bool transB, int pc, int jc, int kc, int nc, int nrT, float* pb)
    {
        for (int jr = 0; jr < nc; jr += nrT)
        {
            int nr = Math.Min(nrT, nc - jr);
            float* dst = pb + (long)jr * kc;
            if (nr == nrT && !transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(pc + p) * ldb + jc + jr;
                    float* d = dst + p * nrT;
                    for (int j = 0; j < nrT; j += 8) Vector256.Store(Vector256.Load(src + j), d + j);
                }
            }
            else if (nr == nrT)
            {
                // op(B) transposed: each of the panel's columns is a row of b running along K.
                for (int j = 0; j < nrT; j += 8)
                    TransposePack8(b + (long)(jc + jr + j) * ldb + pc, ldb, kc, 1f, dst + j, nrT);
            }
            else if (!transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(pc + p) * ldb + jc + jr;
                    float* d = dst + p * nrT;
                    int j = 0;
                    for (; j < nr; j++) d[j] = src[j];
                    for (; j < nrT; j++) d[j] = 0f;
                }
            }
            else
            {
                for (int j = 0; j < nrT; j++)
                {
                    if (j < nr)
                    {
                        float* src = b + (long)(jc + jr + j) * ldb + pc;
                        for (int p = 0; p < kc; p++) dst[p * nrT + j] = src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) dst[p * nrT + j] = 0f;
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Mad(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : c + a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Mad(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Avx512F.FusedMultiplyAdd(a, b, c);

    /// <summary>8 x 32 tile (AVX-512): C[0..mr, 0..nr] (+)= sum over p of Apanel[p, r] * Bpanel[p, j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(int kc, float* pa, float* pb, float* c, int ldc, int mr, int nr, bool overwrite)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(pb);
            var b1 = Vector512.Load(pb + 16);
            var a0 = Vector512.Create(pa[0]);
            c00 = Mad(a0, b0, c00); c01 = Mad(a0, b1, c01);
            var a1 = Vector512.Create(pa[1]);
            c10 = Mad(a1, b0, c10); c11 = Mad(a1, b1, c11);
            var a2 = Vector512.Create(pa[2]);
            c20 = Mad(a2, b0, c20); c21 = Mad(a2, b1, c21);
            var a3 = Vector512.Create(pa[3]);
            c30 = Mad(a3, b0, c30); c31 = Mad(a3, b1, c31);
            var a4 = Vector512.Create(pa[4]);
            c40 = Mad(a4, b0, c40); c41 = Mad(a4, b1, c41);
            var a5 = Vector512.Create(pa[5]);
            c50 = Mad(a5, b0, c50); c51 = Mad(a5, b1, c51);
            var a6 = Vector512.Create(pa[6]);
            c60 = Mad(a6, b0, c60); c61 = Mad(a6, b1, c61);
            var a7 = Vector512.Create(pa[7]);
            c70 = Mad(a7, b0, c70); c71 = Mad(a7, b1, c71);
            pa += 8;
            pb += 32;
        }
        if (mr == 8 && nr == 32)
        {
            if (overwrite)
            {
                Store(c, c00, c01); Store(c + ldc, c10, c11); Store(c + 2 * ldc, c20, c21); Store(c + 3 * ldc, c30, c31);
                Store(c + 4 * ldc, c40, c41); Store(c + 5 * ldc, c50, c51); Store(c + 6 * ldc, c60, c61); Store(c + 7 * ldc, c70, c71);
            }
            else
            {
                AddRow(c, c00, c01); AddRow(c + ldc, c10, c11); AddRow(c + 2 * ldc, c20, c21); AddRow(c + 3 * ldc, c30, c31);
                AddRow(c + 4 * ldc, c40, c41); AddRow(c + 5 * ldc, c50, c51); AddRow(c + 6 * ldc, c60, c61); AddRow(c + 7 * ldc, c70, c71);
            }
            return;
        }
        float* tile = stackalloc float[8 * 32];
        Store(tile, c00, c01); Store(tile + 32, c10, c11); Store(tile + 64, c20, c21); Store(tile + 96, c30, c31);
        Store(tile + 128, c40, c41); Store(tile + 160, c50, c51); Store(tile + 192, c60, c61); Store(tile + 224, c70, c71);
        StoreEdge(tile, 32, c, ldc, mr, nr, overwrite);
    }

    /// <summary>6 x 16 tile (AVX2): C[0..mr, 0..nr] (+)= sum over p of Apanel[p, r] * Bpanel[p, j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* pa, float* pb, float* c, int ldc, int mr, int nr, bool overwrite)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(pb);
            var b1 = Vector256.Load(pb + 8);
            var a0 = Vector256.Create(pa[0]);
            c00 = Mad(a0, b0, c00); c01 = Mad(a0, b1, c01);
            var a1 = Vector256.Create(pa[1]);
            c10 = Mad(a1, b0, c10); c11 = Mad(a1, b1, c11);
            var a2 = Vector256.Create(pa[2]);
            c20 = Mad(a2, b0, c20); c21 = Mad(a2, b1, c21);
            var a3 = Vector256.Create(pa[3]);
            c30 = Mad(a3, b0, c30); c31 = Mad(a3, b1, c31);
            var a4 = Vector256.Create(pa[4]);
            c40 = Mad(a4, b0, c40); c41 = Mad(a4, b1, c41);
            var a5 = Vector256.Create(pa[5]);
            c50 = Mad(a5, b0, c50); c51 = Mad(a5, b1, c51);
            pa += 6;
            pb += 16;
        }
        if (mr == 6 && nr == 16 && overwrite)
        {
            Vector256.Store(c00, c); Vector256.Store(c01, c + 8);
            Vector256.Store(c10, c + ldc); Vector256.Store(c11, c + ldc + 8);
            Vector256.Store(c20, c + 2 * ldc); Vector256.Store(c21, c + 2 * ldc + 8);
            Vector256.Store(c30, c + 3 * ldc); Vector256.Store(c31, c + 3 * ldc + 8);
            Vector256.Store(c40, c + 4 * ldc); Vector256.Store(c41, c + 4 * ldc + 8);
            Vector256.Store(c50, c + 5 * ldc); Vector256.Store(c51, c + 5 * ldc + 8);
            return;
        }
        if (mr == 6 && nr == 16)
        {
            AddRow(c, c00, c01);
            AddRow(c + ldc, c10, c11);
            AddRow(c + 2 * ldc, c20, c21);
            AddRow(c + 3 * ldc, c30, c31);
            AddRow(c + 4 * ldc, c40, c41);
            AddRow(c + 5 * ldc, c50, c51);
            return;
        }
        float* tile = stackalloc float[6 * 16];
        Vector256.Store(c00, tile); Vector256.Store(c01, tile + 8);
        Vector256.Store(c10, tile + 16); Vector256.Store(c11, tile + 24);
        Vector256.Store(c20, tile + 32); Vector256.Store(c21, tile + 40);
        Vector256.Store(c30, tile + 48); Vector256.Store(c31, tile + 56);
        Vector256.Store(c40, tile + 64); Vector256.Store(c41, tile + 72);
        Vector256.Store(c50, tile + 80); Vector256.Store(c51, tile + 88);
        StoreEdge(tile, 16, c, ldc, mr, nr, overwrite);
    }

    /// <summary>Stores (or adds) the leading mr x nr corner of a tile held in memory with row stride tileStride.</summary>
    private static void StoreEdge(float* tile, int tileStride, float* c, int ldc, int mr, int nr, bool overwrite)
    {
        for (int r = 0; r < mr; r++)
        {
            float* row = c + (long)r * ldc;
            float* t = tile + r * tileStride;
            if (overwrite)
                for (int j = 0; j < nr; j++) row[j] = t[j];
            else
                for (int j = 0; j < nr; j++) row[j] += t[j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* row, Vector512<float> v0, Vector512<float> v1)
    {
        Vector512.Store(v0, row);
        Vector512.Store(v1, row + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* row, Vector512<float> v0, Vector512<float> v1)
    {
        Vector512.Store(Vector512.Load(row) + v0, row);
        Vector512.Store(Vector512.Load(row + 16) + v1, row + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* row, Vector256<float> v0, Vector256<float> v1)
    {
        Vector256.Store(Vector256.Load(row) + v0, row);
        Vector256.Store(Vector256.Load(row + 8) + v1, row + 8);
    }
}
