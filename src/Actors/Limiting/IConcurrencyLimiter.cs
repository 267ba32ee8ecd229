namespace ActorQueue.Actors;

/// <summary>
/// Bounds how many callers run at once: a caller takes a slot with <see cref="AcquireAsync(string, CancellationToken)"/>, waits in FIFO
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

    /// <summary>
    /// Takes <paramref name="permits"/> permits at once, waiting behind every caller of the same or a higher priority
    /// that came first (a large request at the head is not overtaken by smaller ones behind it).
    /// </summary>
    /// <param name="permits">How many permits (the request's weight); at least 1 and at most <see cref="MaxRunning"/>.</param>
    /// <param name="priority">Higher is served first; FIFO within one priority.</param>
    /// <param name="waitTimeout">How long it may wait: <c>null</c> for the limiter's default, <see cref="Timeout.InfiniteTimeSpan"/> for ever, zero not at all.</param>
    /// <param name="source">Who asks; shows in traces and rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the request while it waits; a cancelled caller holds nothing.</param>
    /// <returns>The lease on the permits; dispose it to give them all back.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="permits"/> is below 1 or above <see cref="MaxRunning"/> (at once, or when a shrink makes it so while it waits), or <paramref name="waitTimeout"/> is negative.</exception>
    /// <exception cref="ConcurrencyLimitExceededException">The queue is full, or a higher-priority newcomer evicted this waiter.</exception>
    /// <exception cref="ConcurrencyWaitTimeoutException">The wait timeout passed; the caller left the queue.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before a grant.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    /// <remarks>A limiter that predates weights serves only one permit at priority 0 with no timeout, and throws <see cref="NotSupportedException"/> otherwise.</remarks>
#pragma warning disable RS0026 // The overloads are told apart by their first parameter's type (API.md fixes them); both keep optional tails for callers.
    ValueTask<ConcurrencyLease> AcquireAsync(int permits, int priority = 0, TimeSpan? waitTimeout = null,
                                             string source = "unnamed", CancellationToken cancellationToken = default)
#pragma warning restore RS0026
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(permits, 1);
        return permits == 1 && priority == 0 && waitTimeout is null
            ? AcquireAsync(source, cancellationToken)
            : throw new NotSupportedException($"{GetType().Name} does not support weights, priorities or wait timeouts.");
    }

    /// <summary>
    /// Sets the limits while the limiter runs; <c>null</c> leaves a value unchanged, and a bounded queue stays bounded.
    /// Growing grants to the waiters that fit at once; shrinking revokes no held permit (new grants wait until enough
    /// come back) and fails waiters that ask more than the new <see cref="MaxRunning"/>; a smaller
    /// <see cref="MaxQueued"/> turns only newcomers away. <see cref="MaxRunning"/> and <see cref="MaxQueued"/> show the
    /// new values at once.
    /// </summary>
    /// <param name="maxRunning">The new number of permits, at least 1.</param>
    /// <param name="maxQueued">The new bound on waiters, at least 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    /// <exception cref="NotSupportedException">The limiter cannot be resized (the default for limiters that predate it).</exception>
    void Resize(int? maxRunning = null, int? maxQueued = null) =>
        throw new NotSupportedException($"{GetType().Name} cannot be resized.");
}
