namespace ActorQueue.Actors;

/// <summary>
/// Thrown to a caller whose wait for permits outlasted its wait timeout (the limiter's default or its own). The
/// caller has left the queue and holds nothing; the timeout bounds only the wait, never the work done after a grant.
/// </summary>
public sealed class ConcurrencyWaitTimeoutException : TimeoutException
{
    /// <summary>Creates the exception with a default message.</summary>
    public ConcurrencyWaitTimeoutException()
        : base("The wait for a concurrency permit timed out.")
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
    /// <param name="source">Who asked; named in the message when the limiter has no name.</param>
    public ConcurrencyWaitTimeoutException(string? limiterName, TimeSpan waitTimeout, int permits, string source)
        : base($"Waited {waitTimeout.TotalMilliseconds:0.###} ms for {permits} permit(s) of {limiterName ?? source} without a grant")
    {
        LimiterName = limiterName;
        WaitTimeout = waitTimeout;
        Permits = permits;
    }

    /// <summary>The limiter's name; <c>null</c> when unnamed.</summary>
    public string? LimiterName { get; }

    /// <summary>How long the caller was allowed to wait (<see cref="TimeSpan.Zero"/>: not at all).</summary>
    public TimeSpan WaitTimeout { get; }

    /// <summary>How many permits the caller asked for.</summary>
    public int Permits { get; }
}
