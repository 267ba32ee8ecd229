namespace ActorQueue.Coordination;

/// <summary>
/// A <see cref="PermitGate"/>'s bound on waiters and its rule for a full queue: reject the newcomer, or evict the
/// newest waiter of the lowest priority when that priority is below the newcomer's (never an equal one, so nobody is
/// pushed out by a peer, and service order never changes).
/// </summary>
internal sealed class QueueBound
{
    public QueueBound(int? maxQueued, QueueFullPolicy whenFull)
    {
        Set(maxQueued);
        WhenFull = whenFull;
    }

    /// <summary>How many may wait; <c>null</c> for no bound.</summary>
    public int? MaxQueued { get; private set; }

    /// <summary>What a full queue does with a newcomer.</summary>
    public QueueFullPolicy WhenFull { get; }

    /// <summary>Bounds the queue anew; waiters already beyond it stay.</summary>
    public void Set(int? maxQueued)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxQueued.GetValueOrDefault(), nameof(maxQueued));
        MaxQueued = maxQueued;
    }

    /// <summary>Whether one more may queue behind <paramref name="waiting"/>.</summary>
    public bool HasRoom(int waiting) => MaxQueued is not { } maxQueued || waiting < maxQueued;

    /// <summary>Who leaves a full queue so that <paramref name="newcomer"/> may queue; <c>null</c> when the newcomer is rejected.</summary>
    public PermitWaiter? Evictee(PriorityWaiterQueue waiters, PermitWaiter newcomer) =>
        WhenFull == QueueFullPolicy.EvictLowestNewest && waiters.Count != 0 && waiters.LowestPriority < newcomer.Priority
            ? waiters.NewestOfLowest
            : null;
}
