using System.Threading.RateLimiting;
using System.Threading.Tasks.Sources;

namespace ActorQueue.Actors;

/// <summary>What a partitioned facade gives its <see cref="PartitionedLimiterAdapter{TResource, TKey}"/>: its machinery, its requests, its leases.</summary>
/// <typeparam name="TKey">The partition key.</typeparam>
internal interface IPartitionedLimiter<in TKey>
    where TKey : notnull
{
    /// <summary>The actor and the live partitions.</summary>
    PartitionedGatekeeper Partitions { get; }

    /// <summary>The checked request for <paramref name="permitCount"/> of the adapter's permits (slots, or tokens) of <paramref name="key"/>'s partition.</summary>
    /// <param name="key">The key.</param>
    /// <param name="boxed">The same key as an object, for the request (<see cref="PartitionedGatekeeper.Boxed{TKey}"/>: a live partition's own, so a value-type key is not boxed again).</param>
    /// <param name="permitCount">How many.</param>
    PartitionAcquireRequest Request(TKey key, object boxed, int permitCount);

    /// <summary>The adapter's lease over a granted <paramref name="slot"/>.</summary>
    RateLimitLease Leased(PartitionAcquireRequest request, ConcurrencyLease slot);

    /// <summary>A failed lease saying <paramref name="reason"/>, with <paramref name="retryAfter"/> when a rate knows it.</summary>
    RateLimitLease Failed(string reason, TimeSpan? retryAfter);

    /// <summary>The answer to a zero-permit probe: acquired, holding nothing.</summary>
    RateLimitLease Probe { get; }

    /// <summary>The adapter's permits available now in <paramref name="partition"/> (free slots, or tokens); a fresh partition's when it is <c>null</c> (the key has none live).</summary>
    long AvailableIn(Partition? partition);

    /// <summary>
    /// The adapter's lease over <paramref name="permitCount"/> of its permits claimed from <paramref name="key"/>'s
    /// partition's loan, without a message; <c>null</c> when the loan does not cover them (or the kind does not lend),
    /// with the live partition it found in <paramref name="live"/> for the request or attempt that follows (<c>null</c>
    /// when the kind does not lend, or a request is on its way to the actor). Checks the arguments,
    /// then that the limiter is not disposed (<see cref="ArgumentOutOfRangeException"/> first, then <see cref="ObjectDisposedException"/>).
    /// </summary>
    RateLimitLease? TryClaim(TKey key, int permitCount, out Partition? live);
}

