using System.Diagnostics.CodeAnalysis;

namespace ActorQueue.Actors;

/// <summary>
/// The partitioned limiter's rule for creating and stopping partitions, apart from the actors (a pure class, tested
/// alone). Every request for a partition goes through <see cref="Route"/>, which counts it. A partition reports that
/// it is idle with how many of those it has handled; it is idle only if that is all of them, and it is stopped only
/// after staying so for the whole idle timeout. A request routed after the report makes the report stale, so a
/// partition that a request is on its way to is never stopped; a request routed after the stop makes a new one.
/// </summary>
/// <typeparam name="TChild">The partition's handle (its gatekeeper).</typeparam>
internal sealed class PartitionTable<TChild>(TimeSpan idleTimeout)
    where TChild : class
{
    /// <summary>The live partitions by key.</summary>
    private readonly Dictionary<object, Partition> _partitions = [];

    /// <summary>Idle reports, oldest first; an entry is live while its partition is still idle since that report.</summary>
    private readonly Queue<(object Key, Partition Partition, TimeSpan Since)> _idle = new();

    /// <summary>How many partitions are live.</summary>
    public int Count => _partitions.Count;

    /// <summary>Idle reports kept (live or stale); bounded by the reports of one idle timeout.</summary>
    public int IdleReports => _idle.Count;

    /// <summary>The partition for <paramref name="key"/>, made by <paramref name="create"/> if none is live; counts one request to it.</summary>
    public TChild Route(object key, Func<object, TChild> create)
    {
        if (!_partitions.TryGetValue(key, out var partition))
        {
            partition = new Partition(create(key));
            _partitions.Add(key, partition);
        }

        partition.Sent++;
        return partition.Child;
    }

    /// <summary>The live partition for <paramref name="key"/>, counting one message to it; <c>false</c> (nothing counted) when none is live.</summary>
    public bool TryRoute(object key, [MaybeNullWhen(false)] out TChild child)
    {
        if (_partitions.TryGetValue(key, out var partition))
        {
            partition.Sent++;
            child = partition.Child;
            return true;
        }

        child = null;
        return false;
    }

    /// <summary><paramref name="child"/> says it is idle having handled <paramref name="handled"/> requests; stale reports are ignored.</summary>
    public void Idle(object key, TChild child, long handled, TimeSpan now)
    {
        if (_partitions.TryGetValue(key, out var partition) && ReferenceEquals(partition.Child, child) && handled == partition.Sent)
        {
            partition.IdleSince = now;
            partition.IdleAt = handled;
            _idle.Enqueue((key, partition, now));
        }
    }

    /// <summary>Removes and returns the partitions idle for the whole timeout at <paramref name="now"/>; the caller stops them.</summary>
    public List<KeyValuePair<object, TChild>> Sweep(TimeSpan now)
    {
        var expired = new List<KeyValuePair<object, TChild>>();
        while (_idle.TryPeek(out var report))
        {
            var (key, partition, since) = report;
            var stillIdle = partition.IdleAt == partition.Sent && partition.IdleSince == since
                            && _partitions.TryGetValue(key, out var live) && ReferenceEquals(live, partition);
            if (stillIdle && now - since < idleTimeout)
            {
                break; // the oldest live report is not due, so no later one is
            }

            _idle.Dequeue();
            if (stillIdle)
            {
                _partitions.Remove(key);
                expired.Add(new(key, partition.Child));
            }
        }

        return expired;
    }

    /// <summary>One live partition.</summary>
    internal sealed class Partition(TChild child)
    {
        public TChild Child { get; } = child;

        /// <summary>Requests routed to it.</summary>
        public long Sent { get; set; }

        /// <summary>The <see cref="Sent"/> its last idle report covered; -1 before any.</summary>
        public long IdleAt { get; set; } = -1;

        /// <summary>When it last reported idle.</summary>
        public TimeSpan IdleSince { get; set; }
    }
}
