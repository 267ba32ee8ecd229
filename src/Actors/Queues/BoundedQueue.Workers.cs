namespace ActorQueue.Actors;

/// <summary>How the facade starts its workers: worker actors the router spawns and feeds, optionally under a limiter.</summary>
public sealed partial class BoundedQueue<T>
{
    /// <summary>Starts <paramref name="numWorkers"/> worker actors running <paramref name="worker"/>; workers already running are replaced after finishing their current item.</summary>
    /// <param name="worker">Processes one item.</param>
    /// <param name="numWorkers">How many workers; at least 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item; an error handler that throws is logged and swallowed. Without one, worker errors are logged.</param>
    /// <returns>A task that completes once the workers exist.</returns>
    /// <exception cref="QueueStateException">The queue is stopping (its stop waits for the last workers to go); await <c>StopAsync</c> first.</exception>
    public Task StartWorkersAsync(Func<T, Task> worker, int numWorkers, Func<Exception, T, Task>? errorHandler = null)
    {
        ArgumentNullException.ThrowIfNull(worker);
        return StartWorkersAsync((item, _) => worker(item), numWorkers, errorHandler);
    }

    /// <summary>Starts <paramref name="numWorkers"/> worker actors running <paramref name="worker"/>, which receives a token that a stop timeout cancels.</summary>
    /// <param name="worker">Processes one item; should honour the token.</param>
    /// <param name="numWorkers">How many workers; at least 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item; an error handler that throws is logged and swallowed.</param>
    /// <returns>A task that completes once the workers exist.</returns>
    /// <exception cref="QueueStateException">The queue is stopping (its stop waits for the last workers to go); await <c>StopAsync</c> first.</exception>
    public Task StartWorkersAsync(Func<T, CancellationToken, Task> worker, int numWorkers, Func<Exception, T, Task>? errorHandler = null) =>
        StartWorkersAsync(worker, numWorkers, errorHandler, limiter: null);

    internal Task StartWorkersAsync(Func<T, CancellationToken, Task> worker, int numWorkers, Func<Exception, T, Task>? errorHandler,
                                    IConcurrencyLimiter? limiter, QueueSlots? ownSlots = null)
    {
        ArgumentNullException.ThrowIfNull(worker);
        if (numWorkers < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numWorkers), numWorkers, $"numWorkers must be >= 1, got {numWorkers}");
        }

        var spec = new WorkerSpec<T>(worker, numWorkers, errorHandler, limiter) { Limit = WorkerLimit.For(limiter, ownSlots, numWorkers) };
        return SendAsync(new StartWorkers<T>(spec), CancellationToken.None);
    }
}
