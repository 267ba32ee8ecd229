using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The facade's side of a <see cref="PermitLoan"/> and a <see cref="PermitHandOff"/>: a free limiter's acquire claims
/// a lease from the loan and its release gives the permits back into it, one compare-and-swap each and no message; a
/// lease released while the loan is shut hands its permits to the heads the gatekeeper published (someone waits), one
/// compare-and-swap per head and no message; what no head takes (nothing published: the gatekeeper is inside a
/// message, an actor waits at the front, the pool is over a shrunk limit) goes to the gatekeeper by message, as any
/// lease. Either way a permit comes back once: into the loan, to a head, or by the message.
/// </summary>
/// <remarks>
/// Claims and returns meter themselves on the caller's thread (acquired, permits granted, a wait of 0, running), so
/// the instruments do not wait for the gatekeeper's next message; the gatekeeper takes the held count from the loan
/// when it reclaims (<see cref="GatekeeperTelemetry.Absorb"/>), so nothing is metered twice.
/// </remarks>
internal sealed class PermitLoanReleaser(LimiterCounts counts, IActorRef gatekeeper, GatekeeperTelemetry telemetry) : ILeaseReleaser
{
    private readonly PermitLoan _loan = counts.Loan;

    private readonly PermitHandOff _handOff = counts.HandOff;

    /// <summary>A lease of <paramref name="permits"/> claimed from the loan, or <c>null</c> when that many are not lent now.</summary>
    public ConcurrencyLease? TryClaim(int permits, string source)
    {
        if (!_loan.TryClaim(permits))
        {
            return null;
        }

        telemetry.Claimed(permits);
        return new ConcurrencyLease(this, _loan.NextLeaseId(), source, permits);
    }

    /// <inheritdoc />
    public void Release(ConcurrencyLease lease)
    {
        if (_loan.TryReturn(lease.Permits))
        {
            telemetry.Returned(lease.Permits);
        }
        else if (_handOff.PassOn(lease.Permits, _loan, telemetry) is var left and > 0)
        {
            GatekeeperReleaser.Send(gatekeeper, left);
        }
    }
}
