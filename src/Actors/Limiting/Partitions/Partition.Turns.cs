using System.Diagnostics;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>The partition's turns (<see cref="TurnInbox"/>): what runs in them, how releases reach them, and the sweep's and the stop's turns.</summary>
internal sealed partial class Partition
{
    /// <summary>The rates alone, asked when they would allow a refused attempt (<see cref="Attempt"/>); made at the first refusal.</summary>
    private PermitPolicies? _ratePolicies;

    /// <summary>
    /// In its turn, for a caller that will not wait: grants <paramref name="request"/> at once if the partition is live,
    /// nobody waits and its slots (and rates) allow it now, as <see cref="Offer"/> grants a request that need not wait
    /// (the same lease, counted and metered the same way); else takes nothing, never queues it and fails nothing.
    /// </summary>
    /// <param name="request">The attempt: made for this call, seen by nobody else, so a grant cannot be lost.</param>
    /// <param name="judged">
    /// Refused with nobody waiting, so by the slots or rates: <paramref name="request"/>'s own verdict, and
    /// its <see cref="AcquireRequest.RetryAfter"/> says when the rates would allow it (<c>null</c>: a slot refused it).
    /// </param>
    private bool Attempt(PartitionAcquireRequest request, out bool judged)
    {
        judged = false;
        NotIdle();
        if (_state != PartitionState.Live)
        {
            return false;
        }

        request.Releaser = this;
        var demand = request.Demand;
        if (_gate is null)
        {
            // Nobody is passed: with someone waiting it is refused unjudged, as a gate refuses it.
            if (_fifo.Count != 0 || demand.Permits > _shared.Settings.MaxRunning - _held)
            {
                return false;
            }

            GrantLean(request, demand, waited: false);
            return true;
        }

        if (_gate.TryAcquire(demand, out var grant))
        {
            var granted = request.TryGrant(grant);
            Debug.Assert(granted, "An attempt's request is seen by nobody else: it cannot be cancelled.");
            _shared.Granted(request, grant);
            return true;
        }

        if (_gate.Waiting == 0 && _gate.IsOpen)
        {
            judged = true;
            if (_rates is not null)
            {
                // The rates alone: a wait of zero means they allow it now, and a slot refused it.
                _ratePolicies ??= new PermitPolicies(_rates);
                request.RetryAfter = _ratePolicies.RetryAfter(demand, [], _gate.Now) is { } wait && wait > TimeSpan.Zero ? wait : null;
            }
        }

        return false;
    }

    /// <summary>
    /// In its turn: fails every waiter, every later request and every later claim (the limiter stops). The leases still
    /// held need no release (a release after the stop is dropped), so the counts, and the running counter with them,
    /// drop to 0 now, as a stopped gatekeeper's do; a second close changes nothing.
    /// </summary>
    /// <remarks>The gate may read the limit's clock as it fails the waiters: a clock that throws then gives its last reading (<see cref="GateClock"/>).</remarks>
    public void Close()
    {
        Loan.Close();
        _state = PartitionState.Stopped;
        using (GateClock.Closing())
        {
            _gate?.RejectAll(PermitRejectionKind.Disposed);
        }

        FailLeanWaiters();

        Publish(new PermitSnapshot(0, _shared.Settings.MaxRunning, 0));
    }

    /// <inheritdoc />
    /// <remarks>
    /// Takes the partition's turn (whose start reclaims the loan: a permit claimed since the last turn makes it busy); a
    /// partition whose turn someone else holds is busy. Idle, it keeps the turn for <see cref="Swept"/>.
    /// </remarks>
    public bool SweepIsIdle()
    {
        if (!TryTake())
        {
            return false;
        }

        bool idle;
        try
        {
            idle = IsIdle();
        }
        catch (Exception error)
        {
            Faulted(null, error);
            idle = false;
        }

        if (idle)
        {
            return true;
        }

        GiveBack();
        return false;
    }

    /// <inheritdoc />
    public void Swept(bool dropped)
    {
        if (dropped)
        {
            // A caller that found it before the drop can neither claim from it nor submit to it (sealed): it goes to the
            // actor before its call returns. What was pushed before the seal is rerouted by this give-back.
            Loan.Close();
            _state = PartitionState.Dropped;
            SealOnGiveBack();
        }

        GiveBack();
    }

