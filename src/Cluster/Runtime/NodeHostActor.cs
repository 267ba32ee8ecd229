using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace ActorQueue.Cluster;

/// <summary>
/// One per node, at <c>/system/actorqueue-node</c>: the address a new singleton incarnation sends its recover
/// requests to. It knows the node's limiter agents, queue producers and queue workers, and forwards each
/// request to the ones it concerns, or answers for the node when a limiter has no agent here. It is also the node's
/// binding to the singleton: a recover request (sent here, or to an agent, which hands it here) is followed only when
/// its sender is the node that hosts, or is about to host, the singleton by this node's own membership view (the
/// oldest Up member with the singleton role). A request from another member waits until the view agrees (a hand-over
/// this node has not seen yet) or that member leaves or is removed, when it is refused; either is logged at Warning,
/// unless it is part of an orderly leave (see <see cref="OrderlyLeave"/>), when it is logged at Info.
/// </summary>
/// <remarks>
/// Akka's singleton manager starts the singleton on the oldest member that is not removed, a Leaving or Exiting one
/// too, so when the oldest member leaves and the next is leaving as well (the CLI's worker nodes exit as the coordinator
/// leaves), a new incarnation starts on a leaving member and asks every node, this one included, to recover. That
/// member is never Up again, so it never hosts the singleton by this node's view: its requests are refused at once,
/// and the singleton's next host (if any member stays) asks again.
/// </remarks>
internal sealed class NodeHostActor : ReceiveActor
{
    /// <summary>How many recover requests may wait for the membership view; more are refused (a member could send any number).</summary>
    private const int MaxWaiting = 1024;

    /// <summary>The actor name every node uses, so a singleton can address any node's host.</summary>
    public const string ActorName = "actorqueue-node";

    /// <summary>This node's cluster address, given in answers for it.</summary>
    private readonly Address _selfAddress;

    /// <summary>The node's limiter agent per limiter name.</summary>
    private readonly Dictionary<string, IActorRef> _limiterAgents = new(StringComparer.Ordinal);

    /// <summary>The node's producers and workers per queue name.</summary>
    private readonly Dictionary<string, HashSet<IActorRef>> _queueMembers = new(StringComparer.Ordinal);

    /// <summary>The role a member needs to host the singleton; <c>null</c> (or empty) for any.</summary>
    private readonly string? _singletonRole;

    /// <summary>The members of this node's view that are not removed, by address; <c>null</c> until the first snapshot.</summary>
    private Dictionary<Address, Member>? _members;

    /// <summary>Recover requests whose sender is not the singleton's host by this node's view (yet), in arrival order.</summary>
    private readonly List<(IActorRef Sender, object Request, Action<IActorRef> Deliver)> _waiting = [];

    public NodeHostActor(Address selfAddress, string? singletonRole)
    {
        _selfAddress = selfAddress;
        _singletonRole = singletonRole;
        Receive<RegisterAgent>(HandleRegister);
        Receive<RecoverLimiter>(message => Admit(message, sender => DeliverRecoverLimiter(message, sender)));
        Receive<RecoverQueue>(message => Admit(message, sender => DeliverRecoverQueue(message, sender)));
        Receive<CheckRecovery>(message => Admit(message.Request, sender => message.Target.Tell(message.Checked, sender)));
        Receive<ClusterEvent.CurrentClusterState>(state =>
        {
            _members = state.Members.ToDictionary(member => member.Address);
            Recheck();
        });
        Receive<ClusterEvent.IMemberEvent>(HandleMemberEvent);
        Receive<Terminated>(HandleTerminated);
    }

    public static Props Props(Address selfAddress, string? singletonRole) => Akka.Actor.Props.Create(() => new NodeHostActor(selfAddress, singletonRole));

