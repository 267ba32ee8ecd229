namespace ActorQueue.Actors;

/// <summary>Everything a <see cref="ConcurrencyLimiter"/> (or each partition of a partitioned limiter) is made with.</summary>
/// <remarks>Every value is validated when set.</remarks>
public sealed record ConcurrencyLimiterOptions
{
    /// <summary>Creates options for <paramref name="maxRunning"/> permits, an unbounded queue and no wait timeout.</summary>
    /// <param name="maxRunning">How many permits there are; at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxRunning"/> is below 1.</exception>
    public ConcurrencyLimiterOptions(int maxRunning) => MaxRunning = maxRunning;

    /// <summary>How many permits there are (at least 1): a caller holding <c>n</c> permits counts <c>n</c> against it.</summary>
    public int MaxRunning
    {
        get;
        init => field = LimitValidation.MaxRunning(value, nameof(MaxRunning));
    }

    /// <summary>How many callers may wait, whatever their priority or weight; <c>null</c> for no bound.</summary>
    public int? MaxQueued
    {
        get;
        init => field = LimitValidation.MaxQueued(value, nameof(MaxQueued));
    }

    /// <summary>
    /// How long a caller may wait by default: <c>null</c> (or <see cref="Timeout.InfiniteTimeSpan"/>) for ever,
    /// <see cref="TimeSpan.Zero"/> not at all. A caller's own timeout overrides it.
    /// </summary>
    public TimeSpan? WaitTimeout
    {
        get;
        init => field = LimitValidation.WaitTimeout(value, nameof(WaitTimeout));
    }

    /// <summary>What a full queue does with a newcomer.</summary>
    public QueueFullMode WhenFull { get; init; }

    /// <summary>The clock for wait timeouts; the system's when <c>null</c>. Tests pass a fake one.</summary>
    public TimeProvider? TimeProvider { get; init; }
}
