using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

/// <summary>
/// A partitioned cluster limiter on one node: the parent of one <see cref="LimiterAgentActor"/> per partition key in
/// use here, each the agent of its own cluster limiter (its own gatekeeper in the singleton). It routes the facade's
/// requests by key, creating the agent on first use, and stops an agent that has been idle for the idle timeout, so a
/// node's partitions stay as many as are in use.
/// </summary>
/// <remarks>
/// <para>An agent that finds itself idle tells this parent how many routed messages it has seen; the parent stops it only
/// if it has routed no more since. The parent handles one message at a time, so a request it routes after that
/// check goes to a new agent: none reaches a stopping one. Every routed message counts once on both sides: a message
/// the agent does not count itself (an actor's protocol message, a lease's release or settle, a resize) is followed by
/// <see cref="CountedNoOp"/>, which it counts and ignores.</para>
/// <para>An agent that fails (an exception outside its handlers, which it keeps to itself) is restarted, as a plain
/// limiter's: the same actor and entry, its loan only shut, its callers' leases and block carried to the next instance
/// (<see cref="AgentCarry"/>, with its count of routed messages), so the gatekeeper counts them until they are released.
/// (Before, this parent stopped a failed agent and made a new one, and the gatekeeper freed the failed agent's leases
/// while their callers still held them.) An agent that stops without this parent stopping it — a routed message stopped
/// it — is forgotten as it stops: its loan closed and its entry removed, so the key's next use makes a new agent with a
/// fresh loan and request numbers. The gatekeeper frees the stopped agent's block and leases once, on its
/// <c>Terminated</c>.</para>
/// <para>A partition with rates (a model-API limiter's) stops only at rest: an idle agent's parent first asks the
/// partition's gatekeeper, and stops the agent only if nothing was routed since and the rates were back to full with no
/// debt. Otherwise a key's partition could stop with a drained bucket and, once its gatekeeper stopped too or the
/// singleton moved, be made anew with a full one. The gatekeeper stops only at rest and after its last agent.</para>
/// </remarks>
internal sealed partial class PartitionAgentsActor : ReceiveActor
{
    /// <summary>
    /// A cancellation of a request no agent knows: routed after a message the agent does not count, it counts it (as
    /// every <see cref="WithdrawWaiter"/>) and finds nothing to withdraw.
    /// </summary>
    private static readonly WithdrawWaiter CountedNoOp =
        new(new ClusterAcquireRequest("partition-routing", PermitDemand.One, 0, null, ActorRefs.Nobody), CancellationToken.None);

    /// <summary>How long a rest probe waits for the gatekeeper; a lost answer only means the agent lives one more idle timeout.</summary>
    private static readonly TimeSpan RestProbeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>What every partition's agent is started with, but for its name, key and counts.</summary>
    private readonly LimiterAgentSetup _template;

    /// <summary>The node host, which recover requests for a partition's gatekeeper reach its agent through.</summary>
    private readonly IActorRef _host;

    /// <summary>How many partitions live on this node, for the facade.</summary>
    private readonly PartitionCount _count;

    /// <summary>The live agents by key, with how many messages were routed to each.</summary>
    private readonly Dictionary<string, (IActorRef Agent, long Routed)> _agents = new(StringComparer.Ordinal);

    /// <summary>
    /// The count of a removed partition that still has a request on its way (<see cref="LivePartition.OnTheWay"/>), by
    /// key: the key's next agent is made with it, so it lends nothing before that request is routed to it. Only as many
    /// as removed keys with a request on its way; each goes when the key's next agent is made.
    /// </summary>
    private readonly Dictionary<string, RoutingCount> _carried = new(StringComparer.Ordinal);

    /// <summary>Set once a dispose request arrived; completed in PostStop.</summary>
    private DisposeGatekeeper? _disposeRequest;

