using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>How the facade starts its workers: worker actors the router spawns and feeds, optionally under a limiter.</summary>
public sealed partial class BoundedQueue<T>
{
    /// <summary>
    /// Who may replace the workers: -1 while a <c>WorkQueue</c> batch owns them (from its start to its end); else how many
    /// worker starts (<c>StartWorkersAsync</c>, <c>ProcessAsync</c>) are being sent right now. A start is sent only while no
    /// batch owns the workers, and a batch takes them only while no start is being sent, so no start sent during a batch
    /// reaches the router after the batch's own (review h180).
    /// </summary>
    private int _workerGate;

    /// <summary>Takes the workers for a batch: <c>false</c> when a batch already owns them or a worker start is being sent.</summary>
    /// <param name="startsUnderWay">Set when the refusal is a worker start being sent, not another batch.</param>
    internal bool TryBeginBatch(out bool startsUnderWay)
    {
        var previous = Interlocked.CompareExchange(ref _workerGate, -1, 0);
        startsUnderWay = previous > 0;
        return previous == 0;
    }

    /// <summary>Gives the workers back once a batch has ended (whatever it ended with).</summary>
    internal void EndBatch()
    {
        AssertBatchOwnsWorkers();
        Volatile.Write(ref _workerGate, 0);
    }

    [Conditional("DEBUG")]
    private void AssertBatchOwnsWorkers() => Debug.Assert(Volatile.Read(ref _workerGate) == -1, "a batch ended that did not own the workers");

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

    /// <summary>Starts workers; <paramref name="forBatch"/> for the batch that owns the workers, else refused while a batch does.</summary>
    internal Task StartWorkersAsync(Func<T, CancellationToken, Task> worker, int numWorkers, Func<Exception, T, Task>? errorHandler,
                                    IConcurrencyLimiter? limiter, QueueSlots? ownSlots = null, bool forBatch = false)
    {
        ArgumentNullException.ThrowIfNull(worker);
        if (numWorkers < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(numWorkers), numWorkers, $"numWorkers must be >= 1, got {numWorkers}");
        }

        var spec = new WorkerSpec<T>(worker, numWorkers, errorHandler, limiter) { Limit = WorkerLimit.For(limiter, ownSlots, numWorkers) };
        if (forBatch)
        {
            AssertBatchOwnsWorkers();
            return SendAsync(new StartWorkers<T>(spec), CancellationToken.None);
        }

        EnterWorkerStart();
        try
        {
            return SendAsync(new StartWorkers<T>(spec), CancellationToken.None);
        }
        finally
        {
            Interlocked.Decrement(ref _workerGate);
        }
    }

    /// <summary>
    /// Counts a worker start being sent, or refuses it while a batch owns the workers. Before, a start sent during a batch
    /// replaced the batch's workers, and the batch's items ran in the other worker function (review h180).
    /// </summary>
    private void EnterWorkerStart()
    {
        var gate = Volatile.Read(ref _workerGate);
        while (true)
        {
            if (gate < 0)
            {
                throw new InvalidOperationException(
                    $"A batch is running on queue {Name}: its workers cannot be replaced until it has completed (StartWorkersAsync/ProcessAsync would run the batch's items in another worker)");
            }

            var seen = Interlocked.CompareExchange(ref _workerGate, gate + 1, gate);
            if (seen == gate)
            {
                return;
            }

            gate = seen;
        }
    }
}
