using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>
/// The lean queue of a limit whose waiters all ask the common thing (priority 0, no wait timeout): one FIFO of
/// <see cref="PermitWaiter"/>s linked through the waiters themselves, held as a field of its owner, so its ends, its
/// count and its summed demand sit in the owner's own object, beside the count of held permits. A contended partition
/// queues and grants through this instead of a <see cref="PermitGate"/> (five objects, each a line the turn's next
/// core must fetch) until a request needs what only the gate has (BENCHMARKS round 41). Only the owner's turn touches it.
/// </summary>
/// <remarks>A mutable struct: kept in a field and only ever called through it (never copied), as the owner's turn is its only user.</remarks>
[DebuggerDisplay("Count = {Count}, queued {Queued}")]
internal struct FifoWaiters
{
    /// <summary>The oldest waiter, the next to serve; <c>null</c> when none waits.</summary>
    public PermitWaiter? Head;

    /// <summary>The newest waiter.</summary>
    private PermitWaiter? _tail;

    /// <summary>How many wait.</summary>
    public int Count;

    /// <summary>The permits the waiters ask for, summed.</summary>
    public long Queued;

    /// <summary>Whether a request asked with <paramref name="priority"/> and <paramref name="timeLeft"/> may wait here: priority 0 and no deadline.</summary>
    public static bool Takes(int priority, TimeSpan? timeLeft) => priority == 0 && (timeLeft is null || timeLeft == Timeout.InfiniteTimeSpan);

    /// <summary>Puts <paramref name="waiter"/> at the back; <paramref name="owner"/> marks it as standing here.</summary>
    public void Enqueue(PermitWaiter waiter, object owner)
    {
        Debug.Assert(!waiter.IsQueued, "A waiter stands in one queue at a time.");
        WaiterNode<PermitWaiter>.LinkLast(ref Head, ref _tail, waiter, owner);
        Count++;
        Queued += waiter.Demand.Permits;
    }

    /// <summary>Takes <paramref name="waiter"/> out if it stands here (<paramref name="owner"/>'s mark).</summary>
    /// <returns>Whether it stood here.</returns>
    public bool Remove(PermitWaiter waiter, object owner)
    {
        if (!ReferenceEquals(waiter.Queue, owner))
        {
            return false;
        }

        WaiterNode<PermitWaiter>.Unlink(ref Head, ref _tail, waiter);
        Count--;
        Queued -= waiter.Demand.Permits;
        return true;
    }

    /// <summary>Takes every waiter out (marked as <paramref name="owner"/>'s), in order.</summary>
    public List<PermitWaiter> TakeAll(object owner)
    {
        var waiters = new List<PermitWaiter>(Count);
        while (Head is { } waiter)
        {
            Remove(waiter, owner);
            waiters.Add(waiter);
        }

        return waiters;
    }

    /// <summary>Checks the structure: the links agree both ways, every waiter bears <paramref name="owner"/>'s mark, the counts add up.</summary>
    [Conditional("DEBUG")]
    public readonly void AssertInvariants(object owner)
    {
        var (count, queued) = (0, 0L);
        PermitWaiter? previous = null;
        for (var waiter = Head; waiter is not null; waiter = waiter.Next)
        {
            Invariant.That(ReferenceEquals(waiter.Queue, owner) && ReferenceEquals(waiter.Previous, previous), "a lean waiter is linked both ways and marked as standing here");
            Invariant.That(FifoWaiters.Takes(waiter.Priority, waiter.TimeLeft), "a lean waiter has priority 0 and no deadline");
            (count, queued, previous) = (count + 1, queued + waiter.Demand.Permits, waiter);
        }

        Invariant.That(ReferenceEquals(previous, _tail) && count == Count && queued == Queued, "the lean queue's tail, count and queued permits agree with its links");
    }
}
