using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper's lifecycle: it lends from its start, a restart (a handler threw) only shuts its loans and carries
/// over to the next instance what outlives it — the leases held (their count; an actor's lease also stays in its books),
/// its rates, as spent, its queued callers, facade and actor callers alike, with what was left of their waits, and its
/// actor callers' books, whose death watch survives the restart — and a stop closes the loans and fails every waiter.
/// </summary>
internal sealed partial class GatekeeperActor
{
    /// <summary>Set once a restart handed its state on (<see cref="LimiterCounts.CarriedOver"/>): a second <see cref="PostStop"/> is a stop.</summary>
    private bool _handedOver;

    /// <inheritdoc />
    /// <remarks>
    /// After a restart, what the previous instance carried over is taken first (<see cref="TakeOver"/>): its callers are
    /// offered before what was left in the turn and before the mailbox, all of which came after them. The turn is started
    /// whatever that throws, so that this instance, not the previous one, is the turn's owner when Akka stops it.
    /// </remarks>
    protected override void PreStart()
    {
        base.PreStart();
        try
        {
            if (_settings.Counts.CarriedOver is { } carried)
            {
                _settings.Counts.CarriedOver = null;
                TakeOver(carried);
            }
        }
        finally
        {
            if (_turn is not null)
            {
                _turn.Start(this, Self); // opens the turn and lends, or takes over the turn kept across a restart
            }
            else if (_lending)
            {
                Lend();
            }
        }
    }

    /// <summary>
    /// A restarted gatekeeper takes over its predecessor's actor callers' books (still watched: a watch outlives a restart)
    /// and lease numbering, then offers the callers it had queued, in their order, as a message offers a request. With
    /// rates the loan is reclaimed first and the wake armed and counts published after; without, the turn kept across the
    /// restart was never given back (nothing lent since), and its rest (<see cref="GateTurn.Start"/>) does both. A caller
    /// whose offer throws fails alone, as in a message: out of <c>PreStart</c> it would stop the limiter. Should anything
    /// else throw (Akka then stops the limiter), the callers not offered yet are failed before it goes on.
    /// </summary>
    private void TakeOver(RestartCarry carried)
    {
        foreach (var holder in carried.Holders)
        {
            _holders.Add(holder.Actor, holder);
        }

        foreach (var lease in carried.Leases)
        {
            _actorLeases.Add(lease.LeaseId, lease);
        }

        _idleHolders = carried.IdleHolders;
        _settings.Counts.PublishLeases(_gate.LastLeaseId); // its gate numbers on from carried.LeaseIdBase (constructor)
        var offered = 0;
        try
        {
            if (_turn is null)
            {
                Reclaim();
            }

            for (; offered < carried.Waiters.Count; offered++)
            {
                OfferCarried(carried.Waiters[offered]);
            }

            if (_turn is null)
            {
                Resting();
            }
        }
        catch (Exception error)
        {
            FailCarried(carried.Waiters.Skip(offered), error);
            throw;
        }
    }

    /// <summary>Offers a caller carried over a restart; one whose offer throws fails alone (counted <c>handler_failed</c>).</summary>
    private void OfferCarried(PermitWaiter waiter)
    {
        try
        {
            if (waiter is AcquireRequest request)
            {
                Offer(request);
            }
            else
            {
                OfferToGate(waiter); // a restart's carried waiters are offered outside the dispatch: the lean ones before it go first
            }
        }
        catch (Exception error)
        {
            if (waiter is HolderTicket ticket)
            {
                _log.ErrorSafely(error, "Limiter {0}: offering an actor's request carried over a restart threw; it fails", _settings.MetricName);
                _telemetry.HandlerFailed();
                EndTicket(ticket);
                ticket.Fail(error);
            }
            else
            {
                ((IGateTurnOwner)this).Faulted((AcquireRequest)waiter, error);
            }
        }
    }

