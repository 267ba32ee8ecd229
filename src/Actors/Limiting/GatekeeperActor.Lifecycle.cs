using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper's lifecycle: it lends from its start, a restart (a handler threw) only shuts its loans and carries the
/// count of facade leases still held to the next instance (and its rates, as spent, and its queued facade callers, with
/// what was left of their waits), and a stop closes the loans and fails every waiter.
/// </summary>
internal sealed partial class GatekeeperActor
{
    /// <inheritdoc />
    protected override void PreStart()
    {
        base.PreStart();
        if (_turn is not null)
        {
            _turn.Start(this, Self); // opens the turn and lends, or takes over the turn kept across a restart
        }
        else if (_lending)
        {
            Lend();
        }
        else if (_settings.Counts.CarriedOver is { } carried)
        {
            _settings.Counts.CarriedOver = null;
            OfferCarriedOver(carried);
        }
    }

    /// <summary>
    /// A gatekeeper with rates restarted: the facade callers its predecessor had queued (<see cref="LimiterCounts.CarriedOver"/>)
    /// are offered, in their order, before any message in the mailbox (all of which came after them), as a message offers
    /// a request: the loan reclaimed first, the wake armed and the counts published after. A request whose offer throws
    /// fails alone, as in a message (<see cref="Dispatch"/>): out of <c>PreStart</c> it would stop the limiter.
    /// </summary>
    private void OfferCarriedOver(List<AcquireRequest> carried)
    {
        Reclaim();
        foreach (var request in carried)
        {
            try
            {
                Offer(request);
            }
            catch (Exception error)
            {
                ((IGateTurnOwner)this).Faulted(request, error);
            }
        }

        Resting();
    }

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

    /// <summary>Fails every waiter and closes the loans (shuts them only for a restart, carrying the facade's held count).</summary>
    /// <remarks>The gate may read the limit's clock as it takes the waiters out: a clock that throws then gives its last reading (<see cref="GateClock"/>).</remarks>
    private void CloseState()
    {
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

            // But facade leases outlive the restart and still come back (into the next loan, or by message): the shut
            // word keeps their count and the next pool starts holding it (constructor), or a permit coming back would be
            // one it never gave out. Actors' leases are forgotten with the books.
            carriedHeld = (int)Math.Max(0, _slots.InUse - _actorLeases.Values.Sum(ticket => (long)ticket.Demand.Permits));

            // Facade callers still waiting are offered to the next instance first: a handler that threw is not their
            // failure. Actors' waits are forgotten with the books (they are failed below). Each keeps what is left of its
            // wait: a restart does not give it its whole timeout again. Without rates they go into the turn, which the
            // actor holds meanwhile; with rates the next instance offers them as it starts (PreStart), before its mailbox.
            var carried = new List<AcquireRequest>();
            foreach (var (waiter, left) in _gate.RemoveWithTimeLeft(static waiter => waiter is AcquireRequest))
            {
                var request = (AcquireRequest)waiter;
                if (left is { } timeLeft)
                {
                    request.CarryTimeLeft(timeLeft);
                }

                carried.Add(request);
            }

            if (_turn is not null)
            {
                _turn.CarryOver(carried);
            }
            else
            {
                _settings.Counts.CarriedOver = carried.Count != 0 ? carried : null;
            }
        }
        else
        {
            _settings.Counts.Loan.Close();
            _settings.RateLoan?.Close();
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
        // Likewise the running counter: the facade leases carried over are still held, and come back metered (into the
        // next loan, or through the next pool, which counts them as already metered).
        _telemetry.Meter(carriedHeld, 0);
    }
}
