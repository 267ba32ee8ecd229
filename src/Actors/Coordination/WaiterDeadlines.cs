namespace ActorQueue.Coordination;

/// <summary>
/// The deadlines of a <see cref="PermitGate"/>'s waiters that have a timeout, earliest first. Entries are not removed
/// when a waiter leaves the queue otherwise: an entry is live while its waiter still stands in the gate's queue, and
/// stale ones are dropped as they surface, or all at once when they outnumber the waiters.
/// </summary>
internal sealed class WaiterDeadlines(Predicate<PermitWaiter> isQueued)
{
    /// <summary>Waiters by deadline (gate time); made on the first timeout.</summary>
    private PriorityQueue<PermitWaiter, TimeSpan>? _entries;

    /// <summary>Whether any entry, live or stale, is left.</summary>
    public bool IsEmpty => _entries is not { Count: > 0 };

    /// <summary>Records that <paramref name="waiter"/> fails at <paramref name="now"/> + <paramref name="timeout"/> (never, if that is past the end of time).</summary>
    public void Add(PermitWaiter waiter, TimeSpan timeout, TimeSpan now)
    {
        if (timeout < TimeSpan.MaxValue - now)
        {
            (_entries ??= new()).Enqueue(waiter, now + timeout);
        }
    }

    /// <summary>Every recorded deadline by its waiter, stale ones included (one pass: for a restart's carry-over, not the serving path).</summary>
    public Dictionary<PermitWaiter, TimeSpan> ByWaiter()
    {
        var byWaiter = new Dictionary<PermitWaiter, TimeSpan>(ReferenceEqualityComparer.Instance);
        if (_entries is not null)
        {
            foreach (var (waiter, deadline) in _entries.UnorderedItems)
            {
                byWaiter.TryAdd(waiter, deadline);
            }
        }

        return byWaiter;
    }

    /// <summary>Takes the next live waiter whose deadline is at or before <paramref name="now"/>.</summary>
    public bool TryTakeDue(TimeSpan now, out PermitWaiter waiter)
    {
        while (_entries is not null && _entries.TryPeek(out waiter!, out var deadline) && deadline <= now)
        {
            _entries.Dequeue();
            if (isQueued(waiter))
            {
                return true;
            }
        }

        waiter = null!;
        return false;
    }

    /// <summary>The earliest live deadline; <see cref="TimeSpan.MaxValue"/> when none.</summary>
    public TimeSpan Next(int waiting)
    {
        if (_entries is null)
        {
            return TimeSpan.MaxValue;
        }

        if (_entries.Count > (2 * waiting) + 16)
        {
            _entries = new(_entries.UnorderedItems.Where(entry => isQueued(entry.Element)));
        }

        while (_entries.TryPeek(out var waiter, out var deadline))
        {
            if (isQueued(waiter))
            {
                return deadline;
            }

            _entries.Dequeue();
        }

        return TimeSpan.MaxValue;
    }
}
