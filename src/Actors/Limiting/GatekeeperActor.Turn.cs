using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// How a message reaches the gatekeeper's state: without rates through its turn (<see cref="GateTurn"/>), shared with
/// facade callers on their own threads (<see cref="IGateTurnOwner"/>); with rates straight from the mailbox, its rate
/// loan serving what it can first. Either way a message or turn starts by reclaiming the loans and ends by lending.
/// </summary>
internal sealed partial class GatekeeperActor
{
    /// <inheritdoc />
    /// <remarks>
    /// Without rates every message runs in the turn (<see cref="GateTurn"/>): taken here, or left in it for whoever holds
    /// it, who hands it back (<see cref="ResumeTurn"/>); the turn's start reclaims the loan and its end lends again.
    /// </remarks>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (_turn is null)
        {
            return HandleWithRates(receive, message);
        }

        if (message is ResumeTurn resumed)
        {
            // Nothing to reclaim: the turn was never given back since its last take (nothing was lent since), and the
            // counts its last owner left unpublished are published by whoever tells a caller next, or at its end.
            if (!Dispatch(receive, resumed.Message))
            {
                Unhandled(resumed.Message);
            }

            _turn.ResumeForActor();
            return true;
        }

        if (!_turn.TryTakeForActor())
        {
            _turn.LeaveForActor(message, Sender);
            return true;
        }

        var handled = Dispatch(receive, message);
        _turn.GiveBackForActor();
        return handled;
    }

    /// <summary>A gatekeeper with rates: its own actor's messages only (its rate loan serves callers that need not wait).</summary>
    private bool HandleWithRates(Receive receive, object message)
    {
        if (_rateLender is { IsStarted: true } && _rateLender.TryServe(message, _releaser, out var served))
        {
            if (served)
            {
                // Metered as the gate meters a grant without a wait; the rates gave the loan away, so a refill is due.
                // The rates are asked at the loan's time: the clock may have passed its step since the claim was checked.
                _telemetry.ClaimedWithoutWait(1);
                _rateTelemetry?.AfterMessage(_gate.Now, ratesAt: _rateLender.LentAt);
            }

            return true;
        }

        Reclaim();
        var handled = Dispatch(receive, message);
        Resting();
        return handled;
    }

    /// <summary>Start of a message or turn: what callers did not claim from the loans comes back, so the pool is exact.</summary>
    private void Reclaim()
    {
        if (_lending)
        {
            // Inside a message the pool is exact: what callers did not claim (or returned) comes back first.
            var loan = _settings.Counts.Loan;
            var back = loan.Reclaim(out var held);
            if (back == 0 && loan.IsClosed)
            {
                // A closed word keeps no lent count (a dispose closes it before its stop message arrives, and the
                // messages ahead of that one are still handled): what the pool has out beyond the held count was lent.
                back = _slots.InUse - held;
            }

            if (back != 0)
            {
                _slots.Release(back, TimeSpan.Zero);
            }

            _settings.Counts.NoteHeld(held);
            System.Diagnostics.Debug.Assert(_slots.InUse == held, "The loan's held count is the pool's, once the loan is reclaimed.");
            _turnCounts.Absorb(held);
        }

        if (_rateLender?.Reclaim() == true)
        {
            // Slots returned into the loan (a gate-granted lease's too) are back in the pool: the running count must say so.
            // At once, not at the message's end: with the loan shut its claimed slots no longer show in the facade's
            // running count (published count plus claimed), so until this publish it read them as free.
            ((IPermitGateListener)this).Publish(_gate.Snapshot);
            PublishCounts();
        }
    }

    /// <summary>The two contended messages skip the handler table's type tests; the table (in the constructor) has the rest.</summary>
    private bool Dispatch(Receive receive, object message)
    {
        switch (message)
        {
            case AcquireRequest request:
                try
                {
                    HandleAcquireRequest(request);
                }
                catch (Exception error)
                {
                    // As in a caller's turn (TurnInbox): the request fails alone, counted, and the actor goes on. Thrown
                    // out, it restarted the actor, which never answered this request.
                    ((IGateTurnOwner)this).Faulted(request, error);
                }

                return true;
            case ReleaseSlot release:
                ReleasePermits(release.Permits);
                return true;
            default:
                if (message is not (WithdrawWaiter or LendAgain or CountLeanWaiters))
                {
                    SpillLean(); // every other message may read or change what the gate holds: it holds every waiter first
                }

                return base.AroundReceive(receive, message);
        }
    }

    /// <summary>End of a message or turn: the wake armed (a wait it cannot be armed for fails), the counts published, the free permits lent.</summary>
    private void Resting()
    {
        ArmWake();
        PublishCounts();
        if (_lending)
        {
            Lend();
        }

        if (_rateTelemetry is null && _rateLender is null)
        {
            return;
        }

        try
        {
            _rateTelemetry?.AfterMessage(_gate.Now);
            _rateLender?.PublishQueueRetry(_gate); // while someone waits: when a call queued behind them could be served
            if (_disposeRequest is null)
            {
                // Stopping: what is lent now would be claimable until PostStop closes the loan.
                _rateLender?.Lend(_gate, _settings.Counts);
            }
        }
        catch (Exception error)
        {
            // The limit's clock (the application's) threw: nothing is lent, the next message reads it again. Thrown out of
            // the message, it restarted the actor, whose next instance reads the clock as it is made: a clock still down
            // then stopped the limiter for good, every later call failed as disposed (Review/RecentFixesClockReviewTests).
            _log.ErrorSafely(error, "Limiter {0}: its rates' bookkeeping after a message threw (its TimeProvider?); nothing lent until the next message", _settings.MetricName);
        }
    }

    /// <inheritdoc />
    void IGateTurnOwner.Taken() => Reclaim();

    /// <inheritdoc />
    void IGateTurnOwner.Resting() => Resting();

    /// <inheritdoc />
    void IGateTurnOwner.Offer(AcquireRequest request) => Offer(request);

    /// <inheritdoc />
    void IGateTurnOwner.Release(int permits) => ReleasePermits(permits);

    /// <inheritdoc />
    void IGateTurnOwner.Resize(FacadeResize resize) => HandleResize(resize.Resize, resize.Sequence);

    /// <inheritdoc />
    /// <remarks>A request still unanswered is counted as a rejection, <c>handler_failed</c> (<see cref="GatekeeperTelemetry.HandlerFailed"/>), as a partition's turn counts it.</remarks>
    void IGateTurnOwner.Faulted(ITurnOp? op, Exception error)
    {
        _log.ErrorSafely(error, "A turn of limiter {0} failed; it goes on", _settings.MetricName);
        if (op is AcquireRequest { IsWithdrawn: false } request)
        {
            _telemetry.HandlerFailed();
            request.Fail(error);
        }
    }
}
