using System.Diagnostics;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The partition's turns (<see cref="TurnInbox"/>): what runs in them, how releases and settles reach them, the stop's
/// turn, and a new partition's first turn (attempts in <c>Partition.Attempts.cs</c>, the sweep's turn in
/// <c>Partition.Sweep.cs</c>).
/// </summary>
internal sealed partial class Partition
{
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

    /// <summary>In the turn its maker took on a partition it made and withdrew (the limiter stops): closes it, failing whatever was pushed meanwhile as undelivered, and gives the turn back.</summary>
    /// <returns><c>false</c>: nothing was granted.</returns>
    public bool CloseFirst()
    {
        AssertTaken();
        Close();
        GiveBack();
        return false;
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
}
