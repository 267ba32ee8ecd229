using System.Diagnostics;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A concurrency limit per key (a tenant, an API key, a host) that holds across the whole cluster: each key in use is
/// a cluster limiter of its own, with its own gatekeeper in the singleton and its own agent on each node that uses it.
/// Both stop after the idle timeout with nothing held and nobody waiting, so a stream of distinct keys keeps memory
/// bounded on every node and on the singleton. Get one with <see cref="ActorQueueCluster.PartitionedLimiter"/>.
/// </summary>
/// <remarks>
/// Every partition has the same bounds and the same guarantees as <see cref="ClusterConcurrencyLimiter"/> (weights,
/// priorities, wait timeouts, hand-over, blocks leased to the nodes and synchronous attempts from them). A partition that was stopped for idleness and is used again starts as a new
/// gatekeeper incarnation: it asks every member first, so it never over-admits.
/// </remarks>
[DebuggerDisplay("{Name}: {PartitionCount} partition(s) on this node")]
public sealed class ClusterPartitionedLimiter : IDisposable, IAsyncDisposable
{
    /// <summary>The node's parent of the partitions' agents.</summary>
    private readonly IActorRef _agents;

    /// <summary>How many partitions live on this node.</summary>
    private readonly PartitionCount _count;

    /// <summary>Tells the node extension the name is free again.</summary>
    private readonly Action<ClusterPartitionedLimiter> _onDisposed;

    /// <summary>The disposal, ordered after the resizes sent before it.</summary>
    private readonly FacadeDisposal _disposal;

    internal ClusterPartitionedLimiter(string name, ClusterLimit limit, TimeSpan idleTimeout, IActorRef agents, PartitionCount count,
                                       Action<ClusterPartitionedLimiter> onDisposed)
    {
        Name = name;
        Configured = limit;
        IdleTimeout = idleTimeout;
        _agents = agents;
        _count = count;
        _onDisposed = onDisposed;
        _disposal = new FacadeDisposal(agents);
    }

    /// <summary>The limiter's cluster-wide name.</summary>
    public string Name { get; }

    /// <summary>How many permits each partition has cluster-wide.</summary>
    public int MaxRunning => Configured.MaxRunning;

    /// <summary>How many may wait in each partition cluster-wide; <c>null</c> for no bound.</summary>
    public int? MaxQueued => Configured.MaxQueued;

    /// <summary>How long a partition lives on with nothing held and nobody waiting.</summary>
    public TimeSpan IdleTimeout { get; }

    /// <summary>How many partitions are live on this node now.</summary>
    public int PartitionCount => _count.Value;

    /// <summary>The bounds this node created it with.</summary>
    internal ClusterLimit Configured { get; }

    /// <summary>Takes <paramref name="permits"/> permits of the partition <paramref name="key"/>, cluster-wide, as <see cref="ClusterConcurrencyLimiter.AcquireAsync(int, int, TimeSpan?, string, CancellationToken)"/>.</summary>
    /// <param name="key">The partition; not <c>null</c>.</param>
    /// <param name="permits">How many permits; at least 1 and at most <see cref="MaxRunning"/>.</param>
    /// <param name="priority">Higher is served first; FIFO within one priority.</param>
    /// <param name="waitTimeout">How long to wait: <c>null</c> for the limiter's default, infinite for ever, zero not at all.</param>
    /// <param name="source">Who asks; shows in rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the request while it waits.</param>
    /// <returns>The lease; dispose it to give the permits back.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="permits"/> or <paramref name="waitTimeout"/> is out of range.</exception>
    public ValueTask<ConcurrencyLease> AcquireAsync(string key, int permits = 1, int priority = 0, TimeSpan? waitTimeout = null,
                                                    string source = "unnamed", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(source);
        ClusterArguments.Permits(permits, MaxRunning, nameof(permits));
        var timeout = waitTimeout is { } given ? ClusterArguments.WaitTimeout(given, nameof(waitTimeout)) : Configured.WaitTimeout;
        _disposal.ThrowIfDisposed(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ConcurrencyLease>(cancellationToken);
        }

        return Post(key, new(permits), priority, timeout, source).WaitAsync(cancellationToken);
    }

