namespace ActorQueue.Actors;

/// <summary>How the facade starts its workers: worker actors the router spawns and feeds, optionally under a limiter.</summary>
public sealed partial class BoundedQueue<T>
{
    /// <summary>Who may replace the workers: a <c>WorkQueue</c> batch that owns them, or the worker starts being sent.</summary>
    internal WorkerGate WorkerGate { get; } = new();

    /// <summary>For tests: runs on the caller's thread as a worker start holds the gate, before it sends its message (to hold a start there).</summary>
    internal Action? WorkerStartSending { get; set; }

    /// <summary>For tests: runs on the batch's thread once its own worker start has been answered, before it starts the queue.</summary>
    internal Action? BatchWorkersStarted { get; set; }

    /// <summary>Starts <paramref name="numWorkers"/> worker actors running <paramref name="worker"/>; workers already running are replaced after finishing their current item.</summary>
    /// <param name="worker">Processes one item.</param>
    /// <param name="numWorkers">How many workers; at least 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item; an error handler that throws is logged and swallowed. Without one, worker errors are logged.</param>
    /// <returns>A task that completes once the workers exist.</returns>
    /// <exception cref="QueueStateException">The queue is stopping (its stop waits for the last workers to go); await <c>StopAsync</c> first.</exception>
    /// <exception cref="InvalidOperationException">A <c>WorkQueue.BatchProcessAsync</c> runs on this queue: its workers are not replaced (nothing was sent).</exception>
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
    /// <exception cref="InvalidOperationException">A <c>WorkQueue.BatchProcessAsync</c> runs on this queue (see the other overload).</exception>
    public Task StartWorkersAsync(Func<T, CancellationToken, Task> worker, int numWorkers, Func<Exception, T, Task>? errorHandler = null) =>
        StartWorkersAsync(worker, numWorkers, errorHandler, limiter: null);

    /// <summary>
    /// Starts workers; <paramref name="forBatch"/> for the batch that owns the workers, else refused while a batch does;
    /// <paramref name="lastTryOnly"/> when <paramref name="errorHandler"/> is to hear only an item's last try (<see cref="WorkerSpec{T}.LastTryOnly"/>).
    /// </summary>
    internal Task StartWorkersAsync(Func<T, CancellationToken, Task> worker, int numWorkers, Func<Exception, T, Task>? errorHandler,
                                    IConcurrencyLimiter? limiter, QueueSlots? ownSlots = null, bool forBatch = false, bool lastTryOnly = false)
    {
        ArgumentNullException.ThrowIfNull(worker);
        if (numWorkers < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numWorkers), numWorkers, $"numWorkers must be >= 1, got {numWorkers}");
        }

        var spec = new WorkerSpec<T>(worker, numWorkers, errorHandler, limiter) { Limit = WorkerLimit.For(limiter, ownSlots, numWorkers), LastTryOnly = lastTryOnly };
        if (forBatch)
        {
            WorkerGate.AssertBatchOwns();
            return SendAsync(new StartWorkers<T>(spec), CancellationToken.None);
        }

        if (!WorkerGate.TryEnterStart())
        {
            // Before, a start sent during a batch replaced the batch's workers, and the batch's items ran in the other worker function (review h180).
            throw new InvalidOperationException(
                $"A batch is running on queue {Name}: its workers cannot be replaced until it has completed (StartWorkersAsync/ProcessAsync would run the batch's items in another worker)");
        }

        try
        {
            WorkerStartSending?.Invoke();
            return SendAsync(new StartWorkers<T>(spec), CancellationToken.None);
        }
        finally
        {
            WorkerGate.LeaveStart();
        }
    }
}
