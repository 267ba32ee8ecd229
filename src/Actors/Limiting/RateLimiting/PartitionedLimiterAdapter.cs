using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>What a partitioned facade gives its <see cref="PartitionedLimiterAdapter{TResource, TKey}"/>: its machinery, its requests, its leases.</summary>
/// <typeparam name="TKey">The partition key.</typeparam>
internal interface IPartitionedLimiter<in TKey>
    where TKey : notnull
{
    /// <summary>The actor and the live partitions.</summary>
    PartitionedGatekeeper Partitions { get; }

    /// <summary>The checked request for <paramref name="permitCount"/> of the adapter's permits (slots, or tokens) of <paramref name="key"/>'s partition.</summary>
    PartitionAcquireRequest Request(TKey key, int permitCount);

    /// <summary>The adapter's lease over a granted <paramref name="slot"/>.</summary>
    RateLimitLease Leased(PartitionAcquireRequest request, ConcurrencyLease slot);

    /// <summary>A failed lease saying <paramref name="reason"/>, with <paramref name="retryAfter"/> when a rate knows it.</summary>
    RateLimitLease Failed(string reason, TimeSpan? retryAfter);

    /// <summary>The answer to a zero-permit probe: acquired, holding nothing.</summary>
    RateLimitLease Probe { get; }

    /// <summary>
    /// The adapter's lease over <paramref name="permitCount"/> of its permits claimed from <paramref name="key"/>'s
    /// partition's loan, without a message; <c>null</c> when the loan does not cover them (or the kind does not lend).
    /// </summary>
    RateLimitLease? TryClaim(TKey key, int permitCount);
}

/// <summary>
/// A partitioned limiter (<see cref="PartitionedConcurrencyLimiter{TKey}"/>, <see cref="PartitionedModelApiLimiter{TKey}"/>)
/// as a <see cref="PartitionedRateLimiter{TResource}"/>. Waits go through the limiter's actor; a full queue, an
/// eviction or a timeout gives a failed lease with a reason phrase and, when a rate decides, a retry-after.
/// <see cref="PartitionedRateLimiter{TResource}.AttemptAcquire"/> and an <c>AcquireAsync</c> that need not wait claim
/// from the partition's loan (<see cref="PartitionLoan"/>: its free permits, lent while nobody waits in it) with one
/// compare-and-swap; <c>AttemptAcquire</c> fails with a reason phrase when the loan does not cover them (someone waits,
/// the permits are in use, the key has no live partition yet, or the loan is being renewed), since a synchronous
/// caller must not block. A partitioned model-API limiter does not lend: its <c>AttemptAcquire</c> always fails.
/// Disposing the adapter leaves the limiter running.
/// </summary>
internal sealed class PartitionedLimiterAdapter<TResource, TKey>(IPartitionedLimiter<TKey> limiter, Func<TResource, TKey> keyOf)
    : PartitionedRateLimiter<TResource>
    where TKey : notnull
{
    private long _successful;
    private long _failed;

    /// <inheritdoc />
    public override RateLimiterStatistics? GetStatistics(TResource resource)
    {
        var partitions = limiter.Partitions;
        var statistics = partitions.StatisticsOf(KeyOf(resource));
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = Math.Max(0, partitions.Settings.MaxRunning - (statistics?.Running ?? 0)),
            CurrentQueuedCount = statistics?.Waiting ?? 0,
            TotalSuccessfulLeases = Interlocked.Read(ref _successful),
            TotalFailedLeases = Interlocked.Read(ref _failed),
        };
    }

    /// <inheritdoc />
    protected override RateLimitLease AttemptAcquireCore(TResource resource, int permitCount)
    {
        var key = KeyOf(resource);
        if (permitCount == 0)
        {
            // RateLimiter's probe: would a one-permit attempt be granted now?
            return limiter.Partitions.Covers(key, 1) ? limiter.Probe : Refused(key);
        }

        if (limiter.TryClaim(key, permitCount) is { } lease)
        {
            Interlocked.Increment(ref _successful);
            return lease;
        }

        return Refused(key);
    }

    /// <inheritdoc />
    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(TResource resource, int permitCount, CancellationToken cancellationToken)
    {
        var key = KeyOf(resource);
        if (permitCount == 0)
        {
            return limiter.Probe;
        }

        if (!cancellationToken.IsCancellationRequested && limiter.TryClaim(key, permitCount) is { } claimed)
        {
            Interlocked.Increment(ref _successful);
            return claimed;
        }

        var request = limiter.Request(key, permitCount);
        try
        {
            var slot = await limiter.Partitions.Send(request, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _successful);
            return limiter.Leased(request, slot);
        }
        catch (Exception error) when (error is ConcurrencyLimitExceededException or ConcurrencyWaitTimeoutException)
        {
            Interlocked.Increment(ref _failed);
            return limiter.Failed(error.Message, request.RetryAfter);
        }
    }

    /// <summary>A synchronous attempt the partition's loan did not cover.</summary>
    private RateLimitLease Refused(TKey key)
    {
        Interlocked.Increment(ref _failed);
        return limiter.Failed($"Nothing of partition {key} of {limiter.Partitions.Settings.Name ?? "the limiter"} is lent for a caller that will not wait "
                              + "(someone waits, its permits are in use, or it has no loan now); use AcquireAsync to queue", retryAfter: null);
    }

    private TKey KeyOf(TResource resource) =>
        keyOf(resource) ?? throw new ArgumentNullException("key", $"The partition key of {resource} is null");
}
