namespace ActorQueue.Actors;

/// <summary>
/// The loan's side of a model-API adapter's refusal while callers wait: the gatekeeper publishes when a call queued
/// behind its waiters could be served, by token count (a step table), and a refused <c>AttemptAcquire</c> reads it for
/// its <c>RetryAfter</c> (<see cref="RateLender.PublishQueueRetry"/>). The table costs the gatekeeper 40 to 300 rate
/// look-ups, and the queue moves at every grant, so it is built when a queue forms and then only when a refusal asked
/// for it: a message that moved the queue marks it stale, a refusal that reads a stale table asks for a fresh one
/// (<see cref="ShouldAskQueueRetry"/>), and the gatekeeper builds it at the end of its next message.
/// </summary>
internal sealed partial class RateLoan
{
    /// <summary>When a call of a given token count, queued behind everyone waiting, could be served, as of the table's build; <c>null</c> while nobody waits (<see cref="QueueRetryAfter"/>).</summary>
    private volatile QueueRetry? _queueRetry;

    /// <summary>Whether the limiter's <see cref="System.Threading.RateLimiting.RateLimiter"/> adapter was made: only then does the gatekeeper publish <see cref="_queueRetry"/>.</summary>
    private volatile bool _refusalsRead;

    /// <summary>1 once a refusal read a stale table, until the gatekeeper builds a fresh one (<see cref="TakeQueueRetryWanted"/>).</summary>
    private int _queueRetryWanted;

    /// <summary>How many step tables the gatekeeper built (<see cref="PublishQueueRetry"/>); written by the gatekeeper only.</summary>
    private long _queueRetryBuilds;

    /// <summary>The limiter, as it makes its adapter: its refusals read <see cref="QueueRetryAfter"/>, which the gatekeeper keeps from then on.</summary>
    public void ReadRefusals() => _refusalsRead = true;

    /// <summary>Whether an adapter reads <see cref="QueueRetryAfter"/>.</summary>
    public bool RefusalsRead => _refusalsRead;

    /// <summary>How many step tables the gatekeeper built for <see cref="QueueRetryAfter"/>: what its messages paid for refusals' <c>RetryAfter</c>.</summary>
    public long QueueRetryBuilds => Volatile.Read(ref _queueRetryBuilds);

    /// <summary>Gatekeeper, at the end of a message: a table it just built for the queue as it is now (counted in <see cref="QueueRetryBuilds"/>).</summary>
    public void PublishQueueRetry(QueueRetry retry)
    {
        Volatile.Write(ref _queueRetryBuilds, _queueRetryBuilds + 1);
        _queueRetry = retry;
    }

    /// <summary>Gatekeeper, at the end of a message: nobody waits any more.</summary>
    public void ClearQueueRetry() => _queueRetry = null;

    /// <summary>Gatekeeper, at the end of a message that moved the queue or the grants and built no table: the published one is out of date.</summary>
    public void MarkQueueRetryStale()
    {
        if (_queueRetry is { IsStale: false } retry)
        {
            retry.MarkStale();
        }
    }

    /// <summary>Gatekeeper, at the end of a message: whether a refusal asked for a fresh table since the last build; the ask is taken.</summary>
    public bool TakeQueueRetryWanted() => Volatile.Read(ref _queueRetryWanted) != 0 && Interlocked.Exchange(ref _queueRetryWanted, 0) != 0;

    /// <summary>
    /// After a refusal read <see cref="QueueRetryAfter"/>: whether the gatekeeper should be sent a message (once per
    /// build) so that it builds a fresh table, because the one published is stale.
    /// </summary>
    public bool ShouldAskQueueRetry() =>
        _queueRetry is { IsStale: true } && Volatile.Read(ref _queueRetryWanted) == 0 && Interlocked.CompareExchange(ref _queueRetryWanted, 1, 0) == 0;

    /// <summary>
    /// After a claim of <paramref name="tokens"/> failed on a shut loan: how long until a call of them, queued behind the
    /// demand waiting, could be served — as the gatekeeper's own refusal of that call would say, as of the table's build
    /// (<see cref="PublishQueueRetry"/>): at the last message when it is fresh; when it is stale, at an earlier one, and
    /// only the grants and arrivals since are not in it (a grant of a waiter it counted leaves its figure about right,
    /// a call queued since makes it early by that call's demand, but never before the calls it counted are served);
    /// <c>null</c> when the loan is open (nobody waits: <see cref="RetryAfter"/> answers), nobody waits, a slot in flight
    /// is what is short, or the time is not in the future.
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
    /// the rates give back refill by refill (or segment by segment). Immutable but for <see cref="IsStale"/>; published whole.
    /// </summary>
    /// <param name="upToTokens">Ascending: the most tokens each step serves; empty when a slot is short (no figure).</param>
    /// <param name="atUtcTicks">The clock's UTC ticks of each step; 0 for never.</param>
    public sealed class QueueRetry(long[] upToTokens, long[] atUtcTicks)
    {
        private volatile bool _stale;

        /// <summary>Whether the queue or the grants moved since it was built (<see cref="MarkQueueRetryStale"/>).</summary>
        public bool IsStale => _stale;

        /// <summary>When a call of <paramref name="tokens"/> could be served; 0 for not known (beyond the last step, or a slot is short).</summary>
        public long AtUtcTicks(long tokens)
        {
            var step = Array.BinarySearch(upToTokens, tokens);
            step = step >= 0 ? step : ~step;
            return step < atUtcTicks.Length ? atUtcTicks[step] : 0;
        }

        /// <summary>Gatekeeper: the queue or the grants moved since the build.</summary>
        public void MarkStale() => _stale = true;
    }
}
