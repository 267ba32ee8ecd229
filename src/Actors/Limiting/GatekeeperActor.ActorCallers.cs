using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper's actor callers (<see cref="GatekeeperProtocol"/>): their acquires, releases, settles and
/// cancellations, and the books of which actor holds or waits for what — each watched so that a caller that stops
/// gives its permits back.
/// </summary>
/// <remarks>
/// One book per caller (<see cref="HolderRecord"/>) holds its requests as tickets (<see cref="HolderTicket"/>), which
/// are also the gate's waiters and, once granted, the leases' records. So an acquire looks its caller up once (by
/// <see cref="Runtime.ActorRefComparer"/>, not Akka's path hash), a grant finds the books through its ticket, and a release
/// looks up its lease id once.
/// </remarks>
internal sealed partial class GatekeeperActor
{
    private void HandleAcquire(GatekeeperProtocol.Acquire message) => Acquire(message, Sender);

    private void HandleRelease(GatekeeperProtocol.Release message) => Release(message.LeaseId);

    /// <summary>A release and the caller's next acquire in one message: the release first, so the permits go to whoever waits.</summary>
    private void HandleReleaseAndAcquire(GatekeeperProtocol.ReleaseAndAcquire message)
    {
        Release(message.LeaseId);
        Acquire(message.Next, Sender);
    }

    private void Acquire(GatekeeperProtocol.Acquire message, IActorRef requester)
    {
        if (requester.IsNobody())
        {
            _log.Warning("Acquire {0} from {1} has no sender to answer; send it with Tell from the actor that will hold the lease", message.RequestId, message.Source);
            return;
        }

        if (LimitValidation.Invalid(message, requester) is { } reason)
        {
            requester.Tell(new GatekeeperProtocol.Rejected(message.RequestId, reason) { Kind = RejectionReason.InvalidRequest });
            return;
        }

        var holder = HolderFor(requester);
        if (holder.Find(message.RequestId) is not null)
        {
            requester.Tell(new GatekeeperProtocol.Rejected(message.RequestId, $"Request id {message.RequestId} is already in use by this actor") { Kind = RejectionReason.InvalidRequest });
            return;
        }

        var timeout = message.WaitTimeout is { } own ? LimitValidation.WaitTimeout(own, nameof(message.WaitTimeout)) : _settings.WaitTimeout;
        var demand = message is { Permits: 1, Tokens: 0 } ? PermitDemand.One : new PermitDemand(message.Permits, message.Tokens);
        var ticket = new HolderTicket(holder, _self, message.RequestId, message.Source, demand, message.Priority, timeout, message.ReplyQueued);

        // In the books before the offer: a grant, rejection or eviction during it finds the ticket there.
        holder.Add(ticket);
        OfferToGate(ticket);
    }

    private void Release(long leaseId)
    {
        if (!_actorLeases.Remove(leaseId, out var ticket))
        {
            _log.Warning("Release of unknown lease {0} from {1} ignored (released twice, or never granted)", leaseId, Sender);
            return;
        }

        // Whoever sends it, the lease leaves the books of the actor it was granted to.
        EndTicket(ticket);
        ReleasePermits(ticket.Demand.Permits);
    }

    /// <summary>
    /// The gate grants a ticket: it becomes the lease's record, found by the lease id the caller will release (the gate's
    /// number, which counts on across a restart; the ticket tells the actor this one, <see cref="HolderTicket.TryGrant"/>).
    /// </summary>
    private void BookGrant(HolderTicket ticket, in PermitGrant grant)
    {
        ticket.LeaseId = grant.LeaseId;
        _actorLeases.Add(ticket.LeaseId, ticket);
    }

    /// <summary>The gate turns a waiting ticket away (evicted, timed out, shrunk out, disposed): its request ends.</summary>
    private void BookRejection(HolderTicket ticket) => EndTicket(ticket);

    /// <summary>An actor reports the tokens its call used: the rates settle the lease's charge, once, and the actor hears back.</summary>
    private void HandleSettle(GatekeeperProtocol.Settle message)
    {
        var held = _actorLeases.TryGetValue(message.LeaseId, out var ticket) && ticket.Holder.Actor.Equals(Sender);
        if (SettleChecks.Refusal(message, held, held && ticket!.Settled, _settings.Name) is { } refusal)
        {
            Sender.Tell(new Status.Failure(refusal));
            return;
        }

        ticket!.Settled = true;
        _rateTelemetry?.Settled(message.ActualTokens);
        _gate.Settle(ticket.Demand, message.ActualTokens);
        Sender.Tell(new GatekeeperProtocol.Settled(message.LeaseId, message.ActualTokens));
    }

