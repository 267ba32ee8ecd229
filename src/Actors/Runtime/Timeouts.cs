namespace ActorQueue.Runtime;

/// <summary>
/// The one rule for every timeout ActorQueue takes: <see cref="Timeout.InfiniteTimeSpan"/> and anything longer than
/// timers can wait mean no timeout; other negative values are refused by name. Without it an over-long timeout
/// (<see cref="TimeSpan.MaxValue"/>) overflowed the scheduler's deadline and fired at once.
/// </summary>
internal static class Timeouts
{
    /// <summary>The longest finite wait: what .NET's timers support (2^32 − 2 ms, about 49.7 days).</summary>
    public static readonly TimeSpan LongestFinite = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>
    /// <paramref name="value"/> as a timeout: itself, or <see cref="Timeout.InfiniteTimeSpan"/> when it is infinite
    /// or longer than <see cref="LongestFinite"/>; <c>false</c> when it is negative and not infinite.
    /// </summary>
    public static bool TryNormalize(TimeSpan value, out TimeSpan timeout)
    {
        timeout = value == Timeout.InfiniteTimeSpan || value > LongestFinite ? Timeout.InfiniteTimeSpan : value;
        return timeout >= TimeSpan.Zero || timeout == Timeout.InfiniteTimeSpan;
    }

    /// <summary>As <see cref="TryNormalize"/>, throwing for a negative value.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is negative and not infinite; names <paramref name="parameterName"/> and the value.</exception>
    public static TimeSpan Normalize(TimeSpan value, string parameterName) =>
        TryNormalize(value, out var timeout)
            ? timeout
            : throw new ArgumentOutOfRangeException(parameterName, value, Invalid(parameterName, value));

    /// <summary>The message for a refused timeout.</summary>
    public static string Invalid(string name, object value) => $"{name} must be >= 0 or infinite (Timeout.InfiniteTimeSpan), got {value}";

    /// <summary>A period (how often something repeats): more than zero and at most <see cref="LongestFinite"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Otherwise; names <paramref name="parameterName"/> and the value.</exception>
    public static TimeSpan Period(TimeSpan value, string parameterName) =>
        value > TimeSpan.Zero && value <= LongestFinite
            ? value
            : throw new ArgumentOutOfRangeException(parameterName, value, $"{parameterName} must be > 0 and at most {LongestFinite}, got {value}");
}
