using System.Diagnostics;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A concurrency limiter whose limit holds across the whole cluster: its gatekeeper runs in the cluster singleton,
/// and every node reaches it through the node's agent. Get one with <see cref="ActorQueueCluster.Limiter"/>.
/// </summary>
/// <remarks>
/// <para>Waiters are served in FIFO order of arrival at the gatekeeper. Local actors use <see cref="GatekeeperProtocol"/>
/// with <see cref="Agent"/>, exactly as with <see cref="ConcurrencyLimiter.Gatekeeper"/>.</para>
/// <para>Leases held on a node that leaves or is downed are released. When the singleton moves, the new gatekeeper
/// grants nothing until every member has re-announced its leases and waits (or has been removed), so the limit is
/// never exceeded; requests waiting at that moment keep their place relative to others of their node.</para>
/// <para><see cref="RunningCount"/> and <see cref="WaitingCount"/> are the cluster-wide counts as of this node's last
/// reply from the gatekeeper; <see cref="GetStatusAsync"/> asks for the exact ones.</para>
/// </remarks>
[DebuggerDisplay("{Name}: cluster running {RunningCount}/{MaxRunning}, local {LocalRunningCount}")]
public sealed class ClusterConcurrencyLimiter : IConcurrencyLimiter, IDisposable, IAsyncDisposable
{
    /// <summary>The cluster-wide counts as of the last reply from the gatekeeper.</summary>
    private readonly LimiterCounts _clusterCounts;

    /// <summary>This node's exact counts.</summary>
    private readonly LimiterCounts _localCounts;

    /// <summary>Tells the node extension the name is free again.</summary>
    private readonly Action<ClusterConcurrencyLimiter> _onDisposed;

    /// <summary>1 once disposal has begun.</summary>
    private int _disposed;

    internal ClusterConcurrencyLimiter(string name, int maxRunning, int? maxQueued, IActorRef agent,
                                       LimiterCounts clusterCounts, LimiterCounts localCounts, Action<ClusterConcurrencyLimiter> onDisposed)
    {
        Name = name;
        MaxRunning = maxRunning;
        MaxQueued = maxQueued;
        Agent = agent;
        _clusterCounts = clusterCounts;
        _localCounts = localCounts;
        _onDisposed = onDisposed;
    }

    /// <summary>The limiter's cluster-wide name: every node that uses this name shares the same slots.</summary>
    public string Name { get; }

    /// <inheritdoc />
    public int MaxRunning { get; }

    /// <inheritdoc />
    public int? MaxQueued { get; }

    /// <summary>Slots held cluster-wide, as of this node's last reply from the gatekeeper.</summary>
    public int RunningCount => _clusterCounts.Running;

    /// <summary>Requests waiting cluster-wide, as of this node's last reply from the gatekeeper.</summary>
    public int WaitingCount => _clusterCounts.Waiting;

    /// <inheritdoc />
    public int AvailableCount => Math.Max(0, MaxRunning - RunningCount);

    /// <summary>Slots held by callers on this node, exactly.</summary>
    public int LocalRunningCount => _localCounts.Running;

    /// <summary>Callers on this node waiting for a slot, exactly.</summary>
    public int LocalWaitingCount => _localCounts.Waiting;

    /// <summary>This node's agent: local actors send it <see cref="GatekeeperProtocol"/> messages.</summary>
    public IActorRef Agent { get; }

    /// <inheritdoc />
    public ValueTask<ConcurrencyLease> AcquireAsync(string source = "unnamed", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ConcurrencyLease>(cancellationToken);
        }

        var request = new AcquireRequest(source, Agent, signalQueued: false);
        Agent.Tell(request, ActorRefs.NoSender);
        return request.WaitAsync(cancellationToken);
    }

    /// <summary>Asks the gatekeeper for its exact cluster-wide counts.</summary>
    /// <param name="timeout">How long to wait for the answer; 10 seconds when <c>null</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The gatekeeper's counts and whether it is still recovering after a hand-over.</returns>
    public Task<ClusterLimiterStatus> GetStatusAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        Agent.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, timeout ?? TimeSpan.FromSeconds(10), cancellationToken);

    /// <summary>As <see cref="DisposeAsync"/>, without waiting for the agent to stop.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _onDisposed(this);
            Agent.Tell(new DisposeGatekeeper(), ActorRefs.NoSender);
        }
    }

    /// <summary>
    /// Stops this node's agent: its waiters get <see cref="ObjectDisposedException"/> and the gatekeeper releases the
    /// node's leases. The limiter lives on for the other nodes.
    /// </summary>
    /// <returns>A task that completes when the agent has stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _onDisposed(this);
        var dispose = new DisposeGatekeeper();
        Agent.Tell(dispose, ActorRefs.NoSender);
        await dispose.Stopped.Task.ConfigureAwait(false);
    }
}

/// <summary>A cluster gatekeeper's exact counts.</summary>
/// <param name="Name">The limiter's name.</param>
/// <param name="Running">Slots held cluster-wide.</param>
/// <param name="Waiting">Requests waiting cluster-wide.</param>
/// <param name="MaxRunning">How many slots there are.</param>
/// <param name="MaxQueued">How many may wait; <c>null</c> for no bound.</param>
/// <param name="Recovering">Whether the gatekeeper still waits for members to re-announce their leases (it grants nothing until then).</param>
/// <param name="Agents">How many node agents it knows.</param>
public sealed record ClusterLimiterStatus(string Name, int Running, int Waiting, int MaxRunning, int? MaxQueued, bool Recovering, int Agents);