    public PartitionAgentsActor(LimiterAgentSetup template, IActorRef host, PartitionCount count)
    {
        _template = template;
        _host = host;
        _count = count;
        Receive<ClusterAcquireRequest>(HandleFacadeAcquire);
        Receive<PartitionWantBlock>(HandleWantBlock);
        Receive<WithdrawWaiter>(HandleWithdraw);
        Receive<PartitionStatus>(message => Route(message.Key, new PartitionStatusAsk(DisplayName(_template.Name, message.Key), Sender, Self) { Disposal = message.Disposal }));
        Receive<ClusterPartitionMessage>(HandlePartitionMessage);
        Receive<AllPartitionStatistics>(_ => Sender.Tell(Statistics()));
        Receive<PartitionIdle>(HandleIdle);
        Receive<RestProbe>(HandleRestProbe);
        Receive<AgentStopped>(HandleAgentStopped);
        Receive<DisposeGatekeeper>(Dispose);
    }

    public static Props Props(LimiterAgentSetup template, IActorRef host, PartitionCount count) =>
        Akka.Actor.Props.Create(() => new PartitionAgentsActor(template, host, count));

    /// <summary>The cluster-wide name of the limiter of one partition (a separator no limiter name should contain).</summary>
    public static string PartitionName(string name, string key) => $"{name}\u001f{key}";

    /// <summary>
    /// The name a cluster limiter's measurements are tagged with: a partition's is its limiter's, never its key (keys are
    /// unbounded, and each tag value would be a time series kept for ever); any other limiter's is its own.
    /// </summary>
    public static string MetricName(string name) => name.IndexOf('\u001f', StringComparison.Ordinal) is var separator and >= 0 ? name[..separator] : name;

    /// <summary>A cluster limiter's name in words, for error messages: a partition's is its limiter's name and its key, without the separator.</summary>
    public static string DisplayName(string name) =>
        name.IndexOf('\u001f', StringComparison.Ordinal) is var separator and >= 0 ? $"{name[..separator]} (partition {name[(separator + 1)..]})" : name;

    /// <summary>A partition's limiter in words, for error messages: as <see cref="DisplayName(string)"/> names <see cref="PartitionName"/>'s result.</summary>
    public static string DisplayName(string name, string key) => $"{name} (partition {key})";

    /// <inheritdoc />
    /// <remarks>A failed agent is restarted, carrying its callers' leases (see the class's remarks), and its failure logged.</remarks>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(Akka.Actor.SupervisorStrategy.DefaultDecider);

    /// <inheritdoc />
    protected override void PostStop()
    {
        _count.Publish(0);
        _count.Live.Clear();
        _disposeRequest?.Stopped.TrySetResult();
        base.PostStop();
    }

    /// <summary>
    /// A facade request: one the facade counted on its way to this parent (<see cref="ClusterAcquireRequest.Announced"/>,
    /// a concurrency partition's; in its key's live partition or its stripe, <see cref="ClusterAcquireRequest.Routing"/>)
    /// is announced in its agent's loan before it is counted off here, so no attempt passes it on either leg of its way
    /// (see <see cref="PartitionCount.Routing"/>).
    /// </summary>
    private void HandleFacadeAcquire(ClusterAcquireRequest request)
    {
        var key = request.Partition!;
        if (request.Announced)
        {
            Live(key).Local.Loan.Announce(); // the agent counts it off as it arrives (LimiterAgentActor.HandleFacadeAcquire)
            request.Routing?.Handled();
        }

        Route(key, request);
    }

    /// <summary>
    /// A refused attempt asks the key's agent for a block, made if the key has none: sent on if no wish is on its way to
    /// that agent already (the facade opened it, or it is opened here), so one at a time per partition.
    /// </summary>
    private void HandleWantBlock(PartitionWantBlock message)
    {
        if (message.Opened is null)
        {
            _count.FreshWishHandled(message.Key);
        }

        if (_template.Rates is not null)
        {
            return; // never sent: a rate partition leases no blocks
        }

        var wish = Live(message.Key).Wish;
        if (ReferenceEquals(wish, message.Opened) || wish.TryOpen())
        {
            Route(message.Key, WantBlock.Instance);
        }
    }

