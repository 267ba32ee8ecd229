using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// A limiter whose clock (the application's <see cref="TimeProvider"/>) threw as it set its wake timer: the waits that
/// needed the wake fail at once (<see cref="PermitRejections.WakeUnset"/>), and every other waiter goes on waiting.
/// Without this the throw was only logged, and a waiter with a wait timeout waited for ever past it (a gatekeeper with
/// rates was restarted instead, which failed all its waiters as disposed).
/// </summary>
/// <remarks>
/// Which waits need the wake: every waiter with a wait timeout (the gate keeps a deadline for it); and, while the gate
/// still wants a wake once those are gone (a rate's next opening for its head), every waiter left, since nothing else
/// would tell the gate of that opening. Waiters of a concurrency limit without a timeout need no timer: a release serves
/// them. Docs: docs/API.md, "Wait timeouts and the limit's clock".
/// </remarks>
internal static class UnsetWake
{
    /// <summary>Whether the gate keeps a deadline for <paramref name="waiter"/> (it has a finite wait timeout, or time left of one).</summary>
    public static bool HasDeadline(PermitWaiter waiter) => waiter.TimeLeft is { } left && left != Timeout.InfiniteTimeSpan;

    /// <summary>
    /// In the gate's owner's turn, after setting its wake threw <paramref name="error"/>: fails the waiters with a
    /// deadline; then, should <paramref name="gate"/> still want a wake, sets it again with <paramref name="arm"/> (none:
    /// the owner cannot) and, if that throws too (or there is none), fails every waiter left.
    /// </summary>
    /// <param name="gate">The gate whose wake could not be set.</param>
    /// <param name="error">What the clock threw.</param>
    /// <param name="limiterName">The limiter's name, for the waiters' exception.</param>
    /// <param name="arm">Sets the wake for the gate's next deadline; <c>null</c> when the owner cannot try again.</param>
    /// <param name="fail">Fails one waiter taken out of the gate with its exception (and keeps its books).</param>
    /// <returns>How many waiters were taken out and failed.</returns>
    public static int FailWaiters(PermitGate gate, Exception error, string limiterName, Action? arm, Action<PermitWaiter, Exception> fail)
    {
        var failed = Fail(TakeOut(gate, HasDeadline), error, limiterName, fail);
        if (gate.NextWakeAt == TimeSpan.MaxValue)
        {
            return failed;
        }

        if (arm is not null)
        {
            try
            {
                arm();
                return failed;
            }
            catch (Exception again)
            {
                error = again;
            }
        }

        return failed + Fail(TakeOut(gate, static _ => true), error, limiterName, fail);
    }

    /// <summary>
    /// Takes the waiters to fail out of <paramref name="gate"/> as a close does (<see cref="GateClock.Closing"/>): the
    /// clock that could not set the wake may not be read either now, and a read that throws gives its last reading, so
    /// the waiters are still told why. Thrown, the read left them queued with no wake, and a gatekeeper with rates, out of
    /// its message, was restarted and failed them as disposed (<c>Review/RecentFixesClockReviewTests</c>).
    /// </summary>
    private static List<PermitWaiter> TakeOut(PermitGate gate, Predicate<PermitWaiter> match)
    {
        using (GateClock.Closing())
        {
            return gate.RemoveWhere(match);
        }
    }

    private static int Fail(List<PermitWaiter> waiters, Exception error, string limiterName, Action<PermitWaiter, Exception> fail)
    {
        foreach (var waiter in waiters)
        {
            fail(waiter, PermitRejections.WakeUnset(limiterName, error));
        }

        return waiters.Count;
    }
}