    /// <summary>In its turn: whether it holds nothing, nobody waits and its rates are at rest; sheds a gate it no longer needs.</summary>
    private bool IsIdle()
    {
        if (_gate is null)
        {
            return _held == 0 && _fifo.Count == 0;
        }

        if (_rates is not null)
        {
            var now = _gate.Now;
            return _gate.Waiting == 0 && _pool!.InUse == 0 && Array.TrueForAll(_rates, rate => rate.RestsAt(now) <= now);
        }

        if (_gate.Waiting == 0)
        {
            // Nobody waited since the last sweep: back to a bare count (no deadline is left, nobody can be passed), whose
            // lease numbers go on from the gate's, as the gate's went on from the count's (PartitionLeaseNumbersRound41Tests).
            _held = _pool!.InUse;
            _lastLeaseId = _gate.LastLeaseId;
            _gate = null;
            _pool = null;
        }

        return _held == 0 && _gate is null;
    }

    /// <inheritdoc />
    Exception IPermitGateListener.Rejecting(PermitWaiter waiter, in PermitRejection rejection) => _shared.Rejecting(waiter, rejection);

    /// <inheritdoc />
    void ILeaseReleaser.Release(ConcurrencyLease lease)
    {
        if (Loan.TryReturn(lease.Permits))
        {
            _shared.Returned(lease.Permits);
            return;
        }

        // A free turn runs the release at once, without the op a busy one needs. A partition holding permits is never
        // dropped, so never sealed.
        if (TryReleaseNow(lease.Permits))
        {
            return;
        }

        var submitted = Submit(lease); // the lease is its own release op
        Debug.Assert(submitted, "A partition holding permits is never sealed.");
    }

    /// <inheritdoc />
    /// <remarks>A settle after its lease's release may find the partition dropped (sealed) at rest: like a settle to a stopped gatekeeper, it then changes nothing.</remarks>
    void ITokenSettler.Settle(SettleTokens message) => Submit(new PartitionSettle(message));

    /// <inheritdoc />
    protected override void Taken() => Reclaim();

    /// <inheritdoc />
    protected override void Pushing() => Loan.Announce();

    /// <inheritdoc />
    /// <remarks>
    /// A pusher late to this step (its op may have run, and the owner lent and given the turn back, since its push) may
    /// shut a loan nobody will reclaim: it then submits an op that does nothing, whose take (or the owner's take of it)
    /// reclaims, and whose rest lends again.
    /// </remarks>
    protected override void Pushed()
    {
        if (Loan.ShutIfOpen())
        {
            Submit(new AnswerShutOp());
        }
    }

    /// <inheritdoc />
    /// <remarks>One read while the loan is plainly shut (no announce came since the last reclaim), as a take's reclaim.</remarks>
    protected override void TookPushed() => Reclaim();

    /// <inheritdoc />
    protected override void Faulted(ITurnOp? op, Exception error) => _shared.Faulted(Key, op, error);

    /// <summary>
    /// A caller that will not wait, on a live partition: takes the turn if it is free (never waits for it) and, in it,
    /// grants <paramref name="request"/> only if nobody waits and the partition's slots (and rates) allow it now, then
    /// gives the turn back (running what was pushed meanwhile, lending as every turn does).
    /// </summary>
    /// <param name="request">The attempt; granted (its result set) when this returns <c>true</c>.</param>
    /// <param name="judged">Refused by the slots or rates with nobody waiting (then the request's <c>RetryAfter</c> says when the rates would allow it, if they refused it).</param>
    /// <returns>Whether it was granted; <c>false</c> too when the turn is taken or sealed (busy, or dropped).</returns>
    public bool TryAttempt(PartitionAcquireRequest request, out bool judged)
    {
        judged = false;
        if (!TryTake())
        {
            return false;
        }

        var granted = AttemptSafely(request, out judged);
        GiveBack();
        return granted;
    }

    /// <summary>In the turn its maker took on a partition it made and published (a caller that will not wait): grants <paramref name="request"/>, as a fresh partition does what fits, and gives the turn back.</summary>
    /// <returns>Whether it was granted.</returns>
    public bool AttemptFirst(PartitionAcquireRequest request)
    {
        var granted = AttemptSafely(request, out _);
        GiveBack();
        return granted;
    }

