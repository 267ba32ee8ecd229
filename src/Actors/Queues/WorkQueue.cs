using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using ActorQueue.Runtime;
using Akka.Actor;
using MelLogger = Microsoft.Extensions.Logging.ILogger;
using SerilogLogger = Serilog.ILogger;

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
    /// <summary>The most items <c>BatchProcessAsync</c> sends in one message.</summary>
    private const int MaxBatchChunk = 256;

    /// <summary>The limiter this queue created and so disposes; <c>null</c> for a shared or no limiter.</summary>
    private readonly ConcurrencyLimiter? _ownLimiter;

    /// <summary>The count of worker calls against <see cref="_ownLimiter"/>, shared by every generation of workers.</summary>
    private readonly QueueSlots? _ownSlots;

    /// <summary>Creates a work queue.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="concurrencyLimit">How many worker calls may run at once; <c>null</c> for as many as there are workers.</param>
    /// <param name="logger">Where the queue logs; when <c>null</c>, the system's logger factory (under hosting), else Serilog's <c>Log.Logger</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    // A bare `logger: null` keeps meaning the Serilog constructors: that priority is what makes the Microsoft.Extensions.Logging
    // overloads with optional parameters safe (RS0026).
#pragma warning disable RS0026
    [OverloadResolutionPriority(1)]
    public WorkQueue(int maxSize = 100, TimeSpan? timeout = null, int? concurrencyLimit = null,
                     SerilogLogger? logger = null, ActorSystem? system = null, string? name = null)
        : this(maxSize, timeout, concurrencyLimit, QueueLogs.Serilog(logger), system, name)
    {
    }

    /// <summary>Creates a work queue that logs to a Microsoft.Extensions.Logging logger; otherwise as the Serilog constructor.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="concurrencyLimit">How many worker calls may run at once; <c>null</c> for as many as there are workers.</param>
    /// <param name="logger">Where the queue logs.</param>
    /// <param name="system">The actor system; <see cref="ActorQueueRuntime.Default"/> when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    public WorkQueue(int maxSize, TimeSpan? timeout, int? concurrencyLimit, MelLogger logger, ActorSystem? system = null, string? name = null)
        : this(maxSize, timeout, concurrencyLimit, QueueLogs.Microsoft(logger), system, name)
    {
    }

    private WorkQueue(int maxSize, TimeSpan? timeout, int? concurrencyLimit, Func<string, LogSink>? log, ActorSystem? system, string? name)
    {
        if (concurrencyLimit is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(concurrencyLimit), concurrencyLimit, $"concurrencyLimit must be >= 1 when set, got {concurrencyLimit}");
        }

        Queue = new BoundedQueue<T>(maxSize, timeout, BoundedQueue<T>.DefaultHeartbeatPeriod, log, system, name);
        ConcurrencyLimit = concurrencyLimit;
        if (concurrencyLimit is { } limit)
        {
            _ownLimiter = new ConcurrencyLimiter(limit, name: Queue.Name, system: system);
            _ownSlots = new QueueSlots(_ownLimiter);
            Limiter = _ownLimiter;
        }
    }

    /// <summary>Creates a work queue from a <see cref="QueueConfig"/>.</summary>
    /// <param name="config">Capacity, heartbeat period, concurrency limit, worker batch and durability.</param>
    /// <param name="logger">Where the queue logs; when <c>null</c>, the system's logger factory (under hosting), else Serilog's <c>Log.Logger</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    [OverloadResolutionPriority(1)]
    public WorkQueue(QueueConfig config, SerilogLogger? logger = null, ActorSystem? system = null, string? name = null)
        : this(config, QueueLogs.Serilog(logger), system, name)
    {
    }

    /// <summary>Creates a work queue from a <see cref="QueueConfig"/> that logs to a Microsoft.Extensions.Logging logger.</summary>
    /// <param name="config">Capacity, heartbeat period, concurrency limit and worker batch.</param>
    /// <param name="logger">Where the queue logs.</param>
    /// <param name="system">The actor system; <see cref="ActorQueueRuntime.Default"/> when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    public WorkQueue(QueueConfig config, MelLogger logger, ActorSystem? system = null, string? name = null)
        : this(config, QueueLogs.Microsoft(logger), system, name)
    {
    }

    private WorkQueue(QueueConfig config, Func<string, LogSink>? log, ActorSystem? system, string? name)
    {
        ArgumentNullException.ThrowIfNull(config);
        Queue = new BoundedQueue<T>(config.QueueCapacity, timeout: null, config.CapacityRefreshTime, log, system, name, config.WorkerBatch, config.Durability);
        ConcurrencyLimit = config.ConcurrencyLimit;
        if (config.ConcurrencyLimit is { } limit)
        {
            _ownLimiter = new ConcurrencyLimiter(limit, name: Queue.Name, system: system);
            _ownSlots = new QueueSlots(_ownLimiter);
            Limiter = _ownLimiter;
        }
    }

    /// <summary>Creates a work queue whose worker calls share <paramref name="limiter"/> with everything else that uses it.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="limiter">The shared limiter; the queue does not dispose it.</param>
    /// <param name="logger">Where the queue logs; when <c>null</c>, the system's logger factory (under hosting), else Serilog's <c>Log.Logger</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    [OverloadResolutionPriority(1)]
    public WorkQueue(int maxSize, TimeSpan? timeout, IConcurrencyLimiter limiter,
                     SerilogLogger? logger = null, ActorSystem? system = null, string? name = null)
        : this(maxSize, timeout, limiter, QueueLogs.Serilog(logger), system, name)
    {
    }

    /// <summary>Creates a work queue sharing <paramref name="limiter"/> that logs to a Microsoft.Extensions.Logging logger.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="limiter">The shared limiter; the queue does not dispose it.</param>
    /// <param name="logger">Where the queue logs.</param>
    /// <param name="system">The actor system; <see cref="ActorQueueRuntime.Default"/> when <c>null</c>.</param>
    /// <param name="name">A name for logs and metrics.</param>
    public WorkQueue(int maxSize, TimeSpan? timeout, IConcurrencyLimiter limiter, MelLogger logger, ActorSystem? system = null, string? name = null)
        : this(maxSize, timeout, limiter, QueueLogs.Microsoft(logger), system, name)
    {
    }