    /// <summary>Sends a checked request for the partition <paramref name="key"/> to this node's agents and returns it.</summary>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    /// <remarks>
    /// Counted on its way to the parent before the call returns, so no attempt made after it claims past it (see
    /// <see cref="PartitionCount.Routing"/>): first in its key's stripe, then, if the key's partition is live, in that
    /// partition, whose loan is suspended (an agent live now lends nothing before its next message, and none while the
    /// count holds the request); if the partition is still live after that, the stripe's count is taken back, so other
    /// keys of the stripe lend on. The parent announces it in the agent's loan it routes it to before it counts it off.
    /// </remarks>
    internal ClusterAcquireRequest Post(string key, ActorQueue.Coordination.PermitDemand demand, int priority, TimeSpan? timeout, string source, string? argumentName = null)
    {
        _disposal.ThrowIfDisposed(this);
        var counted = _count.Routing(key);
        counted.Sending(); // before the lookup: an agent made after it sees the stripe
        if (_count.Live.TryGetValue(key, out var live))
        {
            live.OnTheWay.Sending(); // before the check below: the parent carries the count of a partition it removes after it
            live.Local.Loan.Suspend(); // what it lent stays aside for the agent's next message, which lends again only once this request is in
            if (_count.Live.TryGetValue(key, out var still) && ReferenceEquals(still, live))
            {
                counted.Handled(); // the partition's count holds it from here
                counted = live.OnTheWay;
            }
            else
            {
                live.OnTheWay.Handled(); // removed meanwhile: the stripe holds it, as for a key without a partition
            }
        }

        var request = new ClusterAcquireRequest(source, demand, priority, timeout, _agents)
        {
            Partition = key, ArgumentName = argumentName, Announced = true, Routing = counted, SentBy = (_disposal, Name),
        };
        _agents.Tell(request, ActorRefs.NoSender);
        return request;
    }

    /// <summary>
    /// A lease of <paramref name="permits"/> of the partition <paramref name="key"/> claimed synchronously, with no message,
    /// from the unused permits of the block its agent holds on this node, or <c>null</c>: none lent now (none unused, no
    /// block, the block recalled, a request of this node for the key waits or is on its way, no partition live here), or
    /// the limiter is disposed. A refusal asks the key's agent for a block (made if the key has none; one wish at a time
    /// per partition), so callers that only try are served after a round trip.
    /// </summary>
    internal ConcurrencyLease? TryClaim(string key, int permits, string source)
    {
        if (_disposal.IsDisposed)
        {
            return null;
        }

        if (_count.Live.TryGetValue(key, out var live))
        {
            if (live.Claims?.TryClaim(permits, source) is { } lease)
            {
                return lease;
            }

            if (live.Wish.TryOpen())
            {
                _agents.Tell(new PartitionWantBlock(key, live.Wish), ActorRefs.NoSender);
            }
        }
        else if (_count.TryOpenFreshWish(key))
        {
            _agents.Tell(new PartitionWantBlock(key, Opened: null), ActorRefs.NoSender);
        }

        return null;
    }

    /// <summary>The partitions live on this node, with their counts.</summary>
    internal PartitionCount Partitions => _count;

    /// <summary>
    /// This limiter as a <see cref="System.Threading.RateLimiting.PartitionedRateLimiter{TResource}"/> keyed by
    /// <paramref name="keyOf"/>, for ASP.NET Core's rate-limiting middleware (a global limiter per tenant on every node)
    /// or Polly. <c>AcquireAsync</c> waits in the partition's queue with the limiter's wait timeout; a full queue, an
    /// eviction or a timeout gives a failed lease whose <c>ReasonPhrase</c> says why. <c>AttemptAcquire</c> never blocks:
    /// it claims unused permits of the block the key's gatekeeper leased to this node, with no message, while no request
    /// of this node for the key waits or is on its way and the block is not recalled; a refusal asks the key's agent for a
    /// block (making the key's partition here if it has none), so a caller that only tries is served a round trip later
    /// (the middleware waits with <c>AcquireAsync</c> when refused).
    /// <c>GetStatistics</c> reports a partition live on this node and is <c>null</c> for any other key. Disposing the
    /// adapter leaves this limiter running.
    /// </summary>
    /// <typeparam name="TResource">What a caller is limited on (an <c>HttpContext</c>, a request message).</typeparam>
    /// <param name="keyOf">The partition key of a resource; must not return <c>null</c>.</param>
    /// <returns>The adapter.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="keyOf"/> is <c>null</c>.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public System.Threading.RateLimiting.PartitionedRateLimiter<TResource> AsPartitionedRateLimiter<TResource>(Func<TResource, string> keyOf)
    {
        ArgumentNullException.ThrowIfNull(keyOf);
        _disposal.ThrowIfDisposed(this);
        return new ClusterPartitionedRateLimiter<TResource, string>(new ClusterPartitionedSubject(this), keyOf);
    }

