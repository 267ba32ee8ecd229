using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>A facade's request for a call of a limit with rates: one permit, one request and its estimated tokens.</summary>
internal sealed class RateAcquireRequest(string source, IActorRef gatekeeper, bool signalQueued, long estimatedTokens, int priority, TimeSpan? timeout)
    : AcquireRequest(source, gatekeeper, signalQueued, permits: 1, priority, timeout)
{
    /// <inheritdoc />
    public override PermitDemand Demand { get; } = new(1, estimatedTokens);
}

/// <summary>A facade's request for a call of one partition of a limit with rates; the parent routes it by its key.</summary>
internal sealed class RatePartitionAcquireRequest(object key, string source, IActorRef parent, bool signalQueued, long estimatedTokens, int priority, TimeSpan? timeout)
    : PartitionAcquireRequest(key, source, parent, signalQueued, permits: 1, priority, timeout)
{
    /// <inheritdoc />
    public override PermitDemand Demand { get; } = new(1, estimatedTokens);
}

/// <summary>A lease's holder reports the tokens its call really used, against the <paramref name="Charged"/> demand it was granted.</summary>
/// <param name="Charged">What the grant took.</param>
/// <param name="ActualTokens">What the call used.</param>
internal sealed record SettleTokens(PermitDemand Charged, long ActualTokens) : IDeadLetterSuppression
{
    /// <summary>The lease settled; a cluster limiter's agent needs it to find the lease, a gatekeeper does not.</summary>
    public long LeaseId { get; init; }
}

/// <summary>Where a <see cref="ModelApiLease"/>'s settle goes: its gatekeeper, or its partition inside a partitioned limiter's actor.</summary>
internal interface ITokenSettler
{
    /// <summary>Sends <paramref name="message"/> to whoever granted the lease.</summary>
    void Settle(SettleTokens message);
}
