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
                                   int priority, TimeSpan? timeout, bool replyQueued, TimeSpan? timeLeft = null)
    : ActorWaiter(holder.Actor, requestId, source, GatekeeperReplies.Instance, demand, priority, timeout, replyQueued)
{
    /// <summary>What was left of its wait when a restart carried it over (<see cref="CarriedOver"/>); else its timeout.</summary>
    private readonly TimeSpan? _timeLeft = timeLeft ?? timeout;

    /// <summary>Whose request it is.</summary>
    public HolderRecord Holder { get; } = holder;

    /// <summary>The lease it was granted; 0 while it waits (the gate numbers leases from 1).</summary>
    public long LeaseId { get; set; }

    /// <summary>Whether it holds a lease.</summary>
    public bool IsGranted => LeaseId != 0;

    /// <summary>Whether its tokens were settled (<see cref="GatekeeperProtocol.Settle"/>), which is allowed once.</summary>
    public bool Settled { get; set; }

    /// <inheritdoc />
    public override TimeSpan? TimeLeft => _timeLeft;

    /// <inheritdoc />
    protected override IActorRef? ReplyFrom => gatekeeper;

    /// <inheritdoc />
    /// <remarks>
    /// The lease number the actor hears is the one its books hold (<see cref="LeaseId"/>, set as the gate grants it): a
    /// restarted gatekeeper's gate numbers its leases from 1 again, and its books add a base past every lease held
    /// across the restart. Without a restart the two are the same and the grant goes as it came.
    /// </remarks>
    public override bool TryGrant(in PermitGrant grant)
    {
        if (LeaseId == grant.LeaseId)
        {
            return base.TryGrant(grant);
        }

        return base.TryGrant(grant with { LeaseId = LeaseId });
    }

    /// <summary>
    /// A restarting gatekeeper carries this waiting request over to its next instance: a ticket like it, with
    /// <paramref name="timeLeft"/> of its wait to go (at least a tick, so one already due times out at the next gate's first
    /// wake rather than being refused as a request that would not wait; <c>null</c>: for ever), that does not tell the
    /// actor again that it waits, takes its place in the holder's books. Its timeout stays the one it asked for: a carried
    /// request that times out is told the wait it was allowed, as it would be without the restart.
    /// </summary>
    public HolderTicket CarriedOver(TimeSpan? timeLeft)
    {
        var left = timeLeft is { } wait ? (wait > TimeSpan.Zero ? wait : TimeSpan.FromTicks(1)) : (TimeSpan?)null;
        var next = new HolderTicket(Holder, gatekeeper, RequestId, Source, Demand, Priority, Timeout, replyQueued: false, left);
        Holder.Replace(this, next);
        return next;
    }
}