/// <summary>
/// A partitioned limiter (<see cref="PartitionedConcurrencyLimiter{TKey}"/>, <see cref="PartitionedModelApiLimiter{TKey}"/>)
/// as a <see cref="PartitionedRateLimiter{TResource}"/>. Waits go through the limiter's actor; a full queue, an
/// eviction, a timeout or the limiter's disposal while it waits gives a failed lease with a reason phrase and, when a
/// rate decides, a retry-after.
/// <see cref="PartitionedRateLimiter{TResource}.AttemptAcquire"/> and an <c>AcquireAsync</c> that need not wait claim
/// from the partition's loan (<see cref="PartitionLoan"/>: its free permits, lent while nobody waits in it) with one
/// compare-and-swap. An <c>AttemptAcquire</c> for a key with no live partition (never made, or dropped for idleness)
/// makes the key's partition itself and is granted in its first turn, as RateLimiting's partitioned limiter grants a
/// fresh key (<see cref="PartitionedGatekeeper.TryAttempt"/>); a partitioned model-API limiter, which does not lend,
/// grants an <c>AttemptAcquire</c> in the partition's turn when the turn is free, nobody waits and its slots and rates
/// allow the call now (<see cref="Partition.TryAttempt"/>). Otherwise <c>AttemptAcquire</c> fails with a reason phrase
/// (someone waits, the permits, slots or rates are spent, the partition is busy, or a request is on its way to the
/// actor), and with <c>RetryAfter</c> when the rates decided, since a synchronous caller must not block; a zero-permit
/// probe of a concurrency limiter's key with no live partition succeeds, as nothing of the key is held or awaited, and a
/// model-API limiter's probe answers from the tokens a call of the key could take now
/// (<see cref="IPartitionedLimiter{TKey}.AvailableIn"/>).
/// <c>AcquireAsync(resource, 0)</c> waits in the key's line until a one-permit call would be granted and takes nothing
/// (<see cref="AcquireRequest.IsProbe"/>), at once when the key's loan covers one.
/// <see cref="GetStatistics"/> of a resource is its key's partition's: its counts now (the available permits: a concurrency
/// partition's free slots, a model-API partition's tokens a call could take now, <see cref="Partition.AvailableTokens"/>,
/// a fresh partition's for a key with none live; the queued count in permits, as
/// <see cref="RateLimiterStatistics"/> counts them: the permits, or a model-API partition's tokens, its waiting callers
/// asked for, <see cref="Partition.Queued"/>), and the leases granted and failed
/// for that key (<see cref="Partition.CountLease"/>, counted in the partition by every RateLimiting view of the limiter)
/// since the partition was made. A key with no live partition reads zero totals, and one whose partition was dropped
/// for idleness starts again at zero, as RateLimiting's own partitioned limiter does; a failed attempt for a key with no
/// live partition is counted nowhere. Disposing the adapter leaves the limiter running.
/// </summary>
internal sealed class PartitionedLimiterAdapter<TResource, TKey>(IPartitionedLimiter<TKey> limiter, Func<TResource, TKey> keyOf)
    : PartitionedRateLimiter<TResource>, IAdaptedWait
    where TKey : notnull
{
    /// <inheritdoc />
    RateLimitLease IAdaptedWait.Answer(PartitionAcquireRequest request, short token)
    {
        ConcurrencyLease slot;
        try
        {
            slot = ((IValueTaskSource<ConcurrencyLease>)request).GetResult(token);
        }
        catch (Exception error) when (IsRefusal(error))
        {
            return Refused(request, error);
        }

        return Granted(request, slot);
    }

    /// <inheritdoc />
    public override RateLimiterStatistics? GetStatistics(TResource resource)
    {
        var partitions = limiter.Partitions;
        var partition = partitions.PartitionOf(KeyOf(resource));
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = limiter.AvailableIn(partition),
            CurrentQueuedCount = partition?.Queued ?? 0,
            TotalSuccessfulLeases = partition?.SuccessfulLeases ?? 0,
            TotalFailedLeases = partition?.FailedLeases ?? 0,
        };
    }

    /// <inheritdoc />
    /// <remarks>A count above the limit is refused before the disposal is checked (<see cref="IPartitionedLimiter{TKey}.TryClaim"/> checks both), as the unpartitioned adapters and RateLimiting's own limiters refuse it.</remarks>
    protected override RateLimitLease AttemptAcquireCore(TResource resource, int permitCount)
    {
        var key = KeyOf(resource);
        if (permitCount == 0)
        {
            limiter.Partitions.ThrowIfDisposed(limiter);
            // RateLimiter's probe: would a one-permit attempt be granted now? Counted either way, as a failed probe is.
            if (limiter.Partitions.Covers(key, 1, out var covering))
            {
                covering!.CountLease(acquired: true);
                return limiter.Probe;
            }

            if (covering is null && limiter.Partitions.Settings.Rates is null)
            {
                // No live partition: nobody holds or waits for the key, so the partition a call would make grants it (as
                // RateLimiting's partitioned limiter's fresh limiter does). Counted nowhere, as the key has no totals.
                return limiter.Probe;
            }

            if (limiter.Partitions.Settings.Rates is not null && limiter.AvailableIn(covering) > 0)
            {
                // A model-API partition lends nothing, but it publishes the tokens a call could take now (a fresh key's
                // whole bucket when it has none): the probe answers from them, as its statistics do.
                covering?.CountLease(acquired: true);
                return limiter.Probe;
            }

            return Refused(key, covering ?? limiter.Partitions.PartitionOf(key));
        }

        if (limiter.TryClaim(key, permitCount, out var live) is { } lease)
        {
            live!.CountLease(acquired: true);
            return lease;
        }

        // Not covered by a loan. A key with no live partition is served by a partition the caller makes; a partition with
        // rates (which lends nothing) is asked in its turn, if it is free. A live concurrency partition's loan answered.
        var partitions = limiter.Partitions;
        var inTurn = partitions.Settings.Rates is not null;
        if (inTurn || (live ??= partitions.PartitionOf(key)) is null)
        {
            var request = limiter.Request(key, key, permitCount);
            if (partitions.TryAttempt(request, ref live, inTurn, out var judged))
            {
                live!.CountLease(acquired: true);
                return limiter.Leased(request, ((IValueTaskSource<ConcurrencyLease>)request).GetResult(0));
            }

            if (judged)
            {
                live!.CountLease(acquired: false);
                partitions.RefusedAttempt();
                return Refused(key, request.RetryAfter);
            }
        }

        // The key's partition for the refusal's counts is looked up before anything is counted: a key that throws on
        // this thread throws to its caller and leaves no count behind, as at every other lookup.
        var refused = live ?? partitions.PartitionOf(key);
        partitions.RefusedAttempt();
        return Refused(key, refused);
    }

    /// <inheritdoc />
    /// <remarks>A count above the limit is refused before the disposal is checked, as in <see cref="AttemptAcquireCore"/>; either throws from this call.</remarks>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(TResource resource, int permitCount, CancellationToken cancellationToken)
    {
        var key = KeyOf(resource);
        if (permitCount == 0)
        {
            limiter.Partitions.ThrowIfDisposed(limiter);
            // RateLimiter's contract: a zero-permit acquire waits until a one-permit call of the key would be granted,
            // and takes nothing: at once when the key's loan covers one, else in the key's line as a probe.
            if (limiter.Partitions.Covers(key, 1, out var covering))
            {
                covering!.CountLease(acquired: true);
                return ValueTask.FromResult(limiter.Probe);
            }

            var probe = limiter.Request(key, key, 1);
            probe.IsProbe = true;
            return WaitAsync(probe, covering, cancellationToken);
        }

        Partition? live = null;
        if (!cancellationToken.IsCancellationRequested && limiter.TryClaim(key, permitCount, out live) is { } claimed)
        {
            live!.CountLease(acquired: true);
            return ValueTask.FromResult(claimed);
        }

        var request = limiter.Request(key, PartitionedGatekeeper.Boxed(key, live), permitCount);
        request.CountedAtGrant = true;
        if (cancellationToken.CanBeCanceled || request.QueuedSignal is not null)
        {
            return WaitAsync(request, live, cancellationToken);
        }

        // Nothing to withdraw or trace: the lease comes straight off the request's own completion, without an async method.
        // The request answers the lease itself (PartitionAcquireRequest.AdaptedBy): no object beside it for the wait.
        request.AdaptedBy = this;
        limiter.Partitions.Dispatch(request, live);
        IValueTaskSource<RateLimitLease> adapted = request;
        return adapted.GetStatus(0) == ValueTaskSourceStatus.Pending ? new ValueTask<RateLimitLease>(adapted, 0) : ValueTask.FromResult(adapted.GetResult(0));
    }

    /// <summary>Waits for <paramref name="request"/>, withdrawn if <paramref name="cancellationToken"/> fires, its wait traced.</summary>
    private async ValueTask<RateLimitLease> WaitAsync(PartitionAcquireRequest request, Partition? live, CancellationToken cancellationToken)
    {
        try
        {
            return Granted(request, await limiter.Partitions.Send(request, cancellationToken, live).ConfigureAwait(false));
        }
        catch (Exception error) when (IsRefusal(error))
        {
            return Refused(request, error);
        }
    }

    /// <summary>
    /// Whether <paramref name="error"/> is a refusal the adapter answers with a failed lease rather than throws: a full
    /// queue, an eviction, a timeout, or the limiter's disposal while the request waited (a call made once it is disposed
    /// throws before it waits), as RateLimiting's own limiters fail their waiters.
    /// </summary>
    private static bool IsRefusal(Exception error) => error is ConcurrencyLimitExceededException or ConcurrencyWaitTimeoutException or ObjectDisposedException;

    /// <summary>
    /// The lease for a grant, counted by the partition that granted it (<see cref="PartitionAcquireRequest.CountedAtGrant"/>);
    /// a probe's (<see cref="AcquireRequest.IsProbe"/>) grant is lost on purpose, so it is counted here and holds nothing.
    /// </summary>
    private RateLimitLease Granted(PartitionAcquireRequest request, ConcurrencyLease slot)
    {
        if (request.IsProbe)
        {
            PartitionOf(request)?.CountLease(acquired: true);
            return limiter.Probe;
        }

        System.Diagnostics.Debug.Assert(request.CountedAtGrant, "A view's wait is counted by the partition that grants it.");
        return limiter.Leased(request, slot);
    }

    private RateLimitLease Refused(PartitionAcquireRequest request, Exception error)
    {
        PartitionOf(request)?.CountLease(acquired: false);
        return limiter.Failed(error.Message, request.RetryAfter);
    }

    /// <summary>The partition that served <paramref name="request"/> (its releaser), else its key's live one, if any.</summary>
    private Partition? PartitionOf(PartitionAcquireRequest request) => request.Releaser as Partition ?? limiter.Partitions.PartitionOf(request.Key);

    /// <summary>A synchronous attempt the partition's loan did not cover, nor its turn judge; <paramref name="partition"/> is its key's live partition, looked up by the caller (before it counted anything), if any.</summary>
    /// <remarks>
    /// With rates (the turn was busy, someone waits, or a request was on its way), a key with no tokens a call could take
    /// now says when its rates next gain (as the unpartitioned adapter's refusal does); a key with tokens left says
    /// nothing of a refill.
    /// </remarks>
    private RateLimitLease Refused(TKey key, Partition? partition)
    {
        partition?.CountLease(acquired: false);
        var retryAfter = partition is not null && limiter.Partitions.Settings.Rates is not null && limiter.AvailableIn(partition) == 0 ? partition.TokensGainIn : null;
        return Refused(key, retryAfter);
    }

    /// <summary>The failed lease of a synchronous attempt (counted already), with <paramref name="retryAfter"/> when the rates decided it.</summary>
    private RateLimitLease Refused(TKey key, TimeSpan? retryAfter) =>
        limiter.Failed($"Nothing of partition {UserText.Of(key, "key")} of {limiter.Partitions.Settings.Name ?? "the limiter"} is free now for a caller that will not wait "
                       + "(someone waits, its permits, slots or rates are spent, or it is busy); use AcquireAsync to queue", retryAfter);

    private TKey KeyOf(TResource resource) =>
        keyOf(resource) ?? throw new ArgumentNullException("key", $"The partition key of {UserText.Of(resource, "resource")} is null");
}
