namespace Hybrid.Dsp;

/// <summary>
/// The argument checks of <see cref="INnOps"/> shared by every engine, so each implementation raises the same
/// <see cref="ArgumentException"/> (naming the parameter, the expected and the actual shape) for the same mistake.
/// </summary>
internal static class NnChecks
{
    /// <summary>Throws unless <paramref name="b"/> has as many elements as <paramref name="a"/>.</summary>
    internal static void SameLength(Tensor a, string aName, Tensor b, string bName)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"{bName}: expected {a.Length} elements (as {aName} [{string.Join(", ", a.Shape)}]), was {b.Length} ([{string.Join(", ", b.Shape)}]).", bName);
    }

    /// <summary>A tensor seen as a matrix: its leading axis by everything else (a scalar is 1 x 1).</summary>
    private static (int Rows, int Cols) AsMatrix(Tensor t)
    {
        if (t.Rank == 0) return (1, 1);
        int rows = t.Shape[0];
        int cols = rows == 0 ? 0 : checked((int)(t.Length / rows));
        return (rows, cols);
    }

    /// <summary>Checks C = op(A) op(B) and returns its sizes with the row lengths (leading dimensions) of A and B as stored.</summary>
    internal static (int M, int N, int K, int Lda, int Ldb) Gemm(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c)
    {
        var (ar, ac) = AsMatrix(a);
        var (br, bc) = AsMatrix(b);
        var (cr, cc) = AsMatrix(c);
        int m = transposeA ? ac : ar, k = transposeA ? ar : ac;
        int kb = transposeB ? bc : br, n = transposeB ? br : bc;
        if (k != kb)
            throw new ArgumentException($"b: op(A) is [{m}, {k}] so op(B) needs {k} rows, was [{kb}, {n}].", nameof(b));
        if (cr != m || cc != n)
            throw new ArgumentException($"c: expected [{m}, {n}] for op(A) [{m}, {k}] x op(B) [{k}, {n}], was [{cr}, {cc}].", nameof(c));
        return (m, n, k, ac, bc);
    }

    /// <summary>[batch, channels, spatial...] of x for a per-channel op: batch, channels and the spatial size.</summary>
    internal static (int N, int C, int S) ChannelLayout(Tensor x, int channels, string name)
    {
        if (x.Rank < 2 || x.Shape[1] != channels)
            throw new ArgumentException($"{name}: expected [batch, {channels}, ...], was [{string.Join(", ", x.Shape)}].", name);
        int n = x.Shape[0];
        int s = n * channels == 0 ? 0 : checked((int)(x.Length / ((long)n * channels)));
        return (n, channels, s);
    }

    /// <summary>Checks the tensors of a convolution against its geometry.</summary>
    internal static void Conv(in ConvGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y)
    {
        g.Validate();
        x.RequireShape(nameof(x), g.Batch, g.InChannels, g.InHeight, g.InWidth);
        w.RequireShape(nameof(w), g.OutChannels, g.InChannels, g.KernelHeight, g.KernelWidth);
        bias?.RequireShape(nameof(bias), g.OutChannels);
        y.RequireShape(nameof(y), g.Batch, g.OutChannels, g.OutHeight, g.OutWidth);
    }

    /// <summary>Checks the tensors of a pooling against its geometry.</summary>
    internal static void Pool(in PoolGeometry g, Tensor x, Tensor y)
    {
        g.Validate();
        x.RequireShape(nameof(x), g.Batch, g.Channels, g.InHeight, g.InWidth);
        y.RequireShape(nameof(y), g.Batch, g.Channels, g.OutHeight, g.OutWidth);
    }

    /// <summary>Checks the tensors of softmax cross-entropy and returns (batch, classes).</summary>
    internal static (int N, int K) SoftmaxCrossEntropy(Tensor logits, Tensor labels, float labelSmoothing, Tensor probabilities, Tensor losses, Tensor? dLogits)
    {
        if (logits.Rank != 2) throw new ArgumentException($"logits: expected [batch, classes], was [{string.Join(", ", logits.Shape)}].", nameof(logits));
        int n = logits.Shape[0], k = logits.Shape[1];
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f)) throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"Label smoothing must be in [0, 1], was {labelSmoothing}.");
        labels.RequireShape(nameof(labels), n);
        probabilities.RequireShape(nameof(probabilities), n, k);
        losses.RequireShape(nameof(losses), n);
        dLogits?.RequireShape(nameof(dLogits), n, k);
        return (n, k);
    }

    /// <summary>Checks an Adam step: the step counts from 1 and every state tensor matches the parameter.</summary>
    internal static void Adam(Tensor parameter, Tensor gradient, Tensor m, Tensor v, int step)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), $"Adam's step counts from 1, was {step}.");
        SameLength(parameter, nameof(parameter), gradient, nameof(gradient));
        SameLength(parameter, nameof(parameter), m, nameof(m));
        SameLength(parameter, nameof(parameter), v, nameof(v));
    }
}
