using System.Collections.Concurrent;
using System.Text.Json;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Akka.Event;
using AkkaCluster = Akka.Cluster.Cluster;

namespace ActorQueue.Cluster;

/// <summary>
/// ActorQueue on one cluster node: the node's host for agents, the singleton manager of the hub (cluster
/// gatekeepers and queue routers), and the factories for cluster limiters, distributed queues and their workers.
/// </summary>
/// <remarks>
/// Nodes created with <see cref="ActorQueueClusterRuntime.Create"/> load this extension at start, which every node
/// needs: the singleton can only start on the oldest node if that node runs the singleton manager too.
/// </remarks>
public sealed partial class ActorQueueCluster : IExtension
{
    /// <summary>The address protocol of a node whose transport runs TLS (<c>akka.ssl.tcp</c>).</summary>
    private const string AuthenticatedProtocol = "akka.ssl.tcp";

    /// <summary>The singleton manager's actor name (under <c>/system</c>).</summary>
    internal const string SingletonManagerName = "actorqueue-singleton";

    /// <summary>The node's actor system.</summary>
    private readonly ExtendedActorSystem _system;

    /// <summary>ActorQueue's per-system extension: settings and unique actor names.</summary>
    private readonly ActorQueueExtension _runtime;

    /// <summary>This node's cluster limiters by name, so a name has one agent per node.</summary>
    private readonly ConcurrentDictionary<string, ClusterConcurrencyLimiter> _limiters = new(StringComparer.Ordinal);

    /// <summary>This node's partitioned cluster limiters by name.</summary>
    private readonly ConcurrentDictionary<string, ClusterPartitionedLimiter> _partitioned = new(StringComparer.Ordinal);

    /// <summary>This node's partitioned model-API limiters by name (each a <see cref="ClusterPartitionedModelApiLimiter{TKey}"/> of its key type).</summary>
    private readonly ConcurrentDictionary<string, object> _partitionedModelApi = new(StringComparer.Ordinal);

    /// <summary>This node's model-API limiters by name.</summary>
    private readonly ConcurrentDictionary<string, ClusterModelApiLimiter> _modelApi = new(StringComparer.Ordinal);

    internal ActorQueueCluster(ExtendedActorSystem system)
    {
        if (system.Provider is not Akka.Cluster.ClusterActorRefProvider)
        {
            throw new InvalidOperationException(
                $"Actor system '{system.Name}' is not a cluster node (akka.actor.provider = {system.Settings.ProviderClass}); create it with ActorQueueClusterRuntime.Create");
        }

        System = system;
        _system = system;
        _runtime = ActorQueueExtension.Get(system);
        system.Settings.InjectTopLevelFallback(ActorQueueClusterRuntime.ClusterConfig);
        system.Settings.InjectTopLevelFallback(ClusterSingleton.DefaultConfig());
        Settings = ActorQueueClusterSettings.From(system.Settings.Config);
        Cluster = AkkaCluster.Get(system);
        CoordinatorDispatcher = _runtime.Settings.CoordinatorDispatcher;
        if (Cluster.SelfAddress.Protocol != AuthenticatedProtocol)
        {
            system.Log.Warning(
                "ActorQueue cluster node {0} authenticates no peer (no TLS): any process that can reach it can join the cluster, run work on its worker nodes and read every item. Give it a certificate (ClusterNodeOptions.Certificate; see docs/SECURITY.md).",
                Cluster.SelfAddress);
        }

        Host = system.SystemActorOf(NodeHostActor.Props(Cluster.SelfAddress, Settings.SingletonRole).WithDispatcher(CoordinatorDispatcher), NodeHostActor.ActorName);
        var managerSettings = ClusterSingletonManagerSettings.Create(system).WithSingletonName("hub").WithRole(Settings.SingletonRole);
        system.SystemActorOf(
            ClusterSingletonManager.Props(HubActor.Props(Settings, QueueStorage(system)).WithDispatcher(CoordinatorDispatcher), PoisonPill.Instance, managerSettings),
            SingletonManagerName);
        var proxySettings = ClusterSingletonProxySettings.Create(system).WithSingletonName("hub").WithRole(Settings.SingletonRole);
        HubProxy = system.SystemActorOf(ClusterSingletonProxy.Props($"/system/{SingletonManagerName}", proxySettings), "actorqueue-singleton-proxy");
    }

