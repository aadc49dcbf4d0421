namespace Hybrid.Dsp.Managed;

/// <summary>A tensor in host memory: a slice of a float[] owned by the managed engine.</summary>
public sealed class ManagedTensor : Tensor
{
    internal ManagedTensor(ManagedEngine engine, int[] shape, float[] data, int offset)
        : base(engine, shape)
    {
        if (offset < 0 || offset + Length > data.Length)
            throw new ArgumentException($"View [{offset}, {offset + Length}) is outside storage of {data.Length} elements.");
        Data = data;
        Offset = offset;
    }

    /// <summary>The backing array (shared by views).</summary>
    public float[] Data { get; }

    /// <summary>Index of element 0 in <see cref="Data"/>.</summary>
    public int Offset { get; }

    /// <summary>The tensor's elements.</summary>
    public Span<float> Span => Data.AsSpan(Offset, checked((int)Length));

    /// <inheritdoc />
    public override void CopyFrom(ReadOnlySpan<float> source, long offset = 0)
    {
        CheckRange(offset, source.Length);
        source.CopyTo(Data.AsSpan(Offset + (int)offset, source.Length));
    }

    /// <inheritdoc />
    public override void CopyTo(Span<float> destination, long offset = 0)
    {
        CheckRange(offset, destination.Length);
        Data.AsSpan(Offset + (int)offset, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public override Tensor Reshape(params int[] shape)
    {
        var view = new ManagedTensor((ManagedEngine)Engine, shape, Data, Offset);
        if (view.Length != Length)
            throw new ArgumentException($"Cannot reshape [{string.Join(", ", Shape)}] ({Length} elements) to [{string.Join(", ", shape)}] ({view.Length} elements).", nameof(shape));
        return view;
    }

    /// <summary>A view of rows [start, start + count) along the leading axis, sharing storage.</summary>
    public ManagedTensor Slice(int start, int count)
    {
        if (Rank == 0 || start < 0 || count < 0 || start + count > Shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"Rows [{start}, {start + count}) are outside [0, {(Rank == 0 ? 0 : Shape[0])}).");
        var shape = (int[])Shape.Clone();
        shape[0] = count;
        var rowLength = Shape[0] == 0 ? 0 : (int)(Length / Shape[0]);
        return new ManagedTensor((ManagedEngine)Engine, shape, Data, Offset + start * rowLength);
    }

    /// <inheritdoc />
    public override void Dispose()
    {
    }

    private void CheckRange(long offset, int count)
    {
        if (offset < 0 || offset + count > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range [{offset}, {offset + count}) is outside the tensor's {Length} elements.");
    }
}

/// <summary>
/// The managed CPU engine: SIMD (System.Numerics / System.Runtime.Intrinsics) and multithreaded C#.
/// The correctness reference for every other engine, and the default where no GPU is found.
/// </summary>
public sealed class ManagedEngine : Engine
{
    private ManagedDsp? _dsp;
    private ManagedNn? _nn;

    /// <summary>Creates the engine; <paramref name="maxThreads"/> caps parallelism (default: the process-wide
    /// <see cref="Parallelism.MaxThreads"/> at creation, all cores unless <c>--threads</c> changed it).</summary>
    public ManagedEngine(int? maxThreads = null)
    {
        if (maxThreads is < 1) throw new ArgumentOutOfRangeException(nameof(maxThreads), $"maxThreads must be at least 1, was {maxThreads}.");
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = maxThreads ?? Parallelism.MaxThreads };
    }

    // One object carries the thread count, so a call that reads MaxThreads and Parallel sees one setting.
    private volatile ParallelOptions _parallel;

    /// <summary>
    /// Maximum worker threads used by one operation (like <c>torch.set_num_threads</c>, it may be changed between
    /// calls, not while a call runs on another thread). Results do not depend on it: every reduction of the engine has a
    /// fixed partitioning.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a value outside 1..<see cref="Parallelism.Limit"/>.</exception>
    public int MaxThreads
    {
        get => _parallel.MaxDegreeOfParallelism;
        set
        {
            Parallelism.Validate(value, nameof(MaxThreads));
            _parallel = new ParallelOptions { MaxDegreeOfParallelism = value };
        }
    }

    internal ParallelOptions Parallel => _parallel;

    /// <inheritdoc />
    public override string Name => "managed";

    /// <inheritdoc />
    public override string DeviceName =>
        $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} CPU, {MaxThreads} thread{(MaxThreads == 1 ? "" : "s")}, " +
        $"{(System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "256" : System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? "128" : "scalar")}-bit SIMD";

    /// <inheritdoc />
    public override Tensor Allocate(params int[] shape) => AllocateManaged(shape);

    /// <summary>Allocates a zero-filled host tensor.</summary>
    public ManagedTensor AllocateManaged(params int[] shape)
    {
        long length = 1;
        foreach (var d in shape) length = checked(length * Math.Max(d, 0));
        if (length > Array.MaxLength) throw new ArgumentException($"Shape [{string.Join(", ", shape)}] has {length} elements, more than one array can hold.", nameof(shape));
        return new ManagedTensor(this, shape, new float[length], 0);
    }

    /// <summary>Wraps an existing array (no copy) as a tensor of the given shape.</summary>
    public ManagedTensor Wrap(float[] data, params int[] shape) => new(this, shape, data, 0);

    /// <inheritdoc />
    public override IDspOps Dsp => _dsp ??= new ManagedDsp(this);

    /// <inheritdoc />
    public override INnOps Nn => LazyInitializer.EnsureInitialized(ref _nn, () => new ManagedNn(this));

    /// <inheritdoc />
    public override void Synchronize()
    {
    }

    /// <inheritdoc />
    public override void Gather(IReadOnlyList<Tensor> sources, Tensor destination, long offset = 0)
    {
        CheckRange(sources, nameof(sources), destination, nameof(destination), offset);
        var target = Expect(destination, nameof(destination)).Span;
        var at = checked((int)offset);
        for (var i = 0; i < sources.Count; i++)
        {
            var s = Expect(sources[i], nameof(sources)).Span;
            s.CopyTo(target.Slice(at, s.Length));
            at += s.Length;
        }
    }

    /// <inheritdoc />
    public override void Scatter(Tensor source, long offset, IReadOnlyList<Tensor> destinations)
    {
        CheckRange(destinations, nameof(destinations), source, nameof(source), offset);
        var from = Expect(source, nameof(source)).Span;
        var at = checked((int)offset);
        for (var i = 0; i < destinations.Count; i++)
        {
            var d = Expect(destinations[i], nameof(destinations)).Span;
            from.Slice(at, d.Length).CopyTo(d);
            at += d.Length;
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
    }

    /// <summary>Returns the managed storage of a tensor, or throws if it belongs to another engine.</summary>
    internal static ManagedTensor Expect(Tensor t, string name) =>
        t as ManagedTensor ?? throw new ArgumentException($"{name}: tensor lives on engine '{t.Engine.Name}', not 'managed'.", name);
}
