using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Runtime;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>
/// A float32 tensor in the device memory of an <see cref="IlgpuEngine"/>: a dense 1-D view of a
/// <see cref="MemoryBuffer1D{T, TStride}"/>. Reshaped tensors are views sharing the storage; only the
/// tensor that allocated the buffer frees it.
/// </summary>
public sealed unsafe class IlgpuTensor : Tensor
{
    private MemoryBuffer1D<float, Stride1D.Dense>? _owned;

    internal IlgpuTensor(IlgpuEngine engine, int[] shape, MemoryBuffer1D<float, Stride1D.Dense>? owned, ArrayView1D<float, Stride1D.Dense> view)
        : base(engine, shape)
    {
        if (view.Length != Length)
            throw new ArgumentException($"Device view has {view.Length} elements, shape [{string.Join(", ", shape)}] needs {Length}.", nameof(view));
        _owned = owned;
        View = view;
    }

    /// <summary>The device elements (row-major).</summary>
    internal ArrayView1D<float, Stride1D.Dense> View { get; }

    /// <inheritdoc />
    public override void CopyFrom(ReadOnlySpan<float> source, long offset = 0)
    {
        CheckRange(offset, source.Length);
        if (source.Length == 0) return;
        // ILGPU's pointer-based copy takes the span's address as it is: pin it, or a garbage collection during the
        // copy moves a managed array away and the copy reads (or, below, writes) the memory it left behind
        ((IlgpuEngine)Engine).Transfers.Record(TransferKind.HostToDevice, (long)source.Length * sizeof(float));
        fixed (float* pinned = source)
        {
            View.SubView(offset, source.Length).CopyFromCPU(ref *pinned, source.Length);
        }
    }

    /// <inheritdoc />
    public override void CopyTo(Span<float> destination, long offset = 0)
    {
        CheckRange(offset, destination.Length);
        if (destination.Length == 0) return;
        ((IlgpuEngine)Engine).Transfers.Record(TransferKind.DeviceToHost, (long)destination.Length * sizeof(float));
        fixed (float* pinned = destination)
        {
            View.SubView(offset, destination.Length).CopyToCPU(ref *pinned, destination.Length);
        }
    }

    /// <inheritdoc />
    public override Tensor Reshape(params int[] shape)
    {
        long length = 1;
        foreach (var d in shape) length = checked(length * Math.Max(d, 0));
        if (length != Length)
            throw new ArgumentException($"Cannot reshape [{string.Join(", ", Shape)}] ({Length} elements) to [{string.Join(", ", shape)}] ({length} elements).", nameof(shape));
        return new IlgpuTensor((IlgpuEngine)Engine, shape, null, View);
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _owned?.Dispose();
        _owned = null;
    }

    private void CheckRange(long offset, int count)
    {
        if (offset < 0 || offset + count > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range [{offset}, {offset + count}) is outside the tensor's {Length} elements.");
    }
}

/// <summary>
/// An engine running the DSP as ILGPU kernels on one accelerator: <c>cuda</c>, <c>opencl</c> or
/// <c>ilgpu-cpu</c> (ILGPU's CPU simulator, a test vehicle for the kernels and about ten times slower than
/// the managed engine). Create it with <see cref="Engines.Create"/>. Kernels are compiled once per engine
/// (every DSP and network kernel when a cuda or opencl engine is created, on first use on ilgpu-cpu); plans (twiddles, windows, filter banks) are uploaded once per configuration and cached.
/// Operations are queued on the accelerator's default stream in call order; use one engine from one thread at a time.
/// </summary>
public sealed class IlgpuEngine : Engine
{
    private readonly ConcurrentDictionary<string, Delegate> _kernels = new();
    private readonly ConcurrentDictionary<object, IDisposable> _plans = new();
    private MemoryBuffer1D<float, Stride1D.Dense>? _scratch;
    private MemoryBuffer1D<float, Stride1D.Dense>? _staging;
    private readonly object _stagingGate = new();
    private IlgpuDsp? _dsp;
    private IlgpuNn? _nn;
    private bool _disposed;

    /// <summary>An engine on <paramref name="accelerator"/>; <paramref name="groupSize"/> overrides the threads per
    /// group of the explicitly grouped kernels (tests use it to run the GPU kernels on a CPU device).</summary>
    internal IlgpuEngine(string name, Context context, Accelerator accelerator, int? groupSize = null)
    {
        Name = name;
        Context = context;
        Accelerator = accelerator;
        GroupSize = groupSize ?? DefaultGroupSize(accelerator);
    }

    /// <summary>
    /// 256 threads per group (at most the device's limit), except on OpenCL CPU devices: there 64, which selects the
    /// portable 32 x 32 GEMM tile over the register-blocked kernel of 256-thread groups. PoCL runs a group's work-items
    /// as loops between barriers and keeps each one's sixteen accumulators in memory across them, so on its CPU device
    /// the blocked kernel trained the reference CNN 2.6 times slower (793 s against 305 s an epoch on 2 shared cores).
    /// </summary>
    private static int DefaultGroupSize(Accelerator accelerator)
    {
        var limit = Math.Max(1, accelerator.MaxNumThreadsPerGroup);
        var cpuOpenCl = accelerator is ILGPU.Runtime.OpenCL.CLAccelerator cl && OpenClPlatform.KindOf(cl.Device) == "CPU";
        return Math.Min(cpuOpenCl ? 64 : 256, limit);
    }

