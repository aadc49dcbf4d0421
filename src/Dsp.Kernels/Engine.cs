namespace Hybrid.Dsp;

/// <summary>
/// A dense float32 tensor in row-major (C) order living on one <see cref="Engine"/>'s device.
/// Shapes are stated by each operation, e.g. clips x samples or clips x bins x frames.
/// </summary>
public abstract class Tensor : IDisposable
{
    /// <summary>Creates the tensor's bookkeeping; storage belongs to the derived class.</summary>
    protected Tensor(Engine engine, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(shape);
        long length = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor dimensions must be non-negative, shape was [{string.Join(", ", shape)}].", nameof(shape));
            length = checked(length * d);
        }
        Engine = engine;
        Shape = (int[])shape.Clone();
        Length = length;
    }

    /// <summary>The engine that owns the storage.</summary>
    public Engine Engine { get; }

    /// <summary>Dimensions, outermost first. Do not mutate.</summary>
    public int[] Shape { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;

    /// <summary>Number of elements (product of <see cref="Shape"/>).</summary>
    public long Length { get; }

    /// <summary>Copies <paramref name="source"/> into elements [offset, offset + source.Length).</summary>
    public abstract void CopyFrom(ReadOnlySpan<float> source, long offset = 0);

    /// <summary>Copies elements [offset, offset + destination.Length) into <paramref name="destination"/>.</summary>
    public abstract void CopyTo(Span<float> destination, long offset = 0);

    /// <summary>A tensor of a new shape with the same element count, sharing this tensor's storage.</summary>
    public abstract Tensor Reshape(params int[] shape);

    /// <summary>Copies the whole tensor to a new host array.</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        CopyTo(result);
        return result;
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless the shape equals <paramref name="expected"/>.</summary>
    public void RequireShape(string parameterName, params int[] expected)
    {
        if (!Shape.AsSpan().SequenceEqual(expected))
            throw new ArgumentException($"{parameterName}: expected shape [{string.Join(", ", expected)}], was [{string.Join(", ", Shape)}].", parameterName);
    }

    /// <summary>Releases device storage (no-op for views and host tensors).</summary>
    public abstract void Dispose();

    /// <inheritdoc />
    public override string ToString() => $"Tensor[{string.Join(" x ", Shape)}] on {Engine.Name}";
}

/// <summary>
/// One compute back end: <c>managed</c> (SIMD + multithreaded C#), <c>cuda</c>, <c>opencl</c> or
/// <c>ilgpu-cpu</c> (ILGPU kernels). Engines are created with <c>Engines.Create</c>.
/// All operations are batched and run on tensors allocated by the same engine.
/// </summary>
public abstract class Engine : IDisposable
{
    /// <summary>Engine kind: "managed", "cuda", "opencl" or "ilgpu-cpu".</summary>
    public abstract string Name { get; }

    /// <summary>Human-readable device description (CPU model and thread count, or GPU name).</summary>
    public abstract string DeviceName { get; }

    /// <summary>Allocates a zero-filled tensor of the given shape.</summary>
    public abstract Tensor Allocate(params int[] shape);

    /// <summary>Batched signal-processing operations (FFT, STFT, mel, MFCC, spectral features).</summary>
    public abstract IDspOps Dsp { get; }

    /// <summary>Blocks until every queued operation on the device has finished.</summary>
    public abstract void Synchronize();

    /// <summary>Allocates a tensor and fills it from host memory.</summary>
    public Tensor FromHost(ReadOnlySpan<float> data, params int[] shape)
    {
        var t = Allocate(shape);
        if (data.Length != t.Length)
        {
            t.Dispose();
            throw new ArgumentException($"Host data has {data.Length} elements, shape [{string.Join(", ", shape)}] needs {t.Length}.", nameof(data));
        }
        t.CopyFrom(data);
        return t;
    }

    /// <summary>Releases the device and every cached plan.</summary>
    public abstract void Dispose();

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({DeviceName})";
}