    /// <summary>Asks the gatekeeper of the partition <paramref name="key"/> for its exact cluster-wide counts.</summary>
    /// <param name="key">The partition; not <c>null</c>.</param>
    /// <param name="timeout">How long to wait for the answer: more than zero and finite; 10 seconds when <c>null</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The partition's counts.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero, negative or infinite.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public Task<ClusterLimiterStatus> GetStatusAsync(string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var wait = ClusterArguments.AskTimeout(timeout, nameof(timeout));
        _disposal.ThrowIfDisposed(this);
        return PartitionsParentAsk.Send<ClusterLimiterStatus>(_agents, Name, _disposal, new PartitionStatus(key), wait, cancellationToken); // one per call: failed at once if it reaches no parent
    }

    /// <summary>
    /// The counts of every partition live on this node, in one call: the cluster-wide counts as of each partition's
    /// last reply from its gatekeeper, and this node's exact ones. Asks this node only, never the singleton.
    /// </summary>
    /// <param name="timeout">How long to wait for the answer: more than zero and finite; 10 seconds when <c>null</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The statistics by partition key.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero, negative or infinite.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public async Task<IReadOnlyDictionary<string, ClusterPartitionStatistics>> GetStatisticsAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var wait = ClusterArguments.AskTimeout(timeout, nameof(timeout));
        _disposal.ThrowIfDisposed(this);
        return await PartitionsParentAsk.Send<Dictionary<string, ClusterPartitionStatistics>>(_agents, Name, _disposal, new AllPartitionStatistics(), wait, cancellationToken)
                            .ConfigureAwait(false);
    }

    /// <summary>
    /// Sets new cluster-wide bounds for the partition <paramref name="key"/> alone, through its gatekeeper, as
    /// <see cref="ClusterConcurrencyLimiter.Resize"/> does for a whole limiter: growing grants to waiters at once, shrinking
    /// revokes nothing held. It survives a hand-over of the singleton (the nodes' agents re-announce it), and lasts while
    /// the partition lives: once it has stopped for idleness on every node and in the singleton, the key starts again at
    /// <see cref="MaxRunning"/> and <see cref="MaxQueued"/>. A key that is not live is made by the resize (and stops again
    /// after the idle timeout if unused). Requests are still checked against <see cref="MaxRunning"/> on the caller's node,
    /// so a grown partition takes more leases, not heavier ones.
    /// </summary>
    /// <param name="key">The partition; not <c>null</c>.</param>
    /// <param name="maxRunning">The partition's new limit; at least 1; <c>null</c> leaves it.</param>
    /// <param name="maxQueued">Its new bound on waiters; at least 0; <c>null</c> leaves it (a bounded queue cannot become unbounded here).</param>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public void Resize(string key, int? maxRunning = null, int? maxQueued = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        PartitionResize.Send(_disposal, this, key, maxRunning, maxQueued, nameof(maxRunning));
    }

    /// <summary>
    /// As <see cref="Resize"/>, with a definite answer, as <see cref="ClusterConcurrencyLimiter.ResizeAsync"/> gives: the
    /// task completes once this node heard the partition's gatekeeper apply it, and fails with
    /// <see cref="ObjectDisposedException"/> if the limiter is disposed first (the resize was sent; the incarnation it
    /// reached applies it unless it stops before taking it).
    /// </summary>
    /// <param name="key">The partition; not <c>null</c>.</param>
    /// <param name="maxRunning">The partition's new limit; at least 1; <c>null</c> leaves it.</param>
    /// <param name="maxQueued">Its new bound on waiters; at least 0; <c>null</c> leaves it.</param>
    /// <param name="cancellationToken">
    /// Cancelled before the call (after the key and bounds are checked), nothing is sent and the task is cancelled
    /// (<see cref="OperationCanceledException"/>); cancelled later, it stops waiting for the answer, and the resize goes on.
    /// </param>
    /// <returns>Completes when the resize is heard applied; fails if the limiter is disposed first.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before the call: the resize was not sent.</exception>
    public Task ResizeAsync(string key, int? maxRunning = null, int? maxQueued = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return PartitionResize.SendAwaited(_disposal, this, Name, key, maxRunning, maxQueued, nameof(maxRunning), cancellationToken);
    }

    /// <summary>As <see cref="DisposeAsync"/>, without waiting for the agents to stop.</summary>
    public void Dispose() => _ = DisposeAsync();

    /// <summary>Stops this node's agents: their waiters get <see cref="ObjectDisposedException"/>, the gatekeepers release the node's leases.</summary>
    /// <returns>A task that completes when the agents have stopped.</returns>
    public ValueTask DisposeAsync()
    {
        var stopped = _disposal.Stop(this, _onDisposed); // attempts are refused from here on
        foreach (var live in _count.Live.Values)
        {
            live.Local.Loan.Close(); // no claim from a partition's block once disposed; the agents' stop frees the blocks
        }

        return new(stopped);
    }
}

/// <summary>One live partition's counts, as <see cref="ClusterPartitionedLimiter.GetStatisticsAsync"/> reports them.</summary>
/// <param name="Running">Permits held cluster-wide, as of this node's last reply from the partition's gatekeeper.</param>
/// <param name="Waiting">Requests waiting cluster-wide, as of that reply.</param>
/// <param name="LocalRunning">Permits held by callers on this node, exactly (a weighted lease counts its permits, as <paramref name="Running"/> does).</param>
/// <param name="LocalWaiting">Callers on this node waiting, exactly.</param>
public sealed record ClusterPartitionStatistics(int Running, int Waiting, int LocalRunning, int LocalWaiting);