    /// <summary>The node's actor system.</summary>
    public ActorSystem System { get; }

    /// <summary>Akka's cluster extension for this node.</summary>
    public AkkaCluster Cluster { get; }

    /// <summary>The typed <c>actorqueue.cluster</c> settings.</summary>
    public ActorQueueClusterSettings Settings { get; }

    /// <summary>Whether this node has the role that lets it run queue workers.</summary>
    public bool IsWorkerNode => Cluster.SelfRoles.Contains(Settings.WorkerRole);

    /// <summary>The node's host actor, which a new singleton incarnation asks for the node's state.</summary>
    internal IActorRef Host { get; }

    /// <summary>The proxy to the singleton hub.</summary>
    internal IActorRef HubProxy { get; }

    internal string CoordinatorDispatcher { get; }

    /// <summary>Loads (once) and returns the extension for a cluster node.</summary>
    /// <param name="system">A node created with <see cref="ActorQueueClusterRuntime.Create"/> (or configured with <c>hocon/cluster.conf</c>).</param>
    /// <returns>The node's extension.</returns>
    /// <exception cref="InvalidOperationException">The system is not a cluster node.</exception>
    public static ActorQueueCluster Get(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        return system.WithExtension<ActorQueueCluster, ActorQueueClusterExtensionId>();
    }

    /// <summary>Joins the cluster that <paramref name="seed"/> belongs to (or forms one, when it is this node) and waits until this node is Up.</summary>
    /// <param name="seed">A member's address, e.g. another node's <c>Cluster.SelfAddress</c>.</param>
    /// <param name="cancellationToken">Stops waiting (the join goes on).</param>
    /// <returns>A task that completes when this node is Up.</returns>
    /// <exception cref="ArgumentException">This node runs without TLS (<see cref="ClusterNodeOptions.InsecureLoopback"/>) and <paramref name="seed"/> is not on loopback.</exception>
    public Task JoinAsync(Address seed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(seed);
        if (Cluster.SelfAddress.Protocol != AuthenticatedProtocol && !ClusterNodeOptions.IsLoopback(seed.Host?.Trim('[', ']') ?? ""))
        {
            throw new ArgumentException(
                $"seed '{seed}' is not a loopback address; a node without authentication (InsecureLoopback) joins loopback seeds only", nameof(seed));
        }

        Cluster.Join(seed);
        return WhenUpAsync(cancellationToken);
    }