    /// <summary>
    /// Callers carried over a restart that no instance will serve (the next one could not be made, or start): failed as
    /// disposed — the limiter stops — with a reason that says why.
    /// </summary>
    private void FailCarried(IEnumerable<PermitWaiter> waiters, Exception? cause)
    {
        var error = NotRestarted(cause);
        foreach (var waiter in waiters)
        {
            if (!waiter.IsWithdrawn)
            {
                _telemetry.Rejected(PermitRejectionKind.Disposed);
                waiter.Fail(error);
            }
        }
    }

    /// <summary>What callers carried over a restart that failed are told: the limiter stopped, and why.</summary>
    private ObjectDisposedException NotRestarted(Exception? cause) =>
        new(nameof(ConcurrencyLimiter), $"The concurrency limiter '{_settings.MetricName}' has stopped: its gatekeeper failed and could not be restarted"
            + (cause is null ? "." : $" ({cause.GetType().Name}: {UserText.MessageOf(cause)})."));

    /// <inheritdoc />
    /// <remarks>
    /// Lending was asked for once (<see cref="StartLending"/>); the next instance is asked again, and the loans are only
    /// shut (<see cref="PostStop"/>), so callers that claim keep working after a handler failed.
    /// </remarks>
    protected override void PreRestart(Exception reason, object message)
    {
        _restarting = true;
        if (_lending || _rateLender is { IsStarted: true })
        {
            Self.Tell(StartLending.Instance, ActorRefs.NoSender);
        }

        base.PreRestart(reason, message);
    }

    /// <inheritdoc />
    /// <remarks>
    /// With a turn, a stop closes in it (<see cref="GateTurn.Stop"/>), on whichever thread holds it; a restart happens only
    /// after a handler threw inside the turn, which the actor then still holds, so it closes the old state here.
    /// </remarks>
    protected override void PostStop()
    {
        if (_restarting && _handedOver)
        {
            // Akka calls this once more when the next instance could not be made (its constructor threw), and stops the
            // limiter: nobody will take over what was handed on, so this closes for good and answers it (CloseState).
            _restarting = false;
        }

        // The facade's stop completes however the actor stopped: a dispose's message, or its system's termination, which
        // may stop the actor while that message is on its way and lose it (GatekeeperSettings.Stop).
        var stop = _restarting ? null : _settings.Stop ?? _disposeRequest;
        if (_turn is not null && !_restarting)
        {
            _turn.Stop(() => stop?.Stopped.TrySetResult());
        }
        else
        {
            try
            {
                CloseState();
            }
            finally
            {
                stop?.Stopped.TrySetResult(); // whatever the close threw (Akka logs it): the dispose completes
            }
        }

        base.PostStop();
    }

    /// <inheritdoc />
    void IGateTurnOwner.Close() => CloseState();

    /// <inheritdoc />
    void IGateTurnOwner.AnswerStopped(object message, IActorRef sender)
    {
        switch (message)
        {
            case GatekeeperProtocol.Acquire acquire:
                sender.Tell(GatekeeperReplies.Instance.Failed(acquire.RequestId, PermitRejections.Disposed()), _self);
                break;
            case GatekeeperProtocol.ReleaseAndAcquire both:
                sender.Tell(GatekeeperReplies.Instance.Failed(both.Next.RequestId, PermitRejections.Disposed()), _self);
                break;
            case GatekeeperProtocol.GetStatus:
                sender.Tell(StatusNow(), _self);
                break;
            case GatekeeperProtocol.Settle:
                sender.Tell(new Status.Failure(PermitRejections.Disposed()), _self);
                break;
            case Runtime.IUndeliverableRequest request:
                request.Undelivered(); // a facade's request sent by message, a dispose's stop
                break;
            default:
                _self.Tell(message, sender); // to dead letters, as a stopped actor's mail goes
                break;
        }
    }

