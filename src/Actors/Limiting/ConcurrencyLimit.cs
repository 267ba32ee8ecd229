namespace ActorQueue.Actors;

/// <summary>
/// A concurrency limit as a value: how many permits there are, how many callers may wait, how long they may wait, what
/// a full queue does, and the clock. A <see cref="ConcurrencyLimiter"/> and each partition of a
/// <see cref="PartitionedConcurrencyLimiter{TKey}"/> are made from one.
/// </summary>
/// <remarks>Every value is validated on construction and on every <c>with</c> expression.</remarks>
public sealed record ConcurrencyLimit
{
    /// <summary>Creates a limit.</summary>
    /// <param name="MaxRunning">How many callers may hold a slot at once; at least 1.</param>
    /// <param name="MaxQueued">How many callers may wait for a slot; <c>null</c> for no bound, 0 to reject anyone who would wait.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="MaxRunning"/> is below 1 or <paramref name="MaxQueued"/> is negative.</exception>
#pragma warning disable IDE1006 // The parameter names are the positional record's, as API.md fixes them.
    public ConcurrencyLimit(int MaxRunning, int? MaxQueued = null)
#pragma warning restore IDE1006
    {
        this.MaxRunning = MaxRunning;
        this.MaxQueued = MaxQueued;
    }

    /// <summary>How many callers may hold a slot at once (at least 1).</summary>
    public int MaxRunning
    {
        get;
        init => field = LimitValidation.MaxRunning(value, nameof(MaxRunning));
    }

    /// <summary>How many callers may wait for a slot; <c>null</c> for no bound.</summary>
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

    /// <summary>What a full queue does with a newcomer; a number that is not one of <see cref="QueueFullMode"/>'s values throws <see cref="ArgumentOutOfRangeException"/>.</summary>
    public QueueFullMode WhenFull
    {
        get;
        init => field = LimitValidation.WhenFull(value, nameof(WhenFull));
    }

    /// <summary>The clock for wait timeouts (and idle partitions); the system's when <c>null</c>. Tests pass a fake one.</summary>
    public TimeProvider? TimeProvider { get; init; }

    /// <summary>Deconstructs the limit into its two values.</summary>
    /// <param name="maxRunning">How many callers may hold a slot at once.</param>
    /// <param name="maxQueued">How many callers may wait.</param>
    public void Deconstruct(out int maxRunning, out int? maxQueued)
    {
        maxRunning = MaxRunning;
        maxQueued = MaxQueued;
    }
}
