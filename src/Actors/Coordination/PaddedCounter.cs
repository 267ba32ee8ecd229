using System.Runtime.InteropServices;
using ActorQueue.Actors;

namespace ActorQueue.Coordination;

/// <summary>
/// A count one owner changes and reads (a gate's lease numbers), on a cache line of its own. Kept among the fields a
/// gate reads on every step (its queue, policies, listener), each change took their line from the core that ran the
/// previous step, and a contended limit's turn moves between cores on most operations, so the next step that only read
/// them (a caller queued) missed; here only a step that changes the count pays for it (docs/ARCHITECTURE.md, the
/// limiter's turn). Not thread-safe: its owner's steps are one at a time.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 3 * LimiterCounts.CacheLine)]
internal sealed class PaddedCounter
{
    [FieldOffset(LimiterCounts.CacheLine)]
    private long _value;

    /// <summary>A counter at <paramref name="start"/>.</summary>
    /// <param name="start">Where it counts up from (the next <see cref="Increment"/> gives one more).</param>
    public PaddedCounter(long start = 0) => _value = start;

    /// <summary>The count.</summary>
    public long Value => _value;

    /// <summary>Adds one.</summary>
    /// <returns>The new count.</returns>
    public long Increment() => ++_value;
}
