using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// One actor caller's request at a gatekeeper, from its <see cref="GatekeeperProtocol.Acquire"/> to the end of its
/// lease: the gate's waiter while it waits, the lease's record once granted. It knows its holder, so a grant, a
/// release or a rejection reaches the holder's books without looking the actor up. Its replies come from the
/// gatekeeper, whichever thread holds the gatekeeper's turn when it is granted or turned away.
/// </summary>
internal sealed class HolderTicket(HolderRecord holder, IActorRef gatekeeper, long requestId, string source, PermitDemand demand,
                                   int priority, TimeSpan? timeout, bool replyQueued)
    : ActorWaiter(holder.Actor, requestId, source, GatekeeperReplies.Instance, demand, priority, timeout, replyQueued)
{
    /// <summary>Whose request it is.</summary>
    public HolderRecord Holder { get; } = holder;

    /// <summary>The lease it was granted; 0 while it waits (the gate numbers leases from 1).</summary>
    public long LeaseId { get; set; }

    /// <summary>Whether it holds a lease.</summary>
    public bool IsGranted => LeaseId != 0;

    /// <summary>Whether its tokens were settled (<see cref="GatekeeperProtocol.Settle"/>), which is allowed once.</summary>
    public bool Settled { get; set; }

    /// <inheritdoc />
    protected override IActorRef? ReplyFrom => gatekeeper;
}
