using System.Runtime.CompilerServices;
using Hybrid.Dsp.Ilgpu;
using Hybrid.Dsp.Managed;

namespace Hybrid.Dsp;

/// <summary>Finds the <see cref="INnOps"/> implementation of an engine (one cached instance per engine).</summary>
public static class NnOps
{
    private static readonly ConditionalWeakTable<Engine, INnOps> Cache = new();

    /// <summary>The neural-network operations of <paramref name="engine"/>. Throws <see cref="NotSupportedException"/>
    /// naming the engine when it has no NN kernels (the managed and ILGPU engines have them).</summary>
    public static INnOps For(Engine engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        return Cache.GetValue(engine, e => e switch
        {
            ManagedEngine managed => new ManagedNn(managed),
            IlgpuEngine ilgpu => new IlgpuNn(ilgpu),
            _ => throw new NotSupportedException($"Engine '{e.Name}' ({e.DeviceName}) has no neural-network kernels yet; use the managed engine."),
        });
    }
}
