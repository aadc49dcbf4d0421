using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Hybrid.Cluster;

/// <summary>
/// Places a grain whose string key ends in "/K" (K an integer, e.g. a worker index) on the (K mod S)-th of the S
/// compatible silos ordered by address, so that N workers on N silos land exactly one per silo (Orleans' own
/// strategies spread by statistics and may stack replicas). Other keys fall back to a hash of the key.
/// </summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class SpreadPlacement : PlacementStrategy
{
    internal static readonly SpreadPlacement Singleton = new();
}

/// <summary>Marks a grain class for <see cref="SpreadPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class SpreadPlacementAttribute : PlacementAttribute
{
    /// <summary>Creates the attribute.</summary>
    public SpreadPlacementAttribute() : base(SpreadPlacement.Singleton) { }
}

/// <summary>The director of <see cref="SpreadPlacement"/>.</summary>
internal sealed class SpreadPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target).OrderBy(s => s.ToString(), StringComparer.Ordinal).ToArray();
        if (silos.Length == 0) throw new ClusterException($"grain {target.GrainIdentity}: no compatible silo is active.");
        var key = target.GrainIdentity.Key.ToString() ?? "";
        var slash = key.LastIndexOf('/');
        var index = slash >= 0 && int.TryParse(key.AsSpan(slash + 1), out var k) && k >= 0
            ? k
            : (int)(StableHash(key) & 0x7FFFFFFF);
        return Task.FromResult(silos[index % silos.Length]);
    }

    private static uint StableHash(string s)
    {
        var h = 2166136261u;
        foreach (var c in s) h = (h ^ c) * 16777619u;
        return h;
    }
}

/// <summary>Registers Hybrid's grains' needs on a silo.</summary>
public static class HybridSiloBuilderExtensions
{
    /// <summary>Adds what Hybrid's grains need on a silo (the <see cref="SpreadPlacement"/> director). Every silo of a
    /// cluster running Hybrid's grains calls it; <c>cluster silo</c> and the test cluster do.</summary>
    public static ISiloBuilder AddHybridGrains(this ISiloBuilder builder)
    {
        builder.AddPlacementDirector<SpreadPlacement, SpreadPlacementDirector>();
        return builder;
    }
}