    /// <summary>Completes when this node is Up (at once if it already is).</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when this node is Up.</returns>
    public Task WhenUpAsync(CancellationToken cancellationToken = default)
    {
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Cluster.RegisterOnMemberUp(() => up.TrySetResult());
        return up.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Leaves the cluster gracefully and waits until this node is removed (its system then shuts down).</summary>
    /// <returns>A task that completes when the node has left.</returns>
    public Task LeaveAsync() => Cluster.LeaveAsync();

    /// <summary>
    /// This node's handle on the cluster-wide limiter <paramref name="name"/>: every node asking for the same name
    /// shares its permits. Asking again on the same node returns the same handle.
    /// </summary>
    /// <param name="name">The limiter's cluster-wide name.</param>
    /// <param name="maxRunning">How many permits may be held at once, cluster-wide; at least 1.</param>
    /// <param name="maxQueued">How many may wait cluster-wide; <c>null</c> for no bound.</param>
    /// <param name="waitTimeout">How long a caller on this node waits by default; <c>null</c> (or infinite) for ever, <see cref="TimeSpan.Zero"/> not at all.</param>
    /// <param name="whenFull">What the gatekeeper does when <paramref name="maxQueued"/> waiters wait and one more arrives.</param>
    /// <returns>The limiter.</returns>
    /// <remarks>The gatekeeper takes its bounds and <paramref name="whenFull"/> from the first node that reaches it; a resize changes them for all.</remarks>
    /// <exception cref="ArgumentException">The name is empty, or this node already uses it with other bounds.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxRunning"/> is below 1, <paramref name="maxQueued"/> or <paramref name="waitTimeout"/> is negative.</exception>
    public ClusterConcurrencyLimiter Limiter(string name, int maxRunning, int? maxQueued = null, TimeSpan? waitTimeout = null,
                                             QueueFullMode whenFull = QueueFullMode.RejectNewcomer)
    {
        var limit = LimitOf(name, maxRunning, maxQueued, waitTimeout, whenFull);
        while (true)
        {
            if (_modelApi.ContainsKey(name))
            {
                throw new ArgumentException($"'{name}' is a cluster model-API limiter on this node; a concurrency limiter needs a name of its own", nameof(name));
            }

            if (_limiters.TryGetValue(name, out var existing))
            {
                if (existing.Configured != limit)
                {
                    throw new ArgumentException($"Cluster limiter '{name}' is already in use on this node with {existing.Configured}; got {limit}", nameof(name));
                }

                return existing;
            }

            // Lock-free: two racing callers may both start an agent; the loser stops its own before registering it.
            var limiter = StartLimiter(name, limit, LimiterAgentActor.Props,
                disposed => _limiters.TryRemove(new KeyValuePair<string, ClusterConcurrencyLimiter>(disposed.Name, disposed)),
                register: false);
            if (_limiters.TryAdd(name, limiter))
            {
                Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, limiter.Agent));
                return limiter;
            }

            System.Stop(limiter.Agent);
        }
    }

    /// <summary>
    /// This node's handle on the cluster-wide model-API limiter <paramref name="name"/>: calls in flight, requests per
    /// period and tokens per period, shared by every node that asks for the same name (see <see cref="ClusterModelApiLimiter"/>
    /// for what holds across nodes and hand-overs). Asking again on the same node returns the same handle.
    /// </summary>
    /// <param name="name">The limiter's cluster-wide name; not one this node uses for a <see cref="Limiter"/>.</param>
    /// <param name="options">The limits; the gatekeeper takes those of the first node that reaches it.</param>
    /// <returns>The limiter.</returns>
    /// <exception cref="ArgumentException">The name is empty, this node uses it with other options or for a concurrency limiter, or the options' sliding window segments do not split the period.</exception>
    public ClusterModelApiLimiter ModelApiLimiter(string name, ModelApiLimiterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        RateGatekeeper.Check(options);
        var limit = LimitOf(name, options.MaxConcurrent, options.MaxQueued, options.WaitTimeout, QueueFullMode.RejectNewcomer);
        while (true)
        {
            if (_modelApi.TryGetValue(name, out var existing))
            {
                return existing.Options == options
                    ? existing
                    : throw new ArgumentException($"Cluster model-API limiter '{name}' is already in use on this node with {existing.Options}; got {options}", nameof(options));
            }

            if (_limiters.ContainsKey(name))
            {
                throw new ArgumentException($"'{name}' is a cluster concurrency limiter on this node; a model-API limiter needs a name of its own", nameof(name));
            }

            ClusterModelApiLimiter? limiter = null;
            var slots = StartLimiter(name, limit, LimiterAgentActor.Props,
                _ => _modelApi.TryRemove(new KeyValuePair<string, ClusterModelApiLimiter>(name, limiter!)), register: false, options);
            limiter = new ClusterModelApiLimiter(slots, options);
            if (_modelApi.TryAdd(name, limiter))
            {
                Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, limiter.Agent));
                return limiter;
            }

            System.Stop(slots.Agent);
        }
    }

    /// <summary>Starts the parent of a partitioned limiter's agents on this node.</summary>
    private IActorRef StartPartitions(string name, ClusterLimit limit, TimeSpan idleTimeout, ModelApiLimiterOptions? rates, PartitionCount count)
    {
        var template = new LimiterAgentSetup(name, limit, HubProxy, Cluster.SelfAddress, new LimiterCounts(), new LimiterCounts(),
            new LimitMirror(limit.MaxRunning, limit.MaxQueued), Settings.HelloInterval) { IdleTimeout = idleTimeout, Rates = rates };
        return StartAgent("actorqueue-partitions", name, PartitionAgentsActor.Props(template, Host, count));
    }

    /// <summary>Checks a limiter's arguments, each error naming its parameter and value.</summary>
    private static ClusterLimit LimitOf(string name, int maxRunning, int? maxQueued, TimeSpan? waitTimeout, QueueFullMode whenFull)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        LimitValidation.MaxRunning(maxRunning, nameof(maxRunning));
        LimitValidation.MaxQueued(maxQueued, nameof(maxQueued));
        var timeout = waitTimeout is { } given ? ClusterArguments.WaitTimeout(given, nameof(waitTimeout)) : (TimeSpan?)null;
        if (!Enum.IsDefined(whenFull))
        {
            throw new ArgumentOutOfRangeException(nameof(whenFull), whenFull, $"whenFull must be a QueueFullMode, got {(int)whenFull}");
        }

        return new ClusterLimit(maxRunning, maxQueued, timeout, whenFull);
    }

    /// <summary>
    /// Starts a limiter agent made by <paramref name="props"/> and returns its handle; registers it with the node host
    /// (so recover requests reach it) when <paramref name="register"/>.
    /// </summary>
    internal ClusterConcurrencyLimiter StartLimiter(string name, ClusterLimit limit, Func<LimiterAgentSetup, Props> props,
                                                    Action<ClusterConcurrencyLimiter> onDisposed, bool register, ModelApiLimiterOptions? rates = null)
    {
        var setup = new LimiterAgentSetup(name, limit, HubProxy, Cluster.SelfAddress, new LimiterCounts(), new LimiterCounts(),
            new LimitMirror(limit.MaxRunning, limit.MaxQueued), Settings.HelloInterval) { Rates = rates };
        var agent = StartAgent("actorqueue-limiter", name, props(setup));
        if (register)
        {
            Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, agent));
        }

        return new ClusterConcurrencyLimiter(setup, agent, onDisposed);
    }

    /// <summary>
    /// This node's producer handle on the distributed queue <paramref name="name"/>: items put here are processed by
    /// the workers registered for that name on any worker node.
    /// </summary>
    /// <typeparam name="TItem">The item type; serialised with System.Text.Json.</typeparam>
    /// <typeparam name="TResult">The workers' result type; serialised with System.Text.Json.</typeparam>
    /// <param name="name">The queue's cluster-wide name.</param>
    /// <param name="maxSize">How many items the router holds waiting for a worker; at least 1.</param>
    /// <param name="timeout">How long a put waits for space; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="json">How items and results are serialised; System.Text.Json's defaults when <c>null</c>.</param>
    /// <returns>The producer handle; dispose it when done.</returns>
    public DistributedWorkQueue<TItem, TResult> WorkQueue<TItem, TResult>(string name, int maxSize = 100, TimeSpan? timeout = null, JsonSerializerOptions? json = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (maxSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, $"maxSize must be >= 1, got {maxSize}");
        }

        var putTimeout = timeout is { } given ? QueueArguments.PutTimeout(given, nameof(timeout)) : _runtime.Settings.QueuePutTimeout;

        return new DistributedWorkQueue<TItem, TResult>(this, name, maxSize, putTimeout, json);
    }

    /// <summary>
    /// Registers this node's workers for the distributed queue <paramref name="name"/>: <paramref name="numWorkers"/>
    /// workers that pull items from the queue's router and run <paramref name="handler"/> on them.
    /// </summary>
    /// <typeparam name="TItem">The item type; must match the producers'.</typeparam>
    /// <typeparam name="TResult">The result type; must match the producers'.</typeparam>
    /// <param name="name">The queue's cluster-wide name.</param>
    /// <param name="handler">Processes one item; its result (or exception) goes back to the item's producer.</param>
    /// <param name="numWorkers">How many items this node runs at once; at least 1.</param>
    /// <param name="json">How items and results are serialised; System.Text.Json's defaults when <c>null</c>.</param>
    /// <returns>The registration; disposing it stops the workers (an item in flight is re-dispatched elsewhere).</returns>
    /// <exception cref="InvalidOperationException">This node does not have the worker role.</exception>
    public DistributedWorkers RegisterWorkers<TItem, TResult>(string name, Func<TItem, CancellationToken, Task<TResult>> handler, int numWorkers = 1, JsonSerializerOptions? json = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(handler);
        if (numWorkers < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numWorkers), numWorkers, $"numWorkers must be >= 1, got {numWorkers}");
        }

        if (!IsWorkerNode)
        {
            throw new InvalidOperationException(
                $"Node {Cluster.SelfAddress} does not have the worker role '{Settings.WorkerRole}' (its roles: {string.Join(", ", Cluster.SelfRoles)}); only worker nodes run queue workers");
        }

        var codec = new ItemCodec<TItem, TResult>(json);
        async Task<string?> Run(string payload, CancellationToken token) => codec.EncodeResult(await handler(codec.DecodeItem(payload), token).ConfigureAwait(false));
        var workers = new List<IActorRef>(numWorkers);
        for (var i = 0; i < numWorkers; i++)
        {
            var worker = StartAgent("actorqueue-worker", name,
                DistributedWorkerActor.Props(name, Run, HubProxy, Cluster.SelfAddress.ToString(), Settings.HelloInterval));
            Host.Tell(new RegisterAgent(AgentKinds.Queue, name, worker));
            workers.Add(worker);
        }

        return new DistributedWorkers(name, workers);
    }

    /// <summary>Starts a producer agent for a distributed queue.</summary>
    internal IActorRef StartProducer(string name, int capacity, ProducerCounts counts)
    {
        var producer = StartAgent("actorqueue-producer", name, DistributedProducerActor.Props(name, capacity, HubProxy, counts, Settings.HelloInterval));
        Host.Tell(new RegisterAgent(AgentKinds.Queue, name, producer));
        return producer;
    }

    /// <summary>
    /// Readies the journal for the queue routers this node may host (<see cref="ClusterNodeOptions.QueueDurability"/>),
    /// checking a SQLite file now so that a bad one fails the node's start, not its first put.
    /// </summary>
    /// <exception cref="QueueStorageException">The SQLite file cannot be opened, read or written.</exception>
    private static DistributedQueueStorage? QueueStorage(ExtendedActorSystem system)
    {
        if (!system.Settings.Setup.Get<DistributedQueueSetup>().HasValue)
        {
            return null;
        }

        var durability = system.Settings.Setup.Get<DistributedQueueSetup>().Value.Durability;
        var (journal, snapshot) = DurableStorage.Prepare(system, durability, "distributed queues");
        return new DistributedQueueStorage(durability, journal, snapshot);
    }

    /// <summary>Starts a node agent as a system actor on the coordinator dispatcher, under a name unique in this system.</summary>
    private IActorRef StartAgent(string kind, string name, Props props) =>
        _system.SystemActorOf(props.WithDispatcher(CoordinatorDispatcher), _runtime.UniqueActorName(kind, name));
}

/// <summary>Creates <see cref="ActorQueueCluster"/> for Akka's extension registry (and for <c>akka.extensions</c>).</summary>
public sealed class ActorQueueClusterExtensionId : ExtensionIdProvider<ActorQueueCluster>
{
    /// <inheritdoc />
    public override ActorQueueCluster CreateExtension(ExtendedActorSystem system) => new(system);
}
