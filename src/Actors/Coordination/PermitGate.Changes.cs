using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>
/// The gate's changes from outside its serving path (its owner's resizes, bounds, recovery, hand-overs and stops):
/// each leaves the counts published and the next wake computed, as every serving call does.
/// </summary>
internal sealed partial class PermitGate
{
    /// <summary>
    /// Gives <paramref name="policy"/> a new limit. Held permits stay held; queued waiters that can never fit now fail
    /// (<see cref="PermitRejectionKind.ExceedsLimit"/>); waiters that fit now are granted in order.
    /// </summary>
    public void Resize(IPermitPolicy policy, long limit)
    {
        var index = _policies.IndexOf(policy);
        if (index < 0)
        {
            throw new ArgumentException("The policy is not one of this gate's.", nameof(policy));
        }

        policy.Resize(limit);
        var now = PolicyTime();
        var tooLarge = _waiters.RemoveWhere(waiter => _policies.Cost(index, waiter.Demand) > policy.Limit);
        Publish(now);
        foreach (var waiter in tooLarge)
        {
            Reject(waiter, PermitRejectionKind.ExceedsLimit, index);
        }

        Pump(now);
        Finish();
    }

    /// <summary>Bounds the queue anew; waiters already queued beyond the new bound stay (only newcomers see it).</summary>
    public void SetMaxQueued(int? maxQueued)
    {
        _bound.Set(maxQueued);
        Finish();
    }

    /// <summary>Stops granting (recovering): newcomers queue or are rejected, nobody is granted.</summary>
    public void Close()
    {
        IsOpen = false;
        Finish();
    }

    /// <summary>Grants again, starting with the waiters that fit now, in order.</summary>
    public void Open()
    {
        IsOpen = true;
        Pump(PolicyTime());
        Finish();
    }

    /// <summary>Counts a hold the gate did not grant (announced by a member after a hand-over), even beyond the limit.</summary>
    public void Adopt(PermitDemand held)
    {
        var now = PolicyTime();
        _policies.Take(held, now);
        Publish(now);
        Finish();
    }

    /// <summary>
    /// Puts a waiter back at the tail of its priority, past any bound (a recovered wait; a notified condition waiter
    /// queueing for its lock). It keeps a deadline entry it still has; it gets no new one.
    /// </summary>
    public void Requeue(PermitWaiter waiter)
    {
        Debug.Assert(!waiter.IsQueued, "A requeued waiter stands in no queue.");
        _waiters.Enqueue(waiter);
        Requeued();
    }

    /// <summary>
    /// Queues <paramref name="waiters"/> at the tail in their order (its owner's own queue handing them over: a partition's
    /// lean FIFO as it makes its gate), published once after all are in, then grants whoever fits.
    /// </summary>
    public void Requeue(IReadOnlyList<PermitWaiter> waiters)
    {
        foreach (var waiter in waiters)
        {
            Debug.Assert(!waiter.IsQueued, "A requeued waiter stands in no queue.");
            _waiters.Enqueue(waiter);
        }

        Requeued();
    }

    /// <summary>After a requeue: the counts published once, then whoever fits granted.</summary>
    private void Requeued()
    {
        var now = PolicyTime();
        Publish(now);
        Pump(now);
        Finish();
    }

    /// <summary>
    /// Numbers a grant its owner makes past the gate (a gatekeeper's lean FIFO, while the gate has no waiters): the
    /// owner's and the gate's grants count up as one sequence, read back through <see cref="LastLeaseId"/>.
    /// </summary>
    public long NextLeaseId() => _lastLeaseId.Increment();

    /// <summary>Fails every waiter, in serving order, with <paramref name="kind"/>; the queue is empty afterwards.</summary>
    public void RejectAll(PermitRejectionKind kind)
    {
        foreach (var waiter in RemoveWhere(static _ => true))
        {
            Reject(waiter, kind, 0);
        }

        Finish();
    }

    /// <summary>
    /// As <see cref="RemoveWhere"/>, each waiter with how long it may still wait (<c>null</c> for ever): read before the
    /// gate forgets the deadlines of waiters no longer queued (a restarting gatekeeper carries them over).
    /// </summary>
    public List<(PermitWaiter Waiter, TimeSpan? TimeLeft)> RemoveWithTimeLeft(Predicate<PermitWaiter> match)
    {
        var deadlines = _deadlines.ByWaiter();
        var policyTime = PolicyTime(); // the clock first: a read that throws takes nobody out
        var now = deadlines.Count == 0 ? TimeSpan.Zero : _policies.IsTimed ? policyTime : Now;
        var withTimeLeft = _waiters.RemoveWhere(match)
            .ConvertAll(waiter => (waiter, deadlines.TryGetValue(waiter, out var deadline) ? deadline - now : (TimeSpan?)null));
        Publish(policyTime);
        Finish(policyTime);
        return withTimeLeft;
    }

    /// <summary>
    /// Takes the waiters that match out of the queue, untold and without granting anyone (its owner hands them on, and
    /// the rest are about to be rejected); higher priority first, oldest first within one.
    /// </summary>
    public List<PermitWaiter> RemoveWhere(Predicate<PermitWaiter> match)
    {
        var now = PolicyTime(); // the clock first: a read that throws takes nobody out
        var removed = _waiters.RemoveWhere(match);
        Publish(now);
        Finish(now);
        return removed;
    }
}
