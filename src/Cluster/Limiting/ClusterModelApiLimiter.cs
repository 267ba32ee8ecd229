using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A <see cref="ModelApiLimiter"/> whose limits hold across the whole cluster: calls in flight, requests per period and
/// tokens per period, granted together by one gatekeeper in the cluster singleton, for every node that uses the same
/// name. Get one with <see cref="ActorQueueCluster.ModelApiLimiter"/>.
/// </summary>
/// <remarks>
/// <para>A caller acquires with its token estimate and settles the lease with the real count, as with the local limiter;
/// local actors send <see cref="GatekeeperProtocol.Acquire"/> (with <see cref="GatekeeperProtocol.Acquire.Tokens"/>) and
/// <see cref="GatekeeperProtocol.Settle"/> to <see cref="Agent"/>.</para>
/// <para>What it promises: grants within one period never exceed the rates, summed over all nodes. When the singleton
/// moves, the new gatekeeper grants nothing until every member has re-announced its calls (as for every cluster limiter),
/// then starts its rates empty, counting periods from the take-over, and owes the newest debt any node heard of: a
/// bucket is never refilled twice for one period, nor loses what a settle's excess owes. The price: up to one period
/// without new grants after a hand-over. The rates run on the singleton node's clock (<see cref="TimeProvider.System"/>);
/// <see cref="ModelApiLimiterOptions.TimeProvider"/> is not used on the cluster.</para>
/// </remarks>
[DebuggerDisplay("{Name}: cluster running {RunningCount}, local {LocalRunningCount}")]
public sealed class ClusterModelApiLimiter : IDisposable, IAsyncDisposable
{
    /// <summary>The node's agent and its counts, shared with the concurrency limiter's machinery.</summary>
    private readonly ClusterConcurrencyLimiter _slots;

    /// <summary>Where every lease's settle goes: this node's agent (one for all leases).</summary>
    private readonly GatekeeperReleaser _settler;

    /// <summary>The adapter <see cref="AsRateLimiter"/> made, once asked.</summary>
    private System.Threading.RateLimiting.RateLimiter? _rateLimiter;

    internal ClusterModelApiLimiter(ClusterConcurrencyLimiter slots, ModelApiLimiterOptions options)
    {
        _slots = slots;
        _settler = new GatekeeperReleaser(slots.Agent);
        Options = options;
    }

    /// <summary>The limiter's cluster-wide name.</summary>
    public string Name => _slots.Name;

    /// <summary>The limits this node created it with (the gatekeeper takes those of the first node that reaches it).</summary>
    public ModelApiLimiterOptions Options { get; }

    /// <summary>Slots held cluster-wide (one per call in flight), as of this node's last reply from the gatekeeper.</summary>
    public int RunningCount => _slots.RunningCount;

    /// <summary>Calls waiting cluster-wide, as of this node's last reply from the gatekeeper.</summary>
    public int WaitingCount => _slots.WaitingCount;

    /// <summary>
    /// Slots held on this node, exactly, as <see cref="RunningCount"/> counts them cluster-wide: one per call in flight (a
    /// local actor's acquire with <see cref="GatekeeperProtocol.Acquire.Permits"/> above 1 holds that many).
    /// </summary>
    public int LocalRunningCount => _slots.LocalRunningCount;

    /// <summary>Calls waiting on this node, exactly.</summary>
    public int LocalWaitingCount => _slots.LocalWaitingCount;

    /// <summary>This node's agent: local actors send it <see cref="GatekeeperProtocol"/> messages.</summary>
    public IActorRef Agent => _slots.Agent;

