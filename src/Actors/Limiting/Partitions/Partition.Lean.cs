using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// A partition without a gate (<see cref="FifoWaiters"/>): grants, queues and hands on in arrival order with its own
/// fields, the count of held permits and the lean FIFO, so a contended partition's turn writes its own object and the
/// waiters it serves, not the five of a <see cref="PermitGate"/>.
/// </summary>
internal sealed partial class Partition
{
    /// <summary>Without a gate: takes <paramref name="demand"/>, publishes, and hands <paramref name="waiter"/> the grant; one cancelled at this instant takes nothing.</summary>
    /// <returns>Whether it was granted.</returns>
    private bool GrantLean(PermitWaiter waiter, PermitDemand demand, bool waited)
    {
        _held += demand.Permits;
        var after = LeanSnapshot();
        var grant = new PermitGrant(++_lastLeaseId, demand, after, waited);
        Publish(after);
        if (waiter.TryGrant(grant))
        {
            _shared.Granted(waiter, grant);
            return true;
        }

        // Cancelled at this instant: it takes nothing.
        _held -= demand.Permits;
        Publish(LeanSnapshot());
        return false;
    }

    /// <summary>Without a gate: queues <paramref name="request"/> at the back of the lean FIFO (unless it was cancelled before it got here), published and told.</summary>
    private void QueueLean(AcquireRequest request)
    {
        if (request.IsWithdrawn)
        {
            return; // cancelled before it got here: it takes nothing and never queues, as a gate's offer
        }

        _fifo.Enqueue(request, this);
        var queued = LeanSnapshot();
        Publish(queued);
        _shared.Queued(request);
        request.OnQueued(queued);
        AssertLean();
    }

    /// <summary>
    /// Without a gate, after permits came back or a waiter left: grants the front of the lean FIFO while it fits, in order
    /// (the front that does not fit blocks the ones behind it, as a gate's head does), each grant published before its
    /// waiter hears; publishes the counts once if it granted nobody.
    /// </summary>
    private void GrantLeanOrPublish()
    {
        var granted = false;
        while (_fifo.Head is { } head && head.Demand.Permits <= _shared.Settings.MaxRunning - _held)
        {
            _fifo.Remove(head, this);
            GrantLean(head, head.Demand, waited: true);
            granted = true;
        }

        if (!granted)
        {
            Publish(LeanSnapshot());
        }

        AssertLean();
    }

    /// <summary>Without a gate: the counts now.</summary>
    private PermitSnapshot LeanSnapshot() => new(_held, _shared.Settings.MaxRunning - _held, _fifo.Count);

    /// <summary>Without a gate: the lean FIFO is well formed, and its front does not fit (else it would have been granted).</summary>
    [Conditional("DEBUG")]
    private void AssertLean()
    {
        _fifo.AssertInvariants(this);
        Invariant.That(_fifo.Head is not { IsWithdrawn: false } head || head.Demand.Permits > _shared.Settings.MaxRunning - _held,
                       "a lean front that fits is granted (work-conserving, no lost wake-up)");
    }

    /// <summary>
    /// The limiter stops: every waiter of the lean FIFO fails as disposed, in order, after all are out and the counts say
    /// so (as a gate's <see cref="PermitGate.RejectAll"/> publishes before it tells anyone: before, a waiter failed here
    /// could read itself and the others still waiting).
    /// </summary>
    private void FailLeanWaiters()
    {
        if (_fifo.Count == 0)
        {
            return;
        }

        var waiters = _fifo.TakeAll(this);
        Publish(LeanSnapshot());
        foreach (var waiter in waiters)
        {
            waiter.Fail(PermitRejections.Disposed()); // what the gate's listener gives a disposed waiter (PartitionShared.Rejecting)
        }
    }
}