    /// <inheritdoc />
    public override string Name { get; }

    /// <inheritdoc />
    public override string DeviceName =>
        Accelerator switch
        {
            { AcceleratorType: AcceleratorType.CPU } =>
                $"{Accelerator.Name} (ILGPU CPU simulator, {Accelerator.MaxNumThreadsPerGroup} threads/group)",
            ILGPU.Runtime.OpenCL.CLAccelerator cl =>
                $"{cl.Name} (OpenCL {OpenClPlatform.KindOf(cl.Device)} device of {cl.PlatformName}, {cl.NumMultiprocessors} compute units, {cl.MemorySize / (1024 * 1024)} MiB)",
            _ => $"{Accelerator.Name} ({Accelerator.AcceleratorType}, {Accelerator.NumMultiprocessors} multiprocessors, {Accelerator.MemorySize / (1024 * 1024)} MiB)",
        };

    internal Context Context { get; }

    internal Accelerator Accelerator { get; }

    /// <summary>Threads per group used by the explicitly grouped kernels (at most 256).</summary>
    internal int GroupSize { get; }

    /// <inheritdoc />
    public override Tensor Allocate(params int[] shape) => AllocateDevice(shape);

    /// <summary>Allocates a zero-filled device tensor.</summary>
    public IlgpuTensor AllocateDevice(params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long length = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor dimensions must be non-negative, shape was [{string.Join(", ", shape)}].", nameof(shape));
            length = checked(length * d);
        }
        var buffer = Accelerator.Allocate1D<float>(Math.Max(length, 1));
        buffer.MemSetToZero();
        var view = buffer.View.SubView(0, length);
        return new IlgpuTensor(this, shape, buffer, view);
    }

    /// <inheritdoc />
    public override IDspOps Dsp => _dsp ??= new IlgpuDsp(this);

    /// <inheritdoc />
    public override INnOps Nn => LazyInitializer.EnsureInitialized(ref _nn, () => new IlgpuNn(this));

    /// <inheritdoc />
    public override void Synchronize() => Wait();

    /// <summary>Host/device copies and synchronisations of this engine by call site (off until enabled).</summary>
    public TransferCounter Transfers { get; } = new();

    /// <summary>Waits for the stream to drain, counted as a synchronisation.</summary>
    internal void Wait()
    {
        Transfers.Record(TransferKind.Synchronize, 0);
        Accelerator.Synchronize();
    }

