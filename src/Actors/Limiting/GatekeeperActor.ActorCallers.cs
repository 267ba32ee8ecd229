using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper's actor callers (<see cref="GatekeeperProtocol"/>): their acquires, releases, settles and
/// cancellations, and the books of which actor holds or waits for what — each watched so that a caller that stops
/// gives its permits back.
/// </summary>
internal sealed partial class GatekeeperActor
{
    private void HandleAcquire(GatekeeperProtocol.Acquire message)
    {
        var requester = Sender;
        if (requester.IsNobody())
        {
            _log.Warning("Acquire {0} from {1} has no sender to answer; use Tell with a sender or Ask", message.RequestId, message.Source);
            return;
        }

        if (LimitValidation.Invalid(message) is { } reason)
        {
            requester.Tell(new GatekeeperProtocol.Rejected(message.RequestId, reason) { Kind = RejectionReason.InvalidRequest });
            return;
        }

        var holder = HolderFor(requester);
        if (holder.Pending.ContainsKey(message.RequestId) || holder.LeaseByRequest.ContainsKey(message.RequestId))
        {
            requester.Tell(new GatekeeperProtocol.Rejected(message.RequestId, $"Request id {message.RequestId} is already in use by this actor") { Kind = RejectionReason.InvalidRequest });
            return;
        }

        var timeout = message.WaitTimeout is { } own ? LimitValidation.WaitTimeout(own, nameof(message.WaitTimeout)) : _settings.WaitTimeout;
        var demand = message is { Permits: 1, Tokens: 0 } ? PermitDemand.One : new PermitDemand(message.Permits, message.Tokens);
        var waiter = new ActorWaiter(requester, message.RequestId, message.Source, GatekeeperReplies.Instance, demand, message.Priority, timeout);

        // In the books before the offer: a rejection or eviction during it finds the waiter there and tidies up.
        holder.Pending.Add(message.RequestId, waiter);
        _gate.Offer(waiter);
    }

    private void HandleRelease(GatekeeperProtocol.Release message)
    {
        if (!_actorLeases.Remove(message.LeaseId, out var lease))
        {
            _log.Warning("Release of unknown lease {0} from {1} ignored (released twice, or never granted)", message.LeaseId, Sender);
            return;
        }

        lease.Holder.RemoveLease(message.LeaseId);
        ForgetIfIdle(lease.Holder);
        ReleasePermits(lease.Demand.Permits);
    }

    /// <summary>An actor reports the tokens its call used: the rates settle the lease's charge, once, and the actor hears back.</summary>
    private void HandleSettle(GatekeeperProtocol.Settle message)
    {
        var held = _actorLeases.TryGetValue(message.LeaseId, out var lease) && lease.Holder.Actor.Equals(Sender);
        if (SettleChecks.Refusal(message, held, held && lease.Settled, _settings.Name) is { } refusal)
        {
            Sender.Tell(new Status.Failure(refusal));
            return;
        }

        _actorLeases[message.LeaseId] = lease with { Settled = true };
        _rateTelemetry?.Settled(message.ActualTokens);
        _gate.Settle(lease.Demand, message.ActualTokens);
        Sender.Tell(new GatekeeperProtocol.Settled(message.LeaseId, message.ActualTokens));
    }

    private void HandleCancelAcquire(GatekeeperProtocol.CancelAcquire message)
    {
        if (!_holders.TryGetValue(Sender, out var holder))
        {
            return;
        }

        if (holder.Pending.Remove(message.RequestId, out var waiter))
        {
            _gate.Withdraw(waiter);
            Sender.Tell(new GatekeeperProtocol.Cancelled(message.RequestId));
            ForgetIfIdle(holder);
            return;
        }

        if (holder.LeaseByRequest.TryGetValue(message.RequestId, out var leaseId) && _actorLeases.Remove(leaseId, out var lease))
        {
            // Granted before the cancel arrived: the caller has withdrawn, so the permits come back here.
            holder.RemoveLease(leaseId);
            ForgetIfIdle(holder);
            ReleasePermits(lease.Demand.Permits);
        }
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

        foreach (var waiter in holder.Pending.Values)
        {
            _gate.Withdraw(waiter);
        }

        var released = 0;
        foreach (var leaseId in holder.LeaseByRequest.Values)
        {
            if (_actorLeases.Remove(leaseId, out var lease))
            {
                released += lease.Demand.Permits;
            }
        }

        if (released > 0)
        {
            _log.Info("Holder {0} stopped; released its {1} lease(s), {2} permit(s)", message.Holder.Path, holder.LeaseByRequest.Count, released);
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

    /// <summary>
    /// An actor caller with nothing held or waiting stays in the books, watched: most come back, and an actor that takes
    /// and gives back a slot in a loop would otherwise pay a watch and an unwatch (two system messages) per cycle. Once
    /// more than <see cref="IdleHoldersKept"/> callers went idle, every idle one is forgotten at once, so the books hold
    /// the callers really holding or waiting plus at most that many idle ones.
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
            foreach (var idle in _holders.Values.Where(h => h.IsIdle).ToList())
            {
                _holders.Remove(idle.Actor);
                Context.Unwatch(idle.Actor);
            }

            _idleHolders = 0;
        }
    }
}
