using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// One per node, at <c>/system/actorqueue-node</c>: the address a new singleton incarnation sends its recover
/// requests to. It knows the node's limiter agents, queue producers and queue workers, and forwards each
/// request to the ones it concerns, or answers for the node when a limiter has no agent here.
/// </summary>
internal sealed class NodeHostActor : ReceiveActor
{
    /// <summary>The actor name every node uses, so a singleton can address any node's host.</summary>
    public const string ActorName = "actorqueue-node";

    /// <summary>This node's cluster address, given in answers for it.</summary>
    private readonly Address _selfAddress;

    /// <summary>The node's limiter agent per limiter name.</summary>
    private readonly Dictionary<string, IActorRef> _limiterAgents = new(StringComparer.Ordinal);

    /// <summary>The node's producers and workers per queue name.</summary>
    private readonly Dictionary<string, HashSet<IActorRef>> _queueMembers = new(StringComparer.Ordinal);

    public NodeHostActor(Address selfAddress)
    {
        _selfAddress = selfAddress;
        Receive<RegisterAgent>(HandleRegister);
        Receive<RecoverLimiter>(HandleRecoverLimiter);
        Receive<RecoverQueue>(HandleRecoverQueue);
        Receive<Terminated>(HandleTerminated);
    }

    public static Props Props(Address selfAddress) => Akka.Actor.Props.Create(() => new NodeHostActor(selfAddress));

    /// <summary>The host of the node at <paramref name="node"/>.</summary>
    public static ActorSelection At(IActorContext context, Address node) =>
        context.ActorSelection(new RootActorPath(node) / "system" / ActorName);

    private void HandleRegister(RegisterAgent message)
    {
        if (message.Kind == AgentKinds.Limiter)
        {
            _limiterAgents[message.Name] = message.Agent;
        }
        else
        {
            if (!_queueMembers.TryGetValue(message.Name, out var members))
            {
                members = [];
                _queueMembers.Add(message.Name, members);
            }

            members.Add(message.Agent);
        }

        Context.Watch(message.Agent);
    }

    private void HandleRecoverLimiter(RecoverLimiter message)
    {
        if (_limiterAgents.TryGetValue(message.Name, out var agent))
        {
            agent.Forward(message);
        }
        else
        {
            Sender.Tell(new NoLimiterAgent(message.Name, message.Epoch, _selfAddress));
        }
    }

    private void HandleRecoverQueue(RecoverQueue message)
    {
        if (_queueMembers.TryGetValue(message.Name, out var members))
        {
            foreach (var member in members)
            {
                member.Forward(message);
            }
        }
    }

    private void HandleTerminated(Terminated message)
    {
        foreach (var (name, agent) in _limiterAgents)
        {
            if (agent.Equals(message.ActorRef))
            {
                _limiterAgents.Remove(name);
                break;
            }
        }

        foreach (var members in _queueMembers.Values)
        {
            members.Remove(message.ActorRef);
        }
    }
}

/// <summary>The kinds of agent a node host knows.</summary>
internal static class AgentKinds
{
    public const string Limiter = "limiter";

    public const string Queue = "queue";
}