    /// <summary>
    /// Fails every waiter and closes the loans; for a restart, shuts them only and hands on what outlives it
    /// (<see cref="HandOver"/>). A close also fails what a restart handed on and nobody took over.
    /// </summary>
    /// <remarks>The gate may read the limit's clock as it takes the waiters out: a clock that throws then gives its last reading (<see cref="GateClock"/>).</remarks>
    private void CloseState()
    {
        SpillLean(); // the gate fails them, or hands them to the next instance, with its own
        using var closing = GateClock.Closing();
        // Claims from the last loan (still open, or closed by the limiter's dispose) are counted before the telemetry goes.
        _rateLender?.Reclaim();
        var carriedHeld = 0;
        if (_restarting)
        {
            // The next instance starts with a fresh pool, and goes on with these rates (LimiterCounts.Rates), into which the
            // reclaim above gave back what nobody claimed: what was lent and not claimed is not carried over.
            _slots.Release(_settings.Counts.Loan.Reclaim(out _), TimeSpan.Zero);
            _settings.RateLoan?.Reclaim();

            // But leases outlive the restart and still come back — a facade's into the next loan or by message, an actor's
            // by its release or its death, to the books carried over: the shut word keeps their count and the next pool
            // starts holding it (constructor), or a permit coming back would be one it never gave out.
            carriedHeld = (int)Math.Max(0, _slots.InUse);
            HandOver();
        }
        else
        {
            _settings.Counts.Loan.Close();
            _settings.RateLoan?.Close();
            if (_settings.Counts.CarriedOver is { } carried)
            {
                _settings.Counts.CarriedOver = null;
                FailCarried(carried.Waiters, cause: null);
            }
        }

        try
        {
            _wakeTimer.Dispose(); // the application's TimeProvider's timer: one whose Dispose throws must not skip the rest
        }
        catch (Exception error)
        {
            _log.ErrorSafely(error, "Limiter {0}: disposing its wake timer threw as it stopped; it stops all the same", _settings.MetricName);
        }

        _rateTelemetry?.Dispose();
        _gate.RejectAll(PermitRejectionKind.Disposed);
        _settings.Counts.NoteHeld(-1); // a closed loan may keep claims the last reclaim did not see: write the 0 for sure
        _settings.Counts.Publish(carriedHeld, 0); // after a restart, what the next pool starts holding
        // Likewise the running counter: the leases carried over are still held, and come back metered (into the next
        // loan, or through the next pool, which counts them as already metered).
        _turnCounts.Meter(_telemetry, carriedHeld, 0);
    }

    /// <summary>
    /// A restart hands on (<see cref="LimiterCounts.CarriedOver"/>) the callers still waiting — a handler that threw is not
    /// their failure — in their order, each with what is left of its wait (a restart does not give it its whole timeout
    /// again), and the actor callers' books: who holds which lease (still counted held, <see cref="CloseState"/>), who
    /// waits, who went idle; their watches outlive the restart, so a holder's death still frees its leases.
    /// </summary>
    private void HandOver()
    {
        var waiters = new List<PermitWaiter>();
        foreach (var (waiter, left) in _gate.RemoveWithTimeLeft(static waiter => waiter is AcquireRequest or HolderTicket))
        {
            if (waiter is HolderTicket ticket)
            {
                waiters.Add(ticket.CarriedOver(left)); // its place in its holder's books too
                continue;
            }

            var request = (AcquireRequest)waiter;
            if (left is { } timeLeft)
            {
                request.CarryTimeLeft(timeLeft);
            }

            waiters.Add(request);
        }

        _settings.Counts.CarriedOver = new RestartCarry(waiters, [.. _holders.Values], [.. _actorLeases.Values], _idleHolders, _gate.LastLeaseId);
        _handedOver = true;
    }

    /// <summary>What a restarting gatekeeper hands its next instance (<see cref="LimiterCounts.CarriedOver"/>).</summary>
    /// <param name="Waiters">The callers it had queued, facade requests and actors' tickets, in serving order, each with what was left of its wait.</param>
    /// <param name="Holders">Its actor callers' books, idle ones included: every one is still watched.</param>
    /// <param name="Leases">The actors' leases held, each its holder's ticket.</param>
    /// <param name="IdleHolders">How many of <paramref name="Holders"/> are counted idle.</param>
    /// <param name="LeaseIdBase">Past every lease number it gave out: the next instance's gate numbers every lease, a facade's and an actor's, on from here.</param>
    internal sealed record RestartCarry(List<PermitWaiter> Waiters, List<HolderRecord> Holders, List<HolderTicket> Leases, int IdleHolders, long LeaseIdBase);
}
