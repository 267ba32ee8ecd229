using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The facade's side of a <see cref="PermitLoan"/>: a free limiter's acquire claims a lease from the loan and its
/// release gives the permits back into it, one compare-and-swap each and no message; a lease released while the loan
/// is shut (someone waits, the gate's turn is taken, or the pool is over a shrunk limit) goes back in the gatekeeper's
/// turn (<see cref="GateTurn"/>), or by message while the turn is not open. Either way a permit comes back once: into
/// the loan (the next reclaim gives it to the pool), in the turn, or by the message.
/// </summary>
/// <remarks>
/// Claims and returns meter themselves on the caller's thread (acquired, permits granted, a wait of 0, running), so
/// the instruments do not wait for the gatekeeper's next message; the gatekeeper takes the held count from the loan
/// when it reclaims (<see cref="TurnCounts.Absorb"/>), so nothing is metered twice.
/// </remarks>
internal sealed class PermitLoanReleaser(PermitLoan loan, GateTurn turn, IActorRef gatekeeper, GatekeeperTelemetry telemetry) : ILeaseReleaser
{
    /// <summary>A lease of <paramref name="permits"/> claimed from the loan, or <c>null</c> when that many are not lent now.</summary>
    public ConcurrencyLease? TryClaim(int permits, string source)
    {
        if (!loan.TryClaim(permits))
        {
            return null;
        }

        telemetry.Claimed(permits);
        return new ConcurrencyLease(this, loan.NextLeaseId(), source, permits);
    }

    /// <summary>A caller that would not wait found too little lent (<see cref="GatekeeperTelemetry.RefusedAttempt"/>).</summary>
    public void Refused() => telemetry.RefusedAttempt();

    /// <inheritdoc />
    public void Release(ConcurrencyLease lease)
    {
        if (loan.TryReturn(lease.Permits))
        {
            telemetry.Returned(lease.Permits);
        }
        else if (!turn.TryRelease(lease))
        {
            GatekeeperReleaser.Send(gatekeeper, lease.Permits);
        }
    }
}
