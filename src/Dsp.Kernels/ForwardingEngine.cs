using System.Reflection;
using System.Runtime.ExceptionServices;

namespace Hybrid.Dsp;

/// <summary>
/// An engine that passes everything to <c>inner</c> (tensors, DSP, synchronisation, gather/scatter/read) but presents
/// <c>nn</c> as its network operations: a wrapper around the inner engine's <see cref="Engine.Nn"/>, such as bench's
/// profiling proxy, which times every call. Tensors are the inner engine's. Disposing it leaves the inner engine open.
/// </summary>
public class ForwardingEngine(Engine inner, INnOps nn) : Engine
{
    /// <summary>The engine every call goes to.</summary>
    public Engine Inner { get; } = inner;

    /// <inheritdoc />
    public override string Name => Inner.Name;

    /// <inheritdoc />
    public override string DeviceName => Inner.DeviceName;

    /// <inheritdoc />
    public override Tensor Allocate(params int[] shape) => Inner.Allocate(shape);

    /// <inheritdoc />
    public override IDspOps Dsp => Inner.Dsp;

    /// <summary>The network operations given at construction.</summary>
    public override INnOps Nn { get; } = nn;

    /// <inheritdoc />
    public override void Synchronize() => Inner.Synchronize();

    /// <inheritdoc />
    public override void Gather(IReadOnlyList<Tensor> sources, Tensor destination, long offset = 0) => Inner.Gather(sources, destination, offset);

    /// <inheritdoc />
    public override void Scatter(Tensor source, long offset, IReadOnlyList<Tensor> destinations) => Inner.Scatter(source, offset, destinations);

    /// <inheritdoc />
    public override void ReadTensors(IReadOnlyList<Tensor> tensors, Span<float> destination) => Inner.ReadTensors(tensors, destination);

    /// <summary>The inner engine's tensors (which are the ones this engine allocates) and any tensor it holds.</summary>
    protected internal override bool Holds(Tensor tensor) => ReferenceEquals(tensor.Engine, this) || Inner.Holds(tensor);

    /// <summary>Does nothing: the inner engine belongs to whoever created it.</summary>
    public override void Dispose() { }
}

/// <summary>
/// A <see cref="DispatchProxy"/> for an operations interface (<c>DispatchProxy.Create&lt;INnOps, NnForwardingProxy&gt;()</c>)
/// that calls the same method on <see cref="Inner"/> and lets the method's own exception out (not reflection's
/// TargetInvocationException). The proxy presents only the interface it was created for, so an engine's optional
/// interfaces (<see cref="INnBatchNormPoolFusion"/>, <see cref="INnDeviceTraining"/>) are hidden unless that interface
/// inherits them. Subclasses add work around <see cref="InvokeInner"/>.
/// </summary>
public class NnForwardingProxy : DispatchProxy
{
    /// <summary>The object whose methods are called.</summary>
    public object Inner { get; set; } = new();

    /// <summary>Calls <paramref name="method"/> on <see cref="Inner"/> with <paramref name="args"/>.</summary>
    protected override object? Invoke(MethodInfo? method, object?[]? args) => InvokeInner(method, args);

    /// <summary>Calls <paramref name="method"/> on <see cref="Inner"/>, rethrowing the exception it throws as is.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="method"/> is null.</exception>
    protected object? InvokeInner(MethodInfo? method, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(method);
        try
        {
            return method.Invoke(Inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }
}
