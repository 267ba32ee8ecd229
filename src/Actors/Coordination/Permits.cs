namespace ActorQueue.Coordination;

// The small values a PermitGate takes and gives: what a request asks, what the gate reports, why it refuses.

/// <summary>What one request asks of every policy of a gate.</summary>
/// <param name="Permits">The permits asked for (the slots of a pool, the requests of a rate); at least 1.</param>
/// <param name="Tokens">The tokens asked for, for a policy that counts tokens (a token rate); 0 when none is counted.</param>
internal readonly record struct PermitDemand(int Permits = 1, long Tokens = 0)
{
    /// <summary>One permit and no tokens: every request today.</summary>
    public static PermitDemand One => new(1);
}

/// <summary>Which part of a <see cref="PermitDemand"/> a policy counts.</summary>
internal enum PermitMeasure
{
    /// <summary>Every request costs 1, whatever it asks.</summary>
    Calls,

    /// <summary>A request costs its <see cref="PermitDemand.Permits"/>.</summary>
    Permits,

    /// <summary>A request costs its <see cref="PermitDemand.Tokens"/>.</summary>
    Tokens,
}

/// <summary>The counts of a gate's first (primary) policy and its queue, as the owner publishes them.</summary>
/// <param name="InUse">Held now.</param>
/// <param name="Available">Free now.</param>
/// <param name="Waiting">Waiters in the queue.</param>
internal readonly record struct PermitSnapshot(long InUse, long Available, int Waiting);

/// <summary>One grant, as its waiter and the gate's owner see it.</summary>
/// <param name="LeaseId">The gate's number for this grant, unique within the gate.</param>
/// <param name="Demand">What was granted.</param>
/// <param name="After">The counts with this grant taken.</param>
/// <param name="Waited">Whether the waiter stood in the queue (<c>false</c>: granted on arrival).</param>
internal readonly record struct PermitGrant(long LeaseId, PermitDemand Demand, PermitSnapshot After, bool Waited);

/// <summary>Why a gate turns a waiter away.</summary>
internal enum PermitRejectionKind
{
    /// <summary>The queue holds <c>max_queued</c> waiters already.</summary>
    QueueFull,

    /// <summary>A newcomer of a higher priority took its place in a full queue.</summary>
    Evicted,

    /// <summary>It may not wait (a zero timeout) and no permit was free for it.</summary>
    WouldWait,

    /// <summary>It asks more than a policy can ever grant.</summary>
    ExceedsLimit,

    /// <summary>Its wait timeout passed.</summary>
    TimedOut,

    /// <summary>The gate's owner stops.</summary>
    Disposed,
}

/// <summary>A rejection, with what its exception or reply needs to say.</summary>
/// <param name="Kind">Why.</param>
/// <param name="QueueDepth">The queue depth it would have made (the waiters, and it).</param>
/// <param name="MaxQueued">The bound on waiters; <c>null</c> for none.</param>
/// <param name="Requested">What it asked of the policy that refused (the primary for queue rejections).</param>
/// <param name="Limit">That policy's limit.</param>
/// <param name="RetryAfter">When a time-based policy could serve it, counting the demand queued ahead; <c>null</c> when no time-based policy knows.</param>
internal readonly record struct PermitRejection(PermitRejectionKind Kind, int QueueDepth, int? MaxQueued,
                                                long Requested, long Limit, TimeSpan? RetryAfter);

/// <summary>What a full queue does with a newcomer.</summary>
internal enum QueueFullPolicy
{
    /// <summary>The newcomer is rejected and nothing changes.</summary>
    RejectNewcomer,

    /// <summary>The newest waiter of the lowest priority makes room, if that priority is below the newcomer's.</summary>
    EvictLowestNewest,
}

/// <summary>What <see cref="PermitGate.Offer"/> did with a waiter.</summary>
internal enum OfferOutcome
{
    /// <summary>It holds its permits now.</summary>
    Granted,

    /// <summary>It waits in the queue and was told so.</summary>
    Queued,

    /// <summary>It was turned away and told why.</summary>
    Rejected,

    /// <summary>It had withdrawn (cancelled) before or as it was served: it took nothing.</summary>
    Withdrawn,
}
