using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

// A cluster limiter's agent: its local actor callers (acquire, release, release-and-acquire, cancel, resize through GatekeeperProtocol), each request forwarded to the gatekeeper under the agent's own request id.
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
        AddPending(id, new ActorWaiter(actor, message.RequestId, message.Source, GatekeeperReplies.Instance, demand, message.Priority, timeout, message.ReplyQueued));
    }

    /// <summary>A release and the actor's next acquire in one message, as at a local gatekeeper: the release first, so the permits go to whoever waits.</summary>
    private void HandleActorReleaseAndAcquire(GatekeeperProtocol.ReleaseAndAcquire message)
    {
        ReleaseActorLease(new GatekeeperProtocol.Release(message.LeaseId), Sender);
        HandleActorAcquire(message.Next);
    }

    /// <summary>An actor's resize goes to the gatekeeper as the facade's does; invalid bounds are logged and ignored, as at a local gatekeeper.</summary>
    private void HandleActorResize(GatekeeperProtocol.Resize message)
    {
        if (ValidResize(message) is { } resize)
        {
            Resize(resize);
        }
    }

    /// <summary>An actor's resize as the facade's, or <c>null</c> (logged) for invalid bounds.</summary>
    private ResizeLimiter? ValidResize(GatekeeperProtocol.Resize message)
    {
        if (message.MaxRunning is < 1 || message.MaxQueued is < 0)
        {
            _log.Warning("Cluster limiter {0}: resize to max_running {1}, max_queued {2} from {3} ignored: max_running must be >= 1 and max_queued >= 0",
                _displayName, message.MaxRunning, message.MaxQueued, Sender);
            return null;
        }

        return new ResizeLimiter(message.MaxRunning, message.MaxQueued);
    }

    /// <summary>An actor's release of its lease (<paramref name="sender"/> must hold it).</summary>
    private void ReleaseActorLease(GatekeeperProtocol.Release message, IActorRef sender)
    {
        if (_held.TryGetValue(message.LeaseId, out var held) && held is ActorWaiter actor && actor.ReplyTo.Equals(sender))
        {
            _idByActorRequest.Remove((actor.ReplyTo, actor.RequestId));
            ReleaseHeld(message.LeaseId);
            return;
        }

        _log.Warning("Release of unknown lease {0} from {1} ignored (released twice, or never granted)", message.LeaseId, sender);
    }

    /// <summary>What an actor's status ask is answered with: the cluster-wide counts last heard and the limit.</summary>
    private void TellStatus() =>
        Sender.Tell(new GatekeeperProtocol.Status(_clusterCounts.Running, _clusterCounts.Waiting, _limit.MaxRunning, _limit.MaxQueued, _name));

    /// <summary>
    /// An actor's cancel (from <paramref name="sender"/>): a waiting request is withdrawn and answered; a granted one's
    /// lease is released (the protocol: no reply).
    /// </summary>
    private void CancelActorRequest(GatekeeperProtocol.CancelAcquire message, IActorRef sender)
    {
        if (!_idByActorRequest.Remove((sender, message.RequestId), out var id))
        {
            return;
        }

        if (_pending.Remove(id))
        {
            Timers.Cancel(new WaitExpired(id));
            sender.Tell(new GatekeeperProtocol.Cancelled(message.RequestId));
            PublishLocal();
            Send(new RemoteCancel(_gatekeeper.Epoch, id));
        }
        else
        {
            ReleaseHeld(id);
        }
    }
}
