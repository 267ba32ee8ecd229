using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>
/// The waiters of a <see cref="PermitGate"/>: one FIFO (<see cref="WaiterQueue{TWaiter}"/>) per priority, higher
/// priorities first. Level 0 is made once and kept, so a gate whose callers never give a priority does no level
/// bookkeeping; any other level is dropped as soon as it is empty, so callers using many distinct priorities over
/// time leave nothing behind. Only the gate's owner touches it. Every waiter enters through <see cref="Enqueue"/> and
/// leaves through <see cref="Remove"/> or <see cref="RemoveWhere"/> (granted, withdrawn, timed out, evicted, failed,
/// resized away, handed on), which keep <see cref="Count"/> and <see cref="Queued"/> with one add each.
/// </summary>
[DebuggerDisplay("Count = {Count}, queued {Queued}, levels = {LevelCount}")]
internal sealed class PriorityWaiterQueue
{
    /// <summary>The levels, highest priority first; level 0 is always among them.</summary>
    private readonly List<Level> _levels;

    /// <summary>Level 0, always kept: with no other level (nobody uses priorities) it is the whole queue, found without a search.</summary>
    private readonly Level _zero = new(0);

    /// <summary>Whether <see cref="Queued"/> sums the waiters' tokens (<c>false</c>: their permits).</summary>
    private readonly bool _weighTokens;

    /// <summary>An empty queue, with level 0 only.</summary>
    /// <param name="weighed">What <see cref="Queued"/> sums: each waiter's <see cref="PermitDemand.Permits"/> or its <see cref="PermitDemand.Tokens"/>.</param>
    public PriorityWaiterQueue(PermitMeasure weighed = PermitMeasure.Permits)
    {
        if (weighed is not (PermitMeasure.Permits or PermitMeasure.Tokens))
        {
            throw new ArgumentOutOfRangeException(nameof(weighed), weighed, "The queued demand is summed in permits or in tokens.");
        }

        _weighTokens = weighed == PermitMeasure.Tokens;
        _levels = [_zero];
    }

    /// <summary>How many waiters stand in the queue, over all levels.</summary>
    public int Count { get; private set; }

    /// <summary>
    /// The demand the waiters in the queue ask for, summed in the measure it was made with (permits or tokens): what a
    /// <see cref="System.Threading.RateLimiting.RateLimiterStatistics.CurrentQueuedCount"/> reports.
    /// </summary>
    public long Queued { get; private set; }

    /// <summary>How many priority levels it keeps: level 0 and one per other priority that has a waiter.</summary>
    public int LevelCount => _levels.Count;

    /// <summary>The next waiter to serve: the oldest of the highest non-empty priority; <c>null</c> when empty.</summary>
    public PermitWaiter? Head => Count == 0 ? null : HighestNonEmpty().Queue.Head;

    /// <summary>The lowest priority that has a waiter; only when <see cref="Count"/> is above 0.</summary>
    public int LowestPriority => LowestNonEmpty().Priority;

    /// <summary>The newest waiter of the lowest priority: the one a full queue evicts; <c>null</c> when empty.</summary>
    public PermitWaiter? NewestOfLowest => Count == 0 ? null : LowestNonEmpty().Queue.Tail;

    /// <summary>Whether some waiter's priority is <paramref name="priority"/> or higher: a newcomer of that priority must queue behind it.</summary>
    public bool HasAtOrAbove(int priority) => Count != 0 && HighestNonEmpty().Priority >= priority;

    /// <summary>Whether <paramref name="waiter"/> stands in this queue (not in some other queue of the owner's).</summary>
    public bool Contains(PermitWaiter waiter) =>
        waiter.Queue is { } queue && Find(waiter.Priority) is { } level && ReferenceEquals(level.Queue, queue);

    /// <summary>Puts <paramref name="waiter"/> at the back of its priority.</summary>
    public void Enqueue(PermitWaiter waiter)
    {
        var priority = waiter.Priority;
        var level = Find(priority);
        if (level is null)
        {
            level = new Level(priority);
            var index = 0;
            while (index < _levels.Count && _levels[index].Priority > priority)
            {
                index++;
            }

            _levels.Insert(index, level);
        }

        level.Queue.Enqueue(waiter);
        Count++;
        Queued += Weight(waiter);
    }

