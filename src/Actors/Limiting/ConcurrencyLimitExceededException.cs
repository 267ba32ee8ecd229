namespace ActorQueue.Actors;

/// <summary>
/// Thrown when a caller would have to wait for a slot but the limiter's wait queue already holds
/// <c>max_queued</c> callers. Nothing was taken: the caller is not queued and the counts are unchanged.
/// </summary>
public class ConcurrencyLimitExceededException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public ConcurrencyLimitExceededException()
        : base("The concurrency limiter's wait queue is full.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public ConcurrencyLimitExceededException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ConcurrencyLimitExceededException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a rejected caller, with pydantic-ai's message.</summary>
    /// <param name="queueDepth">The depth the queue would have reached with this caller (waiting + 1).</param>
    /// <param name="maxQueued">The limiter's <c>max_queued</c>.</param>
    /// <param name="target">The limiter's name, or the caller's source when the limiter has none.</param>
    public ConcurrencyLimitExceededException(int queueDepth, int maxQueued, string target)
        : base(FormatMessage(queueDepth, maxQueued, target))
    {
        QueueDepth = queueDepth;
        MaxQueued = maxQueued;
        Target = target;
    }

    /// <summary>For a waiter evicted from a full queue by a newcomer of higher priority.</summary>
    internal ConcurrencyLimitExceededException(int maxQueued, string target, int priority)
        : base($"Evicted from the full wait queue (max_queued {maxQueued}) of {target}: a request of higher priority than {priority} took its place")
    {
        QueueDepth = maxQueued + 1;
        MaxQueued = maxQueued;
        Target = target;
        IsEviction = true;
    }

    /// <summary>The depth the wait queue would have reached with the rejected caller.</summary>
    public int QueueDepth { get; }

    /// <summary>The limiter's <c>max_queued</c>.</summary>
    public int MaxQueued { get; }

    /// <summary>The limiter's name, or the rejected caller's source when the limiter has none.</summary>
    public string? Target { get; }

    /// <summary>Whether the caller had been waiting and was evicted, rather than turned away on arrival.</summary>
    internal bool IsEviction { get; }

    internal static string FormatMessage(int queueDepth, int maxQueued, string target) =>
        $"Concurrency queue depth ({queueDepth}) exceeds max_queued ({maxQueued}) for {target}";
}
