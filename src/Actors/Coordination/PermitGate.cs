using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>
/// The FIFO permit gate every limiter and coordinator stands on: callers wait for permits of one or more
/// <see cref="IPermitPolicy"/> limits, higher priority first and in arrival order within a priority. A newcomer takes
/// free permits only when nobody of its priority or higher waits (no barging); the head of the queue blocks the
/// ones behind it until it fits (no starving a large request); every limit is checked and taken at once, so nobody
/// holds one limit while it waits for another. One actor owns the gate and is its only caller, so it takes no locks.
/// </summary>
/// <remarks>
/// The gate owns the queue, the grant rule and the counts of its policies; the owner keeps who holds what, its
/// mirrors and telemetry in its <see cref="IPermitGateListener"/>, which the gate calls after every change and before
/// any waiter hears. The clock is read only when a policy is timed or a waiter has a timeout, so a concurrency-only
/// gate never reads it.
/// </remarks>
[DebuggerDisplay("in use {Snapshot.InUse}, waiting {Waiting}, queued {Queued}, open {IsOpen}")]
internal sealed partial class PermitGate
{
    /// <summary>The owner's side: mirrors, books, telemetry, rejection exceptions.</summary>
    private readonly IPermitGateListener _listener;

    /// <summary>The limits every grant must fit, all at once; the first is the primary the snapshot reports.</summary>
    private readonly PermitPolicies _policies;

    /// <summary>The waiters, by priority then arrival.</summary>
    private readonly PriorityWaiterQueue _waiters;

    /// <summary>The deadlines of waiters with a timeout.</summary>
    private readonly WaiterDeadlines _deadlines;

    /// <summary>The clock for deadlines and timed policies.</summary>
    private readonly TimeProvider _time;

    /// <summary>The clock's timestamp when the gate was made: gate time counts from here.</summary>
    private readonly long _startedAt;

    /// <summary>How many may wait, and who makes room in a full queue.</summary>
    private readonly QueueBound _bound;

    /// <summary>The last lease number given out, on a line of its own (<see cref="PaddedCounter"/>).</summary>
    private readonly PaddedCounter _lastLeaseId;

