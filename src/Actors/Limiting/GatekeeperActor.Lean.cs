using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper's lean FIFO (<see cref="FifoWaiters"/>), without rates: facade callers of priority 0 without a wait
/// timeout who find the permits taken wait in a queue made of the actor's own fields, granted from the front as permits
/// come back, so a contended limiter's turn writes the actor, the pool and the waiters it serves rather than the gate's
/// queue objects (a partition does the same, <c>Partition.Lean.cs</c>; BENCHMARKS round 42). Waiters stand in the lean
/// FIFO or in the gate, never both: anything that needs the gate — a request with a priority, a deadline, more than the
/// limit or a full queue, an actor caller, a resize, a status, a restart, the stop, any actor message but a withdrawal —
/// first moves the lean waiters into the gate in their order (<see cref="SpillLean"/>), and the gate is then the whole truth
/// for it. Lease numbers come from the gate's count (<see cref="PermitGate.NextLeaseId"/>), so they are one sequence.
/// </summary>
internal sealed partial class GatekeeperActor
{
    /// <summary>The lean waiters, oldest first; empty whenever the gate has waiters.</summary>
    private FifoWaiters _fifo;

    /// <summary>
    /// Whether <paramref name="request"/> waits in the lean FIFO: a limiter without rates whose gate has no waiters, a
    /// request of priority 0 without a deadline that can fit the limit, with room in the queue, that cannot be granted
    /// now (someone waits before it, or the permits are taken).
    /// </summary>
    private bool WaitsLean(AcquireRequest request) =>
        _turn is not null && _gate.Waiting == 0 && _gate.IsOpen
        && FifoWaiters.Takes(request.Priority, request.TimeLeft) && request.Demand.Permits <= _slots.Limit
        && _fifo.Count < (_gate.MaxQueued ?? int.MaxValue)
        && (_fifo.Count != 0 || !FitsNow(request.Demand));

    /// <summary>Whether <paramref name="demand"/> fits the free permits now.</summary>
    private bool FitsNow(PermitDemand demand) => _slots.CanTake(demand.Permits, TimeSpan.Zero);

    /// <summary>Queues <paramref name="request"/> at the back of the lean FIFO (unless it was cancelled before it got here), published and told.</summary>
    private void QueueLean(AcquireRequest request)
    {
        if (request.IsWithdrawn)
        {
            return; // cancelled before it got here: it takes nothing and never queues, as a gate's offer
        }

        _fifo.Enqueue(request, this);
        var queued = LeanSnapshot();
        IPermitGateListener listener = this;
        listener.Publish(queued);
        listener.Queued(request);
        request.OnQueued(queued);
        AssertLean();
    }

    /// <summary>
    /// After permits came back or a waiter left: grants the front of the lean FIFO while it fits, in order (a front that
    /// does not fit blocks the ones behind it, as the gate's head does), each grant published before its waiter hears;
    /// publishes the counts once if it granted nobody.
    /// </summary>
    private void GrantLeanOrPublish()
    {
        var granted = false;
        while (_fifo.Head is { } head && FitsNow(head.Demand))
        {
            _fifo.Remove(head, this);
            GrantLean(head);
            granted = true;
        }

        if (!granted)
        {
            ((IPermitGateListener)this).Publish(LeanSnapshot());
        }

        AssertLean();
    }

    /// <summary>
    /// Takes the front's permits, publishes, then tells it, as the gate's grant does; one cancelled at this instant takes
    /// nothing (its permits go back, published).
    /// </summary>
    private void GrantLean(PermitWaiter waiter)
    {
        var demand = waiter.Demand;
        _slots.Take(demand.Permits, TimeSpan.Zero);
        var grant = new PermitGrant(_gate.NextLeaseId(), demand, LeanSnapshot(), Waited: true);
        IPermitGateListener listener = this;
        listener.Publish(grant.After);
        listener.Granting(waiter, grant);
        if (waiter.TryGrant(grant))
        {
            listener.Granted(waiter, grant);
            return;
        }

        _slots.Release(demand.Permits, TimeSpan.Zero);
        listener.GrantLost(waiter, grant);
        listener.Publish(LeanSnapshot());
    }

    /// <summary>A cancelled lean waiter leaves; whoever it blocked may go. <c>false</c> when it stood not here (the gate's, or granted).</summary>
    private bool WithdrawLean(PermitWaiter waiter)
    {
        if (!_fifo.Remove(waiter, this))
        {
            return false;
        }

        GrantLeanOrPublish();
        return true;
    }

    /// <summary>
    /// Moves the lean waiters into the gate, in their order, published once (the counts do not change): from here the
    /// gate serves them with whatever needs it. A no-op when none waits lean.
    /// </summary>
    private void SpillLean()
    {
        if (_fifo.Count == 0)
        {
            return;
        }

        _gate.Requeue(_fifo.TakeAll(this));
        AssertLean();
    }

    /// <summary>The counts with the lean FIFO's waiters (the gate has none meanwhile).</summary>
    private PermitSnapshot LeanSnapshot() => new(_slots.InUse, _slots.Available(TimeSpan.Zero), _fifo.Count);

    /// <summary>The lean FIFO is well formed, the gate has no waiters beside it, and its front does not fit (else it would have been granted).</summary>
    [Conditional("DEBUG")]
    private void AssertLean()
    {
        _fifo.AssertInvariants(this);
        Invariant.That(_fifo.Count == 0 || _gate.Waiting == 0, "waiters stand in the lean FIFO or in the gate, never both");
        Invariant.That(_fifo.Head is not { IsWithdrawn: false } head || !FitsNow(head.Demand),
                       "a lean front that fits is granted (work-conserving, no lost wake-up)");
    }
}
