namespace ActorQueue.Actors;

/// <summary>What a limiter does when <c>max_queued</c> callers already wait and one more would have to wait.</summary>
public enum QueueFullMode
{
    /// <summary>The newcomer is rejected with <see cref="ConcurrencyLimitExceededException"/>; nothing else changes.</summary>
    RejectNewcomer = 0,

    /// <summary>
    /// If some waiter has a lower priority than the newcomer, the newest waiter of the lowest priority leaves the
    /// queue with <see cref="ConcurrencyLimitExceededException"/> and the newcomer takes its place; otherwise the
    /// newcomer is rejected. Nobody's order of service changes.
    /// </summary>
    EvictLowestPriorityNewest = 1,
}

/// <summary>Why the gatekeeper turned a request away (<see cref="GatekeeperProtocol.Rejected.Kind"/>).</summary>
public enum RejectionReason
{
    /// <summary>The wait queue held <c>max_queued</c> waiters.</summary>
    QueueFull = 0,

    /// <summary>A higher-priority request took this waiter's place in a full queue.</summary>
    Evicted = 1,

    /// <summary>The wait timeout passed (or was zero and no permit was free).</summary>
    TimedOut = 2,

    /// <summary>The request asks more permits than <c>max_running</c>, so it could never be granted.</summary>
    ExceedsLimit = 3,

    /// <summary>The limiter is disposed.</summary>
    Disposed = 4,

    /// <summary>The request itself is invalid: a request id in use, a permit count or timeout out of range, or sent with <c>Ask</c> (its temporary actor cannot hold a lease).</summary>
    InvalidRequest = 5,
}