    /// <summary>Removes <paramref name="waiter"/> if it stands in this queue.</summary>
    /// <returns><c>true</c> when it stood here and was removed.</returns>
    public bool Remove(PermitWaiter waiter)
    {
        if (waiter.Queue is null || Find(waiter.Priority) is not { } level || !level.Queue.Remove(waiter))
        {
            return false;
        }

        Count--;
        Queued -= Weight(waiter);
        if (level.Queue.IsEmpty && level.Priority != 0)
        {
            _levels.Remove(level);
        }

        return true;
    }

    /// <summary>Removes every waiter that matches <paramref name="match"/>, keeping the others in order.</summary>
    /// <returns>The removed waiters, higher priority first, oldest first within one.</returns>
    public List<PermitWaiter> RemoveWhere(Predicate<PermitWaiter> match)
    {
        var removed = new List<PermitWaiter>();
        foreach (var level in _levels.ToArray())
        {
            foreach (var waiter in level.Queue.RemoveWhere(match))
            {
                removed.Add(waiter);
                Count--;
                Queued -= Weight(waiter);
            }

            if (level.Queue.IsEmpty && level.Priority != 0)
            {
                _levels.Remove(level);
            }
        }

        return removed;
    }

    /// <summary>Every waiter in serving order, for the owner's checks; O(n).</summary>
    public IEnumerable<PermitWaiter> InServingOrder()
    {
        foreach (var level in _levels)
        {
            for (var waiter = level.Queue.Head; waiter is not null; waiter = waiter.Next)
            {
                yield return waiter;
            }
        }
    }

    /// <summary>Checks the structure: levels strictly descending, counts adding up, each waiter in its own level.</summary>
    [Conditional("DEBUG")]
    public void AssertInvariants()
    {
        var total = 0;
        var queued = 0L;
        for (var i = 0; i < _levels.Count; i++)
        {
            var level = _levels[i];
            Invariant.That(i == 0 || _levels[i - 1].Priority > level.Priority, "priority levels strictly descend");
            Invariant.That(level.Priority == 0 || !level.Queue.IsEmpty, "an empty level other than 0 is dropped");
            for (var waiter = level.Queue.Head; waiter is not null; waiter = waiter.Next)
            {
                Invariant.That(waiter.Priority == level.Priority && ReferenceEquals(waiter.Queue, level.Queue), "a waiter stands in its own priority's level");
                queued += Weight(waiter);
            }

            total += level.Queue.Count;
        }

        Invariant.That(total == Count, "the count is the sum of the levels");
        Invariant.That(queued == Queued, "the queued demand is the sum of the waiters' (every entry and exit counted)");
        Invariant.That(_levels.Exists(level => level.Priority == 0), "level 0 is kept");
    }

    /// <summary>What <paramref name="waiter"/> adds to <see cref="Queued"/>: its demand does not change while it stands here.</summary>
    private long Weight(PermitWaiter waiter) => _weighTokens ? waiter.Demand.Tokens : waiter.Demand.Permits;

    private Level? Find(int priority)
    {
        if (_levels.Count == 1)
        {
            return priority == 0 ? _zero : null;
        }

        foreach (var level in _levels)
        {
            if (level.Priority == priority)
            {
                return level;
            }
        }

        return null;
    }

    private Level HighestNonEmpty()
    {
        if (_levels.Count == 1 && !_zero.Queue.IsEmpty)
        {
            return _zero;
        }

        foreach (var level in _levels)
        {
            if (!level.Queue.IsEmpty)
            {
                return level;
            }
        }

        throw new InvalidOperationException("The queue is empty.");
    }

    private Level LowestNonEmpty()
    {
        for (var i = _levels.Count - 1; i >= 0; i--)
        {
            if (!_levels[i].Queue.IsEmpty)
            {
                return _levels[i];
            }
        }

        throw new InvalidOperationException("The queue is empty.");
    }

    /// <summary>The waiters of one priority, oldest first.</summary>
    private sealed class Level(int priority)
    {
        public int Priority { get; } = priority;

        public WaiterQueue<PermitWaiter> Queue { get; } = new();
    }
}
