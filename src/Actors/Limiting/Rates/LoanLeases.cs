using System.Threading.RateLimiting;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// Gives a slot claimed from a <see cref="RateLoan"/> back: into the loan while it is open (no message at all), else
/// to the gatekeeper by message, as any lease. Either way the slot comes back once: the pool counted it held when the
/// gatekeeper reclaimed the loan, or counts the return when it reclaims the loan it went into.
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
    public void Release(ConcurrencyLease lease) => ReturnSlot();
}

/// <summary>
/// The <see cref="RateLimitLease"/> of a call claimed from a <see cref="RateLoan"/> through the adapter: one object,
/// no metadata; disposing it gives its slot back once.
/// </summary>
internal sealed class LoanRateLease(LoanReleaser releaser) : RateLimitLease
{
    /// <summary>1 once the slot went back.</summary>
    private int _released;

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
        if (disposing && Interlocked.Exchange(ref _released, 1) == 0)
        {
            releaser.ReturnSlot();
        }
    }
}