    private void HandleCancelAcquire(GatekeeperProtocol.CancelAcquire message)
    {
        if (!_holders.TryGetValue(Sender, out var holder) || holder.Find(message.RequestId) is not { } ticket)
        {
            return;
        }

        if (!ticket.IsGranted)
        {
            EndTicket(ticket);
            _gate.Withdraw(ticket);
            Sender.Tell(new GatekeeperProtocol.Cancelled(message.RequestId));
            return;
        }

        // Granted before the cancel arrived: the caller has withdrawn, so the permits come back here.
        _actorLeases.Remove(ticket.LeaseId);
        EndTicket(ticket);
        ReleasePermits(ticket.Demand.Permits);
    }

    private void HandleHolderStopped(HolderStopped message)
    {
        if (!_holders.Remove(message.Holder, out var holder))
        {
            return;
        }

        if (holder.CountedIdle)
        {
            _idleHolders--;
        }

        // All its waits leave the queue at once: one by one, leaving the first could grant the next to the dead actor.
        var tickets = holder.Tickets();
        if (tickets.Exists(ticket => !ticket.IsGranted))
        {
            _gate.WithdrawWhere(waiter => waiter is HolderTicket ticket && ReferenceEquals(ticket.Holder, holder));
        }

        var released = 0;
        var leases = 0;
        foreach (var ticket in tickets)
        {
            holder.Remove(ticket);
            if (ticket.IsGranted && _actorLeases.Remove(ticket.LeaseId))
            {
                released += ticket.Demand.Permits;
                leases++;
            }
        }

        if (released > 0)
        {
            _log.Info("Holder {0} stopped; released its {1} lease(s), {2} permit(s)", message.Holder.Path, leases, released);
            ReleasePermits(released);
        }
    }

    private HolderRecord HolderFor(IActorRef actor)
    {
        if (!_holders.TryGetValue(actor, out var holder))
        {
            holder = new HolderRecord(actor);
            _holders.Add(actor, holder);
            Context.WatchWith(actor, new HolderStopped(actor));
        }
        else if (holder.CountedIdle)
        {
            holder.CountedIdle = false; // back at work: still watched, nothing to send
            _idleHolders--;
        }

        return holder;
    }

    /// <summary>A request ended: out of its holder's books, and the holder counted idle if that was its last.</summary>
    private void EndTicket(HolderTicket ticket)
    {
        if (ticket.Holder.Remove(ticket))
        {
            ForgetIfIdle(ticket.Holder);
        }
    }

    /// <summary>
    /// An actor caller with nothing held or waiting stays in the books, watched: most come back, and an actor that takes
    /// and gives back a slot in a loop would otherwise pay a watch and an unwatch (two system messages) per cycle. Once
    /// more than <see cref="IdleHoldersKept"/> callers went idle, every idle one is forgotten at once, so the books hold
    /// the callers really holding or waiting plus at most that many idle ones. Only the actor's thread unwatches: a turn
    /// on a facade caller's thread (which turned an actor's waiter away) leaves the forgetting to a message.
    /// </summary>
    private void ForgetIfIdle(HolderRecord holder)
    {
        if (!holder.IsIdle || holder.CountedIdle)
        {
            return;
        }

        holder.CountedIdle = true;
        if (++_idleHolders > IdleHoldersKept)
        {
            if (ReferenceEquals(ActorCell.GetCurrentSelfOrNoSender(), _self))
            {
                ForgetIdleHolders();
            }
            else
            {
                _self.Tell(ForgetIdle.Instance, ActorRefs.NoSender);
            }
        }
    }

    /// <summary>Forgets every idle caller (unwatched), if more than <see cref="IdleHoldersKept"/> still are.</summary>
    private void ForgetIdleHolders()
    {
        if (_idleHolders <= IdleHoldersKept)
        {
            return; // forgotten meanwhile, or this message was sent twice
        }

        foreach (var idle in _holders.Values.Where(h => h.IsIdle).ToList())
        {
            _holders.Remove(idle.Actor);
            Context.Unwatch(idle.Actor);
        }

        _idleHolders = 0;
    }
}

/// <summary>A turn on another thread found more idle actor callers than the books keep: the actor forgets them.</summary>
internal sealed class ForgetIdle
{
    public static readonly ForgetIdle Instance = new();
}
