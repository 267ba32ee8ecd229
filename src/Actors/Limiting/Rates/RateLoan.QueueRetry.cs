namespace ActorQueue.Actors;

/// <summary>
/// The loan's side of a model-API adapter's refusal while callers wait: the gatekeeper publishes, at the end of each
/// message, when a call queued behind its waiters could be served, by token count, and a refused <c>AttemptAcquire</c>
/// reads it for its <c>RetryAfter</c> (<see cref="RateLender.PublishQueueRetry"/>).
/// </summary>
internal sealed partial class RateLoan
{
    /// <summary>When a call of a given token count, queued behind everyone waiting now, could be served; <c>null</c> while nobody waits or it is not known (<see cref="QueueRetryAfter"/>).</summary>
    private volatile QueueRetry? _queueRetry;

    /// <summary>Whether the limiter's <see cref="System.Threading.RateLimiting.RateLimiter"/> adapter was made: only then does the gatekeeper publish <see cref="_queueRetry"/>.</summary>
    private volatile bool _refusalsRead;

    /// <summary>The limiter, as it makes its adapter: its refusals read <see cref="QueueRetryAfter"/>, which the gatekeeper keeps from then on.</summary>
    public void ReadRefusals() => _refusalsRead = true;

    /// <summary>Whether an adapter reads <see cref="QueueRetryAfter"/>.</summary>
    public bool RefusalsRead => _refusalsRead;

    /// <summary>Gatekeeper, at the end of a message: when calls queued behind its waiters could be served; <c>null</c> while nobody waits or a slot is short.</summary>
    public void PublishQueueRetry(QueueRetry? retry) => _queueRetry = retry;

    /// <summary>
    /// After a claim of <paramref name="tokens"/> failed on a shut loan: how long until a call of them, queued behind the
    /// demand waiting now, could be served — the gatekeeper's figure as of its last message (<see cref="PublishQueueRetry"/>),
    /// as its own refusal of that call would say; <c>null</c> when the loan is open (nobody waits: <see cref="RetryAfter"/>
    /// answers), nobody waits, a slot in flight is what is short, or the time is not in the future.
    /// </summary>
    public TimeSpan? QueueRetryAfter(long tokens)
    {
        if (Volatile.Read(ref _packed) >= 0 || _queueRetry is not { } retry || retry.AtUtcTicks(tokens) is not (var at and not 0))
        {
            return null;
        }

        var left = at - _time.GetUtcNow().UtcTicks;
        return left > 0 ? TimeSpan.FromTicks(left) : null;
    }

    /// <summary>
    /// When a call queued behind the waiters could be served, by its token count: a step function, non-decreasing, as
    /// the rates give back refill by refill (or segment by segment). Immutable; published whole.
    /// </summary>
    /// <param name="upToTokens">Ascending: the most tokens each step serves.</param>
    /// <param name="atUtcTicks">The clock's UTC ticks of each step; 0 for never.</param>
    public sealed class QueueRetry(long[] upToTokens, long[] atUtcTicks)
    {
        /// <summary>When a call of <paramref name="tokens"/> could be served; 0 for not known (beyond the last step).</summary>
        public long AtUtcTicks(long tokens)
        {
            var step = Array.BinarySearch(upToTokens, tokens);
            step = step >= 0 ? step : ~step;
            return step < atUtcTicks.Length ? atUtcTicks[step] : 0;
        }
    }
}
