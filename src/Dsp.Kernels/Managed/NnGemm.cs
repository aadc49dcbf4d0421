using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// Single-threaded blocked SGEMM for the managed engine (the Goto/BLIS scheme): op(B) is packed into KC x 16 column
/// panels, op(A) (scaled by alpha) into KC x 6 row panels, and a 6 x 16 register-tile microkernel (12 Vector256
/// accumulators, FMA) computes each tile. Packing buffers are thread-static and reused. Each element of C is
/// accumulated in the same order whatever the tiling of the caller, so results do not depend on how a product is
/// split across threads.
/// </summary>
internal static unsafe class NnGemm
{
    internal const int MR = 6;
    internal const int NR = 16;
    private const int KC = 256;
    private const int MC = 120;
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
                    PackB(b, ldb, transB, pc, jc, kc, nc, pb);
                    for (int ic = 0; ic < m; ic += MC)
                    {
                        int mc = Math.Min(MC, m - ic);
                        PackA(a, lda, transA, ic, pc, mc, kc, alpha, pa);
                        for (int jr = 0; jr < nc; jr += NR)
                        {
                            int nr = Math.Min(NR, nc - jr);
                            float* bPanel = pb + (long)jr * kc;
                            for (int ir = 0; ir < mc; ir += MR)
                            {
                                int mr = Math.Min(MR, mc - ir);
                                Kernel(kc, pa + (long)ir * kc, bPanel, c + (long)(ic + ir) * ldc + jc + jr, ldc, mr, nr, beta == 0f && pc == 0);
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

    private static void PackA(float* a, int lda, bool transA, int ic, int pc, int mc, int kc, float alpha, float* pa)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* dst = pa + (long)ir * kc;
            if (transA)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(pc + p) * lda + ic + ir;
                    float* d = dst + p * MR;
                    int r = 0;
                    for (; r < mr; r++) d[r] = alpha * src[r];
                    for (; r < MR; r++) d[r] = 0f;
                }
            }
            else if (mr == MR)
            {
                float* s0 = a + (long)(ic + ir) * lda + pc;
                float* s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda, s4 = s3 + lda, s5 = s4 + lda;
                for (int p = 0; p < kc; p++)
                {
                    float* d = dst + p * MR;
                    d[0] = alpha * s0[p]; d[1] = alpha * s1[p]; d[2] = alpha * s2[p];
                    d[3] = alpha * s3[p]; d[4] = alpha * s4[p]; d[5] = alpha * s5[p];
                }
            }
            else
            {
                for (int r = 0; r < MR; r++)
                {
                    if (r < mr)
                    {
                        float* src = a + (long)(ic + ir + r) * lda + pc;
                        for (int p = 0; p < kc; p++) dst[p * MR + r] = alpha * src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) dst[p * MR + r] = 0f;
                    }
                }
            }
        }
    }

    private static void PackB(float* b, int ldb, bool transB, int pc, int jc, int kc, int nc, float* pb)
    {
        float** rows = stackalloc float*[NR];
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* dst = pb + (long)jr * kc;
            if (!transB)
            {
                if (nr == NR)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = b + (long)(pc + p) * ldb + jc + jr;
                        Vector256.Store(Vector256.Load(src), dst + p * NR);
                        Vector256.Store(Vector256.Load(src + 8), dst + p * NR + 8);
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = b + (long)(pc + p) * ldb + jc + jr;
                        float* d = dst + p * NR;
                        int j = 0;
                        for (; j < nr; j++) d[j] = src[j];
                        for (; j < NR; j++) d[j] = 0f;
                    }
                }
            }
            else if (nr == NR)
            {
                for (int j = 0; j < NR; j++) rows[j] = b + (long)(jc + jr + j) * ldb + pc;
                for (int p = 0; p < kc; p++)
                {
                    float* d = dst + p * NR;
                    for (int j = 0; j < NR; j++) d[j] = rows[j][p];
                }
            }
            else
            {
                for (int j = 0; j < NR; j++)
                {
                    if (j < nr)
                    {
                        float* src = b + (long)(jc + jr + j) * ldb + pc;
                        for (int p = 0; p < kc; p++) dst[p * NR + j] = src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) dst[p * NR + j] = 0f;
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Mad(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : c + a * b;

    /// <summary>6 x 16 tile: C[0..mr, 0..nr] += sum over p of Apanel[p, r] * Bpanel[p, j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel(int kc, float* pa, float* pb, float* c, int ldc, int mr, int nr, bool overwrite)
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
            pa += MR;
            pb += NR;
        }
        if (mr == MR && nr == NR && overwrite)
        {
            Vector256.Store(c00, c); Vector256.Store(c01, c + 8);
            Vector256.Store(c10, c + ldc); Vector256.Store(c11, c + ldc + 8);
            Vector256.Store(c20, c + 2 * ldc); Vector256.Store(c21, c + 2 * ldc + 8);
            Vector256.Store(c30, c + 3 * ldc); Vector256.Store(c31, c + 3 * ldc + 8);
            Vector256.Store(c40, c + 4 * ldc); Vector256.Store(c41, c + 4 * ldc + 8);
            Vector256.Store(c50, c + 5 * ldc); Vector256.Store(c51, c + 5 * ldc + 8);
            return;
        }
        if (mr == MR && nr == NR)
        {
            AddRow(c, c00, c01);
            AddRow(c + ldc, c10, c11);
            AddRow(c + 2 * ldc, c20, c21);
            AddRow(c + 3 * ldc, c30, c31);
            AddRow(c + 4 * ldc, c40, c41);
            AddRow(c + 5 * ldc, c50, c51);
            return;
        }
        float* tile = stackalloc float[MR * NR];
        Vector256.Store(c00, tile); Vector256.Store(c01, tile + 8);
        Vector256.Store(c10, tile + 16); Vector256.Store(c11, tile + 24);
        Vector256.Store(c20, tile + 32); Vector256.Store(c21, tile + 40);
        Vector256.Store(c30, tile + 48); Vector256.Store(c31, tile + 56);
        Vector256.Store(c40, tile + 64); Vector256.Store(c41, tile + 72);
        Vector256.Store(c50, tile + 80); Vector256.Store(c51, tile + 88);
        for (int r = 0; r < mr; r++)
        {
            float* row = c + (long)r * ldc;
            if (overwrite)
                for (int j = 0; j < nr; j++) row[j] = tile[r * NR + j];
            else
                for (int j = 0; j < nr; j++) row[j] += tile[r * NR + j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* row, Vector256<float> v0, Vector256<float> v1)
    {
        Vector256.Store(Vector256.Load(row) + v0, row);
        Vector256.Store(Vector256.Load(row + 8) + v1, row + 8);
    }
}
