using System.Diagnostics;
using System.Numerics;

namespace ActorQueue.Actors;

/// <summary>
/// A count that many threads add to without sharing a cache line: each processor adds to its own cell (by
/// <see cref="Thread.GetCurrentProcessorId"/>, which may be stale, so the add stays atomic), and a read sums the cells.
/// For statistics on a path as short as a loan claim, where one shared counter costs as much as the claim itself.
/// </summary>
[DebuggerDisplay("{Read()}")]
internal sealed class StripedCount
{
    /// <summary>Longs per cell: 128 bytes, so no two cells share a cache line (or an adjacent-line prefetch pair).</summary>
    private const int Spacing = 16;

    /// <summary>The cells, <see cref="Spacing"/> apart, the first a line past the array's start.</summary>
    private readonly long[] _cells;

    /// <summary>The cell count minus one (a power of two).</summary>
    private readonly int _mask;

    public StripedCount()
    {
        var cells = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(Environment.ProcessorCount, 1, 64));
        _mask = cells - 1;
        _cells = new long[(cells + 1) * Spacing];
    }

    /// <summary>Adds one.</summary>
    public void Increment() => Interlocked.Increment(ref _cells[((Thread.GetCurrentProcessorId() & _mask) + 1) * Spacing]);

    /// <summary>The sum; exact once the adders are done, a value the count passed through (or will) while they are not.</summary>
    public long Read()
    {
        var sum = 0L;
        for (var cell = 1; cell <= _mask + 1; cell++)
        {
            sum += Volatile.Read(ref _cells[cell * Spacing]);
        }

        return sum;
    }
}
