using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A node agent's request waiting in the cluster gatekeeper's <see cref="PermitGate"/>: the cluster's kind of
/// <see cref="PermitWaiter"/>. It answers its agent with the replies of the gatekeeper's incarnation
/// (<see cref="ClusterReplies"/>); like every actor waiter it withdraws by message, never by itself.
/// </summary>
internal sealed class RemoteWaiter(AgentRecord agent, long requestId, string source, PermitDemand demand, int priority, bool mayWait,
                                   ClusterReplies replies, bool isBlockFetch = false) : PermitWaiter
{
    /// <summary>The agent that asked, with its books.</summary>
    public AgentRecord Agent { get; } = agent;

    /// <summary>The agent's id for the request.</summary>
    public long RequestId { get; } = requestId;

    /// <summary>
    /// Whether it is the agent's block fetch (<see cref="RemoteAcquire.Fetch"/>), not a caller's request: the gatekeeper
    /// meters no rejection of it. Never one when recovered: an agent announces its callers' requests, not its fetch.
    /// </summary>
    public bool IsBlockFetch { get; } = isBlockFetch;

    /// <inheritdoc />
    public override string Source { get; } = source;

    /// <inheritdoc />
    public override PermitDemand Demand { get; } = demand;

    /// <inheritdoc />
    public override int Priority { get; } = priority;

    /// <inheritdoc />
    /// <remarks>Only "not at all" reaches the gatekeeper: a longer wait timeout runs on the caller's agent, so it survives a hand-over.</remarks>
    public override TimeSpan? Timeout => mayWait ? null : TimeSpan.Zero;

    /// <inheritdoc />
    public override object? Owner => Agent.Ref;

    /// <inheritdoc />
    public override bool IsWithdrawn => false;

    /// <inheritdoc />
    public override bool TryGrant(in PermitGrant grant)
    {
        Agent.Ref.Tell(replies.Granted(RequestId, grant));
        return true;
    }

    /// <inheritdoc />
    public override void Fail(Exception error) => Agent.Ref.Tell(replies.Failed(RequestId, error));

    /// <inheritdoc />
    public override void OnQueued(in PermitSnapshot now) => Agent.Ref.Tell(replies.Queued(RequestId, now));
}

/// <summary>One node's agent as a cluster gatekeeper knows it: what it holds and what it waits for.</summary>
internal sealed class AgentRecord(IActorRef agentRef)
{
    /// <summary>The agent.</summary>
    public IActorRef Ref { get; } = agentRef;

    /// <summary>Its granted requests still held, with what each holds.</summary>
    public Dictionary<long, PermitDemand> Held { get; } = [];

    /// <summary>Its requests standing in the gate.</summary>
    public Dictionary<long, RemoteWaiter> Pending { get; } = [];

    /// <summary>The permits leased to it as a block (in use by its callers or not): counted in the gate, not in <see cref="Held"/>.</summary>
    public int Block { get; set; }

    /// <summary>
    /// The newest <see cref="RemoteSettle.Sequence"/> taken from it: its settles come in the order it numbered them (sent
    /// again oldest first after an announcement), so one not newer was taken already.
    /// </summary>
    public long LastSettle { get; set; }

    /// <summary>Whether its block was recalled since it was last granted one: it gives back, and is not asked again.</summary>
    public bool Recalled { get; set; }

    /// <summary>Whether <paramref name="requestId"/> is already known (held or waiting).</summary>
    public bool Knows(long requestId) => Held.ContainsKey(requestId) || Pending.ContainsKey(requestId);
}

/// <summary>The gatekeeper's replies to its agents, stamped with its incarnation's epoch; a grant also with the rates' state after it.</summary>
internal sealed class ClusterReplies(long epoch, Func<RateState> rates) : IPermitReplies
{
    /// <inheritdoc />
    public object Granted(long requestId, in PermitGrant grant) =>
        new RemoteGranted(epoch, requestId, (int)grant.After.InUse, grant.After.Waiting) { Rates = rates() };

    /// <inheritdoc />
    public object Queued(long requestId, in PermitSnapshot now) => new RemoteQueued(epoch, requestId, (int)now.InUse, now.Waiting);

    /// <inheritdoc />
    public object Failed(long requestId, Exception error)
    {
        var why = ((RejectionNotice)error).Rejection;
        var rejected = new RemoteRejected(epoch, requestId, why.QueueDepth, why.MaxQueued.GetValueOrDefault()) { Kind = why.Kind, RetryAfter = why.RetryAfter };
        return why.Kind == PermitRejectionKind.ExceedsLimit ? rejected with { Requested = why.Requested, Limit = why.Limit } : rejected;
    }
}

/// <summary>Carries a gate's rejection to <see cref="ClusterReplies.Failed"/>; the agent turns it into the caller's exception.</summary>
internal sealed class RejectionNotice(PermitRejection rejection) : Exception(rejection.Kind.ToString())
{
    /// <summary>The rejection.</summary>
    public PermitRejection Rejection { get; } = rejection;
}
