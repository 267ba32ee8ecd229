using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

// A cluster limiter's agent: its local actor callers (acquire, release, cancel through GatekeeperProtocol), each forwarded to the gatekeeper under the agent's own request id.
internal partial class LimiterAgentActor
{
    private void HandleActorAcquire(GatekeeperProtocol.Acquire message)
    {
        var actor = Sender;
        if (actor.IsNobody())
        {
            _log.Warning("Acquire {0} from {1} has no sender to answer; send it with Tell from the actor that will hold the lease", message.RequestId, message.Source);
            return;
        }

        if (LimitValidation.Invalid(message, actor) is { } reason)
        {
            actor.Tell(new GatekeeperProtocol.Rejected(message.RequestId, reason) { Kind = RejectionReason.InvalidRequest });
            return;
        }

        if (_idByActorRequest.ContainsKey((actor, message.RequestId)))
        {
            actor.Tell(new GatekeeperProtocol.Rejected(message.RequestId, $"Request id {message.RequestId} is already in use by this actor") { Kind = RejectionReason.InvalidRequest });
            return;
        }

        var id = ++_lastId;
        _idByActorRequest.Add((actor, message.RequestId), id);
        Context.Watch(actor);
        // The protocol's weight, priority and wait timeout mean here what they mean at a local gatekeeper (the limiter's
        // default timeout when the request has none).
        var timeout = message.WaitTimeout is { } own ? LimitValidation.WaitTimeout(own, nameof(message.WaitTimeout)) : _defaultWaitTimeout;
        var demand = message is { Permits: 1, Tokens: 0 } ? PermitDemand.One : new PermitDemand(message.Permits, message.Tokens);
        AddPending(id, new ActorWaiter(actor, message.RequestId, message.Source, GatekeeperReplies.Instance, demand, message.Priority, timeout));
    }

    private void HandleActorRelease(GatekeeperProtocol.Release message)
    {
        if (_held.TryGetValue(message.LeaseId, out var held) && held is ActorWaiter actor && actor.ReplyTo.Equals(Sender))
        {
            _idByActorRequest.Remove((actor.ReplyTo, actor.RequestId));
            ReleaseHeld(message.LeaseId);
            return;
        }

        _log.Warning("Release of unknown lease {0} from {1} ignored (released twice, or never granted)", message.LeaseId, Sender);
    }

    private void HandleActorCancel(GatekeeperProtocol.CancelAcquire message)
    {
        if (!_idByActorRequest.Remove((Sender, message.RequestId), out var id))
        {
            return;
        }

        if (_pending.Remove(id))
        {
            Timers.Cancel(new WaitExpired(id));
            Sender.Tell(new GatekeeperProtocol.Cancelled(message.RequestId));
            PublishLocal();
            Send(new RemoteCancel(_gatekeeper.Epoch, id));
        }
        else
        {
            ReleaseHeld(id);
        }
    }
}
