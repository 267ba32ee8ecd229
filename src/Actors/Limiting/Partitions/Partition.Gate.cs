using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// The partition's gate: made by the first request that needs more than the lean count (a priority, a wait timeout, a
/// full queue, more permits than the limit), or at once for a partition with rates, taking the lean waiters over in
/// order; its wakes; and what it tells the partition as its listener.
/// </summary>
internal sealed partial class Partition
{
    private void EnsureGate()
    {
        if (_gate is not null)
        {
            return;
        }

        // Made whole before any field changes: the gate reads the limit's clock (the application's TimeProvider), and one
        // that throws must leave the bare count as it was (before, the held permits had moved into a pool the failed gate
        // left behind, and the next release took the count below zero: callers were granted past the limit).
        var rates = _shared.Settings.Rates?.Invoke();
        var pool = new PermitPool(_shared.Settings.MaxRunning);
        pool.Take(_held, TimeSpan.Zero);
        // With rates it is a model API's partition: its callers queue for tokens, which its RateLimiting adapter's permits are.
        var queuedIn = rates is null ? PermitMeasure.Permits : PermitMeasure.Tokens;
        var gate = new PermitGate(this, rates is null ? [pool] : [pool, .. rates], _shared.Settings.MaxQueued, _shared.WhenFull, _shared.GateTime, queuedIn, lastLeaseId: _lastLeaseId);

        // Read after the gate read its own start, so a wake in the actor's time is never before the gate's deadline.
        var origin = _shared.Now;
        (_rates, _pool, _gate, _gateOrigin, _held) = (rates, pool, gate, origin, 0);

        // The lean FIFO's waiters go over in order, ahead of whoever made the gate, published once when all are over (one
        // by one, the waiting count and its meter dipped and climbed back as if they had left and queued again); its
        // front did not fit, so none is granted.
        if (_fifo.Count != 0)
        {
            gate.Requeue(_fifo.TakeAll(this));
            Debug.Assert(gate.Snapshot.InUse == pool.InUse && _waiting == gate.Waiting, "Taken over without a grant.");
        }
    }

    /// <summary>Its wake came: expire the waiters past their deadline and grant what a rate gives back.</summary>
    public void Wake() => _gate?.Wake();

    /// <summary>When the gate wants a wake, in the actor's time; <see cref="TimeSpan.MaxValue"/> for never.</summary>
    public TimeSpan NextWakeAt => _gate is { NextWakeAt: var next } && next != TimeSpan.MaxValue ? _gateOrigin + next : TimeSpan.MaxValue;

    /// <inheritdoc />
    void IPermitGateListener.Publish(in PermitSnapshot now) => Publish(now);

    /// <inheritdoc />
    void IPermitGateListener.Queued(PermitWaiter waiter) => _shared.Queued(waiter);

    /// <inheritdoc />
    void IPermitGateListener.Granting(PermitWaiter waiter, in PermitGrant grant)
    {
        // Only facade callers reach a partition: nothing to book.
    }

    /// <inheritdoc />
    void IPermitGateListener.GrantLost(PermitWaiter waiter, in PermitGrant grant)
    {
        // Nothing was booked in Granting.
    }

    /// <inheritdoc />
    void IPermitGateListener.Granted(PermitWaiter waiter, in PermitGrant grant) => _shared.Granted(waiter, grant);

    /// <inheritdoc />
    Exception IPermitGateListener.Rejecting(PermitWaiter waiter, in PermitRejection rejection) => _shared.Rejecting(waiter, rejection);
}
