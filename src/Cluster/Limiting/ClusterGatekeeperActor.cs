using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
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
/// A new incarnation (first start, or after the singleton moved) does not know who holds slots. It starts
/// <see cref="Recovering"/>: it asks every cluster member for its leases and waits (its <see cref="Incarnation"/>'s
/// roll call) and grants nothing until every member has answered or been removed from the cluster, so it never admits
/// more than the limit while holders of the previous incarnation are still running. Then it is <see cref="Serving"/>.
/// </remarks>
internal sealed class ClusterGatekeeperActor : ReceiveActor, IWithTimers, IRecoveryRequests
{
    /// <summary>The limiter's name.</summary>
    private readonly string _name;

    /// <summary>How many slots there are cluster-wide.</summary>
    private readonly int _maxRunning;

    /// <summary>How many may wait; null for no bound.</summary>
    private readonly int? _maxQueued;

    /// <summary>How often members that have not answered are asked again.</summary>
    private readonly TimeSpan _recoverInterval;

    /// <summary>This incarnation: its epoch, the agents announced to it, and the roll call of the members.</summary>
    private readonly Incarnation _incarnation;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Agents announced to this incarnation, with what each holds and waits for.</summary>
    private readonly Dictionary<IActorRef, AgentRecord> _agents = [];

    /// <summary>Requests waiting for a slot, oldest first.</summary>
    private readonly WaiterQueue<Waiting> _waiting = new();

    /// <summary>Slots held cluster-wide.</summary>
    private int _running;

    /// <summary>Puts <see cref="_running"/> on the running up-down counter.</summary>
    private readonly UpDownPublisher _runningCounter;

    /// <summary>Puts the number of waiters on the waiting up-down counter.</summary>
    private readonly UpDownPublisher _waitingCounter;

    /// <summary>The metric tag naming this limiter.</summary>
    private readonly KeyValuePair<string, object?> _metricTag;

    public ClusterGatekeeperActor(string name, int maxRunning, int? maxQueued, TimeSpan recoverInterval)
    {
        _name = name;
        _maxRunning = maxRunning;
        _maxQueued = maxQueued;
        _recoverInterval = recoverInterval;
        _incarnation = new Incarnation(this, awaitEveryMember: true);
        _metricTag = new(ActorQueueTelemetry.LimiterNameTag, name);
        _runningCounter = new(ActorQueueTelemetry.LimiterRunningCounter, _metricTag);
        _waitingCounter = new(ActorQueueTelemetry.LimiterWaitingCounter, _metricTag);
        Become(Recovering);
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string name, int maxRunning, int? maxQueued, TimeSpan recoverInterval) =>
        Akka.Actor.Props.Create(() => new ClusterGatekeeperActor(name, maxRunning, maxQueued, recoverInterval));

