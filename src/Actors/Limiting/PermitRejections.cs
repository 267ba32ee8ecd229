using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>The exception a waiter the gate turned away gets, the same from a gatekeeper and from a partition inside a partitioned limiter.</summary>
internal static class PermitRejections
{
    /// <summary>
    /// The exception for <paramref name="waiter"/>'s <paramref name="rejection"/> (not <see cref="PermitRejectionKind.Disposed"/>: <see cref="Disposed"/>,
    /// one wording for every owner); a facade request also learns the rejection's <c>RetryAfter</c>.
    /// </summary>
    /// <param name="waiter">The waiter turned away.</param>
    /// <param name="rejection">Why.</param>
    /// <param name="limiterName">The limiter's name; <c>null</c> names the waiter's source instead.</param>
    public static Exception ToException(PermitWaiter waiter, in PermitRejection rejection, string? limiterName)
    {
        if (waiter is AcquireRequest request)
        {
            request.RetryAfter = rejection.RetryAfter;
        }

        var target = limiterName ?? waiter.Source;
        return rejection.Kind switch
        {
            PermitRejectionKind.QueueFull => new ConcurrencyLimitExceededException(rejection.QueueDepth, rejection.MaxQueued.GetValueOrDefault(), target),
            PermitRejectionKind.Evicted => new ConcurrencyLimitExceededException(rejection.MaxQueued.GetValueOrDefault(), target, waiter.Priority),
            PermitRejectionKind.ExceedsLimit => LimitValidation.ExceedsLimit(waiter.Demand.Permits, rejection.Limit, target),
            _ => new ConcurrencyWaitTimeoutException(limiterName, waiter.Timeout.GetValueOrDefault(), waiter.Demand.Permits, waiter.Source),
        };
    }

    /// <summary>
    /// What a waiter gets when the limiter's clock (its <see cref="TimeProvider"/>, the application's) threw
    /// <paramref name="cause"/> as the limiter set the timer its wait needed (its wait timeout, or a rate's next opening):
    /// failed at once rather than left waiting for ever. Names the limiter and carries the clock's exception.
    /// </summary>
    /// <param name="limiterName">The limiter's name (its metric name when it has none).</param>
    /// <param name="cause">What the clock threw.</param>
    public static InvalidOperationException WakeUnset(string limiterName, Exception cause) =>
        new($"Limiter '{limiterName}' could not set the timer this wait needed (its wait timeout, or a rate's next opening): its TimeProvider threw "
            + $"{cause.GetType().Name}: {UserText.MessageOf(cause)}. The wait fails now rather than wait for ever.", cause);

    /// <summary>What every caller of a stopped concurrency limiter gets: its waiters, its late requests, its actor callers.</summary>
    public static ObjectDisposedException Disposed() => new(nameof(ConcurrencyLimiter), "The concurrency limiter has been disposed.");
}
