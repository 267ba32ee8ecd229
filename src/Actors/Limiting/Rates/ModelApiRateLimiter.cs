using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>
/// A <see cref="ModelApiLimiter"/> as a <see cref="RateLimiter"/> whose permits are tokens, so ASP.NET Core's
/// rate-limiting middleware and Polly's <c>AddRateLimiter</c> drive the same gatekeeper as every other caller.
/// </summary>
/// <remarks>
/// <para><see cref="RateLimiter.AcquireAsync"/> takes a slot, a request and <c>permitCount</c> tokens together,
/// waiting in the gatekeeper's queue; a full queue or a wait timeout gives a failed lease with a reason phrase and,
/// when a rate decides, <see cref="MetadataName.RetryAfter"/>: when the refill comes that serves it after the demand
/// queued ahead. Cancellation throws.</para>
/// <para><see cref="RateLimiter.AttemptAcquire"/> never grants: only the gatekeeper actor may take from the rates,
/// and a synchronous caller must not block. ASP.NET Core's middleware then waits with <c>AcquireAsync</c>.</para>
/// <para>The adapter does not own the limiter: disposing it leaves the limiter running.</para>
/// </remarks>
internal sealed class ModelApiRateLimiter(ModelApiLimiter limiter) : RateLimiter
{
    private long _successful;
    private long _failed;

    /// <inheritdoc />
    /// <remarks>Never idle: a spent bucket with no holder still limits, so nothing may drop and remake it.</remarks>
    public override TimeSpan? IdleDuration => null;

    /// <inheritdoc />
    /// <remarks>The available permits are the free slots in flight; the rates' counts are the gatekeeper's alone.</remarks>
    public override RateLimiterStatistics GetStatistics() => new()
    {
        CurrentAvailablePermits = Math.Max(0, limiter.Options.MaxConcurrent - limiter.RunningCount),
        CurrentQueuedCount = limiter.WaitingCount,
        TotalSuccessfulLeases = Interlocked.Read(ref _successful),
        TotalFailedLeases = Interlocked.Read(ref _failed),
    };

    /// <inheritdoc />
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        CheckPermits(permitCount);
        Interlocked.Increment(ref _failed);
        return RateLease.Failed($"{limiter.Name ?? "The model API limiter"} grants asynchronously only; use AcquireAsync", retryAfter: null);
    }

    /// <inheritdoc />
    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        CheckPermits(permitCount);
        if (permitCount == 0)
        {
            return RateLease.Probe;
        }

        var request = limiter.Request(permitCount, priority: 0, waitTimeout: null, source: "rate-limiter");
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

    private void CheckPermits(int permitCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(permitCount);
        if (permitCount > 0)
        {
            RateValidation.EstimatedTokens(permitCount, limiter.Options.TokensPerPeriod, limiter.Name, nameof(permitCount));
        }
    }
}

/// <summary>
/// A <see cref="RateLimitLease"/> over a <see cref="ModelApiLease"/> (disposing it frees the slot in flight), or a
/// failed one that says why in <see cref="MetadataName.ReasonPhrase"/> and, when a rate knows, when to retry in
/// <see cref="MetadataName.RetryAfter"/>.
/// </summary>
internal sealed class RateLease : RateLimitLease
{
    /// <summary>An acquired lease that holds nothing: the answer to a zero-permit probe.</summary>
    public static readonly RateLease Probe = new(null, null, null);

    private readonly ModelApiLease? _lease;
    private readonly string? _reason;
    private readonly TimeSpan? _retryAfter;

    public RateLease(ModelApiLease lease)
        : this(lease, null, null)
    {
    }

    private RateLease(ModelApiLease? lease, string? reason, TimeSpan? retryAfter)
    {
        _lease = lease;
        _reason = reason;
        _retryAfter = retryAfter;
    }

    /// <inheritdoc />
    public override bool IsAcquired => _reason is null;

    /// <inheritdoc />
    public override IEnumerable<string> MetadataNames
    {
        get
        {
            if (_reason is not null)
            {
                yield return MetadataName.ReasonPhrase.Name;
            }

            if (_retryAfter is not null)
            {
                yield return MetadataName.RetryAfter.Name;
            }
        }
    }

    /// <summary>A lease that was not acquired, for <paramref name="reason"/>, retryable after <paramref name="retryAfter"/> if known.</summary>
    public static RateLease Failed(string reason, TimeSpan? retryAfter) => new(null, reason, retryAfter);

    /// <inheritdoc />
    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = metadataName == MetadataName.ReasonPhrase.Name ? _reason
                 : metadataName == MetadataName.RetryAfter.Name ? _retryAfter
                 : null;
        return metadata is not null;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _lease?.Dispose();
        }
    }
}
