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

    /// <summary>What a full queue does with a newcomer.</summary>
    public QueueFullMode WhenFull { get; init; }

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

/// <summary>The argument checks shared by <see cref="ConcurrencyLimit"/> and <see cref="ConcurrencyLimiter"/>, with pydantic-ai's messages.</summary>
internal static class LimitValidation
{
    public static int MaxRunning(int value, string parameterName) =>
        value >= 1 ? value : throw new ArgumentOutOfRangeException(parameterName, value, $"max_running must be >= 1, got {value}");

    public static int? MaxQueued(int? value, string parameterName) =>
        value is null or >= 0 ? value : throw new ArgumentOutOfRangeException(parameterName, value, $"max_queued must be >= 0, got {value}");

    /// <summary>A wait timeout: <c>null</c> and <see cref="Timeout.InfiniteTimeSpan"/> mean for ever (returned as <c>null</c>), zero means never wait.</summary>
    public static TimeSpan? WaitTimeout(TimeSpan? value, string parameterName) => value switch
    {
        null => null,
        { } infinite when infinite == Timeout.InfiniteTimeSpan => null,
        { } timeout when timeout >= TimeSpan.Zero => timeout,
        _ => throw new ArgumentOutOfRangeException(parameterName, value, $"wait timeout must be >= 0 or infinite, got {value}"),
    };

    /// <summary>A request's permits: at least 1 and at most <paramref name="maxRunning"/>, which it could never get otherwise.</summary>
    public static int Permits(int value, int maxRunning, string? limiterName, string parameterName)
    {
        if (value < 1)
        {
            throw new ArgumentOutOfRangeException(parameterName, value, $"permits must be >= 1, got {value}");
        }

        return value <= maxRunning ? value : throw ExceedsLimit(value, maxRunning, limiterName, parameterName);
    }

    /// <summary>The error for a request of more permits than there are.</summary>
    public static ArgumentOutOfRangeException ExceedsLimit(int permits, long maxRunning, string? target, string parameterName = "permits") =>
        new(parameterName, permits, $"permits ({permits}) exceed max_running ({maxRunning}) of {target ?? "the limiter"}: the request could never be granted");

    /// <summary>Why an actor's request is invalid, or <c>null</c>: the checks a facade makes by throwing.</summary>
    public static string? Invalid(GatekeeperProtocol.Acquire message)
    {
        if (message.Permits < 1)
        {
            return $"permits must be >= 1, got {message.Permits}";
        }

        if (message.Tokens < 0)
        {
            return $"tokens must be >= 0, got {message.Tokens}";
        }

        return message.WaitTimeout is { } timeout && timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan
            ? $"wait timeout must be >= 0 or infinite, got {timeout}"
            : null;
    }
}
