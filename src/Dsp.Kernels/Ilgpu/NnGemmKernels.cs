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
/// Tiled GEMM: each group computes a 32 x 32 tile of C, staging 32 x 32 tiles of A and B in shared memory per step of
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

    private static Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> Loaded(IlgpuEngine e) =>
        e.Kernel("nn.gemm", acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmKernel));

    /// <summary>Launches <paramref name="batch"/> products described by <paramref name="g"/> in one grid.</summary>
    internal static void Run(IlgpuEngine e, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g, int batch = 1)
    {
        if (g.M == 0 || g.N == 0 || batch == 0) return;
        if (g.KSplit <= 0) g.KSplit = Math.Max(g.K, 1);
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

    internal static void Compile(IlgpuEngine e) => Loaded(e);
}