#pragma warning restore RS0026

    private WorkQueue(int maxSize, TimeSpan? timeout, IConcurrencyLimiter limiter, Func<string, LogSink>? log, ActorSystem? system, string? name)
    {
        ArgumentNullException.ThrowIfNull(limiter);
        Queue = new BoundedQueue<T>(maxSize, timeout, BoundedQueue<T>.DefaultHeartbeatPeriod, log, system, name);
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

    /// <inheritdoc cref="BoundedQueue{T}.StopAsync(TimeSpan?)"/>
    public Task StopAsync(TimeSpan? timeout) => Queue.StopAsync(timeout);

    /// <inheritdoc cref="BoundedQueue{T}.StopAsync(TimeSpan?, CancellationToken)"/>
    public Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) => Queue.StopAsync(timeout, cancellationToken);

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
#pragma warning disable RS0026, RS0027 // the overloads differ in the worker's arity, which a lambda always picks
    public Task ProcessAsync(Func<T, Task> worker, int? numWorkers = null, Func<Exception, T, Task>? errorHandler = null)
#pragma warning restore RS0026, RS0027
    {
        ArgumentNullException.ThrowIfNull(worker);
        return ProcessAsync((item, _) => worker(item), numWorkers, errorHandler);
    }

    /// <summary>Starts workers whose function receives a token that a stop timeout cancels; as the other overload otherwise.</summary>
    /// <param name="worker">Processes one item; should honour the token.</param>
    /// <param name="numWorkers">How many workers; at least 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item.</param>
    /// <returns>A task that completes once the workers exist.</returns>
    public Task ProcessAsync(Func<T, CancellationToken, Task> worker, int? numWorkers, Func<Exception, T, Task>? errorHandler) =>
        Queue.StartWorkersAsync(worker, numWorkers ?? ConcurrencyLimit ?? 1, errorHandler, Limiter, _ownSlots);

    /// <summary>Starts workers as the other overloads; <paramref name="cancellationToken"/> stops waiting for them to exist (they still start).</summary>
    /// <param name="worker">Processes one item; its token is cancelled by a stop's timeout.</param>
    /// <param name="numWorkers">How many workers; <c>null</c> for the concurrency limit, else 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes once the workers exist.</returns>
#pragma warning disable RS0026 // see the first overload
    public Task ProcessAsync(Func<T, CancellationToken, Task> worker, int? numWorkers = null, Func<Exception, T, Task>? errorHandler = null,
                             CancellationToken cancellationToken = default)
