using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Coordination;

namespace ActorQueue.Cluster;

/// <summary>How a cluster limiter turns a granted slot into its adapter's lease.</summary>
internal interface IClusterLeases
{
    /// <summary>The adapter's lease over <paramref name="slot"/>, granted for <paramref name="request"/> (its demand, its partition).</summary>
    RateLimitLease Leased(ConcurrencyLease slot, ClusterAcquireRequest request);
}

/// <summary>What a cluster limiter gives its <see cref="ClusterRateLimiter"/>: its checks, its requests, its leases and its counts.</summary>
internal interface IClusterRateSubject : IClusterLeases
{
    /// <summary>The limiter's cluster-wide name, for reason phrases.</summary>
    string Name { get; }

    /// <summary>Whether a limit over time takes part (a model-API limiter): its counts live in the singleton alone.</summary>
    bool HasRates { get; }

    /// <summary>The adapter's available permits (<see cref="RateLimiterStatistics.CurrentAvailablePermits"/>), in its permits.</summary>
    long Available { get; }

    /// <summary>The adapter's queued count (<see cref="RateLimiterStatistics.CurrentQueuedCount"/>), in its permits.</summary>
    long Queued { get; }

    /// <summary>Whether callers on this node hold nothing and wait for nothing (exact).</summary>
    bool LocallyIdle { get; }

    /// <summary>What <paramref name="permitCount"/> of the adapter's permits (slots, or tokens) ask of the gate.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="permitCount"/> is more than the limiter can ever grant; the error names <c>permitCount</c>.</exception>
    PermitDemand Demand(int permitCount);

    /// <summary>
    /// A lease of <paramref name="permitCount"/> granted synchronously with no message, or <c>null</c> (then the attempt
    /// is refused): a plain concurrency limiter's permits from its node's block (<see cref="ClusterConcurrencyLimiter.TryClaim"/>).
    /// </summary>
    RateLimitLease? TryAttempt(int permitCount);

    /// <summary>The reason phrase of a refused attempt of <paramref name="permitCount"/> permits (0: a probe).</summary>
    string Refusal(int permitCount);

    /// <summary>Sends <paramref name="demand"/> to this node's agent, with the limiter's wait timeout, and returns the request.</summary>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    ClusterAcquireRequest Post(PermitDemand demand);
}

/// <summary>
/// A cluster limiter (<see cref="ClusterConcurrencyLimiter"/>, <see cref="ClusterModelApiLimiter"/>) as a
/// <see cref="RateLimiter"/>, so ASP.NET Core's rate-limiting middleware, Polly's <c>AddRateLimiter</c> and
/// <c>HttpClient</c> handlers on every node share one cluster-wide limit with every other caller.
/// </summary>
/// <remarks>
/// <para><see cref="RateLimiter.AcquireAsync"/> waits in the gatekeeper's queue (by priority 0, FIFO, the limiter's
/// wait timeout, which runs on this node); a full queue, an eviction or a timeout gives a failed lease with a reason
/// phrase and, when the gatekeeper's rates decide it, <see cref="MetadataName.RetryAfter"/>; so does the limiter's
/// disposal on this node while the caller waits (a call after it throws <see cref="ObjectDisposedException"/>). Cancellation throws.</para>
/// <para><see cref="RateLimiter.AttemptAcquire"/> never blocks and sends nothing. For a plain concurrency limiter,
/// <c>AttemptAcquire(n)</c> claims <c>n</c> unused permits of the block the gatekeeper leased to this node's agent (one
/// compare-and-swap on the agent's loan, lent between its messages only while nobody of this node waits or is on its
/// way, and the block is not recalled; the lease goes back into the block), so a node that tries or sheds is served
/// while the cluster has room for it. A node holds a block once one of its plain one-permit requests was granted by
/// the gatekeeper while nobody waited there — an <c>AcquireAsync</c>, or the block fetch a refused attempt asks its
/// agent for (one at a time, quiet for a while after one that brought none) — never a node's very first request, and
/// until its linger passes unused or someone waits at the gatekeeper. Every other attempt — fewer unused block permits
/// lent than it asks, a model-API limiter (a rate is spent per grant in the singleton) — is refused: the limit is decided in the
/// cluster singleton, a network round trip away, and a synchronous caller must not block for it. A zero-permit probe
/// (and a zero-permit <c>AcquireAsync</c>) says no for the same reason: this node's counts are as of its last reply from
/// the gatekeeper (a release elsewhere, or here, sends none), so an answer from them could be wrong either way.</para>
/// <para>The adapter does not own the limiter: disposing it leaves the limiter running.</para>
/// </remarks>
internal sealed class ClusterRateLimiter(IClusterRateSubject subject) : RateLimiter
{
    /// <summary>Who asks, in the gatekeeper's rejection messages and traces.</summary>
    internal const string Source = "rate-limiter";

