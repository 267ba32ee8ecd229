namespace ActorQueue.Coordination;

/// <summary>
/// The gate's refusals: who makes room in a full queue, what a rejected waiter is told, and when a retry could be
/// served.
/// </summary>
internal sealed partial class PermitGate
{
    /// <summary>In a full queue, makes room for <paramref name="waiter"/> if the bound allows; <c>false</c> when it must be rejected.</summary>
    private bool MakeRoomFor(PermitWaiter waiter, TimeSpan now)
    {
        if (_bound.HasRoom(_waiters.Count))
        {
            return true;
        }

        if (_bound.Evictee(_waiters, waiter) is not { } evicted)
        {
            return false;
        }

        _waiters.Remove(evicted);
        Publish(now);
        Reject(evicted, PermitRejectionKind.Evicted, 0, RetryAfter(evicted, now, newcomer: waiter)); // the newcomer queues next, ahead of any retry
        return true;
    }

    private void Reject(PermitWaiter waiter, PermitRejectionKind kind, int policy, TimeSpan? retryAfter = null)
    {
        var rejection = new PermitRejection(kind, _waiters.Count + 1, MaxQueued, _policies.Cost(policy, waiter.Demand), _policies[policy].Limit, retryAfter);
        waiter.Fail(_listener.Rejecting(waiter, rejection));
    }

    /// <summary>
    /// When a timed policy could serve a retry of <paramref name="waiter"/> after the demand queued ahead of it (and
    /// <paramref name="newcomer"/>, about to queue, in its place by priority); <c>null</c> when no timed policy knows.
    /// </summary>
    private TimeSpan? RetryAfter(PermitWaiter waiter, TimeSpan now, PermitWaiter? newcomer = null)
    {
        if (!_policies.IsTimed)
        {
            return null;
        }

        var ahead = _waiters.InServingOrder().Where(queued => queued.Priority >= waiter.Priority);
        if (newcomer is not null)
        {
            ahead = ahead.Where(queued => queued.Priority >= newcomer.Priority)
                         .Append(newcomer)
                         .Concat(ahead.Where(queued => queued.Priority < newcomer.Priority));
        }

        return _policies.RetryAfter(waiter.Demand, ahead, now);
    }
}