    /// <inheritdoc />
    protected override void PreStart()
    {
        AkkaCluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.MemberRemoved));
        _log.Info("Cluster gatekeeper {0} (limit {1}) started with epoch {2}; recovering leases from the members", _name, _maxRunning, _incarnation.Epoch);
    }

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        var handled = base.AroundReceive(receive, message);
        AssertInvariants();
        _runningCounter.Publish(_running);
        _waitingCounter.Publish(_waiting.Count);
        return handled;
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        // The next incarnation adds what it recovers.
        _runningCounter.Publish(0);
        _waitingCounter.Publish(0);
        AkkaCluster.Get(Context.System).Unsubscribe(Self);
        base.PostStop();
    }

    /// <summary>
    /// A new incarnation until every member answered its roll call: it learns leases and waits from the announcements,
    /// queues (or rejects) new requests and takes back released slots, but grants nothing.
    /// </summary>
    private void Recovering()
    {
        Receive<ClusterEvent.CurrentClusterState>(HandleClusterState);
        Receive<ClusterEvent.MemberRemoved>(removed => HandleMemberRemoved(removed.Member.Address));
        Receive<RecoverTick>(_ => _incarnation.AskAgain());
        Receive<NoLimiterAgent>(message => { if (_incarnation.NoAgent(message.Epoch, message.Node)) { ServeIfRecovered(); } });
        Receive<ActorIdentity>(HandleHostIdentity);
        Receive<LimiterAnnounce>(message => { if (Adopt(message) && _incarnation.Answered(message.Node)) { ServeIfRecovered(); } });
        Receive<RemoteAcquire>(message => { if (IsNewRequest(message, out var agent)) { QueueOrReject(agent, message.RequestId); } });
        Receive<RemoteRelease>(message => { Release(message); }); // block bodies: a bool lambda would mean "unhandled" when false
        Receive<RemoteCancel>(message => { Cancel(message); });
        Receive<Terminated>(message => { Forget(message.ActorRef); });
        Receive<AgentHello>(hello => _incarnation.Hello(hello.Epoch, Sender));
        Receive<GetLimiterStatus>(_ => ReplyStatus(recovering: true));
    }

    /// <summary>Every member has answered: slots are granted, oldest waiter first; agents that start later announce themselves as they come.</summary>
    private void Serving()
    {
        Receive<LimiterAnnounce>(message => { if (Adopt(message)) { GrantWaiting(); } });
        Receive<RemoteAcquire>(message =>
        {
            if (IsNewRequest(message, out var agent) && !GrantAtOnce(agent, message.RequestId))
            {
                QueueOrReject(agent, message.RequestId);
            }
        });
        Receive<RemoteRelease>(message => { if (Release(message)) { GrantWaiting(); } });
        Receive<RemoteCancel>(message => { if (Cancel(message)) { GrantWaiting(); } });
        Receive<Terminated>(message => { if (Forget(message.ActorRef)) { GrantWaiting(); } });
        Receive<AgentHello>(hello => _incarnation.Hello(hello.Epoch, Sender));
        Receive<GetLimiterStatus>(_ => ReplyStatus(recovering: false));

        // Roll-call answers still in flight when it ended change nothing.
        Receive<ClusterEvent.MemberRemoved>(_ => { });
        Receive<RecoverTick>(_ => { });
        Receive<NoLimiterAgent>(_ => { });
        Receive<ActorIdentity>(_ => { });
    }

    private void HandleClusterState(ClusterEvent.CurrentClusterState state)
    {
        if (_incarnation.Begin(state.Members.Select(member => member.Address)))
        {
            ServeIfRecovered();
            return;
        }

        Timers.StartPeriodicTimer(RecoverTick.Instance, RecoverTick.Instance, _recoverInterval);
    }

    private void HandleMemberRemoved(Address node)
    {
        if (_incarnation.Answered(node))
        {
            _log.Info("Cluster gatekeeper {0}: member {1} was removed before it announced; nothing of it is counted", _name, node);
            ServeIfRecovered();
        }
    }

    /// <summary>
    /// A member without ActorQueue's node host (a plain Akka node in the same cluster, or one whose extension has not
    /// started yet) has no agents, so it holds no leases: it is not waited for.
    /// </summary>
    private void HandleHostIdentity(ActorIdentity identity)
    {
        if (identity is { Subject: null, MessageId: string node } && _incarnation.Answered(Address.Parse(node)))
        {
            ServeIfRecovered();
        }
    }

    private void ServeIfRecovered()
    {
        if (!_incarnation.IsRecovered)
        {
            return;
        }

        Timers.Cancel(RecoverTick.Instance);
        AkkaCluster.Get(Context.System).Unsubscribe(Self);
        _log.Info("Cluster gatekeeper {0}: recovered {1} lease(s) and {2} waiter(s) from {3} agent(s)", _name, _running, _waiting.Count, _agents.Count);
        Become(Serving);
        GrantWaiting();
    }

    /// <summary>Takes an agent's first announcement to this incarnation: its leases count, its waits queue behind those already waiting, oldest first.</summary>
    /// <returns>Whether the announcement was taken (not of another epoch, nor a repeat).</returns>
    private bool Adopt(LimiterAnnounce message)
    {
        if (!_incarnation.Announced(message.Epoch, Sender))
        {
            return false;
        }

        var agent = new AgentRecord(Sender);
        _agents.Add(Sender, agent);
        Context.Watch(Sender);
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

        return true;
    }

    /// <summary>Whether an acquire belongs to this incarnation and asks for something not known yet (the announcement may have carried it).</summary>
    private bool IsNewRequest(RemoteAcquire message, [NotNullWhen(true)] out AgentRecord? agent) =>
        IsCurrent(message.Epoch, out agent) && !agent.Held.Contains(message.RequestId) && !agent.Pending.ContainsKey(message.RequestId);

    /// <summary>Grants a new request if a slot is free and nobody waits before it.</summary>
    private bool GrantAtOnce(AgentRecord agent, long requestId)
    {
        if (_running >= _maxRunning || !_waiting.IsEmpty)
        {
            return false;
        }

        Grant(agent, requestId);
        return true;
    }

    private void QueueOrReject(AgentRecord agent, long requestId)
    {
        if (_maxQueued is { } maxQueued && _waiting.Count >= maxQueued)
        {
            agent.Ref.Tell(new RemoteRejected(_incarnation.Epoch, requestId, _waiting.Count + 1, maxQueued));
            ActorQueueTelemetry.LimiterRejectedCounter.Add(1, _metricTag);
            return;
        }

        Enqueue(agent, requestId);
        agent.Ref.Tell(new RemoteQueued(_incarnation.Epoch, requestId, _running, _waiting.Count));
    }

    /// <returns>Whether a slot was freed.</returns>
    private bool Release(RemoteRelease message)
    {
        if (!IsCurrent(message.Epoch, out var agent) || !agent.Held.Remove(message.RequestId))
        {
            return false;
        }

        _running--;
        return true;
    }

    /// <returns>Whether a slot was freed (the request had been granted meanwhile).</returns>
    private bool Cancel(RemoteCancel message)
    {
        if (!IsCurrent(message.Epoch, out var agent))
        {
            return false;
        }

        if (agent.Pending.Remove(message.RequestId, out var waiting))
        {
            _waiting.Remove(waiting);
            return false;
        }

        if (!agent.Held.Remove(message.RequestId))
        {
            return false;
        }

        _running--;
        return true;
    }

    /// <summary>An agent stopped (its node left or was downed, or its limiter was disposed): its waits go, its leases come back.</summary>
    /// <returns>Whether slots were freed.</returns>
    private bool Forget(IActorRef stopped)
    {
        _incarnation.Forget(stopped);
        if (!_agents.Remove(stopped, out var agent))
        {
            return false;
        }

        foreach (var waiting in agent.Pending.Values)
        {
            _waiting.Remove(waiting);
        }

        if (agent.Held.Count == 0)
        {
            return false;
        }

        _log.Info("Cluster gatekeeper {0}: agent {1} is gone; released its {2} lease(s)", _name, stopped.Path, agent.Held.Count);
        _running -= agent.Held.Count;
        return true;
    }

    /// <summary>Whether a message belongs to this incarnation; if not, its sender is asked to announce itself and the message is dropped.</summary>
    private bool IsCurrent(long epoch, [NotNullWhen(true)] out AgentRecord? agent)
    {
        agent = null;
        return _incarnation.Admit(epoch, Sender) && _agents.TryGetValue(Sender, out agent);
    }

    private void GrantWaiting()
    {
        while (_running < _maxRunning && _waiting.Dequeue() is { } waiting)
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
        agent.Ref.Tell(new RemoteGranted(_incarnation.Epoch, requestId, _running, _waiting.Count));
    }

    private void ReplyStatus(bool recovering) =>
        Sender.Tell(new ClusterLimiterStatus(_name, _running, _waiting.Count, _maxRunning, _maxQueued, recovering, _agents.Count));

    /// <summary>The counts are the agents' books summed: every held id is one running slot, every pending id one waiter.</summary>
    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        System.Diagnostics.Debug.Assert(_running == _agents.Values.Sum(agent => agent.Held.Count), "running counts every held request");
        System.Diagnostics.Debug.Assert(_waiting.Count == _agents.Values.Sum(agent => agent.Pending.Count), "the FIFO holds every pending request");
    }

    /// <summary>A new incarnation's node host broadcast: to the nodes' agents, and a probe of whether the node runs ActorQueue at all.</summary>
    void IRecoveryRequests.AskNode(Address node, long epoch)
    {
        var host = NodeHostActor.At(Context, node);
        host.Tell(new RecoverLimiter(_name, epoch), Self);
        host.Tell(new Identify(node.ToString()), Self); // a string id: Akka serializes it natively
    }

    void IRecoveryRequests.AskAgent(IActorRef agent, long epoch) => agent.Tell(new RecoverLimiter(_name, epoch), Self);

    private sealed class RecoverTick
    {
        public static readonly RecoverTick Instance = new();
    }

    /// <summary>One node's agent: its held request ids and its waiting requests.</summary>
    private sealed class AgentRecord(IActorRef agentRef)
    {
        public IActorRef Ref { get; } = agentRef;

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
