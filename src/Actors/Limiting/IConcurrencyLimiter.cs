namespace ActorQueue.Actors;

/// <summary>
/// Bounds how many callers run at once: a caller takes a slot with <see cref="AcquireAsync"/>, waits in FIFO
/// order when none is free, and gives the slot back by disposing its <see cref="ConcurrencyLease"/>.
/// </summary>
public interface IConcurrencyLimiter
{
    /// <summary>The limiter's name, used in traces, metrics and rejection messages; <c>null</c> when unnamed.</summary>
    string? Name { get; }

    /// <summary>How many slots there are.</summary>
    int MaxRunning { get; }

    /// <summary>How many callers may wait for a slot; <c>null</c> for no bound.</summary>
    int? MaxQueued { get; }

    /// <summary>How many slots are held now.</summary>
    int RunningCount { get; }

    /// <summary>How many callers wait for a slot now.</summary>
    int WaitingCount { get; }

    /// <summary><see cref="MaxRunning"/> minus <see cref="RunningCount"/>, never negative.</summary>
    int AvailableCount { get; }

    /// <summary>Takes a slot, waiting in FIFO order when none is free.</summary>
    /// <param name="source">Who asks (for example <c>"agent:my-agent"</c>); shows in traces and rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the request while it waits; a cancelled caller holds nothing.</param>
    /// <returns>The lease on the slot; dispose it to give the slot back.</returns>
    /// <exception cref="ConcurrencyLimitExceededException">The caller would wait and the wait queue is full.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before a slot was granted.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    ValueTask<ConcurrencyLease> AcquireAsync(string source = "unnamed", CancellationToken cancellationToken = default);
}
