using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>
/// A <see cref="PartitionedConcurrencyLimiter{TKey}"/> as a <see cref="PartitionedRateLimiter{TResource}"/>. Waits go
/// through the partition's gatekeeper; a full queue, an eviction or a timeout gives a failed lease with a reason
/// phrase. <see cref="PartitionedRateLimiter{TResource}.AttemptAcquire"/> fails with a reason phrase: a partition may
/// be stopping at any instant, so only its parent may hand out its permits, and a synchronous caller must not block.
/// </summary>
internal sealed class PartitionedConcurrencyRateLimiter<TResource, TKey>(PartitionedConcurrencyLimiter<TKey> limiter, Func<TResource, TKey> keyOf)
    : PartitionedRateLimiter<TResource>
    where TKey : notnull
{
    private long _successful;
    private long _failed;

    /// <inheritdoc />
    public override RateLimiterStatistics? GetStatistics(TResource resource)
    {
        var statistics = limiter.StatisticsOf(KeyOf(resource));
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = statistics is null ? limiter.Limit.MaxRunning : Math.Max(0, statistics.MaxRunning - statistics.Running),
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
        return ActorQueueLease.Failed(Reasons.Asynchronous(limiter.Name));
    }

    /// <inheritdoc />
    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(TResource resource, int permitCount, CancellationToken cancellationToken)
    {
        var key = KeyOf(resource);
        if (permitCount == 0)
        {
            return ActorQueueLease.Probe;
        }

        try
        {
            var lease = await limiter.AcquireAsync(key, permitCount, source: "rate-limiter", cancellationToken: cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _successful);
            return new ActorQueueLease(lease);
        }
        catch (Exception error) when (error is ConcurrencyLimitExceededException or ConcurrencyWaitTimeoutException)
        {
            Interlocked.Increment(ref _failed);
            return ActorQueueLease.Failed(error.Message);
        }
    }

    private TKey KeyOf(TResource resource) =>
        keyOf(resource) ?? throw new ArgumentNullException("key", $"The partition key of {resource} is null");
}