    /// <summary>Copies device memory to a host array, counted as a device-to-host transfer.</summary>
    internal void Read<T>(ArrayView1D<T, Stride1D.Dense> source, T[] destination) where T : unmanaged
    {
        Transfers.Record(TransferKind.DeviceToHost, (long)destination.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        source.CopyToCPU(destination);
    }

    /// <inheritdoc />
    /// <remarks>One device-to-device copy per tensor (<c>cuMemcpyDtoDAsync</c> on CUDA) on the default stream, so it
    /// is ordered after the kernels that wrote the sources; nothing is read back and nothing waits.</remarks>
    public override void Gather(IReadOnlyList<Tensor> sources, Tensor destination, long offset = 0)
    {
        CheckRange(sources, nameof(sources), destination, nameof(destination), offset);
        var target = Expect(destination, nameof(destination)).View;
        var at = offset;
        for (var i = 0; i < sources.Count; i++)
        {
            var s = Expect(sources[i], nameof(sources)).View;
            if (s.Length == 0) continue;
            s.CopyTo(Accelerator.DefaultStream, target.SubView(at, s.Length));
            at += s.Length;
        }
    }

    /// <inheritdoc />
    /// <remarks>One device-to-device copy per tensor on the default stream, as <see cref="Gather"/>.</remarks>
    public override void Scatter(Tensor source, long offset, IReadOnlyList<Tensor> destinations)
    {
        CheckRange(destinations, nameof(destinations), source, nameof(source), offset);
        var from = Expect(source, nameof(source)).View;
        var at = offset;
        for (var i = 0; i < destinations.Count; i++)
        {
            var d = Expect(destinations[i], nameof(destinations)).View;
            if (d.Length == 0) continue;
            from.SubView(at, d.Length).CopyTo(Accelerator.DefaultStream, d);
            at += d.Length;
        }
    }

    /// <inheritdoc />
    /// <remarks>A single tensor is read directly; several are gathered into the engine's staging buffer (allocated on
    /// first use and grown to the largest request, kept until the engine is disposed) and read with one copy, counted
    /// by <see cref="Transfers"/> as one device-to-host transfer of the caller.</remarks>
    public override unsafe void ReadTensors(IReadOnlyList<Tensor> tensors, Span<float> destination)
    {
        var total = TotalLength(tensors, nameof(tensors));
        if (destination.Length != total)
            throw new ArgumentException($"destination has {destination.Length} elements, the tensors hold {total}.", nameof(destination));
        if (total == 0) return;
        if (tensors.Count == 1)
        {
            tensors[0].CopyTo(destination);
            return;
        }
        lock (_stagingGate)
        {
            if (_staging is null || _staging.Length < total)
            {
                // The previous staging buffer's last use ended in a blocking read, so nothing queued still uses it.
                _staging?.Dispose();
                _staging = null;
                _staging = Accelerator.Allocate1D<float>(total);
            }
            var staging = _staging.View.SubView(0, total);
            var at = 0L;
            for (var i = 0; i < tensors.Count; i++)
            {
                var s = Expect(tensors[i], nameof(tensors)).View;
                if (s.Length == 0) continue;
                s.CopyTo(Accelerator.DefaultStream, staging.SubView(at, s.Length));
                at += s.Length;
            }
            Transfers.Record(TransferKind.DeviceToHost, total * sizeof(float));
            // Pinned for the copy, as IlgpuTensor.CopyTo: ILGPU takes the address as given.
            fixed (float* pinned = destination)
            {
                staging.CopyToCPU(ref *pinned, destination.Length);
            }
        }
    }

    /// <summary>Compiles every DSP and network kernel now, so that a back end unable to compile them fails here
    /// (<see cref="Engines.Create"/> then falls back to the managed engine with a warning for <c>auto</c>, and refuses
    /// an engine asked for by name) rather than at the first
    /// feature extraction or training step.</summary>
    public void CompileKernels()
    {
        ((IlgpuDsp)Dsp).CompileAll();
        ((IlgpuNn)Nn).CompileAll();
    }

    /// <summary>The cache keys of the kernels loaded so far (e.g. "nn.adam").</summary>
    internal IReadOnlyCollection<string> LoadedKernels => _kernels.Keys.ToArray();

    /// <summary>Returns the kernel cached under <paramref name="key"/>, loading it on first use.</summary>
    internal T Kernel<T>(string key, Func<Accelerator, T> load) where T : Delegate =>
        (T)_kernels.GetOrAdd(key, _ => load(Accelerator));

    /// <summary>Returns the plan cached under <paramref name="key"/>, building it on first use.</summary>
    internal T Plan<T>(object key, Func<T> build) where T : class, IDisposable
    {
        if (_plans.TryGetValue(key, out var existing)) return (T)existing;
        var created = build();
        if (_plans.TryAdd(key, created)) return created;
        created.Dispose();
        return (T)_plans[key];
    }

    /// <summary>Uploads host floats to a new device buffer.</summary>
    internal MemoryBuffer1D<float, Stride1D.Dense> Upload(float[] data)
    {
        var buffer = Accelerator.Allocate1D<float>(Math.Max(data.Length, 1));
        if (data.Length > 0)
        {
            Transfers.Record(TransferKind.HostToDevice, (long)data.Length * sizeof(float));
            buffer.View.SubView(0, data.Length).CopyFromCPU(data);
        }
        return buffer;
    }

    /// <summary>Held while an operation enqueues work that uses <see cref="Scratch"/>.</summary>
    internal object ScratchGate { get; } = new();

    /// <summary>
    /// A device work area of at least <paramref name="floats"/> elements, reused across calls (grown when needed).
    /// Operations on one engine run one at a time on its stream, so one area suffices.
    /// </summary>
    internal ArrayView1D<float, Stride1D.Dense> Scratch(long floats)
    {
        lock (ScratchGate)
        {
            if (_scratch is null || _scratch.Length < floats)
            {
                Wait();
                _scratch?.Dispose();
                _scratch = Accelerator.Allocate1D<float>(Math.Max(floats, 1024));
            }
            return _scratch.View.SubView(0, Math.Max(floats, 1));
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var plan in _plans.Values) plan.Dispose();
        _plans.Clear();
        _scratch?.Dispose();
        _staging?.Dispose();
        Accelerator.Dispose();
        Context.Dispose();
    }

    /// <summary>Returns the ILGPU storage of a tensor, or throws if it belongs to another engine.</summary>
    internal IlgpuTensor Expect(Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t is IlgpuTensor it && ReferenceEquals(t.Engine, this)) return it;
        throw new ArgumentException($"{name}: tensor lives on engine '{t.Engine.Name}', not on this '{Name}' engine.", name);
    }
}

/// <summary>A set of device buffers cached as one plan.</summary>
internal sealed class DevicePlan : IDisposable
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] _buffers;

    internal DevicePlan(params MemoryBuffer1D<float, Stride1D.Dense>[] buffers) => _buffers = buffers;

    /// <summary>The i-th buffer's view.</summary>
    internal ArrayView<float> this[int i] => _buffers[i].View;

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
    }
}
