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

    /// <summary>Batched neural-network operations (GEMM, convolutions, pooling, activations, losses, optimizer
    /// updates), forward and backward, on this engine's tensors; one instance per engine, created on first use.</summary>
    public abstract INnOps Nn { get; }

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

    /// <summary>
    /// Copies <paramref name="sources"/>, one after another in list order, into elements
    /// [offset, offset + total length) of <paramref name="destination"/>, on the device: no host transfer on a GPU
    /// engine (device-to-device copies queued in call order), memory copies on the managed engine. The tensors may
    /// be views of one storage but a source must not overlap its destination range. Used to keep a copy of many
    /// tensors (e.g. a model's best weights) on the device, and by <see cref="ReadTensors(IReadOnlyList{Tensor}, Span{float})"/>.
    /// Throws <see cref="ArgumentException"/> naming the parameter when a tensor belongs to another engine, and
    /// <see cref="ArgumentOutOfRangeException"/> when the sources do not fit the destination from the offset.
    /// The base implementation goes through host memory with each tensor's <see cref="Tensor.CopyTo"/> and
    /// <see cref="Tensor.CopyFrom"/> (right for an engine whose tensors live in host memory); the managed and ILGPU
    /// engines override it.
    /// </summary>
    public virtual void Gather(IReadOnlyList<Tensor> sources, Tensor destination, long offset = 0)
    {
        CheckRange(sources, nameof(sources), destination, nameof(destination), offset);
        var at = offset;
        foreach (var s in sources)
        {
            destination.CopyFrom(s.ToArray(), at);
            at += s.Length;
        }
    }

    /// <summary>
    /// The inverse of <see cref="Gather"/>: fills <paramref name="destinations"/>, one after another in list order,
    /// from elements [offset, offset + total length) of <paramref name="source"/>, on the device. Throws as
    /// <see cref="Gather"/>; the base implementation goes through host memory as <see cref="Gather"/>'s.
    /// </summary>
    public virtual void Scatter(Tensor source, long offset, IReadOnlyList<Tensor> destinations)
    {
        CheckRange(destinations, nameof(destinations), source, nameof(source), offset);
        var at = offset;
        foreach (var d in destinations)
        {
            var values = new float[d.Length];
            source.CopyTo(values, at);
            d.CopyFrom(values);
            at += d.Length;
        }
    }

    /// <summary>
    /// Reads <paramref name="tensors"/>, one after another in list order, into <paramref name="destination"/>
    /// (exactly their total length) with one device-to-host copy: a GPU engine gathers them into a pooled device
    /// staging buffer (<see cref="Gather"/>) and reads that once, instead of one read (and one wait for the queue)
    /// per tensor. The values are those of each tensor's <see cref="Tensor.CopyTo"/>, bit for bit. Throws
    /// <see cref="ArgumentException"/> naming the parameter when a tensor belongs to another engine or the
    /// destination's length differs from the tensors' total. The base implementation reads each tensor with its
    /// <see cref="Tensor.CopyTo"/> (right for an engine whose tensors live in host memory); the managed and ILGPU
    /// engines override it.
    /// </summary>
    public virtual void ReadTensors(IReadOnlyList<Tensor> tensors, Span<float> destination)
    {
        var total = TotalLength(tensors, nameof(tensors));
        if (destination.Length != total)
            throw new ArgumentException($"destination has {destination.Length} elements, the tensors hold {total}.", nameof(destination));
        var at = 0;
        foreach (var t in tensors)
        {
            t.CopyTo(destination.Slice(at, checked((int)t.Length)));
            at += (int)t.Length;
        }
    }

    /// <summary><see cref="ReadTensors(IReadOnlyList{Tensor}, Span{float})"/> into a new host array of the tensors'
    /// total length (one device-to-host copy).</summary>
    public float[] ReadTensors(IReadOnlyList<Tensor> tensors)
    {
        var result = new float[TotalLength(tensors, nameof(tensors))];
        ReadTensors(tensors, result);
        return result;
    }

    /// <summary>The summed length of <paramref name="tensors"/>, each checked to belong to this engine; throws
    /// <see cref="ArgumentException"/> naming <paramref name="parameterName"/> and the tensor's position otherwise.</summary>
    protected long TotalLength(IReadOnlyList<Tensor> tensors, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(tensors, parameterName);
        long total = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i] ?? throw new ArgumentNullException(parameterName, $"{parameterName}[{i}] is null.");
            if (!Holds(t))
                throw new ArgumentException($"{parameterName}[{i}]: tensor lives on engine '{t.Engine.Name}', not on this '{Name}' engine.", parameterName);
            total = checked(total + t.Length);
        }
        return total;
    }

    /// <summary>Whether <paramref name="tensor"/> is one this engine can read and write: by default one it allocated
    /// (its <see cref="Tensor.Engine"/> is this engine); an engine that allocates through another (a
    /// <see cref="ForwardingEngine"/>) also holds that engine's tensors.</summary>
    protected internal virtual bool Holds(Tensor tensor) => ReferenceEquals(tensor.Engine, this);

    /// <summary>Checks a <see cref="Gather"/> or <see cref="Scatter"/> call: every tensor on this engine and the
    /// tensors' total length within <paramref name="flat"/> from <paramref name="offset"/>; returns the total.</summary>
    protected long CheckRange(IReadOnlyList<Tensor> tensors, string tensorsName, Tensor flat, string flatName, long offset)
    {
        ArgumentNullException.ThrowIfNull(flat, flatName);
        if (!Holds(flat))
            throw new ArgumentException($"{flatName}: tensor lives on engine '{flat.Engine.Name}', not on this '{Name}' engine.", flatName);
        var total = TotalLength(tensors, tensorsName);
        if (offset < 0 || offset + total > flat.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{tensorsName} hold {total} elements; from offset {offset} they do not fit {flatName}'s {flat.Length}.");
        return total;
    }

    /// <summary>Releases the device and every cached plan.</summary>
    public abstract void Dispose();

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({DeviceName})";
}
