using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;
using AkkaCluster = Akka.Cluster.Cluster;
using ClusterEvent = Akka.Cluster.ClusterEvent;

namespace ActorQueue.Cluster;

/// <summary>
/// A cluster limiter's gatekeeper, a child of the singleton hub: the one owner of the cluster-wide slots and the
/// FIFO of waiters. Its callers are the limiter agents, one per node and limiter, which it watches: when a
/// node leaves or is downed, its agent's leases are released and its waits withdrawn.
/// </summary>
/// <remarks>
/// A new incarnation (first start, or after the singleton moved) does not know who holds slots. It picks a new
/// epoch and asks every cluster member for its leases and waits; until every member has answered or been
/// removed from the cluster it grants nothing, so it never admits more than the limit while holders of the
/// previous incarnation are still running.
/// </remarks>
internal sealed class ClusterGatekeeperActor : ReceiveActor, IWithTimers
{
    /// <summary>The limiter's name.</summary>
    private readonly string _name;

    /// <summary>How many slots there are cluster-wide.</summary>
    private readonly int _maxRunning;

    /// <summary>How many may wait; null for no bound.</summary>
    private readonly int? _maxQueued;

    /// <summary>How often members that have not answered are asked again.</summary>
    private readonly TimeSpan _recoverInterval;

    /// <summary>This incarnation; messages of agents that have not announced themselves to it are dropped.</summary>
    private readonly long _epoch = NewEpoch();
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Members that have not yet told this incarnation what they hold; null until the membership is known.</summary>
    private HashSet<Address>? _awaiting;

    /// <summary>Agents known to this incarnation.</summary>
    private readonly Dictionary<IActorRef, AgentRecord> _agents = [];

    /// <summary>Agents sent a recover request outside the broadcast, so they are asked only once.</summary>
    private readonly HashSet<IActorRef> _askedToRecover = [];

    /// <summary>Requests waiting for a slot, oldest first.</summary>
    private readonly WaiterQueue<Waiting> _waiting = new();

    /// <summary>Slots held cluster-wide.</summary>
    private int _running;

    /// <summary>Set once every member present at the start has announced or been removed; grants start then.</summary>
    private bool _recovered;

    /// <summary>The metric tag naming this limiter.</summary>
    private readonly KeyValuePair<string, object?> _metricTag;

    /// <summary>The running and waiting counts last added to the up-down counters (so each incarnation adds only deltas).</summary>
    private (int Running, int Waiting) _published;

    public ClusterGatekeeperActor(string name, int maxRunning, int? maxQueued, TimeSpan recoverInterval)
    {
        _name = name;
        _maxRunning = maxRunning;
        _maxQueued = maxQueued;
        _recoverInterval = recoverInterval;
        _metricTag = new(ActorQueueTelemetry.LimiterNameTag, name);

        Receive<ClusterEvent.CurrentClusterState>(HandleClusterState);
        Receive<ClusterEvent.MemberRemoved>(removed => MemberGone(removed.Member.Address));
        Receive<RecoverTick>(_ => AskAwaitingMembers());
        Receive<NoLimiterAgent>(HandleNoAgent);
        Receive<ActorIdentity>(HandleHostIdentity);
        Receive<LimiterAnnounce>(HandleAnnounce);
        Receive<RemoteAcquire>(HandleAcquire);
        Receive<RemoteRelease>(HandleRelease);
        Receive<RemoteCancel>(HandleCancel);
        Receive<AgentHello>(hello => { if (hello.Epoch != _epoch) { AskToRecover(Sender); } });
        Receive<GetLimiterStatus>(_ => Sender.Tell(new ClusterLimiterStatus(_name, _running, _waiting.Count, _maxRunning, _maxQueued, !_recovered, _agents.Count)));
        Receive<Terminated>(HandleAgentTerminated);
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string name, int maxRunning, int? maxQueued, TimeSpan recoverInterval) =>
        Akka.Actor.Props.Create(() => new ClusterGatekeeperActor(name, maxRunning, maxQueued, recoverInterval));

