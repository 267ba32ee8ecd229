using System.Diagnostics;
using Akka.Actor;
using Serilog;

namespace ActorQueue.Actors;

/// <summary>
/// A <see cref="BoundedQueue{T}"/> with a concurrency limit on its worker calls (lionfuncs' <c>WorkQueue</c>). The
/// limit is enforced by a gatekeeper: a private <see cref="ConcurrencyLimiter"/>, or a shared
/// <see cref="IConcurrencyLimiter"/> that caps several queues together.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("{Queue.Name}: {Status}, {Size} queued")]
public sealed class WorkQueue<T> : IDisposable, IAsyncDisposable
{
    /// <summary>The most items <see cref="BatchProcessAsync"/> sends in one message.</summary>
    private const int MaxBatchChunk = 256;

    /// <summary>The limiter this queue created and so disposes; <c>null</c> for a shared or no limiter.</summary>
    private readonly ConcurrencyLimiter? _ownLimiter;

    /// <summary>Creates a work queue.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="concurrencyLimit">How many worker calls may run at once; <c>null</c> for as many as there are workers.</param>
    /// <param name="logger">Where the queue logs; Serilog's <c>Log.Logger</c> when <c>null</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    public WorkQueue(int maxSize = 100, TimeSpan? timeout = null, int? concurrencyLimit = null,
                     ILogger? logger = null, ActorSystem? system = null, string? name = null)
    {
        if (concurrencyLimit is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(concurrencyLimit), concurrencyLimit, $"concurrencyLimit must be >= 1 when set, got {concurrencyLimit}");
        }

        Queue = new BoundedQueue<T>(maxSize, timeout, logger, system, name);
        ConcurrencyLimit = concurrencyLimit;
        if (concurrencyLimit is { } limit)
        {
            _ownLimiter = new ConcurrencyLimiter(limit, name: Queue.Name, system: system);
            Limiter = _ownLimiter;
        }
    }

    /// <summary>Creates a work queue from a <see cref="QueueConfig"/>.</summary>
    /// <param name="config">Capacity, heartbeat period, concurrency limit, worker batch and durability.</param>
    /// <param name="logger">Where the queue logs; Serilog's <c>Log.Logger</c> when <c>null</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    public WorkQueue(QueueConfig config, ILogger? logger = null, ActorSystem? system = null, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        Queue = new BoundedQueue<T>(config.QueueCapacity, timeout: null, config.CapacityRefreshTime, logger, system, name, config.WorkerBatch, config.Durability);
        ConcurrencyLimit = config.ConcurrencyLimit;
        if (config.ConcurrencyLimit is { } limit)
        {
            _ownLimiter = new ConcurrencyLimiter(limit, name: Queue.Name, system: system);
            Limiter = _ownLimiter;
        }
    }

    /// <summary>Creates a work queue whose worker calls share <paramref name="limiter"/> with everything else that uses it.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="limiter">The shared limiter; the queue does not dispose it.</param>
    /// <param name="logger">Where the queue logs; Serilog's <c>Log.Logger</c> when <c>null</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    public WorkQueue(int maxSize, TimeSpan? timeout, IConcurrencyLimiter limiter,
                     ILogger? logger = null, ActorSystem? system = null, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(limiter);
        Queue = new BoundedQueue<T>(maxSize, timeout, logger, system, name);
        Limiter = limiter;
        ConcurrencyLimit = limiter.MaxRunning;
    }

    /// <summary>The underlying queue (for <c>GetAsync</c>, <c>DrainAsync</c> and the rest of its surface).</summary>
    public BoundedQueue<T> Queue { get; }

    /// <summary>The limiter capping worker calls, or <c>null</c> when only the worker count limits them.</summary>
    public IConcurrencyLimiter? Limiter { get; }

    /// <summary>The concurrency limit; also the default worker count.</summary>
    public int? ConcurrencyLimit { get; }

    /// <inheritdoc cref="BoundedQueue{T}.Status"/>
    public QueueStatus Status => Queue.Status;

    /// <inheritdoc cref="BoundedQueue{T}.Metrics"/>
    public QueueMetrics Metrics => Queue.Metrics;

    /// <inheritdoc cref="BoundedQueue{T}.Size"/>
    public int Size => Queue.Size;

    /// <inheritdoc cref="BoundedQueue{T}.IsFull"/>
    public bool IsFull => Queue.IsFull;

    /// <inheritdoc cref="BoundedQueue{T}.IsEmpty"/>
    public bool IsEmpty => Queue.IsEmpty;

    /// <inheritdoc cref="BoundedQueue{T}.Router"/>
    public IActorRef Router => Queue.Router;

    /// <inheritdoc cref="BoundedQueue{T}.StartAsync"/>
    public Task StartAsync(CancellationToken cancellationToken = default) => Queue.StartAsync(cancellationToken);

    /// <inheritdoc cref="BoundedQueue{T}.StopAsync"/>
    public Task StopAsync(TimeSpan? timeout = null) => Queue.StopAsync(timeout);

    /// <summary>Adds an item, waiting for space up to the queue's default put timeout.</summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Withdraws the put while it waits.</param>
    /// <returns><c>true</c> when added; <c>false</c> on backpressure.</returns>
    public Task<bool> PutAsync(T item, CancellationToken cancellationToken = default) => Queue.PutAsync(item, timeout: null, cancellationToken);

    /// <summary>Starts workers: <paramref name="numWorkers"/>, else the concurrency limit, else 1. The limiter caps how many calls run at once.</summary>
    /// <param name="worker">Processes one item.</param>
    /// <param name="numWorkers">How many workers; at least 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item.</param>
    /// <returns>A task that completes once the workers exist.</returns>
    public Task ProcessAsync(Func<T, Task> worker, int? numWorkers = null, Func<Exception, T, Task>? errorHandler = null)
    {
        ArgumentNullException.ThrowIfNull(worker);
        return ProcessAsync((item, _) => worker(item), numWorkers, errorHandler);
    }

    /// <summary>Starts workers whose function receives a token that a stop timeout cancels; as the other overload otherwise.</summary>
    /// <param name="worker">Processes one item; should honour the token.</param>
    /// <param name="numWorkers">How many workers; at least 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item.</param>
    /// <returns>A task that completes once the workers exist.</returns>
    public Task ProcessAsync(Func<T, CancellationToken, Task> worker, int? numWorkers = null, Func<Exception, T, Task>? errorHandler = null) =>
        Queue.StartWorkersAsync(worker, numWorkers ?? ConcurrencyLimit ?? 1, errorHandler, Limiter);

    /// <inheritdoc cref="BoundedQueue{T}.JoinAsync"/>
    public Task JoinAsync(CancellationToken cancellationToken = default) => Queue.JoinAsync(cancellationToken);

    /// <summary>
    /// Processes a batch: starts the queue and its workers, puts every item (waiting for space, never dropping one),
    /// waits until all are finished, and stops. The same queue can run several batches.
    /// </summary>
    /// <param name="items">The items, enumerated once, lazily as space frees up.</param>
    /// <param name="worker">Processes one item.</param>
    /// <param name="numWorkers">How many workers; default the concurrency limit, else 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item.</param>
    /// <returns>A task that completes when every item is finished and the queue has stopped.</returns>
    public async Task BatchProcessAsync(IEnumerable<T> items, Func<T, Task> worker, int? numWorkers = null, Func<Exception, T, Task>? errorHandler = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(worker);
        await ProcessAsync(worker, numWorkers, errorHandler).ConfigureAwait(false);
        await StartAsync().ConfigureAwait(false);

        // Items go in chunks of at most the queue's capacity: one message per chunk, and never more than one
        // chunk read ahead of the queue, so a lazy sequence is consumed only as space frees up.
        var chunkSize = Math.Min(Queue.Capacity, MaxBatchChunk);
        var chunk = new List<T>(chunkSize);
        foreach (var item in items)
        {
            chunk.Add(item);
            if (chunk.Count == chunkSize)
            {
                await Queue.PutBatchAsync(chunk).ConfigureAwait(false);
                chunk = new List<T>(chunkSize);
            }
        }

        if (chunk.Count > 0)
        {
            await Queue.PutBatchAsync(chunk).ConfigureAwait(false);
        }

        await JoinAsync().ConfigureAwait(false);
        await StopAsync().ConfigureAwait(false);
    }

    /// <summary>Takes back the items left in an idle or stopped queue.</summary>
    /// <returns>The items, oldest first.</returns>
    public Task<IReadOnlyList<T>> DrainAsync() => Queue.DrainAsync();

    /// <summary>Disposes the queue (stopping it) and the limiter it created, without waiting.</summary>
    public void Dispose()
    {
        Queue.Dispose();
        _ownLimiter?.Dispose();
    }

    /// <summary>Disposes the queue (stopping it) and the limiter it created.</summary>
    /// <returns>A task that completes when both have stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        await Queue.DisposeAsync().ConfigureAwait(false);
        if (_ownLimiter is not null)
        {
            await _ownLimiter.DisposeAsync().ConfigureAwait(false);
        }
    }
}
