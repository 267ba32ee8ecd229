using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Coordination;

namespace ActorQueue.Cluster;

/// <summary>What a partitioned cluster limiter gives its <see cref="ClusterPartitionedRateLimiter{TResource, TKey}"/>.</summary>
/// <typeparam name="TKey">The partition key.</typeparam>
internal interface IClusterPartitionedRateSubject<in TKey> : IClusterLeases
    where TKey : notnull
{
    /// <summary>The limiter's cluster-wide name, for reason phrases.</summary>
    string Name { get; }

    /// <summary>Whether a limit over time takes part (a model-API limiter): its counts live in the singleton alone.</summary>
    bool HasRates { get; }

    /// <summary>The partition <paramref name="key"/> names within the limiter.</summary>
    string Partition(TKey key);

    /// <summary>What <paramref name="permitCount"/> of the adapter's permits (slots, or tokens) ask of a partition's gate.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="permitCount"/> is more than a partition can ever grant; the error names <c>permitCount</c>.</exception>
    PermitDemand Demand(int permitCount);

    /// <summary>Sends <paramref name="demand"/> for <paramref name="partition"/> to this node's agents, with the limiter's wait timeout, and returns the request.</summary>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    ClusterAcquireRequest Post(string partition, PermitDemand demand);

    /// <summary>The counts <paramref name="partition"/>'s agent on this node publishes; <c>null</c> when it is not live here.</summary>
    LivePartition? Live(string partition);

    /// <summary>
    /// A lease of <paramref name="permitCount"/> of <paramref name="partition"/> granted synchronously with no message, or
    /// <c>null</c> (then the attempt is refused): a concurrency partition's permits from its block on this node
    /// (<see cref="ClusterPartitionedLimiter.TryClaim"/>).
    /// </summary>
    RateLimitLease? TryAttempt(string partition, int permitCount);

    /// <summary>The reason phrase of a refused attempt of <paramref name="permitCount"/> (at least 1) on <paramref name="partition"/>.</summary>
    string Refusal(string partition, int permitCount);
}

/// <summary>
/// A partitioned cluster limiter (<see cref="ClusterPartitionedLimiter"/>, <see cref="ClusterPartitionedModelApiLimiter{TKey}"/>)
/// as a <see cref="PartitionedRateLimiter{TResource}"/>: each resource's key picks a cluster-wide partition, so ASP.NET
/// Core's middleware on every node shares one limit per tenant or API key.
/// </summary>
/// <remarks>
/// <para><c>AcquireAsync</c> waits in the partition's queue at its gatekeeper (priority 0, the limiter's wait timeout);
/// a full queue, an eviction or a timeout gives a failed lease with a reason phrase and, when the partition's rates
/// decide it, a retry-after; so does the limiter's disposal on this node while the caller waits (a call after it throws
/// <see cref="ObjectDisposedException"/>). <c>AttemptAcquire</c> of a concurrency partition claims from the block its agent
/// holds on this node (<see cref="ClusterPartitionedLimiter.TryClaim"/>; a refusal asks for one); a model-API partition's
/// never grants (a rate is spent per grant, in the singleton), nor does a zero-permit probe (the grant is a network
/// round trip away, and this node's counts are as of its last reply).</para>
/// <para><c>GetStatistics</c> reports a partition live on this node: a concurrency partition's free permits and waiters
/// cluster-wide as last heard, a model-API partition's in tokens (none available, and the tokens its calls waiting on
/// this node asked for), and the leases this node's RateLimiting views of the limiter gave for that key since its partition went live
/// here (<see cref="LivePartition.CountLease"/>; a lease decided while the key had no live partition here is counted
/// nowhere); <c>null</c> for a key with no partition on this node (it has no counts here).</para>
/// <para>Disposing the adapter leaves the limiter running.</para>
/// </remarks>
internal sealed class ClusterPartitionedRateLimiter<TResource, TKey>(IClusterPartitionedRateSubject<TKey> subject, Func<TResource, TKey> keyOf)
    : PartitionedRateLimiter<TResource>
    where TKey : notnull
{
    /// <inheritdoc />
    /// <remarks>
    /// A concurrency partition's available permits and queued callers are cluster-wide, as last heard; a model-API
    /// partition's are in tokens, as the local adapter's: none available (an attempt never grants here) and the tokens
    /// the calls of that key waiting on this node asked for (see <see cref="ClusterRateLimiter.GetStatistics"/>).
    /// </remarks>
    public override RateLimiterStatistics? GetStatistics(TResource resource) => subject.Live(PartitionOf(resource)) switch
    {
        null => null,
        var live when subject.HasRates => live.RateStatistics(0, live.Local.Queued),
        var live => live.RateStatistics(live.Available, live.Cluster.Waiting),
    };

    /// <inheritdoc />
    protected override RateLimitLease AttemptAcquireCore(TResource resource, int permitCount)
    {
        var partition = PartitionOf(resource);
        if (permitCount == 0)
        {
            return Count(partition, ClusterRateLeases.WouldBlock($"{subject.Name} (partition {partition})", permitCount));
        }

        subject.Demand(permitCount);
        return Count(partition, subject.TryAttempt(partition, permitCount) ?? RateLease.Failed(subject.Refusal(partition, permitCount), null));
    }

    /// <inheritdoc />
    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(TResource resource, int permitCount, CancellationToken cancellationToken)
    {
        if (permitCount == 0)
        {
            return AttemptAcquireCore(resource, 0);
        }

        var partition = PartitionOf(resource);
        var demand = subject.Demand(permitCount);
        cancellationToken.ThrowIfCancellationRequested();
        return Count(partition, await ClusterRateLeases.WaitAsync(subject.Post(partition, demand), subject, cancellationToken).ConfigureAwait(false));
    }

    private string PartitionOf(TResource resource) =>
        subject.Partition(keyOf(resource) ?? throw new ArgumentNullException("key", $"The partition key of {resource} is null"));

    /// <summary>Counts <paramref name="lease"/> in <paramref name="partition"/>'s totals if it is live on this node.</summary>
    private RateLimitLease Count(string partition, RateLimitLease lease) => subject.Live(partition)?.CountLease(lease) ?? lease;
}

