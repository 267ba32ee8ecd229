namespace ActorQueue.Actors;

/// <summary>
/// The limits a model API sets per key, in one record: calls in flight, requests per period and tokens per period,
/// for a <see cref="ModelApiLimiter"/>. Each rate is a token bucket that starts full, holds at most one period's worth
/// and refills it at the end of every period.
/// </summary>
/// <remarks>
/// Every value is validated when set: a bad one throws <see cref="ArgumentOutOfRangeException"/> naming it and its
/// value. Only the pairing of <see cref="SlidingWindowSegments"/> with <see cref="Period"/> waits for the limiter.
/// </remarks>
public sealed record ModelApiLimiterOptions
{
    /// <summary>Creates the limits.</summary>
    /// <param name="maxConcurrent">How many calls may be in flight at once; at least 1.</param>
    /// <param name="requestsPerPeriod">How many calls may start per <paramref name="period"/>; at least 1.</param>
    /// <param name="tokensPerPeriod">How many tokens calls may use per <paramref name="period"/>; at least 1.</param>
    /// <param name="period">The period of both rates (a minute for "per minute"); above zero and finite.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is zero, negative or infinite.</exception>
    public ModelApiLimiterOptions(int maxConcurrent, int requestsPerPeriod, long tokensPerPeriod, TimeSpan period)
    {
        MaxConcurrent = maxConcurrent;
        RequestsPerPeriod = requestsPerPeriod;
        TokensPerPeriod = tokensPerPeriod;
        Period = period;
    }

    /// <summary>How many calls may be in flight at once (at least 1): a call holds one from its grant until its lease is disposed.</summary>
    public int MaxConcurrent
    {
        get;
        init => field = LimitValidation.AtLeastOne(value, nameof(MaxConcurrent));
    }

    /// <summary>How many calls may start per <see cref="Period"/> (at least 1); also the most that may start at once.</summary>
    public int RequestsPerPeriod
    {
        get;
        init => field = (int)LimitValidation.AtLeastOne(value, nameof(RequestsPerPeriod));
    }

    /// <summary>How many tokens calls may use per <see cref="Period"/> (at least 1); also the largest estimate one call may ask.</summary>
    public long TokensPerPeriod
    {
        get;
        init => field = LimitValidation.AtLeastOne(value, nameof(TokensPerPeriod));
    }

    /// <summary>The period of both rates: each refills by its per-period amount at the end of every period.</summary>
    public TimeSpan Period
    {
        get;
        init => field = LimitValidation.Period(value, nameof(Period));
    }

    /// <summary>How many calls may wait, whatever their priority; <c>null</c> for no bound.</summary>
    public int? MaxQueued
    {
        get;
        init => field = LimitValidation.MaxQueued(value, nameof(MaxQueued));
    }

    /// <summary>
    /// How long a call may wait by default: <c>null</c> (or <see cref="Timeout.InfiniteTimeSpan"/>) for ever,
    /// <see cref="TimeSpan.Zero"/> not at all. A caller's own timeout overrides it.
    /// </summary>
    public TimeSpan? WaitTimeout
    {
        get;
        init => field = LimitValidation.WaitTimeout(value, nameof(WaitTimeout));
    }

    /// <summary>
    /// <c>null</c> (the default): both rates are token buckets, refilled at each period's end, and a settle gives unused
    /// tokens back. A number (at least 1): both rates are sliding windows of that many segments per period, so no
    /// period-long window ever holds more than the rate; a settle then charges an excess but gives nothing back.
    /// The number must split <see cref="Period"/> into equal whole ticks; that is checked when a limiter is made from the
    /// options (an <see cref="ArgumentException"/> naming both), not here, so the two can be set in either order.
    /// </summary>
    public int? SlidingWindowSegments
    {
        get;
        init => field = value is null ? null : LimitValidation.AtLeastOne(value.Value, nameof(SlidingWindowSegments));
    }

    /// <summary>The clock of the rates and wait timeouts; the system's when <c>null</c>. Tests pass a fake one.</summary>
    public TimeProvider? TimeProvider { get; init; }
}