#pragma warning restore RS0026
    {
        var started = ProcessAsync(worker, numWorkers, errorHandler);
        return cancellationToken.CanBeCanceled ? started.WaitAsync(cancellationToken) : started;
    }

    /// <inheritdoc cref="BoundedQueue{T}.JoinAsync"/>
    public Task JoinAsync(CancellationToken cancellationToken = default) => Queue.JoinAsync(cancellationToken);

    /// <summary>
    /// Processes a batch: starts the queue and its workers, puts every item (waiting for space, never dropping one),
    /// waits until all are finished, and stops. The same queue can run several batches.
    /// </summary>
    /// <param name="items">The items, enumerated once, lazily as space frees up.</param>
    /// <param name="worker">Processes one item.</param>
    /// <param name="numWorkers">How many workers; default the concurrency limit, else 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item; without one, the failures are thrown at the end.</param>
    /// <returns>A task that completes when every item is finished and the queue has stopped.</returns>
    /// <exception cref="AggregateException">Without <paramref name="errorHandler"/>: items failed. It is thrown after the whole batch
    /// ran and the queue stopped, and holds every worker exception, in the order they were reported.</exception>
#pragma warning disable RS0026, RS0027 // the overloads differ in the worker's arity, which a lambda always picks
    public Task BatchProcessAsync(IEnumerable<T> items, Func<T, Task> worker, int? numWorkers = null, Func<Exception, T, Task>? errorHandler = null)
    {
        ArgumentNullException.ThrowIfNull(worker);
        return BatchProcessAsync(items, (item, _) => worker(item), numWorkers, errorHandler, CancellationToken.None);
    }

    /// <summary>Processes a batch as the other overload, with a worker that takes a token and a token for the whole batch.</summary>
    /// <param name="items">The items, enumerated once, lazily as space frees up.</param>
    /// <param name="worker">Processes one item; its token is cancelled when <paramref name="cancellationToken"/> is (and by a stop's timeout).</param>
    /// <param name="numWorkers">How many workers; default the concurrency limit, else 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item; without one, the failures are thrown at the end.</param>
    /// <param name="cancellationToken">Cancels the batch: no further item is read, the queue stops at once (work in flight
    /// is cancelled and goes back to the head), and the call throws <see cref="OperationCanceledException"/>. The items not
    /// processed stay queued (<see cref="DrainAsync()"/> hands them back), except a chunk that was waiting for space when
    /// the stop came: the stop refuses it, each of its items goes to <paramref name="errorHandler"/> as failed (an
    /// <see cref="OperationCanceledException"/>), and the exception's message says how many items that was (without a
    /// handler, they are the items the sequence gave after the ones handed back).</param>
    /// <returns>A task that completes when every item is finished and the queue has stopped.</returns>
    /// <exception cref="AggregateException">Without <paramref name="errorHandler"/>: items failed (thrown after the batch, as in the other overload).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task BatchProcessAsync(IEnumerable<T> items, Func<T, CancellationToken, Task> worker, int? numWorkers = null,
                                        Func<Exception, T, Task>? errorHandler = null, CancellationToken cancellationToken = default)
