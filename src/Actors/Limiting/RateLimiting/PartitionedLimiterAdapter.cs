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
}

/// <summary>
/// A partitioned limiter (<see cref="PartitionedConcurrencyLimiter{TKey}"/>, <see cref="PartitionedModelApiLimiter{TKey}"/>)
/// as a <see cref="PartitionedRateLimiter{TResource}"/>. Waits go through the limiter's actor; a full queue, an
/// eviction or a timeout gives a failed lease with a reason phrase and, when a rate decides, a retry-after.
/// <see cref="PartitionedRateLimiter{TResource}.AttemptAcquire"/> fails with a reason phrase: only the actor grants a
/// partition's permits, and a synchronous caller must not block. Disposing the adapter leaves the limiter running.
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
        KeyOf(resource);
        Interlocked.Increment(ref _failed);
        return limiter.Failed(Reasons.Asynchronous(limiter.Partitions.Settings.Name), retryAfter: null);
    }

    /// <inheritdoc />
    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(TResource resource, int permitCount, CancellationToken cancellationToken)
    {
        var key = KeyOf(resource);
        if (permitCount == 0)
        {
            return limiter.Probe;
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

    private TKey KeyOf(TResource resource) =>
        keyOf(resource) ?? throw new ArgumentNullException("key", $"The partition key of {resource} is null");
}
