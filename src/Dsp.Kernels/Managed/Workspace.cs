using V = System.Runtime.Intrinsics.Vector256<float>;

namespace Hybrid.Dsp.Managed;

/// <summary>
/// Per-thread scratch buffers of the managed engine: a few numbered slots of vectors, floats and doubles that
/// grow on demand and are reused by every later operation on the same thread, so hot loops allocate nothing.
/// A caller takes all the slots it needs at the start of its work item and must not call another operation
/// that uses the same slots while holding them.
/// </summary>
internal sealed class Workspace
{
    [ThreadStatic] private static Workspace? _current;

    private readonly V[][] _vectors = [[], [], []];
    private readonly float[][] _floats = [[], [], []];
    private readonly double[][] _doubles = [[], [], []];

    /// <summary>This thread's workspace.</summary>
    public static Workspace Current => _current ??= new Workspace();

    /// <summary>Vector slot <paramref name="slot"/> (0..2) with at least <paramref name="length"/> elements (contents undefined).</summary>
    public Span<V> Vectors(int slot, int length) => Grow(_vectors, slot, length);

    /// <summary>Float slot <paramref name="slot"/> (0..2) with at least <paramref name="length"/> elements (contents undefined).</summary>
    public Span<float> Floats(int slot, int length) => Grow(_floats, slot, length);

    /// <summary>Float slot <paramref name="slot"/> (0..2) as its array, at least <paramref name="length"/> long (contents
    /// undefined; the same storage as <see cref="Floats"/> of that slot).</summary>
    public float[] FloatArray(int slot, int length)
    {
        Grow(_floats, slot, length);
        return _floats[slot];
    }

    /// <summary>Double slot <paramref name="slot"/> (0..2) with at least <paramref name="length"/> elements (contents undefined).</summary>
    public Span<double> Doubles(int slot, int length) => Grow(_doubles, slot, length);

    private static Span<T> Grow<T>(T[][] slots, int slot, int length)
    {
        if (slots[slot].Length < length) slots[slot] = new T[Math.Max(length, slots[slot].Length * 3 / 2)];
        return slots[slot].AsSpan(0, length);
    }
}