    /// <summary>The live partition of <paramref name="key"/>, its agent made if it has none.</summary>
    private LivePartition Live(string key)
    {
        if (!_agents.ContainsKey(key))
        {
            var name = PartitionName(_template.Name, key);
            var onTheWay = _carried.Remove(key, out var carried) ? carried : new RoutingCount();
            var setup = _template with
            {
                Name = name, Partition = key, ClusterCounts = new LimiterCounts(), LocalCounts = new LimiterCounts(),
                Limits = new LimitMirror(_template.Limit.MaxRunning, _template.Limit.MaxQueued),
                Wish = new BlockWish(), Routing = _template.Rates is null ? _count.Routing(key) : null,
                OnTheWay = _template.Rates is null ? onTheWay : null, Carry = new AgentCarry(),
            };
            var agent = Context.ActorOf(LimiterAgentActor.Props(setup));
            Context.WatchWith(agent, new AgentStopped(key, agent));
            _agents[key] = (agent, 0);
            _count.Live[key] = new LivePartition(setup.ClusterCounts, setup.LocalCounts, setup.Limits)
            {
                Wish = setup.Wish, Claims = setup.Rates is null ? new ClaimedLeaseReleaser(setup.LocalCounts.Loan, agent) : null,
                OnTheWay = onTheWay,
            };
            _host.Tell(new RegisterAgent(AgentKinds.Limiter, name, agent));
            _count.Publish(_agents.Count);
        }

        return _count.Live[key];
    }

    private void Route(string key, object message)
    {
        Live(key);
        var entry = _agents[key];
        _agents[key] = (entry.Agent, entry.Routed + 1);
        _count.Publish(_agents.Count);
        entry.Agent.Forward(message);
        if (message is not (ClusterAcquireRequest or WithdrawWaiter or GetLimiterStatus or AgentStatusAsk))
        {
            entry.Agent.Tell(CountedNoOp); // the agent counts only those three; see the remarks
        }
    }

    /// <summary>Every live partition's counts, read from what its agent published; no message to the agents or the singleton.</summary>
    private Dictionary<string, ClusterPartitionStatistics> Statistics()
    {
        var statistics = new Dictionary<string, ClusterPartitionStatistics>(_agents.Count, StringComparer.Ordinal);
        foreach (var (key, live) in _count.Live)
        {
            statistics.Add(key, live.Statistics);
        }

        return statistics;
    }

    /// <summary>
    /// A local actor's (or a facade lease's) message for one partition. A malformed one is not routed (it would crash
    /// every partition): one without a key is answered, as a facade refuses a null key — an acquire is rejected as an
    /// invalid request, anything else fails — so its sender does not wait for ever; one without a message is dropped.
    /// </summary>
    private void HandlePartitionMessage(ClusterPartitionMessage message)
    {
        if (message is { Key: { } key, Message: { } inner })
        {
            Route(key, inner);
            return;
        }

        Context.GetLogger().Warning("Partitioned limiter {0}: a ClusterPartitionMessage from {1} without a key or a message ignored", _template.Name, Sender);
        if (message.Key is not null || message.Message is null || Sender.IsNobody())
        {
            return;
        }

        var reason = $"{nameof(ClusterPartitionMessage.Key)} must not be null, got null: a {message.Message.GetType().Name} for partitioned limiter {_template.Name} names no partition";
        Sender.Tell(message.Message is GatekeeperProtocol.Acquire acquire
            ? new GatekeeperProtocol.Rejected(acquire.RequestId, reason) { Kind = RejectionReason.InvalidRequest }
            : new Status.Failure(new ArgumentNullException(nameof(ClusterPartitionMessage.Key), reason)));
    }

    /// <summary>A caller cancelled: its partition's agent drops the request (an agent that stopped had no waiter left).</summary>
    private void HandleWithdraw(WithdrawWaiter message)
    {
        if (message.Waiter is ClusterAcquireRequest { Partition: { } key } && _agents.ContainsKey(key))
        {
            Route(key, message);
        }
    }