    /// <summary>Waits until a slot, a request and <paramref name="estimatedTokens"/> tokens are all free cluster-wide, then takes them together.</summary>
    /// <param name="estimatedTokens">The tokens the call is expected to use; at least 1 and at most <see cref="ModelApiLimiterOptions.TokensPerPeriod"/>.</param>
    /// <param name="priority">Higher is served first; FIFO within one priority.</param>
    /// <param name="waitTimeout">How long it may wait (on this node): <c>null</c> for the options' default, <see cref="Timeout.InfiniteTimeSpan"/> for ever, zero not at all.</param>
    /// <param name="source">Who asks; shows in rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the call while it waits; it then takes nothing.</param>
    /// <returns>The lease: settle it with the real token count, then dispose it.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="estimatedTokens"/> or <paramref name="waitTimeout"/> is out of range.</exception>
    /// <exception cref="ConcurrencyLimitExceededException">The queue is full, or this waiter was evicted.</exception>
    /// <exception cref="ConcurrencyWaitTimeoutException">The wait timeout passed, or a zero timeout would have had to wait.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed on this node.</exception>
    public ValueTask<ModelApiLease> AcquireAsync(long estimatedTokens, int priority = 0, TimeSpan? waitTimeout = null,
                                                 string source = "unnamed", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        LimitValidation.EstimatedTokens(estimatedTokens, Options.TokensPerPeriod, Name, nameof(estimatedTokens));
        var timeout = waitTimeout is { } given ? ClusterArguments.WaitTimeout(given, nameof(waitTimeout)) : Options.WaitTimeout;
        var request = _slots.Send(new PermitDemand(1, estimatedTokens), priority, timeout, source, cancellationToken);
        return LeaseOf(request, estimatedTokens);
    }

    /// <summary>Asks the gatekeeper for its exact cluster-wide counts, with what its rates have left.</summary>
    /// <param name="timeout">How long to wait for the answer: more than zero and finite; 10 seconds when <c>null</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The gatekeeper's counts; <see cref="ClusterLimiterStatus.RequestsAvailable"/> and <see cref="ClusterLimiterStatus.TokensAvailable"/> are set.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero, negative or infinite.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed on this node.</exception>
    public Task<ClusterLimiterStatus> GetStatusAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _slots.GetStatusAsync(timeout, cancellationToken);

    /// <summary>
    /// This limiter as a <see cref="System.Threading.RateLimiting.RateLimiter"/> whose permits are tokens, for ASP.NET
    /// Core's rate-limiting middleware, Polly's <c>AddRateLimiter</c> or an <c>HttpClient</c> handler on any node; the
    /// same instance on every call. <c>AcquireAsync(n)</c> waits for a slot, a request and <c>n</c> tokens together
    /// (the lease frees its slot when disposed; its tokens are charged as estimated); a full queue, an eviction or a wait
    /// timeout gives a failed lease with a reason phrase and, when the gatekeeper's rates decide it, <c>RetryAfter</c>.
    /// <c>AttemptAcquire</c> never grants, since the rates are counted in the cluster singleton, a network round trip
    /// away. <c>GetStatistics</c> counts tokens too: 0 available (what an attempt could take now), and queued the tokens
    /// the calls waiting on this node asked for (the other nodes' estimates are known to the singleton alone).
    /// Disposing the adapter leaves this limiter running.
    /// </summary>
    /// <returns>The adapter.</returns>
    /// <exception cref="ObjectDisposedException">The limiter is disposed on this node.</exception>
    public System.Threading.RateLimiting.RateLimiter AsRateLimiter()
    {
        _slots.ThrowIfDisposed();
        return LazyInitializer.EnsureInitialized(ref _rateLimiter, () => new ClusterRateLimiter(new ClusterModelApiSubject(this, _slots, _settler)));
    }

    /// <summary>As <see cref="DisposeAsync"/>, without waiting for the agent to stop.</summary>
    public void Dispose() => _slots.Dispose();

    /// <summary>Stops this node's agent: its waiters get <see cref="ObjectDisposedException"/> and the gatekeeper frees the node's slots. The limiter lives on for the other nodes.</summary>
    /// <returns>A task that completes when the agent has stopped.</returns>
    public ValueTask DisposeAsync() => _slots.DisposeAsync();

    private async ValueTask<ModelApiLease> LeaseOf(ValueTask<ConcurrencyLease> grant, long estimatedTokens) =>
        new(await grant.ConfigureAwait(false), estimatedTokens, _settler, Name);
}
