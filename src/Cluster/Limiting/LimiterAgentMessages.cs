using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Cluster;

// What a node's limiter agent is started with, and the messages only it and its facade exchange.

/// <summary>A request's wait timeout passed (the agent's timer, keyed by this message).</summary>
internal sealed record WaitExpired(long RequestId);

/// <summary>What a node's limiter agent is started with.</summary>
/// <param name="Name">The limiter's cluster-wide name.</param>
/// <param name="Limit">The limit as this node created it.</param>
/// <param name="HubProxy">The proxy to the singleton hub.</param>
/// <param name="SelfAddress">This node's address, given in announcements.</param>
/// <param name="ClusterCounts">Where the cluster-wide counts go for the facade.</param>
/// <param name="LocalCounts">Where this node's counts go for the facade.</param>
/// <param name="Limits">Where the current (resized) limit goes for the facade.</param>
/// <param name="HelloInterval">How often to say hello again while nothing answers.</param>
internal sealed record LimiterAgentSetup(string Name, ClusterLimit Limit, IActorRef HubProxy, Akka.Actor.Address SelfAddress,
                                        LimiterCounts ClusterCounts, LimiterCounts LocalCounts, LimitMirror Limits, TimeSpan HelloInterval)
{
    /// <summary>A partition's key; <c>null</c> for a plain cluster limiter.</summary>
    public string? Partition { get; init; }

    /// <summary>A partition's idle timeout, for its agent here and its gatekeeper in the singleton; zero for ever.</summary>
    public TimeSpan IdleTimeout { get; init; }

    /// <summary>A model-API limiter's rates, for a gatekeeper this agent's envelope creates; <c>null</c> for a concurrency limit only.</summary>
    public ModelApiLimiterOptions? Rates { get; init; }
}

/// <summary>A partition agent's timer: it has held nothing and waited for nothing for its whole idle timeout.</summary>
internal sealed class AgentIdleTick
{
    public static readonly AgentIdleTick Instance = new();
}

/// <summary>A facade lease of a cluster limiter was disposed.</summary>
internal sealed record ReleaseAgentLease(long RequestId) : Akka.Event.IDeadLetterSuppression;

/// <summary>Returns facade leases to their node's agent.</summary>
internal sealed class AgentLeaseReleaser(IActorRef agent) : ILeaseReleaser
{
    /// <inheritdoc />
    public void Release(ConcurrencyLease lease) => agent.Tell(new ReleaseAgentLease(lease.LeaseId), ActorRefs.NoSender);
}

/// <summary>
/// A lease claimed from the node agent's block loan was released while the loan was shut or closed (so it could not go
/// back into it): the agent keeps its permit in the block, or returns it to the gatekeeper after a recall. Local only.
/// </summary>
internal sealed class ReleaseClaimedLease : Akka.Event.IDeadLetterSuppression
{
    public static readonly ReleaseClaimedLease Instance = new();
}

/// <summary>
/// Gives back leases claimed from a node agent's block loan (<see cref="PermitLoan"/>): into the loan while it is open
/// (one compare-and-swap, no message), else by <see cref="ReleaseClaimedLease"/> to the agent; a lease comes back once,
/// one way or the other (a stopped agent's loan is closed, and the message then goes nowhere: the gatekeeper freed the
/// block with the agent).
/// </summary>
internal sealed class ClaimedLeaseReleaser(PermitLoan loan, IActorRef agent) : ILeaseReleaser
{
    /// <summary>A one-permit lease claimed from the loan for <paramref name="source"/>, or <c>null</c> when none is lent now.</summary>
    public ConcurrencyLease? TryClaim(string source) =>
        loan.TryClaim(1) ? new ConcurrencyLease(this, loan.NextLeaseId(), source) : null;

    /// <inheritdoc />
    public void Release(ConcurrencyLease lease)
    {
        if (!loan.TryReturn(lease.Permits))
        {
            agent.Tell(ReleaseClaimedLease.Instance, ActorRefs.NoSender);
        }
    }
}