    /// <summary>In the turn its maker took on a partition it made and withdrew (the limiter stops): closes it, failing whatever was pushed meanwhile as undelivered, and gives the turn back.</summary>
    /// <returns><c>false</c>: nothing was granted.</returns>
    public bool CloseFirst()
    {
        AssertTaken();
        Close();
        GiveBack();
        return false;
    }

    /// <summary>In the turn: <see cref="Attempt"/>, its fault contained (logged; the caller is refused, and counted so by its adapter, not as a failed request too).</summary>
    private bool AttemptSafely(PartitionAcquireRequest request, out bool judged)
    {
        judged = false;
        try
        {
            return Attempt(request, out judged);
        }
        catch (Exception error)
        {
            _shared.AttemptFaulted(Key, error);
            return false;
        }
    }

    /// <summary>In the turn the actor took on a new partition: its first request, faults contained as in every turn.</summary>
    public void OfferFirst(PartitionAcquireRequest request)
    {
        try
        {
            Offer(request);
        }
        catch (Exception error)
        {
            Faulted(request, error);
        }
    }

    /// <inheritdoc />
    protected override void Resting()
    {
        if (_rates is not null)
        {
            PublishTokens();
        }

        Lend();
        if (_gate is null && _wakeToldAt == TimeSpan.MaxValue)
        {
            return;
        }

        // Only a wake earlier than the one the actor holds is told: a later one is found when that one runs.
        var next = NextWakeAt;
        if (next < _wakeToldAt)
        {
            _wakeToldAt = next;
            _shared.Self.Tell(new PartitionWakeAt(this, next), ActorRefs.NoSender);
        }
    }

    /// <summary>In its turn (the fast release, or a pushed released lease): a lease's permits come back, unless the limiter stopped.</summary>
    protected override void RunReleaseNow(int permits)
    {
        NotIdle();
        if (_state != PartitionState.Stopped)
        {
            Release(permits);
        }
    }

    /// <inheritdoc />
    protected override void Run(ITurnOp op)
    {
        NotIdle();
        switch (op)
        {
            case PartitionAcquireRequest request when _state == PartitionState.Live:
                Offer(request);
                break;
            case PartitionAcquireRequest request when _state == PartitionState.Dropped:
                _shared.Reroute(request);
                break;
            case PartitionAcquireRequest request:
                request.Undelivered();
                break;
            case ConcurrencyLease released:
                RunReleaseNow(released.Permits);
                break;
            case PartitionSettle settle when _state != PartitionState.Stopped:
                Settle(settle.Settle);
                break;
            case PartitionWithdraw withdraw:
                Withdraw(withdraw.Waiter);
                break;
            case PartitionWake:
                _wakeToldAt = TimeSpan.MaxValue;
                if (_state == PartitionState.Live)
                {
                    Wake();
                }

                break;
            case PartitionWakeUnset unset when unset.At > _wakeToldAt:
                break; // an earlier wake was asked for since, which the actor sets (or tells unset): it runs before every deadline left
            case PartitionWakeUnset unset:
                _wakeToldAt = TimeSpan.MaxValue;
                if (_state == PartitionState.Live && _gate is not null)
                {
                    UnsetWake.FailWaiters(_gate, unset.Error, _shared.Settings.MetricName, arm: null, _shared.FailUnwoken);
                }

                break;
            case CloseOp close:
                try
                {
                    Close();
                }
                finally
                {
                    close.Closed(); // whatever the close threw (it is logged): the limiter's stop completes
                }

                break;
        }
    }

    /// <summary>
    /// In its turn: used, so the sweeps that found it idle start counting again — stored only when some had (a store takes
    /// the partition's line from the core that ran its turn before, on most operations of a contended partition).
    /// </summary>
    private void NotIdle()
    {
        if (IdleSweeps != 0)
        {
            IdleSweeps = 0;
        }
    }
}

/// <summary>Whether a partition still serves requests.</summary>
internal enum PartitionState
{
    /// <summary>In the table: it serves every request.</summary>
    Live,

    /// <summary>Dropped by a sweep: a request that reaches it goes to the actor, which routes it to the key's next partition.</summary>
    Dropped,

    /// <summary>Its limiter stopped: a request that reaches it fails as undelivered.</summary>
    Stopped,
}
