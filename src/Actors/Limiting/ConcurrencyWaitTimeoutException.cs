namespace ActorQueue.Actors;

/// <summary>
/// Thrown to a caller whose wait timeout passed before it was granted its permits (or, for a zero timeout, that
/// would have had to wait at all). It was withdrawn: it holds nothing and waits no more.
/// </summary>
public sealed class ConcurrencyWaitTimeoutException : TimeoutException
{
    /// <summary>Creates the exception with a default message.</summary>
    public ConcurrencyWaitTimeoutException()
        : base("The wait for a concurrency limiter's permits timed out.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public ConcurrencyWaitTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ConcurrencyWaitTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a caller that waited <paramref name="waitTimeout"/> in vain.</summary>
    /// <param name="limiterName">The limiter's name; <c>null</c> when unnamed.</param>
    /// <param name="waitTimeout">How long the caller was allowed to wait.</param>
    /// <param name="permits">How many permits it asked for.</param>
    public ConcurrencyWaitTimeoutException(string? limiterName, TimeSpan waitTimeout, int permits)
        : base($"Waited {waitTimeout} for {permits} permit(s) of concurrency limiter {limiterName ?? "(unnamed)"} without being granted")
    {
        LimiterName = limiterName;
        WaitTimeout = waitTimeout;
        Permits = permits;
    }

    /// <summary>The limiter's name; <c>null</c> when unnamed.</summary>
    public string? LimiterName { get; }

    /// <summary>How long the caller was allowed to wait.</summary>
    public TimeSpan WaitTimeout { get; }

    /// <summary>How many permits it asked for.</summary>
    public int Permits { get; }
}
