using ILGPU;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>
/// Strided description of a batched product C[z] = alpha * A[z] B[z] + beta * C[z] (z = Grid.IdxZ). Element addresses:
/// A(m, k) = z ABatch + m ARow + (k / KSplit) AKo + (k % KSplit) AKi; B(k, n) = z BBatch + n BCol + (k / KSplit) BKo
/// + (k % KSplit) BKi; C(m, n) = z CBatch + m CRow + n. Plain and transposed row-major matrices use KSplit = K; a
/// reduction running over two axes (e.g. samples and pixels of a convolution's weight gradient) splits k in two.
/// </summary>
internal struct GemmArgs
{
    public int M, N, K;
    public float Alpha, Beta;
    public int KSplit;
    public long ARow, AKo, AKi, ABatch;
    public long BCol, BKo, BKi, BBatch;
    public long CRow, CBatch;
}

/// <summary>
/// Tiled GEMM. On engines with 256-thread groups (GPUs) <see cref="BlockedKernel"/> runs: 64 x 64 tiles, 4 x 4
/// register blocks per thread. Elsewhere (ILGPU's CPU simulator has 16-thread groups) the portable kernel runs:
/// each group computes a 32 x 32 tile of C, staging 32 x 32 tiles of A and B in shared memory per step of
/// k (loads laid out so that consecutive threads read consecutive addresses of whichever operand axis is contiguous)
/// and accumulating the tile in shared memory, so any group size works (256 threads on GPUs: 4 cells each). Every C
/// element is summed by one thread in a fixed k order, so results are deterministic.
/// </summary>
internal static class NnGemmKernels
{
    internal const int Tile = 32;