#pragma warning restore RS0026, RS0027
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(worker);
        cancellationToken.ThrowIfCancellationRequested();

        // Failures are never silent: without a handler they are collected and thrown once the batch is done; a failure
        // after that (an item a cancelled batch left queued, discarded when the queue is disposed) is logged as an error.
        var failures = errorHandler is null ? new BatchFailures(Queue.Telemetry) : null;
        var handler = errorHandler ?? failures!.Collect;
        try
        {
            await RunBatchAsync(items, worker, numWorkers, errorHandler, handler, failures, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            failures?.End();
        }
    }

    private async Task RunBatchAsync(IEnumerable<T> items, Func<T, CancellationToken, Task> worker, int? numWorkers, Func<Exception, T, Task>? errorHandler,
                                     Func<Exception, T, Task> handler, BatchFailures? failures, CancellationToken cancellationToken)
    {
        await ProcessAsync(worker, numWorkers, handler).ConfigureAwait(false);
        await StartAsync().ConfigureAwait(false);
        var notQueued = new List<T>();
        try
        {
            // The cancellation stops the queue at once: a worker that only the token would end could otherwise keep a
            // put waiting for space for ever.
            await using (cancellationToken.UnsafeRegister(static queue => ((WorkQueue<T>)queue!).StopNow(), this).ConfigureAwait(false))
            {
                await PutAllAsync(items, notQueued, cancellationToken).ConfigureAwait(false);
                await JoinAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception exception) when (cancellationToken.IsCancellationRequested && exception is OperationCanceledException or QueueStateException)
        {
            await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
            var message = $"The batch on queue {Queue.Name} was cancelled: the items not processed stay queued (DrainAsync hands them back)"
                          + (notQueued.Count > 0 ? $"; the last {notQueued.Count} items read from the sequence were refused by the stop and are not queued" : "");
            if (errorHandler is not null)
            {
                // Read from the caller's sequence and in no queue: the handler is the only place they can be given back.
                var reason = new OperationCanceledException($"The batch on queue {Queue.Name} was cancelled before this item was queued", cancellationToken);
                await Queue.Telemetry.ReportEachAsync(errorHandler, reason, notQueued).ConfigureAwait(false);
            }

            throw new OperationCanceledException(message, exception, cancellationToken);
        }
        catch (Exception exception) when (notQueued.Count > 0 && errorHandler is not null)
        {
            // The queue was stopped or disposed under the batch: the refusal is the reason each of them was not queued.
            await Queue.Telemetry.ReportEachAsync(errorHandler, exception, notQueued).ConfigureAwait(false);
            throw;
        }

        await StopAsync().ConfigureAwait(false);
        if (failures?.Collected is { IsEmpty: false } collected)
        {
            throw new AggregateException($"{collected.Count} items of the batch failed in queue {Queue.Name}", collected);
        }
    }

    /// <summary>Takes back the items left in an idle or stopped queue.</summary>
    /// <param name="cancellationToken">Checked before the drain; see <see cref="BoundedQueue{T}.DrainAsync(CancellationToken)"/>.</param>
    /// <returns>The items, oldest first.</returns>
    public Task<IReadOnlyList<T>> DrainAsync(CancellationToken cancellationToken) => Queue.DrainAsync(cancellationToken);

    /// <summary>
    /// Puts the batch in chunks of at most the queue's capacity: one message per chunk, and never more than one chunk
    /// read ahead of the queue, so a lazy sequence is consumed only as space frees up.
    /// </summary>
    /// <param name="items">The batch.</param>
    /// <param name="notQueued">Filled, when a stop or a disposal refuses a chunk, with its items not admitted before the refusal (which is rethrown).</param>
    /// <param name="cancellationToken">Checked after each chunk.</param>
    private async Task PutAllAsync(IEnumerable<T> items, List<T> notQueued, CancellationToken cancellationToken)
    {
        var chunkSize = Math.Min(Queue.Capacity, MaxBatchChunk);
        var chunk = new List<T>(chunkSize);
        foreach (var item in items)
        {
            chunk.Add(item);
            if (chunk.Count == chunkSize)
            {
                await PutChunkAsync(chunk, notQueued).ConfigureAwait(false);
                chunk = new List<T>(chunkSize);
                cancellationToken.ThrowIfCancellationRequested();
            }
        }

        if (chunk.Count > 0)
        {
            await PutChunkAsync(chunk, notQueued).ConfigureAwait(false);
        }
    }

    /// <summary>Puts one chunk; on a refusal, the items the router had not admitted (its count, written before the refusal completed the put) go to <paramref name="notQueued"/>.</summary>
    private async Task PutChunkAsync(List<T> chunk, List<T> notQueued)
    {
        var batch = new BatchPut<T>(chunk) { Trace = ItemTraces.Capture() };
        try
        {
            await Queue.PutBatchAsync(batch).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is QueueStateException or ObjectDisposedException)
        {
            notQueued.AddRange(chunk.Skip(batch.Admitted));
            throw;
        }
    }

    /// <summary>Stops the queue with no grace period, from a cancellation callback (which must not throw).</summary>
    private void StopNow()
    {
        try
        {
            _ = StopAsync(TimeSpan.Zero);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: disposal stopped it.
        }
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

    /// <summary>
    /// The workers' error handler of a batch run without one: collects the failures the batch throws at its end; once
    /// the batch has returned, a failure (an item it left queued, discarded at disposal) is logged as an error instead.
    /// </summary>
    private sealed class BatchFailures(QueueTelemetry telemetry)
    {
        private volatile bool _ended;

        public ConcurrentQueue<Exception> Collected { get; } = new();

        public void End() => _ended = true;

        public Task Collect(Exception exception, T item)
        {
            if (_ended)
            {
                telemetry.FailedAfterBatch(exception, item);
            }
            else
            {
                Collected.Enqueue(exception);
            }

            return Task.CompletedTask;
        }
    }
}