    /// <summary><see cref="RateLimiter"/>'s parameter, which an argument error names whether the adapter or the gatekeeper finds it out of range.</summary>
    internal const string PermitCount = "permitCount";

    /// <summary>The leases handed out.</summary>
    private readonly LeaseTally _tally = new();

    private readonly IdleClock _idle = new();

    /// <inheritdoc />
    /// <remarks>
    /// For a concurrency limit: how long callers on this node have held and waited for nothing. A limit with rates is
    /// never idle (a spent bucket still limits), as the local model-API adapter.
    /// </remarks>
    public override TimeSpan? IdleDuration => _idle.Read(!subject.HasRates && subject.LocallyIdle);

    /// <inheritdoc />
    /// <remarks>
    /// A concurrency limiter's available permits and queued callers are cluster-wide, as of this node's last reply from
    /// the gatekeeper. A model-API limiter's are in tokens, as the local model-API adapter's: the available permits are
    /// the tokens <see cref="RateLimiter.AttemptAcquire"/> could take now, which is none (the rates are counted in the
    /// cluster singleton, and no reply carries what they hold: <see cref="ClusterModelApiLimiter.GetStatusAsync"/> asks
    /// for it), and the queued count is the tokens the calls waiting on this node asked for, exactly (every caller's on
    /// this node; the singleton alone knows the other nodes' estimates, so summed over the nodes it is the cluster's).
    /// The lease totals are this adapter's.
    /// </remarks>
    public override RateLimiterStatistics GetStatistics() => _tally.Statistics(subject.Available, subject.Queued);

    /// <inheritdoc />
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        if (permitCount > 0)
        {
            subject.Demand(permitCount);
            if (subject.TryAttempt(permitCount) is { } lease)
            {
                return Count(lease);
            }
        }

        return Count(RateLease.Failed(subject.Refusal(permitCount), null));
    }

    /// <inheritdoc />
    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        if (permitCount == 0)
        {
            return AttemptAcquireCore(0);
        }

        var demand = subject.Demand(permitCount);
        cancellationToken.ThrowIfCancellationRequested();
        return Count(await ClusterRateLeases.WaitAsync(subject.Post(demand), subject, cancellationToken).ConfigureAwait(false));
    }

    private RateLimitLease Count(RateLimitLease lease) => _tally.Count(lease);
}

/// <summary>The leases the cluster adapters give without a grant: the probe's answer and a synchronous attempt's refusal.</summary>
internal static class ClusterRateLeases
{
    /// <summary>
    /// Waits for <paramref name="request"/>: the adapter's lease, or for a refusal (a full queue, an eviction, a wait
    /// timeout, the limiter disposed on this node while the caller waited) a failed lease with its reason and the
    /// gatekeeper's retry-after, as RateLimiting's own limiters give their waiters; cancellation and argument errors throw
    /// (and a call made once the limiter is disposed throws <see cref="ObjectDisposedException"/> before it waits).
    /// </summary>
    public static async ValueTask<RateLimitLease> WaitAsync(ClusterAcquireRequest request, IClusterLeases leases, CancellationToken cancellationToken)
    {
        try
        {
            return leases.Leased(await request.WaitAsync(cancellationToken).ConfigureAwait(false), request);
        }
        catch (Exception error) when (error is ConcurrencyLimitExceededException or ConcurrencyWaitTimeoutException or ObjectDisposedException)
        {
            return RateLease.Failed(error.Message, request.RetryAfter);
        }
    }

