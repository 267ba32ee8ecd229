using System.Threading.RateLimiting;
using System.Threading.Tasks.Sources;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>A facade's request for permits of one partition: run in the live partition's turn, or routed by <see cref="Key"/> by the actor.</summary>
/// <remarks>
/// A RateLimiting view's wait that needs no withdrawal and no span is awaited as this request itself, through
/// <see cref="IValueTaskSource{TResult}"/> of <see cref="RateLimitLease"/>: <see cref="AdaptedBy"/> makes the lease (or
/// the failed lease for a refusal) as the caller takes the result, so the wait costs no object beside the request.
/// </remarks>
internal class PartitionAcquireRequest(object key, string source, IActorRef server, bool signalQueued, int permits, int priority, TimeSpan? timeout)
    : AcquireRequest(source, server, signalQueued, permits, priority, timeout), IValueTaskSource<RateLimitLease>
{
    /// <summary>The partition's key.</summary>
    public object Key { get; } = key;

    /// <summary>
    /// A RateLimiting view's wait (not a probe): the partition that grants it counts it in the key's successful leases as
    /// it grants, in its turn, and the view does not count it again. Set before the request is sent.
    /// </summary>
    public bool CountedAtGrant { get; set; }

    /// <summary>The RateLimiting view that awaits this request as a <see cref="RateLimitLease"/> source; set before it is sent, <c>null</c> for every other wait.</summary>
    public IAdaptedWait? AdaptedBy { get; set; }

    /// <inheritdoc />
    RateLimitLease IValueTaskSource<RateLimitLease>.GetResult(short token) =>
        (AdaptedBy ?? throw new InvalidOperationException("Only a RateLimiting view's wait is awaited as a RateLimitLease.")).Answer(this, token);

    /// <inheritdoc />
    /// <remarks>
    /// Made once the grant won and before its caller can resume (<see cref="FacadeWaiter{TResult}"/>): a
    /// <see cref="CountedAtGrant"/> request is counted here, in the granting partition's turn, so a caller that reads
    /// its key's statistics as it resumes finds its own lease there, as RateLimiting's limiters count a lease before
    /// handing it out. Counted after the grant was handed over, a caller resumed at once read it uncounted.
    /// </remarks>
    protected override ConcurrencyLease ResultOf(in PermitGrant grant)
    {
        if (CountedAtGrant)
        {
            System.Diagnostics.Debug.Assert(Releaser is Partition, "A partition request is granted by its partition, which is its releaser.");
            (Releaser as Partition)?.CountLease(acquired: true);
        }

        return base.ResultOf(grant);
    }
}

/// <summary>A RateLimiting view that awaits a <see cref="PartitionAcquireRequest"/> as its lease (<see cref="PartitionAcquireRequest.AdaptedBy"/>).</summary>
internal interface IAdaptedWait
{
    /// <summary>The lease for the completed <paramref name="request"/>: its grant's, or a failed lease for a refusal; any other failure throws.</summary>
    RateLimitLease Answer(PartitionAcquireRequest request, short token);
}