    /// <inheritdoc />
    protected override void PreStart()
    {
        AkkaCluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.MemberRemoved));
        _log.Info("Cluster gatekeeper {0} (limit {1}) started with epoch {2}; recovering leases from the members", _name, _maxRunning, _epoch);
    }

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        var handled = base.AroundReceive(receive, message);
        PublishCounts(_running, _waiting.Count);
        return handled;
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        PublishCounts(0, 0); // the next incarnation adds what it recovers
        AkkaCluster.Get(Context.System).Unsubscribe(Self);
        base.PostStop();
    }

    private static long NewEpoch()
    {
        long epoch;
        do
        {
            epoch = Random.Shared.NextInt64();
        }
        while (epoch == 0);
        return epoch;
    }

    private void HandleClusterState(ClusterEvent.CurrentClusterState state)
    {
        _awaiting = [.. state.Members.Select(member => member.Address)];
        foreach (var agent in _agents.Values.Where(agent => agent.Announced))
        {
            _awaiting.Remove(agent.Node);
        }

        AskAwaitingMembers();
        Timers.StartPeriodicTimer(RecoverTick.Instance, RecoverTick.Instance, _recoverInterval);
        CheckRecovered();
    }

    private void AskAwaitingMembers()
    {
        foreach (var node in _awaiting ?? [])
        {
            var host = NodeHostActor.At(Context, node);
            host.Tell(new RecoverLimiter(_name, _epoch));
            host.Tell(new Identify(node.ToString())); // a string id: Akka serializes it natively
        }
    }

    private void MemberGone(Address node)
    {
        if (_awaiting?.Remove(node) == true)
        {
            _log.Info("Cluster gatekeeper {0}: member {1} was removed before it announced; nothing of it is counted", _name, node);
            CheckRecovered();
        }
    }

    private void HandleNoAgent(NoLimiterAgent message)
    {
        if (message.Epoch == _epoch && _awaiting?.Remove(message.Node) == true)
        {
            CheckRecovered();
        }
    }

    /// <summary>
    /// A member without ActorQueue's node host (a plain Akka node in the same cluster, or one whose extension has not
    /// started yet) has no agents, so it holds no leases: it is not waited for.
    /// </summary>
    private void HandleHostIdentity(ActorIdentity identity)
    {
        if (identity is { Subject: null, MessageId: string node } && _awaiting?.Remove(Address.Parse(node)) == true)
        {
            CheckRecovered();
        }
    }

    private void HandleAnnounce(LimiterAnnounce message)
    {
        if (message.Epoch != _epoch)
        {
            return;
        }

        var agent = AgentFor(Sender, message.Node);
        if (agent.Announced)
        {
            return;
        }

        agent.Announced = true;
        foreach (var requestId in message.Held)
        {
            if (agent.Held.Add(requestId))
            {
                _running++;
            }
        }

        if (_running > _maxRunning)
        {
            _log.Error("Cluster gatekeeper {0}: the members announced {1} leases for a limit of {2}", _name, _running, _maxRunning);
        }

        for (var i = 0; i < message.PendingIds.Length; i++)
        {
            var requestId = message.PendingIds[i];
            if (!agent.Held.Contains(requestId) && !agent.Pending.ContainsKey(requestId))
            {
                Enqueue(agent, requestId);
            }
        }

        _awaiting?.Remove(message.Node);
        CheckRecovered();
        GrantWaiting();
    }

    private void HandleAcquire(RemoteAcquire message)
    {
        if (!IsCurrent(message.Epoch, out var agent))
        {
            return;
        }

        if (agent.Held.Contains(message.RequestId) || agent.Pending.ContainsKey(message.RequestId))
        {
            return;
        }

        if (_recovered && _running < _maxRunning && _waiting.IsEmpty)
        {
            Grant(agent, message.RequestId);
            return;
        }

        if (_maxQueued is { } maxQueued && _waiting.Count >= maxQueued)
        {
            agent.Ref.Tell(new RemoteRejected(_epoch, message.RequestId, _waiting.Count + 1, maxQueued));
            ActorQueueTelemetry.LimiterRejectedCounter.Add(1, _metricTag);
            return;
        }

        Enqueue(agent, message.RequestId);
        agent.Ref.Tell(new RemoteQueued(_epoch, message.RequestId, _running, _waiting.Count));
    }

    private void HandleRelease(RemoteRelease message)
    {
        if (IsCurrent(message.Epoch, out var agent) && agent.Held.Remove(message.RequestId))
        {
            _running--;
            GrantWaiting();
        }
    }

    private void HandleCancel(RemoteCancel message)
    {
        if (!IsCurrent(message.Epoch, out var agent))
        {
            return;
        }

        if (agent.Pending.Remove(message.RequestId, out var waiting))
        {
            _waiting.Remove(waiting);
        }
        else if (agent.Held.Remove(message.RequestId))
        {
            _running--;
            GrantWaiting();
        }
    }

    private void HandleAgentTerminated(Terminated message)
    {
        _askedToRecover.Remove(message.ActorRef);
        if (!_agents.Remove(message.ActorRef, out var agent))
        {
            return;
        }

        foreach (var waiting in agent.Pending.Values)
        {
            _waiting.Remove(waiting);
        }

        if (agent.Held.Count > 0)
        {
            _log.Info("Cluster gatekeeper {0}: agent {1} is gone; released its {2} lease(s)", _name, message.ActorRef.Path, agent.Held.Count);
        }

        _running -= agent.Held.Count;
        GrantWaiting();
    }

    /// <summary>Whether a message belongs to this incarnation; if not, the sender is asked to announce itself and the message is dropped.</summary>
    private bool IsCurrent(long epoch, out AgentRecord agent)
    {
        if (epoch == _epoch && _agents.TryGetValue(Sender, out agent!))
        {
            return true;
        }

        agent = null!;
        AskToRecover(Sender);
        return false;
    }

    private void AskToRecover(IActorRef sender)
    {
        if (_agents.TryGetValue(sender, out var known) && known.Announced)
        {
            return; // an old message still in flight: the announcement already covered it
        }

        if (_askedToRecover.Add(sender))
        {
            sender.Tell(new RecoverLimiter(_name, _epoch));
        }
    }

    private void CheckRecovered()
    {
        if (!_recovered && _awaiting is { Count: 0 })
        {
            _recovered = true;
            Timers.Cancel(RecoverTick.Instance);
            _log.Info("Cluster gatekeeper {0}: recovered {1} lease(s) and {2} waiter(s) from {3} agent(s)", _name, _running, _waiting.Count, _agents.Count);
            GrantWaiting();
        }
    }

    private void GrantWaiting()
    {
        while (_recovered && _running < _maxRunning && _waiting.Dequeue() is { } waiting)
        {
            waiting.Agent.Pending.Remove(waiting.RequestId);
            Grant(waiting.Agent, waiting.RequestId);
        }
    }

    private void Enqueue(AgentRecord agent, long requestId)
    {
        var waiting = new Waiting(agent, requestId);
        agent.Pending.Add(requestId, waiting);
        _waiting.Enqueue(waiting);
    }

    private void Grant(AgentRecord agent, long requestId)
    {
        agent.Held.Add(requestId);
        _running++;
        ActorQueueTelemetry.LimiterAcquiredCounter.Add(1, _metricTag);
        agent.Ref.Tell(new RemoteGranted(_epoch, requestId, _running, _waiting.Count));
    }

    private AgentRecord AgentFor(IActorRef agentRef, Address node)
    {
        if (!_agents.TryGetValue(agentRef, out var agent))
        {
            agent = new AgentRecord(agentRef, node);
            _agents.Add(agentRef, agent);
            Context.Watch(agentRef);
        }

        return agent;
    }

    /// <summary>Adds the change since the last publication to the running and waiting up-down counters.</summary>
    private void PublishCounts(int running, int waiting)
    {
        if (running != _published.Running)
        {
            ActorQueueTelemetry.LimiterRunningCounter.Add(running - _published.Running, _metricTag);
        }

        if (waiting != _published.Waiting)
        {
            ActorQueueTelemetry.LimiterWaitingCounter.Add(waiting - _published.Waiting, _metricTag);
        }

        _published = (running, waiting);
    }

    private sealed class RecoverTick
    {
        public static readonly RecoverTick Instance = new();
    }

    /// <summary>One node's agent: its held request ids and its waiting requests.</summary>
    private sealed class AgentRecord(IActorRef agentRef, Address node)
    {
        public IActorRef Ref { get; } = agentRef;

        public Address Node { get; } = node;

        public bool Announced { get; set; }

        public HashSet<long> Held { get; } = [];

        public Dictionary<long, Waiting> Pending { get; } = [];
    }

    /// <summary>One request in the FIFO; its links live in it, so queueing it allocates nothing more.</summary>
    private sealed class Waiting(AgentRecord agent, long requestId) : WaiterNode<Waiting>
    {
        public AgentRecord Agent { get; } = agent;

        public long RequestId { get; } = requestId;
    }
}