    /// <summary>A synchronous attempt or a zero-permit probe the gatekeeper alone could grant: refused, since the grant is decided a network round trip away.</summary>
    public static RateLimitLease WouldBlock(string name, int permitCount) => RateLease.Failed(WouldBlockReason(name, permitCount), null);

    /// <summary>The reason phrase of <see cref="WouldBlock"/>.</summary>
    public static string WouldBlockReason(string name, int permitCount) => permitCount == 0
        ? $"Cluster limiter {name} decides in the cluster singleton, a network round trip away; this node cannot tell whether a permit is free now"
        : $"Cluster limiter {name} grants in the cluster singleton, a network round trip away; a caller that will not wait gets nothing. AcquireAsync waits for it";

    /// <summary>The reason phrase of a plain limiter's refused one-permit attempt: no unused permit of this node's block was lent.</summary>
    public static string NoBlockPermitReason(string name) =>
        $"Cluster limiter {name} has no unused permit of this node's block to grant at once (none leased or all in use, "
        + "the block recalled because someone waits, or a request of this node waits or is on its way); AcquireAsync waits for the gatekeeper";
}

/// <summary>A <see cref="ClusterConcurrencyLimiter"/> for <see cref="ClusterRateLimiter"/>: permits are slots, a lease is the <see cref="ConcurrencyLease"/> itself.</summary>
internal sealed class ClusterConcurrencySubject(ClusterConcurrencyLimiter limiter) : IClusterRateSubject
{
    public string Name => limiter.Name;

    public bool HasRates => false;

    public long Available => limiter.AvailableCount;

    public long Queued => limiter.WaitingCount;

    public bool LocallyIdle => limiter.LocalRunningCount == 0 && limiter.LocalWaitingCount == 0;

    public PermitDemand Demand(int permitCount) => new(ClusterArguments.Permits(permitCount, limiter.MaxRunning, nameof(permitCount)));

    public RateLimitLease? TryAttempt(int permitCount) => limiter.TryClaim(permitCount, ClusterRateLimiter.Source);

    public string Refusal(int permitCount) => permitCount > 0
        ? ClusterRateLeases.NoBlockPermitReason(limiter.Name)
        : ClusterRateLeases.WouldBlockReason(limiter.Name, permitCount);

    public ClusterAcquireRequest Post(PermitDemand demand) => limiter.Post(demand, priority: 0, limiter.WaitTimeout, ClusterRateLimiter.Source, ClusterRateLimiter.PermitCount);

    public RateLimitLease Leased(ConcurrencyLease slot, ClusterAcquireRequest request) => slot;
}

/// <summary>A <see cref="ClusterModelApiLimiter"/> for <see cref="ClusterRateLimiter"/>: permits are tokens, each acquire one call (a slot and a request).</summary>
internal sealed class ClusterModelApiSubject(ClusterModelApiLimiter limiter, ClusterConcurrencyLimiter slots, ITokenSettler settler) : IClusterRateSubject
{
    public string Name => limiter.Name;

    public bool HasRates => true;

    public long Available => 0; // the tokens an attempt could take now: it never grants (a rate is spent per grant, in the singleton)

    public long Queued => slots.LocalQueued; // the tokens this node's waiting calls asked for

    public bool LocallyIdle => slots.LocalRunningCount == 0 && slots.LocalWaitingCount == 0;

    public PermitDemand Demand(int permitCount) =>
        new(1, LimitValidation.EstimatedTokens(permitCount, limiter.Options.TokensPerPeriod, limiter.Name, nameof(permitCount)));

    public RateLimitLease? TryAttempt(int permitCount) => null; // rates are spent per grant, in the singleton

    public string Refusal(int permitCount) => ClusterRateLeases.WouldBlockReason(limiter.Name, permitCount);

    public ClusterAcquireRequest Post(PermitDemand demand) => slots.Post(demand, priority: 0, limiter.Options.WaitTimeout, ClusterRateLimiter.Source, ClusterRateLimiter.PermitCount);

    public RateLimitLease Leased(ConcurrencyLease slot, ClusterAcquireRequest request) => new RateLease(new ModelApiLease(slot, request.Demand.Tokens, settler, limiter.Name));
}