    /// <param name="listener">The owner's side.</param>
    /// <param name="policies">The limits, primary first; at least one.</param>
    /// <param name="maxQueued">How many may wait; <c>null</c> for no bound.</param>
    /// <param name="whenFull">What a full queue does with a newcomer.</param>
    /// <param name="time">The clock; the system's when <c>null</c>.</param>
    /// <param name="queuedIn">What <see cref="Queued"/> sums: the waiters' permits, or their tokens.</param>
    /// <param name="startedAt">The clock stamp its time counts from (<see cref="Now"/>); now when <c>null</c>.</param>
    /// <param name="lastLeaseId">The last lease number its owner gave before the gate was made: its leases count on from there.</param>
    public PermitGate(IPermitGateListener listener, IReadOnlyList<IPermitPolicy> policies, int? maxQueued = null,
                      QueueFullPolicy whenFull = QueueFullPolicy.RejectNewcomer, TimeProvider? time = null,
                      PermitMeasure queuedIn = PermitMeasure.Permits, long? startedAt = null, long lastLeaseId = 0)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _listener = listener;
        _waiters = new PriorityWaiterQueue(queuedIn);
        _policies = new PermitPolicies(policies);
        _deadlines = new WaiterDeadlines(_waiters.Contains);
        _bound = new QueueBound(maxQueued, whenFull);
        _time = time ?? TimeProvider.System;
        _startedAt = startedAt ?? _time.GetTimestamp();
        _lastLeaseId = new PaddedCounter(lastLeaseId);
    }

    /// <summary>The primary policy's counts and the queue's length.</summary>
    public PermitSnapshot Snapshot => SnapshotAt(PolicyTime());

    /// <summary>How many wait.</summary>
    public int Waiting => _waiters.Count;

    /// <summary>
    /// What the waiters ask for, summed in the measure the gate was made with (permits, or tokens): kept by the queue
    /// on every entry and exit, so it is exact whenever the owner's listener is called.
    /// </summary>
    public long Queued => _waiters.Queued;

    /// <summary>Whether it grants; a closed gate (recovering) queues and rejects, but grants nothing.</summary>
    public bool IsOpen { get; private set; } = true;

    /// <summary>The number of the last lease it granted (they count up from 1): it moves with every grant.</summary>
    public long LastLeaseId => _lastLeaseId.Value;

    /// <summary>How many may wait; <c>null</c> for no bound.</summary>
    public int? MaxQueued => _bound.MaxQueued;

    /// <summary>What a full queue does with a newcomer.</summary>
    public QueueFullPolicy WhenFull => _bound.WhenFull;

    /// <summary>When the owner should call <see cref="Wake"/>: the earliest deadline, or when a timed policy fits the head; <see cref="TimeSpan.MaxValue"/> for never.</summary>
    public TimeSpan NextWakeAt { get; private set; } = TimeSpan.MaxValue;

    /// <summary>Gate time: how long since the gate was made, on its clock.</summary>
    public TimeSpan Now => _time.GetElapsedTime(_startedAt);

    /// <summary>Takes <paramref name="demand"/> for a caller that will not wait: only if it fits now and nobody waits.</summary>
    public bool TryAcquire(PermitDemand demand, out PermitGrant grant)
    {
        var now = PolicyTime();
        if (!IsOpen || _waiters.Count != 0 || _policies.Exceeded(demand) >= 0 || !_policies.CanTake(demand, now))
        {
            grant = default;
            return false;
        }

        _policies.Take(demand, now);
        grant = new PermitGrant(_lastLeaseId.Increment(), demand, SnapshotAt(now), Waited: false);
        _listener.Publish(grant.After);
        Finish();
        return true;
    }

    /// <summary>A newcomer: granted at once if it may, else queued (and told), else rejected (and told why).</summary>
    public OfferOutcome Offer(PermitWaiter waiter)
    {
        Debug.Assert(!waiter.IsQueued, "A waiter is offered once.");
        if (waiter.IsWithdrawn)
        {
            return OfferOutcome.Withdrawn; // cancelled before it got here: it takes nothing and never queues
        }

        var demand = waiter.Demand;
        var now = PolicyTime();
        OfferOutcome outcome;
        if (_policies.Exceeded(demand) is var exceeded and >= 0)
        {
            Reject(waiter, PermitRejectionKind.ExceedsLimit, exceeded); // it could only block the head for ever
            outcome = OfferOutcome.Rejected;
        }
        else if (IsOpen && (_waiters.Count == 0 || !_waiters.HasAtOrAbove(waiter.Priority)) && _policies.CanTake(demand, now))
        {
            outcome = Grant(waiter, waited: false, now) ? OfferOutcome.Granted : OfferOutcome.Withdrawn;
        }
        else if (waiter.Timeout == TimeSpan.Zero)
        {
            Reject(waiter, PermitRejectionKind.WouldWait, 0, RetryAfter(waiter, now));
            outcome = OfferOutcome.Rejected;
        }
        else if (!MakeRoomFor(waiter, now))
        {
            Reject(waiter, PermitRejectionKind.QueueFull, 0, RetryAfter(waiter, now));
            outcome = OfferOutcome.Rejected;
        }
        else
        {
            Invariant.That(_waiters.Count < MaxQueued.GetValueOrDefault(int.MaxValue), "a waiter queues only below max_queued");
            if (waiter.TimeLeft is { } timeLeft && timeLeft != Timeout.InfiniteTimeSpan)
            {
                _deadlines.Add(waiter, timeLeft, Now); // its timeout, or what a carried waiter had left of it
            }

            _waiters.Enqueue(waiter);
            var queued = SnapshotAt(now);
            _listener.Publish(queued);
            _listener.Queued(waiter);
            waiter.OnQueued(queued);
            outcome = OfferOutcome.Queued;
        }

        Finish();
        return outcome;
    }

    /// <summary>A waiter cancels or its actor withdraws it: it leaves the queue, and whoever it blocked may go.</summary>
    /// <returns><c>true</c> when it stood in this gate's queue.</returns>
    public bool Withdraw(PermitWaiter waiter)
    {
        if (!_waiters.Remove(waiter))
        {
            return false;
        }

        var now = PolicyTime();
        Publish(now);
        Pump(now);
        Finish();
        return true;
    }

    /// <summary>Withdraws every waiter that matches (the waits of an actor that stopped).</summary>
    /// <returns>The withdrawn waiters, in serving order; none of them is told anything.</returns>
    public List<PermitWaiter> WithdrawWhere(Predicate<PermitWaiter> match)
    {
        var now = PolicyTime(); // the clock first: a read that throws withdraws nobody
        var removed = _waiters.RemoveWhere(match);
        if (removed.Count != 0)
        {
            Publish(now);
            Pump(now);
        }

        Finish(now);
        return removed;
    }

    /// <summary>A holder gives <paramref name="held"/> back; the waiters it makes fit are granted in order.</summary>
    public void Release(PermitDemand held)
    {
        var now = PolicyTime();
        _policies.Release(held, now);
        if (!Pump(now))
        {
            Publish(now); // a grant publishes the counts after it, so a release that grants at once is published with it
        }

        Finish();
    }

    /// <summary>
    /// A holder granted <paramref name="charged"/> reports the tokens it really used: rates give back the unused part
    /// or carry the excess as debt; the waiters a give-back makes fit are granted in order.
    /// </summary>
    public void Settle(PermitDemand charged, long actualTokens)
    {
        var now = PolicyTime();
        _policies.Settle(charged, actualTokens, now);
        Publish(now);
        Pump(now);
        Finish();
    }

    /// <summary>
    /// The owner's timer fired, or something outside the gate changed what its policies answer: waiters past their
    /// deadline fail (<see cref="PermitRejectionKind.TimedOut"/>), then whoever fits now is granted.
    /// </summary>
    public void Wake()
    {
        if (!_deadlines.IsEmpty)
        {
            var now = Now;
            List<PermitWaiter>? expired = null;
            while (_deadlines.TryTakeDue(now, out var due))
            {
                _waiters.Remove(due);
                (expired ??= []).Add(due);
            }

            if (expired is not null)
            {
                // All out first: each is told when a retry, behind the waiters left, could be served, not behind the others timing out now.
                // At the reading they were found due by: a second read that threw would lose them, out of the queue and untold.
                var policyTime = _policies.IsTimed ? now : TimeSpan.Zero;
                Publish(policyTime);
                foreach (var waiter in expired)
                {
                    Reject(waiter, PermitRejectionKind.TimedOut, 0, RetryAfter(waiter, policyTime));
                }
            }
        }

        Pump(PolicyTime());
        Finish();
    }

    /// <summary>Grants the head while it fits, in order; a head that does not fit blocks the ones behind it.</summary>
    /// <returns>Whether it granted (or tried to grant) anyone: then the counts were published.</returns>
    private bool Pump(TimeSpan now)
    {
        if (!IsOpen)
        {
            return false;
        }

        var granted = false;
        while (_waiters.Head is { } head && _policies.CanTake(head.Demand, now))
        {
            _waiters.Remove(head);
            Grant(head, waited: true, now);
            granted = true;
        }

        return granted;
    }

    /// <summary>
    /// Takes the permits, publishes, lets the owner record the holder, then tells the waiter. A waiter that withdrew
    /// at this instant takes nothing: the permits go back and the owner's record is undone.
    /// </summary>
    private bool Grant(PermitWaiter waiter, bool waited, TimeSpan now)
    {
        var demand = waiter.Demand;
        _policies.Take(demand, now);
        var grant = new PermitGrant(_lastLeaseId.Increment(), demand, SnapshotAt(now), waited);
        _listener.Publish(grant.After);
        _listener.Granting(waiter, grant);
        if (waiter.TryGrant(grant))
        {
            _listener.Granted(waiter, grant);
            return true;
        }

        _policies.Refund(demand, now);
        _listener.GrantLost(waiter, grant);
        Publish(now);
        return false;
    }

    /// <summary>Recomputes <see cref="NextWakeAt"/> and checks the invariants: the end of every public method.</summary>
    private void Finish() => Finish(null);

    /// <summary>As <see cref="Finish()"/>, at <paramref name="now"/> when the caller read the clock already (<c>null</c>: read it here).</summary>
    /// <remarks>A caller that takes waiters out reads the clock before it does, and passes that reading: a read that throws after would lose them.</remarks>
    private void Finish(TimeSpan? now)
    {
        if (_policies.IsTimed || !_deadlines.IsEmpty)
        {
            var next = _deadlines.Next(_waiters.Count);
            if (_policies.IsTimed && IsOpen && _waiters.Head is { } head)
            {
                var fits = _policies.FitsAt(head.Demand, [], now ?? Now);
                next = fits < next ? fits : next;
            }

            SetNextWakeAt(next);
        }
        else
        {
            SetNextWakeAt(TimeSpan.MaxValue);
        }

        AssertInvariants();
    }

    /// <summary>
    /// Sets <see cref="NextWakeAt"/> only when it changes: the gate's line holds what every step reads (the queue, the
    /// policies, the listener), and a store, even of the same value, takes the line from the core that ran the turn
    /// before — a contended limit's turn moves between cores on most operations, and each such read then misses.
    /// </summary>
    private void SetNextWakeAt(TimeSpan next)
    {
        if (NextWakeAt != next)
        {
            NextWakeAt = next;
        }
    }

    /// <summary>The time the policies are asked at: the clock only if one of them is timed.</summary>
    private TimeSpan PolicyTime() => _policies.IsTimed ? Now : TimeSpan.Zero;

    private PermitSnapshot SnapshotAt(TimeSpan now) => _policies.Snapshot(_waiters.Count, now);

    private void Publish(TimeSpan now) => _listener.Publish(SnapshotAt(now));

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        _waiters.AssertInvariants();
        foreach (var waiter in _waiters.InServingOrder())
        {
            Invariant.That(_policies.Exceeded(waiter.Demand) < 0, "every queued demand fits each policy's limit (no head blocks for ever)");
        }

        if (!_policies.IsTimed && IsOpen && _waiters.Head is { IsWithdrawn: false } head)
        {
            Invariant.That(!_policies.CanTake(head.Demand, TimeSpan.Zero), "a head that fits is granted (work-conserving, no lost wake-up)");
        }
    }
}