    internal static void GemmKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        var As = SharedMemory.Allocate<float>(Tile * Tile);
        var Bs = SharedMemory.Allocate<float>(Tile * Tile);
        var Cs = SharedMemory.Allocate<float>(Tile * Tile);
        int tid = Group.IdxX, threads = Group.DimX;
        int row0 = Grid.IdxY * Tile, col0 = Grid.IdxX * Tile;
        long z = Grid.IdxZ;
        long aBase = z * g.ABatch, bBase = z * g.BBatch;
        bool aKFast = g.AKi == 1; // k contiguous in A: consecutive threads walk k
        bool bNFast = g.BCol == 1; // n contiguous in B: consecutive threads walk n
        for (int i = tid; i < Tile * Tile; i += threads) Cs[i] = 0f;
        for (int k0 = 0; k0 < g.K; k0 += Tile)
        {
            for (int i = tid; i < Tile * Tile; i += threads)
            {
                int r = aKFast ? i / Tile : i % Tile;
                int kk = aKFast ? i % Tile : i / Tile;
                int m = row0 + r, k = k0 + kk;
                float v = 0f;
                if (m < g.M && k < g.K)
                {
                    int ko = k / g.KSplit;
                    v = a[aBase + m * g.ARow + ko * g.AKo + (k - ko * g.KSplit) * g.AKi];
                }
                As[r * Tile + kk] = v;
                int cc = bNFast ? i % Tile : i / Tile;
                int kb = bNFast ? i / Tile : i % Tile;
                int n = col0 + cc, k2 = k0 + kb;
                float w = 0f;
                if (n < g.N && k2 < g.K)
                {
                    int ko = k2 / g.KSplit;
                    w = b[bBase + n * g.BCol + ko * g.BKo + (k2 - ko * g.KSplit) * g.BKi];
                }
                Bs[kb * Tile + cc] = w;
            }
            Group.Barrier();
            for (int i = tid; i < Tile * Tile; i += threads)
            {
                int r = i / Tile, cc = i % Tile;
                float acc = Cs[i];
                for (int kk = 0; kk < Tile; kk++) acc += As[r * Tile + kk] * Bs[kk * Tile + cc];
                Cs[i] = acc;
            }
            Group.Barrier();
        }
        long cBase = z * g.CBatch;
        for (int i = tid; i < Tile * Tile; i += threads)
        {
            int m = row0 + i / Tile, n = col0 + i % Tile;
            if (m < g.M && n < g.N)
            {
                long at = cBase + m * g.CRow + n;
                float v = g.Alpha * Cs[i];
                c[at] = g.Beta == 0f ? v : v + g.Beta * c[at];
            }
        }
    }

    /// <summary>Side of the register-blocked tile of <see cref="BlockedKernel"/>.</summary>
    internal const int BigTile = 64;

    /// <summary>k depth of one shared-memory stage of <see cref="BlockedKernel"/>.</summary>
    internal const int BigDepth = 16;

    /// <summary>Threads per group of <see cref="BlockedKernel"/> (16 x 16, each computing 4 x 4 cells).</summary>
    internal const int BigThreads = 256;

    /// <summary>Reads A(m, k) of batch base <paramref name="basis"/>, 0 outside the matrix.</summary>
    private static float LoadA(ArrayView<float> a, long basis, GemmArgs g, int m, int k)
    {
        if (m >= g.M || k >= g.K) return 0f;
        int ko = k / g.KSplit;
        return a[basis + m * g.ARow + ko * g.AKo + (k - ko * g.KSplit) * g.AKi];
    }

    /// <summary>Reads B(k, n) of batch base <paramref name="basis"/>, 0 outside the matrix.</summary>
    private static float LoadB(ArrayView<float> b, long basis, GemmArgs g, int k, int n)
    {
        if (n >= g.N || k >= g.K) return 0f;
        int ko = k / g.KSplit;
        return b[basis + n * g.BCol + ko * g.BKo + (k - ko * g.KSplit) * g.BKi];
    }

    private static void Store(ArrayView<float> c, long basis, GemmArgs g, int m, int n, float acc)
    {
        if (m >= g.M || n >= g.N) return;
        long at = basis + m * g.CRow + n;
        float v = g.Alpha * acc;
        c[at] = g.Beta == 0f ? v : v + g.Beta * c[at];
    }

    /// <summary>
    /// The GPU kernel: exactly <see cref="BigThreads"/> threads per group compute a 64 x 64 tile of C, thread (tx, ty)
    /// holding the 4 x 4 cells (ty + 16 i, tx + 16 j) in registers; A and B advance through shared memory 16 values of
    /// k at a time, so each shared load feeds four multiply-adds. Each cell sums its products in k order (the same
    /// order as <see cref="GemmKernel"/>).
    /// </summary>
    internal static void BlockedKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        var As = SharedMemory.Allocate<float>(BigDepth * BigTile);
        var Bs = SharedMemory.Allocate<float>(BigDepth * BigTile);
        int tid = Group.IdxX;
        int tx = tid % 16, ty = tid / 16;
        int row0 = Grid.IdxY * BigTile, col0 = Grid.IdxX * BigTile;
        long z = Grid.IdxZ;
        long aBase = z * g.ABatch, bBase = z * g.BBatch;
        bool aKFast = g.AKi == 1;
        bool bNFast = g.BCol == 1;
        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
        float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f, c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
        for (int k0 = 0; k0 < g.K; k0 += BigDepth)
        {
            for (int i = tid; i < BigDepth * BigTile; i += BigThreads)
            {
                int r = aKFast ? i / BigDepth : i % BigTile;
                int kk = aKFast ? i % BigDepth : i / BigTile;
                As[kk * BigTile + r] = LoadA(a, aBase, g, row0 + r, k0 + kk);
                int cc = bNFast ? i % BigTile : i / BigDepth;
                int kb = bNFast ? i / BigTile : i % BigDepth;
                Bs[kb * BigTile + cc] = LoadB(b, bBase, g, k0 + kb, col0 + cc);
            }
            Group.Barrier();
            for (int kk = 0; kk < BigDepth; kk++)
            {
                int o = kk * BigTile;
                float a0 = As[o + ty], a1 = As[o + ty + 16], a2 = As[o + ty + 32], a3 = As[o + ty + 48];
                float b0 = Bs[o + tx], b1 = Bs[o + tx + 16], b2 = Bs[o + tx + 32], b3 = Bs[o + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }
        long cBase = z * g.CBatch;
        int m0 = row0 + ty, n0 = col0 + tx;
        Store(c, cBase, g, m0, n0, c00); Store(c, cBase, g, m0, n0 + 16, c01); Store(c, cBase, g, m0, n0 + 32, c02); Store(c, cBase, g, m0, n0 + 48, c03);
        Store(c, cBase, g, m0 + 16, n0, c10); Store(c, cBase, g, m0 + 16, n0 + 16, c11); Store(c, cBase, g, m0 + 16, n0 + 32, c12); Store(c, cBase, g, m0 + 16, n0 + 48, c13);
        Store(c, cBase, g, m0 + 32, n0, c20); Store(c, cBase, g, m0 + 32, n0 + 16, c21); Store(c, cBase, g, m0 + 32, n0 + 32, c22); Store(c, cBase, g, m0 + 32, n0 + 48, c23);
        Store(c, cBase, g, m0 + 48, n0, c30); Store(c, cBase, g, m0 + 48, n0 + 16, c31); Store(c, cBase, g, m0 + 48, n0 + 32, c32); Store(c, cBase, g, m0 + 48, n0 + 48, c33);
    }

    private static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> BlockedLoaded(IlgpuEngine e) =>
        e.Kernel("nn.gemm.blocked", acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(BlockedKernel));

    /// <summary>Whether the engine runs the register-blocked kernel (its groups hold <see cref="BigThreads"/> threads).</summary>
    internal static bool UsesBlocked(IlgpuEngine e) => e.GroupSize == BigThreads;

    private static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> Loaded(IlgpuEngine e) =>
        e.Kernel("nn.gemm", acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmKernel));

    /// <summary>Launches <paramref name="batch"/> products described by <paramref name="g"/> in one grid.</summary>
    internal static void Run(IlgpuEngine e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g, int batch = 1)
    {
        if (g.M == 0 || g.N == 0 || batch == 0) return;
        if (g.KSplit <= 0) g.KSplit = Math.Max(g.K, 1);
        if (UsesBlocked(e))
        {
            var big = new Index3D((g.N + BigTile - 1) / BigTile, (g.M + BigTile - 1) / BigTile, batch);
            BlockedLoaded(e)(new KernelConfig(big, new Index3D(BigThreads, 1, 1)), a, b, c, g);
            return;
        }
        var grid = new Index3D((g.N + Tile - 1) / Tile, (g.M + Tile - 1) / Tile, batch);
        Loaded(e)(new KernelConfig(grid, new Index3D(e.GroupSize, 1, 1)), a, b, c, g);
    }

    /// <summary>Arguments of a plain row-major sgemm (A [M, K] or [K, M] transposed; B [K, N] or [N, K] transposed).</summary>
    internal static GemmArgs Plain(int m, int n, int k, bool transA, bool transB, float alpha, float beta) => new()
    {
        M = m, N = n, K = k, Alpha = alpha, Beta = beta, KSplit = Math.Max(k, 1),
        ARow = transA ? 1 : k, AKi = transA ? m : 1,
        BCol = transB ? k : 1, BKi = transB ? 1 : n,
        CRow = n,
    };

    internal static void Compile(IlgpuEngine e)
    {
        if (UsesBlocked(e)) BlockedLoaded(e);
        else Loaded(e);
    }
}
