using System.Collections.Concurrent;
using System.Diagnostics;

namespace Hybrid.Dsp.Ilgpu;

/// <summary>Host/device traffic counted by <see cref="TransferCounter"/>.</summary>
public enum TransferKind
{
    /// <summary>A copy from host memory to the device (tensor uploads, plan uploads).</summary>
    HostToDevice,

    /// <summary>A copy from the device to host memory (tensor reads, reduction results read back): each one waits for
    /// the queued work to finish.</summary>
    DeviceToHost,

    /// <summary>A wait for the device's stream to drain (<see cref="Engine.Synchronize"/> and the engine's own waits
    /// before it replaces a work buffer).</summary>
    Synchronize,
}

/// <summary>The transfers of one kind made from one call site.</summary>
/// <param name="Kind">What was counted.</param>
/// <param name="CallSite">The first caller outside Hybrid.Dsp ("Namespace.Type.Method"), then, in brackets, the engine
/// method that made the transfer when it is not the tensor copy or Synchronize itself, e.g.
/// "Hybrid.Classifier.Optimizers.clipByNorm [IlgpuNn.SumOfSquares]".</param>
/// <param name="Count">Number of transfers.</param>
/// <param name="Bytes">Bytes copied (0 for synchronisations).</param>
public readonly record struct TransferCount(TransferKind Kind, string CallSite, int Count, long Bytes);

/// <summary>
/// Counts an ILGPU engine's host-to-device copies, device-to-host copies and synchronisations by call site, to show
/// where a training step leaves the device. Off by default (a disabled counter costs one branch per transfer); while
/// enabled, each transfer walks the stack once to name its call site, so enable it for diagnosis and tests, not for
/// timing. Thread-safe.
/// </summary>
public sealed class TransferCounter
{
    private readonly ConcurrentDictionary<(TransferKind Kind, string Site), (int Count, long Bytes)> _counts = new();

    /// <summary>Whether transfers are being counted.</summary>
    public bool Enabled { get; set; }

    /// <summary>Forgets every count (the enabled state is kept).</summary>
    public void Reset() => _counts.Clear();

    /// <summary>The counts so far, one row per (kind, call site), ordered by kind then call site.</summary>
    public IReadOnlyList<TransferCount> Snapshot() =>
        _counts.Select(kv => new TransferCount(kv.Key.Kind, kv.Key.Site, kv.Value.Count, kv.Value.Bytes))
            .OrderBy(c => c.Kind).ThenBy(c => c.CallSite, StringComparer.Ordinal).ToList();

    /// <summary>The number of transfers of <paramref name="kind"/> from every call site.</summary>
    public int Total(TransferKind kind) => _counts.Where(kv => kv.Key.Kind == kind).Sum(kv => kv.Value.Count);

    /// <summary>Counts one transfer made by the calling engine method.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    internal void Record(TransferKind kind, long bytes)
    {
        if (!Enabled) return;
        var site = CallSite(new StackTrace(0, false));
        _counts.AddOrUpdate((kind, site), (1, bytes), (_, old) => (old.Count + 1, old.Bytes + bytes));
    }

    /// <summary>"Outer.Caller [Engine.Method]" from a stack trace that starts in the engine.</summary>
    private static string CallSite(StackTrace trace)
    {
        string? inner = null;
        foreach (var frame in trace.GetFrames())
        {
            var method = frame.GetMethod();
            var type = method?.DeclaringType;
            if (method is null || type is null) continue;
            var ns = type.Namespace ?? "";
            if (ns == "Hybrid.Dsp" || ns.StartsWith("Hybrid.Dsp.", StringComparison.Ordinal))
            {
                // The innermost engine method that is not the counting plumbing itself.
                if (inner is null && type != typeof(IlgpuTensor) && type != typeof(IlgpuEngine) && type != typeof(TransferCounter))
                    inner = $"{type.Name}.{method.Name}";
                continue;
            }
            if (ns.StartsWith("System", StringComparison.Ordinal) || ns.StartsWith("Microsoft.FSharp", StringComparison.Ordinal)) continue;
            var outer = $"{OuterName(type)}.{method.Name}";
            return inner is null ? outer : $"{outer} [{inner}]";
        }
        return inner ?? "(engine)";
    }

    /// <summary>The full name of the type, with F# closure classes (nested "name@line") folded into their parent.</summary>
    private static string OuterName(Type type)
    {
        while (type.DeclaringType is not null && type.Name.Contains('@')) type = type.DeclaringType;
        return (type.FullName ?? type.Name).Replace('+', '.');
    }
}
