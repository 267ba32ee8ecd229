using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A concurrency limiter whose limit holds across the whole cluster: its gatekeeper runs in the cluster singleton,
/// and every node reaches it through the node's agent. Get one with <see cref="ActorQueueCluster.Limiter"/>.
/// </summary>
/// <remarks>
/// <para>Waiters are served by priority, then in order of arrival at the gatekeeper; a request for several permits is
/// never overtaken by smaller ones behind it. Local actors use <see cref="GatekeeperProtocol"/> with <see cref="Agent"/>,
/// exactly as with <see cref="ConcurrencyLimiter.Gatekeeper"/>.</para>
/// <para>While nobody waits at the gatekeeper, it leases blocks of permits to the nodes (counted as held there): a plain
/// one-permit acquire on a node with an unused permit of its block is granted by the node's agent without a network
/// round trip, in arrival order on that node; the <see cref="AsRateLimiter"/> adapter's <c>AttemptAcquire(n)</c> is
/// granted from such permits synchronously, with no message at all, while nobody of this node waits or is on its way.
/// Once anyone waits at the gatekeeper the blocks are recalled and grants follow the gatekeeper's order again
/// (<c>actorqueue.cluster.limiter-blocks</c>, <c>limiter-block-linger</c>).</para>
/// <para>Leases held on a node that leaves or is downed are released. When the singleton moves, the new gatekeeper
/// grants nothing until every member has re-announced its leases and waits (or has been removed), so the limit is
/// never exceeded (a weighted lease counts with its permits); requests waiting at that moment keep their place relative
/// to others of their node and are not failed. A wait timeout runs on the caller's node, so a hand-over neither restarts
/// nor stops it. A <see cref="Resize"/> goes to the gatekeeper and from there to every node; the nodes announce it to a
/// new gatekeeper, so it survives a hand-over, and this node sends it again to the next gatekeeper until it hears it
/// applied, so a resize sent while the singleton moves is applied by the next one, once.</para>
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

    /// <summary>The current (resized) limit, as this node's agent last heard it.</summary>
    private readonly LimitMirror _limits;

    /// <summary>Tells the node extension the name is free again.</summary>
    private readonly Action<ClusterConcurrencyLimiter> _onDisposed;

    /// <summary>The disposal, ordered after the resizes sent before it.</summary>
    private readonly FacadeDisposal _disposal;

    /// <summary>The adapter <see cref="AsRateLimiter"/> made, once asked.</summary>
    private System.Threading.RateLimiting.RateLimiter? _rateLimiter;

    /// <summary>
    /// Claims and gives back leases from the unused permits of this node's block, which the agent lends between its
    /// messages; <c>null</c> for a limiter with rates (its agent never leases blocks). Every request this facade sends
    /// is announced in the loan first, so no claim passes it on its way to the agent.
    /// </summary>
    private readonly ClaimedLeaseReleaser? _claims;

    /// <summary>Whether a refused attempt's wish for a block is on its way to the agent (shared with it).</summary>
    private readonly BlockWish _wish;

    internal ClusterConcurrencyLimiter(LimiterAgentSetup setup, IActorRef agent, Action<ClusterConcurrencyLimiter> onDisposed)
    {
        Name = setup.Name;
        Configured = setup.Limit;
        Agent = agent;
        _clusterCounts = setup.ClusterCounts;
        _localCounts = setup.LocalCounts;
        _limits = setup.Limits;
        _onDisposed = onDisposed;
        _disposal = new FacadeDisposal(agent);
        _claims = setup is { Rates: null, Partition: null } ? new ClaimedLeaseReleaser(setup.LocalCounts.Loan, agent) : null;
        _wish = setup.Wish;
    }

    /// <summary>The limiter's cluster-wide name: every node that uses this name shares the same slots.</summary>
    public string Name { get; }

    /// <summary>How many permits there are cluster-wide, as of the last resize this node heard of.</summary>
    public int MaxRunning => _limits.Current.MaxRunning;

    /// <summary>How many may wait cluster-wide, as of the last resize this node heard of; <c>null</c> for no bound.</summary>
    public int? MaxQueued => _limits.Current.MaxQueued;

    /// <summary>How long a caller of this node waits when it gives no wait timeout; <c>null</c> for ever.</summary>
    public TimeSpan? WaitTimeout => Configured.WaitTimeout;

    /// <summary>What the gatekeeper does when <see cref="MaxQueued"/> waiters wait and one more arrives.</summary>
    public QueueFullMode WhenFull => Configured.WhenFull;

    /// <summary>The bounds this node created the limiter with.</summary>
    internal ClusterLimit Configured { get; }

    /// <summary>Permits held cluster-wide (blocks leased to nodes included), as of this node's last reply from the gatekeeper.</summary>
    public int RunningCount => _clusterCounts.Running;

    /// <summary>Requests waiting cluster-wide, as of this node's last reply from the gatekeeper.</summary>
    public int WaitingCount => _clusterCounts.Waiting;

    /// <inheritdoc />
    public int AvailableCount => Math.Max(0, MaxRunning - RunningCount);

    /// <summary>
    /// Permits held by callers on this node, exactly: a weighted lease counts its permits, as in <see cref="RunningCount"/>
    /// (the unused permits of a block leased to this node are not counted here; <see cref="RunningCount"/> has them).
    /// </summary>
    public int LocalRunningCount => _localCounts.Running;

    /// <summary>Callers on this node waiting for a slot, exactly.</summary>
    public int LocalWaitingCount => _localCounts.Waiting;

    /// <summary>What the callers waiting on this node ask for, exactly: their token estimates with rates (a model-API limiter's), else their permits.</summary>
    internal long LocalQueued => _localCounts.Queued;

    /// <summary>This node's agent: local actors send it <see cref="GatekeeperProtocol"/> messages.</summary>
    public IActorRef Agent { get; }

    /// <inheritdoc />
    public ValueTask<ConcurrencyLease> AcquireAsync(string source = "unnamed", CancellationToken cancellationToken = default) =>
        AcquireAsync(1, 0, null, source, cancellationToken);

    /// <summary>
    /// Takes <paramref name="permits"/> permits cluster-wide, waiting by priority (higher first, FIFO within one) when
    /// they are not free or others wait before it.
    /// </summary>
    /// <param name="permits">How many permits; at least 1 and at most <see cref="MaxRunning"/>.</param>
    /// <param name="priority">Higher is served first; FIFO within one priority.</param>
    /// <param name="waitTimeout">
    /// How long to wait: <c>null</c> for <see cref="WaitTimeout"/>, <see cref="Timeout.InfiniteTimeSpan"/> for ever,
    /// <see cref="TimeSpan.Zero"/> not at all. It runs on this node.
    /// </param>
    /// <param name="source">Who asks; shows in rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the request while it waits; a cancelled caller holds nothing.</param>
    /// <returns>The lease on the permits; dispose it to give them back.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="permits"/> is below 1 or above the limit, or <paramref name="waitTimeout"/> is negative.</exception>
    /// <exception cref="ConcurrencyLimitExceededException">The wait queue is full, or the request was evicted from it by one of higher priority.</exception>
    /// <exception cref="ConcurrencyWaitTimeoutException">The wait timeout passed first (or was zero and the permits were not free).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before the permits were granted.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    [SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters",
                     Justification = "The shape IConcurrencyLimiter pins for every limiter; the overloads differ in their required first parameter.")]
    public ValueTask<ConcurrencyLease> AcquireAsync(int permits, int priority = 0, TimeSpan? waitTimeout = null,
                                                    string source = "unnamed", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ClusterArguments.Permits(permits, MaxRunning, nameof(permits));
        var timeout = waitTimeout is { } given ? ClusterArguments.WaitTimeout(given, nameof(waitTimeout)) : WaitTimeout;
        return Send(new(permits), priority, timeout, source, cancellationToken);
    }

    /// <summary>Sends a checked request to this node's agent and awaits its grant.</summary>
    internal ValueTask<ConcurrencyLease> Send(ActorQueue.Coordination.PermitDemand demand, int priority, TimeSpan? timeout, string source, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ConcurrencyLease>(cancellationToken);
        }

        return Post(demand, priority, timeout, source).WaitAsync(cancellationToken);
    }

    /// <summary>Sends a checked request to this node's agent and returns it, for a caller that reads more of its outcome than the lease (its <c>RetryAfter</c>).</summary>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    internal ClusterAcquireRequest Post(ActorQueue.Coordination.PermitDemand demand, int priority, TimeSpan? timeout, string source, string? argumentName = null)
    {
        ThrowIfDisposed();
        var request = new ClusterAcquireRequest(source, demand, priority, timeout, Agent) { ArgumentName = argumentName, Announced = _claims is not null, SentBy = (_disposal, Name) };
        if (request.Announced)
        {
            _localCounts.Loan.Announce(); // before it is sent: no claim after this call passes it, and the agent lends no more until it arrived
        }

        Agent.Tell(request, ActorRefs.NoSender);
        return request;
    }

    /// <summary>
    /// A lease of <paramref name="permits"/> claimed synchronously from unused permits of this node's block, with no
    /// message, or <c>null</c>: that many block permits are not lent now (too few unused, none leased, the block
    /// recalled, or a request of this node waits or is on its way to the agent), the limiter has rates, or it is disposed.
    /// </summary>
    /// <remarks>A refusal of a plain limiter asks the agent for a block (one wish at a time, <see cref="WantBlock"/>), so callers that only try are leased one too.</remarks>
    internal ConcurrencyLease? TryClaim(int permits, string source)
    {
        if (_claims is null)
        {
            return null;
        }

        if (_claims.TryClaim(permits, source) is { } lease)
        {
            return lease;
        }

        if (_wish.TryOpen())
        {
            Agent.Tell(WantBlock.Instance, ActorRefs.NoSender);
        }

        return null;
    }

    /// <summary>
    /// Sets new cluster-wide bounds, through the gatekeeper, for every node. Growing grants to waiters at once;
    /// shrinking revokes no held permit (nothing more is granted until enough come back) and fails the waiters that ask
    /// more than the new limit. <see cref="MaxRunning"/> and <see cref="MaxQueued"/> show it once the gatekeeper has
    /// applied it. It survives a hand-over of the singleton while this node's limiter lives; disposed before the resize
    /// was heard applied, the limiter does not wait for it, and a hand-over before the gatekeeper took it loses it (the
    /// agent logs a warning as it stops; <see cref="ResizeAsync"/> tells its caller). A resize racing <see cref="DisposeAsync"/> either throws
    /// <see cref="ObjectDisposedException"/> or is sent on to the gatekeeper ahead of the agent's stop.
    /// </summary>
    /// <param name="maxRunning">The new limit; at least 1; <c>null</c> leaves it.</param>
    /// <param name="maxQueued">The new bound on waiters; at least 0; <c>null</c> leaves it (a bounded queue cannot become unbounded here).</param>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public void Resize(int? maxRunning = null, int? maxQueued = null) =>
        _disposal.Send(this, ClusterArguments.Resize(maxRunning, maxQueued, nameof(maxRunning))); // ahead of a dispose racing it, or ObjectDisposedException

    /// <summary>
    /// As <see cref="Resize"/>, with a definite answer: the task completes once this node heard the gatekeeper apply the
    /// resize (<see cref="MaxRunning"/> and <see cref="MaxQueued"/> show it by then), across hand-overs of the singleton
    /// while this node's limiter lives. Disposed before that, the limiter fails the task with
    /// <see cref="ObjectDisposedException"/> saying so: the resize was sent, and the gatekeeper incarnation it reached
    /// applies it unless it stops before taking it (nobody sends it again). The dispose does not wait for the answer. If
    /// this node's agent has stopped (failed for good) before the answer, the task fails with
    /// <see cref="InvalidOperationException"/>.
    /// </summary>
    /// <param name="maxRunning">The new limit; at least 1; <c>null</c> leaves it.</param>
    /// <param name="maxQueued">The new bound on waiters; at least 0; <c>null</c> leaves it.</param>
    /// <param name="cancellationToken">
    /// Cancelled before the call (after the bounds are checked), nothing is sent and the task is cancelled
    /// (<see cref="OperationCanceledException"/>); cancelled later, it stops waiting for the answer, and the resize goes on.
    /// </param>
    /// <returns>Completes when the resize is heard applied; fails if the limiter is disposed first.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before the call: the resize was not sent.</exception>
    public Task ResizeAsync(int? maxRunning = null, int? maxQueued = null, CancellationToken cancellationToken = default) =>
        ClusterArguments.AwaitResize(_disposal, this, Name, ClusterArguments.Resize(maxRunning, maxQueued, nameof(maxRunning)), awaited => awaited, cancellationToken);

    /// <summary>
    /// Asks the gatekeeper, through this node's agent, for its exact cluster-wide counts. If the agent has stopped before
    /// taking the ask, the task fails at once, not at its timeout: with <see cref="ObjectDisposedException"/> when the
    /// limiter's disposal or its actor system's shutdown stopped it, else with <see cref="InvalidOperationException"/>
    /// naming the limiter (the agent failed for good, or something else stopped it).
    /// </summary>
    /// <param name="timeout">How long to wait for the answer: more than zero and finite; 10 seconds when <c>null</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The gatekeeper's counts and whether it is still recovering after a hand-over.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero, negative or infinite.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public Task<ClusterLimiterStatus> GetStatusAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var wait = ClusterArguments.AskTimeout(timeout, nameof(timeout));
        ThrowIfDisposed();
        return Agent.Ask<ClusterLimiterStatus>(asker => new LimiterStatusAsk(Name, asker, _disposal), wait, cancellationToken); // one per call: failed at once if it reaches no agent
    }

    /// <summary>
    /// This limiter as a <see cref="System.Threading.RateLimiting.RateLimiter"/> for ASP.NET Core's rate-limiting
    /// middleware, Polly's <c>AddRateLimiter</c> or an <c>HttpClient</c> handler, so they share the cluster-wide limit
    /// with every other caller on every node; the same instance on every call. <c>AcquireAsync</c> waits in the
    /// gatekeeper's queue with the limiter's wait timeout; a full queue, an eviction or a timeout gives a failed lease
    /// whose <c>ReasonPhrase</c> says why. <c>AttemptAcquire</c> never blocks: <c>AttemptAcquire(n)</c> claims <c>n</c>
    /// unused permits of the block leased to this node, with no message, while nobody of this node waits or is on its
    /// way and the block is not recalled (a refusal asks the agent for a block, so a caller that only tries is served
    /// too); an attempt that finds too few is refused, since the limit is decided in the cluster singleton, a network round trip
    /// away (the middleware then waits with <c>AcquireAsync</c>). Disposing the adapter leaves this limiter running.
    /// </summary>
    /// <returns>The adapter.</returns>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public System.Threading.RateLimiting.RateLimiter AsRateLimiter()
    {
        ThrowIfDisposed();
        return LazyInitializer.EnsureInitialized(ref _rateLimiter, () => new ClusterRateLimiter(new ClusterConcurrencySubject(this)));
    }

    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    internal void ThrowIfDisposed() => _disposal.ThrowIfDisposed(this);

    /// <summary>As <see cref="DisposeAsync"/>, without waiting for the agent to stop.</summary>
    public void Dispose() => _ = DisposeAsync();

    /// <summary>
    /// Stops this node's agent: its waiters get <see cref="ObjectDisposedException"/> and the gatekeeper releases the
    /// node's leases. The limiter lives on for the other nodes.
    /// </summary>
    /// <returns>A task that completes when the agent has stopped.</returns>
    public ValueTask DisposeAsync()
    {
        _localCounts.Loan.Close(); // no claim from this node's block once disposed; the agent's stop frees the block
        return new(_disposal.Stop(this, _onDisposed));
    }
}

/// <summary>A cluster gatekeeper's exact counts.</summary>
/// <param name="Name">The limiter's name.</param>
/// <param name="Running">Permits held cluster-wide, with the unused permits of the blocks leased to nodes.</param>
/// <param name="Waiting">Requests waiting cluster-wide.</param>
/// <param name="MaxRunning">How many slots there are.</param>
/// <param name="MaxQueued">How many may wait; <c>null</c> for no bound.</param>
/// <param name="Recovering">Whether the gatekeeper still waits for members to re-announce their leases (it grants nothing until then).</param>
/// <param name="Agents">How many node agents it knows.</param>
public sealed record ClusterLimiterStatus(string Name, int Running, int Waiting, int MaxRunning, int? MaxQueued, bool Recovering, int Agents)
{
    /// <summary>A model-API limiter's requests left in its period; below zero while a debt is owed; <c>null</c> without rates.</summary>
    public long? RequestsAvailable { get; init; }

    /// <summary>
    /// A model-API limiter's tokens left in its period; below zero while a settle's excess is owed (the next refills
    /// pay it first); <c>null</c> without rates.
    /// </summary>
    public long? TokensAvailable { get; init; }
}
