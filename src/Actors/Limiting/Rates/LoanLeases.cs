using ActorQueue.Coordination;
using System.Threading.RateLimiting;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// Gives a slot back, whether claimed from a <see cref="RateLoan"/> or granted by the gatekeeper: into the loan while it
/// is open (no message at all), else to the gatekeeper by message. Either way the slot comes back once: the pool
/// counted it held (a granted one from its grant, a claimed one from the reclaim of its loan), and counts the return
/// when it reclaims the loan it went into.
/// </summary>
internal sealed class LoanReleaser(RateLoan loan, IActorRef gatekeeper) : ILeaseReleaser
{
    /// <summary>Returns one slot.</summary>
    public void ReturnSlot()
    {
        if (!loan.TryReturnSlot())
        {
            gatekeeper.Tell(ReleaseSlot.Instance, ActorRefs.NoSender);
        }
    }

    /// <inheritdoc />
    /// <remarks>A lease of more than one permit (never one with rates, whose calls hold one slot each) goes back by message.</remarks>
    public void Release(ConcurrencyLease lease)
    {
        if (lease.Permits == 1)
        {
            ReturnSlot();
        }
        else
        {
            GatekeeperReleaser.Send(gatekeeper, lease.Permits);
        }
    }
}

/// <summary>
/// Where a <see cref="ModelApiLimiter"/>'s leases settle: the gatekeeper, by message, after an excess over the estimate
/// was first taken out of the open loan. Without that, a call made right after the settle could claim the tokens the
/// settle owes before its message arrives, and pass the debt the caller itself ran up.
/// </summary>
internal sealed class LoanSettler(RateLoan loan, IActorRef gatekeeper) : ITokenSettler
{
    /// <inheritdoc />
    public void Settle(SettleTokens message)
    {
        var excess = message.ActualTokens - message.Charged.Tokens;
        var taken = excess > 0 ? loan.TakeExcess(excess) : 0;
        gatekeeper.Tell(taken == 0 ? message : message with { Charged = new PermitDemand(message.Charged.Permits, message.Charged.Tokens + taken) },
                        ActorRefs.NoSender);
    }
}

/// <summary>
/// The <see cref="RateLimitLease"/> of a call claimed from a <see cref="RateLoan"/> through the adapter: one object of
/// one field (24 bytes), no metadata; disposing it gives its slot back once. Not pooled: a caller that disposes twice
/// holds the same reference both times, and a pooled object handed to another caller in between would give that
/// caller's slot back.
/// </summary>
internal sealed class LoanRateLease(LoanReleaser releaser) : RateLimitLease
{
    /// <summary>Where the slot goes back; <c>null</c> once it went.</summary>
    private LoanReleaser? _releaser = releaser;

    /// <inheritdoc />
    public override bool IsAcquired => true;

    /// <inheritdoc />
    public override IEnumerable<string> MetadataNames => [];

    /// <inheritdoc />
    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = null;
        return false;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Interlocked.Exchange(ref _releaser, null)?.ReturnSlot();
        }
    }
}
