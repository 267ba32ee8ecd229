using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A partitioned cluster limiter on one node: the parent of one <see cref="LimiterAgentActor"/> per partition key in
/// use here, each the agent of its own cluster limiter (its own gatekeeper in the singleton). It routes the facade's
/// requests by key, creating the agent on first use, and stops an agent that has been idle for the idle timeout, so a
/// node's partitions stay as many as are in use.
/// </summary>
/// <remarks>
/// An agent that finds itself idle tells this parent how many routed messages it has seen; the parent stops it only
/// if it has routed no more since. The parent handles one message at a time, so a request it routes after that
/// check goes to a new agent: none reaches a stopping one.
/// </remarks>
internal sealed class PartitionAgentsActor : ReceiveActor
{
    /// <summary>What every partition's agent is started with, but for its name, key and counts.</summary>
    private readonly LimiterAgentSetup _template;

    /// <summary>The node host, which recover requests for a partition's gatekeeper reach its agent through.</summary>
    private readonly IActorRef _host;

    /// <summary>How many partitions live on this node, for the facade.</summary>
    private readonly PartitionCount _count;

    /// <summary>The live agents by key, with how many messages were routed to each.</summary>
    private readonly Dictionary<string, (IActorRef Agent, long Routed)> _agents = new(StringComparer.Ordinal);

    /// <summary>The counts each live partition's agent publishes (cluster-wide as last heard, and this node's), by key.</summary>
    private readonly Dictionary<string, (LimiterCounts Cluster, LimiterCounts Local)> _counts = new(StringComparer.Ordinal);

    /// <summary>Set once a dispose request arrived; completed in PostStop.</summary>
    private DisposeGatekeeper? _disposeRequest;

    public PartitionAgentsActor(LimiterAgentSetup template, IActorRef host, PartitionCount count)
    {
        _template = template;
        _host = host;
        _count = count;
        Receive<ClusterAcquireRequest>(request => Route(request.Partition!, request));
        Receive<WithdrawWaiter>(HandleWithdraw);
        Receive<PartitionStatus>(message => Route(message.Key, GetLimiterStatus.Instance));
        Receive<AllPartitionStatistics>(_ => Sender.Tell(Statistics()));
        Receive<PartitionIdle>(HandleIdle);
        Receive<DisposeGatekeeper>(message =>
        {
            _disposeRequest = message;
            Context.Stop(Self); // the agents stop with it and fail their waiters
        });
    }

    public static Props Props(LimiterAgentSetup template, IActorRef host, PartitionCount count) =>
        Akka.Actor.Props.Create(() => new PartitionAgentsActor(template, host, count));

    /// <summary>The cluster-wide name of the limiter of one partition (a separator no limiter name should contain).</summary>
    public static string PartitionName(string name, string key) => $"{name}\u001f{key}";

    /// <inheritdoc />
    protected override void PostStop()
    {
        _count.Publish(0);
        _disposeRequest?.Stopped.TrySetResult();
        base.PostStop();
    }

    private void Route(string key, object message)
    {
        if (!_agents.TryGetValue(key, out var entry))
        {
            var name = PartitionName(_template.Name, key);
            var setup = _template with
            {
                Name = name, Partition = key, ClusterCounts = new LimiterCounts(), LocalCounts = new LimiterCounts(),
                Limits = new LimitMirror(_template.Limit.MaxRunning, _template.Limit.MaxQueued),
            };
            entry = (Context.ActorOf(LimiterAgentActor.Props(setup)), 0);
            _counts[key] = (setup.ClusterCounts, setup.LocalCounts);
            _host.Tell(new RegisterAgent(AgentKinds.Limiter, name, entry.Agent));
        }

        _agents[key] = (entry.Agent, entry.Routed + 1);
        _count.Publish(_agents.Count);
        entry.Agent.Forward(message);
    }

    /// <summary>A caller cancelled: its partition's agent drops the request (an agent that stopped had no waiter left).</summary>
    /// <summary>Every live partition's counts, read from what its agent published; no message to the agents or the singleton.</summary>
    private Dictionary<string, ClusterPartitionStatistics> Statistics()
    {
        var statistics = new Dictionary<string, ClusterPartitionStatistics>(_counts.Count, StringComparer.Ordinal);
        foreach (var (key, (cluster, local)) in _counts)
        {
            statistics.Add(key, new ClusterPartitionStatistics(cluster.Running, cluster.Waiting, local.Running, local.Waiting));
        }

        return statistics;
    }

    private void HandleWithdraw(WithdrawWaiter message)
    {
        if (message.Waiter is ClusterAcquireRequest { Partition: { } key } && _agents.ContainsKey(key))
        {
            Route(key, message);
        }
    }

    private void HandleIdle(PartitionIdle message)
    {
        if (_agents.TryGetValue(message.Key, out var entry) && entry.Agent.Equals(Sender) && entry.Routed == message.Routed)
        {
            _agents.Remove(message.Key);
            _counts.Remove(message.Key);
            _count.Publish(_agents.Count);
            Context.Stop(entry.Agent);
        }
    }
}

/// <summary>A partition's agent → its parent: idle for its whole idle timeout, having seen <see cref="Routed"/> routed messages.</summary>
internal sealed record PartitionIdle(string Key, long Routed);

/// <summary>The facade → the parent: the exact counts of the partition <see cref="Key"/>.</summary>
internal sealed record PartitionStatus(string Key);

/// <summary>Asks a node's partition agents for the counts of every live partition; the reply is a dictionary by key.</summary>
internal sealed class AllPartitionStatistics
{
    public static readonly AllPartitionStatistics Instance = new();
}

/// <summary>How many partitions live on a node, written by its <see cref="PartitionAgentsActor"/> only.</summary>
internal sealed class PartitionCount
{
    private volatile int _value;

    /// <summary>The count now.</summary>
    public int Value => _value;

    /// <summary>Called by the parent only.</summary>
    public void Publish(int value) => _value = value;
}
