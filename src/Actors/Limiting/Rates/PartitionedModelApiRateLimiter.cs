using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>
/// A <see cref="PartitionedModelApiLimiter{TKey}"/> as a <see cref="PartitionedRateLimiter{TResource}"/> of tokens.
/// Waits go through the partition's gatekeeper; a full queue or a timeout gives a failed lease with a reason phrase
/// and, when a rate decides, <see cref="MetadataName.RetryAfter"/>. <see cref="PartitionedRateLimiter{TResource}.AttemptAcquire"/>
/// never grants: only a partition's actor takes from its rates, and a synchronous caller must not block.
/// </summary>
internal sealed class PartitionedModelApiRateLimiter<TResource, TKey>(PartitionedModelApiLimiter<TKey> limiter, Func<TResource, TKey> keyOf)
    : PartitionedRateLimiter<TResource>
    where TKey : notnull
{
    private long _successful;
    private long _failed;

    /// <inheritdoc />
    public override RateLimiterStatistics? GetStatistics(TResource resource)
    {
        limiter.GetStatistics().TryGetValue(KeyOf(resource), out var statistics);
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = Math.Max(0, limiter.Options.MaxConcurrent - (statistics?.Running ?? 0)),
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
        return RateLease.Failed($"The partitions of {limiter.Name ?? "the model API limiter"} grant asynchronously only; use AcquireAsync", retryAfter: null);
    }

    /// <inheritdoc />
    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(TResource resource, int permitCount, CancellationToken cancellationToken)
    {
        var key = KeyOf(resource);
        if (permitCount == 0)
        {
            return RateLease.Probe;
        }

        var request = limiter.Request(key, permitCount, priority: 0, waitTimeout: null, source: "rate-limiter");
        try
        {
            var slot = await limiter.Send(request, cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _successful);
            return new RateLease(ModelApiLimiter.LeaseOf(request, slot));
        }
        catch (Exception error) when (error is ConcurrencyLimitExceededException or ConcurrencyWaitTimeoutException)
        {
            Interlocked.Increment(ref _failed);
            return RateLease.Failed(error.Message, request.RetryAfter);
        }
    }

    private TKey KeyOf(TResource resource) =>
        keyOf(resource) ?? throw new ArgumentNullException("key", $"The partition key of {resource} is null");
}