    private void HandleIdle(PartitionIdle message)
    {
        if (!_agents.TryGetValue(message.Key, out var entry) || !entry.Agent.Equals(Sender) || entry.Routed != message.Routed)
        {
            return;
        }

        if (_template.Rates is null)
        {
            StopAgent(message.Key, entry.Agent);
            return;
        }

        // The ask is routed like any status ask, so the agent's next idle report (a whole idle timeout after it) counts it.
        var key = message.Key;
        var agent = entry.Agent;
        var routed = entry.Routed + 1;
        _agents[key] = (agent, routed);
        agent.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, RestProbeTimeout)
             .PipeTo(Self, success: status => new RestProbe(key, agent, routed, status), failure: _ => new RestProbe(key, agent, routed, null));
    }

    /// <summary>The gatekeeper's answer to a rest probe: the agent stops if nothing was routed to it since and the rates are at rest.</summary>
    private void HandleRestProbe(RestProbe probe)
    {
        if (_agents.TryGetValue(probe.Key, out var entry) && entry.Agent.Equals(probe.Agent) && entry.Routed == probe.Routed
            && probe.Status is { } status && AtRest(status, _template.Rates!))
        {
            StopAgent(probe.Key, entry.Agent);
        }
    }

    /// <summary>Whether a partition's gatekeeper reported nothing held, nobody waiting and every rate full with no debt.</summary>
    internal static bool AtRest(ClusterLimiterStatus status, ModelApiLimiterOptions rates) =>
        status is { Recovering: false, Running: 0, Waiting: 0 }
        && status.RequestsAvailable >= rates.RequestsPerPeriod && status.TokensAvailable >= rates.TokensPerPeriod;

    private void StopAgent(string key, IActorRef agent)
    {
        Remove(key); // idle, so nothing was lent nor claimed
        Context.Unwatch(agent);
        Context.Stop(agent);
    }

    /// <summary>
    /// An agent stopped that this parent did not stop: a routed message stopped it (or it failed as it was made again after
    /// a failure). Forgotten, so the key's next use makes a new agent; its waiters were failed as it stopped, and its
    /// block and leases are freed by the gatekeeper (a lease released afterwards goes nowhere).
    /// </summary>
    private void HandleAgentStopped(AgentStopped message)
    {
        if (_agents.TryGetValue(message.Key, out var entry) && entry.Agent.Equals(message.Agent))
        {
            Context.GetLogger().Warning("Partitioned limiter {0}: the agent of partition {1} stopped unasked; the key's next use makes a new one",
                _template.Name, message.Key);
            Remove(message.Key);
        }
    }

    /// <summary>
    /// Removes <paramref name="key"/>'s partition: its loan closed (an attempt that found it before its removal is
    /// refused), and a request counted on its way in it (<see cref="LivePartition.OnTheWay"/>) carried to the key's next
    /// agent. The facade counts such a request in the partition before it checks that the partition is still live, and
    /// this parent removes it before it reads the count (full fences between): either the facade sees the removal and
    /// counts the request in its stripe instead, or the count is carried.
    /// </summary>
    private void Remove(string key)
    {
        _agents.Remove(key);
        if (_count.Live.TryRemove(key, out var live))
        {
            live.Local.Loan.Close();
            Interlocked.MemoryBarrier();
            if (live.OnTheWay.Any)
            {
                _carried[key] = live.OnTheWay;
            }
        }

        _count.Publish(_agents.Count);
    }

    /// <summary>An agent this parent made stopped (it watches each with this message).</summary>
    private sealed record AgentStopped(string Key, IActorRef Agent);

    /// <summary>A rest probe's answer (<c>null</c> when it timed out), for the agent of <see cref="Key"/> as of <see cref="Routed"/> routed messages.</summary>
    private sealed record RestProbe(string Key, IActorRef Agent, long Routed, ClusterLimiterStatus? Status);
}