    /// <inheritdoc />
    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent));

    /// <inheritdoc />
    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

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

    private void DeliverRecoverLimiter(RecoverLimiter message, IActorRef sender)
    {
        if (_limiterAgents.TryGetValue(message.Name, out var agent))
        {
            agent.Tell(Checked(message, sender), sender);
        }
        else
        {
            sender.Tell(new NoLimiterAgent(message.Name, message.Epoch, _selfAddress));
        }
    }

    private void DeliverRecoverQueue(RecoverQueue message, IActorRef sender)
    {
        if (_queueMembers.TryGetValue(message.Name, out var members))
        {
            foreach (var member in members)
            {
                member.Tell(Checked(message, sender), sender);
            }
        }
    }

    /// <summary>A checked request as agents take it: as it is from a local sender (which they follow at once), else marked checked.</summary>
    private static object Checked<T>(T message, IActorRef sender) =>
        sender.Path.Address.HasLocalScope ? message! : new CheckedRecovery<T>(message);

    /// <summary>Delivers a recover request now if its sender hosts the singleton by this node's view; else it waits (or is refused).</summary>
    private void Admit(object request, Action<IActorRef> deliver)
    {
        var verdict = Judge(Sender);
        if (verdict == Verdict.Wait)
        {
            if (_waiting.Exists(waiting => waiting.Sender.Equals(Sender) && waiting.Request.Equals(request)))
            {
                return; // asked again (a recovering incarnation re-asks the silent): the held one is delivered once the view agrees
            }

            if (_waiting.Count >= MaxWaiting)
            {
                verdict = Verdict.Refuse;
            }
            else if (OrderlyLeave(AddressOf(Sender)) is { } orderly)
            {
                Context.GetLogger().Info(
                    "Recover request {0} from {1}, which does not host the singleton by this node's membership view (its host: {2}), while {3}; held until the view agrees or {1} leaves or is removed (expected in an orderly leave)",
                    request, AddressOf(Sender), (object?)SingletonHost() ?? "none", orderly);
            }
            else
            {
                Context.GetLogger().Warning(
                    "Recover request {0} from {1}, which does not host the singleton by this node's membership view (its host: {2}); held until the view agrees or {1} leaves or is removed",
                    request, AddressOf(Sender), (object?)SingletonHost() ?? "none yet");
            }
        }

        Settle((Sender, request, deliver), verdict);
    }

    /// <summary>Acts on <paramref name="verdict"/> for a recover request: delivers it, holds it, or refuses it.</summary>
    private void Settle((IActorRef Sender, object Request, Action<IActorRef> Deliver) held, Verdict verdict)
    {
        switch (verdict)
        {
            case Verdict.Follow:
                held.Deliver(held.Sender);
                break;
            case Verdict.Wait:
                _waiting.Add(held);
                break;
            default:
                Refuse(held.Sender, held.Request);
                break;
        }
    }

    private void HandleMemberEvent(ClusterEvent.IMemberEvent message)
    {
        if (_members is null)
        {
            return; // the snapshot comes first and includes it
        }

        if (message is ClusterEvent.MemberRemoved)
        {
            _members.Remove(message.Member.Address);
        }
        else
        {
            _members[message.Member.Address] = message.Member;
        }

        Recheck();
    }

    /// <summary>Delivers the waiting requests whose sender now hosts the singleton, and refuses those whose sender left or was removed.</summary>
    private void Recheck()
    {
        var waiting = _waiting.ToList();
        _waiting.Clear();
        foreach (var held in waiting)
        {
            Settle(held, Judge(held.Sender));
        }
    }

    private void Refuse(IActorRef sender, object request)
    {
        var address = AddressOf(sender);
        if (OrderlyLeave(address) is { } orderly)
        {
            Context.GetLogger().Info(
                "Refused recover request {0} from {1}, which does not host the singleton by this node's membership view (its host: {2}): {3}, an expected part of an orderly leave",
                request, address, (object?)SingletonHost() ?? "none", orderly);
        }
        else
        {
            Context.GetLogger().Warning(
                "Refused recover request {0} from {1}: it does not host the singleton by this node's membership view (its host: {2})",
                request, address, (object?)SingletonHost() ?? "none");
        }
    }

    /// <summary>
    /// Why a recover request from <paramref name="sender"/>, which does not host the singleton, is part of an orderly
    /// leave, or <c>null</c> when it is not (a stranger's, a stale incarnation's, or one the view has not caught up with,
    /// while this node runs: a Warning). It is when this node is shutting down (leaving or exiting by its view, its
    /// coordinated shutdown started, or its cluster stopped: any request is moot, and the view loses its members as
    /// the node stops), or when the sender is leaving or exiting (the singleton passes through a leaving member).
    /// </summary>
    private string? OrderlyLeave(Address sender)
    {
        if (_members is not null && _members.TryGetValue(_selfAddress, out var self) && IsLeaving(self))
        {
            return "this node is leaving the cluster";
        }

        if (CoordinatedShutdown.Get(Context.System).ShutdownReason is not null || Akka.Cluster.Cluster.Get(Context.System).IsTerminated)
        {
            return "this node is shutting down";
        }

        return _members is not null && _members.TryGetValue(sender, out var member) && IsLeaving(member)
            ? $"{sender} is leaving the cluster"
            : null;
    }

    /// <summary>Whether <paramref name="member"/> is on its way out: it is never Up again, so never the singleton's host by this view.</summary>
    private static bool IsLeaving(Member member) => member.Status is MemberStatus.Leaving or MemberStatus.Exiting;

    private Verdict Judge(IActorRef sender)
    {
        if (_members is null)
        {
            return Verdict.Wait; // no view yet
        }

        var address = AddressOf(sender);
        if (address.Equals(SingletonHost()))
        {
            return Verdict.Follow;
        }

        return _members.TryGetValue(address, out var member) && !IsLeaving(member) ? Verdict.Wait : Verdict.Refuse;
    }

    /// <summary>The oldest Up member with the singleton role, by this node's view: where the singleton runs or is about to start.</summary>
    private Address? SingletonHost() =>
        _members?.Values
            .Where(member => member.Status == MemberStatus.Up && (string.IsNullOrEmpty(_singletonRole) || member.HasRole(_singletonRole)))
            .Aggregate((Member?)null, (oldest, member) => oldest is null || member.IsOlderThan(oldest) ? member : oldest)?.Address;

    /// <summary>The sender's cluster address; this node's for a local sender.</summary>
    private Address AddressOf(IActorRef sender) => sender.Path.Address.HasLocalScope ? _selfAddress : sender.Path.Address;

    private enum Verdict
    {
        Follow,
        Wait,
        Refuse,
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
