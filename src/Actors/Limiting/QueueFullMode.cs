namespace ActorQueue.Actors;

/// <summary>What a limiter does when <c>max_queued</c> waiters already wait and one more arrives.</summary>
public enum QueueFullMode
{
    /// <summary>The newcomer is rejected with <see cref="ConcurrencyLimitExceededException"/>; nothing changes.</summary>
    RejectNewcomer = 0,

    /// <summary>
    /// The newest waiter of the lowest priority makes room (it gets <see cref="ConcurrencyLimitExceededException"/>),
    /// if that priority is below the newcomer's; otherwise the newcomer is rejected.
    /// </summary>
    EvictLowestPriorityNewest = 1,
}
