namespace ActorQueue.Actors;

/// <summary>
/// A concurrency limit as a value: how many callers may run at once and how many may wait for a slot.
/// </summary>
/// <remarks>Both values are validated on construction and on every <c>with</c> expression.</remarks>
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
}
