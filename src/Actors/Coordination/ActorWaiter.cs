using Akka.Actor;

namespace ActorQueue.Coordination;

/// <summary>
/// An actor caller's waiter: it is answered with the messages of its protocol, made by <see cref="Replies"/>. A grant
/// always reaches it (an actor withdraws by message, handled by the owner in its turn), so <see cref="TryGrant"/> is
/// always <c>true</c>. An owner that keeps books per request derives from it, so that the waiter is its book entry.
/// Told it waits only if it asked to be (<c>replyQueued</c>, <see cref="ActorQueue.Actors.GatekeeperProtocol.Acquire.ReplyQueued"/>),
/// at a local gatekeeper and a cluster limiter's agent alike.
/// </summary>
internal class ActorWaiter(IActorRef replyTo, long requestId, string source, IPermitReplies replies,
                           PermitDemand? demand = null, int priority = 0, TimeSpan? timeout = null, bool replyQueued = true) : PermitWaiter
{
    /// <inheritdoc />
    public override PermitDemand Demand { get; } = demand ?? PermitDemand.One;

    /// <inheritdoc />
    public override int Priority { get; } = priority;

    /// <inheritdoc />
    public override TimeSpan? Timeout { get; } = timeout;

    /// <summary>The actor to answer; also the owner of what it is granted.</summary>
    public IActorRef ReplyTo { get; } = replyTo;

    /// <summary>The actor's number for this request, echoed in every reply.</summary>
    public long RequestId { get; } = requestId;

    /// <summary>Makes the protocol's replies.</summary>
    public IPermitReplies Replies { get; } = replies;

    /// <inheritdoc />
    public override object? Owner => ReplyTo;

    /// <inheritdoc />
    public override string Source { get; } = source;

    /// <inheritdoc />
    public override bool IsWithdrawn => false;

    /// <inheritdoc />
    public override bool TryGrant(in PermitGrant grant)
    {
        ReplyTo.Tell(Replies.Granted(RequestId, grant), ReplyFrom);
        return true;
    }

    /// <inheritdoc />
    public override void Fail(Exception error) => ReplyTo.Tell(Replies.Failed(RequestId, error), ReplyFrom);

    /// <inheritdoc />
    public override void OnQueued(in PermitSnapshot now)
    {
        if (replyQueued && Replies.Queued(RequestId, now) is { } queued)
        {
            ReplyTo.Tell(queued, ReplyFrom);
        }
    }

    /// <summary>Who the replies come from: the actor whose message is being handled (an owner that answers from other threads names itself).</summary>
    protected virtual IActorRef? ReplyFrom => ActorCell.GetCurrentSelfOrNoSender();
}

/// <summary>The messages one protocol answers its actor callers with; one stateless instance per protocol.</summary>
internal interface IPermitReplies
{
    /// <summary>The reply for a grant.</summary>
    object Granted(long requestId, in PermitGrant grant);

    /// <summary>The reply that says the request waits; <c>null</c> for a protocol that says nothing then.</summary>
    object? Queued(long requestId, in PermitSnapshot now);

    /// <summary>The reply for a rejection or a refusal.</summary>
    object Failed(long requestId, Exception error);
}