/// <summary>A <see cref="ClusterPartitionedLimiter"/> for its adapter: keys are strings, permits are slots, a lease is the <see cref="ConcurrencyLease"/> itself.</summary>
internal sealed class ClusterPartitionedSubject(ClusterPartitionedLimiter limiter) : IClusterPartitionedRateSubject<string>
{
    public string Name => limiter.Name;

    public bool HasRates => false;

    public string Partition(string key) => key;

    public PermitDemand Demand(int permitCount) => new(ClusterArguments.Permits(permitCount, limiter.MaxRunning, nameof(permitCount)));

    public ClusterAcquireRequest Post(string partition, PermitDemand demand) =>
        limiter.Post(partition, demand, priority: 0, limiter.Configured.WaitTimeout, ClusterRateLimiter.Source, ClusterRateLimiter.PermitCount);

    public RateLimitLease Leased(ConcurrencyLease slot, ClusterAcquireRequest request) => slot;

    public LivePartition? Live(string partition) => limiter.Partitions.Live.GetValueOrDefault(partition);

    public RateLimitLease? TryAttempt(string partition, int permitCount) => limiter.TryClaim(partition, permitCount, ClusterRateLimiter.Source);

    public string Refusal(string partition, int permitCount) => ClusterRateLeases.NoBlockPermitReason($"{limiter.Name} (partition {partition})");
}

/// <summary>A <see cref="ClusterPartitionedModelApiLimiter{TKey}"/> for its adapter: permits are tokens, each acquire one call of the key's partition.</summary>
/// <typeparam name="TKey">The partition key.</typeparam>
internal sealed class ClusterPartitionedModelApiSubject<TKey>(ClusterPartitionedModelApiLimiter<TKey> limiter) : IClusterPartitionedRateSubject<TKey>
    where TKey : notnull
{
    public string Name => limiter.Name;

    public bool HasRates => true;

    public string Partition(TKey key) => limiter.FormatKey(key);

    public PermitDemand Demand(int permitCount) =>
        new(1, LimitValidation.EstimatedTokens(permitCount, limiter.Options.TokensPerPeriod, limiter.Name, nameof(permitCount)));

    public ClusterAcquireRequest Post(string partition, PermitDemand demand) =>
        limiter.Post(partition, demand, priority: 0, limiter.Options.WaitTimeout, ClusterRateLimiter.Source, ClusterRateLimiter.PermitCount);

    public RateLimitLease Leased(ConcurrencyLease slot, ClusterAcquireRequest request) =>
        new RateLease(limiter.LeaseOf(slot, request.Partition!, request.Demand.Tokens));

    public LivePartition? Live(string partition) => limiter.Partitions.Live.GetValueOrDefault(partition);

    public RateLimitLease? TryAttempt(string partition, int permitCount) => null; // rates are spent per grant, in the singleton, as the plain model-API limiter's

    public string Refusal(string partition, int permitCount) => ClusterRateLeases.WouldBlockReason($"{limiter.Name} (partition {partition})", permitCount);
}
