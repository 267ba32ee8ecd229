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
public sealed partial class WorkQueue<T> : IDisposable, IAsyncDisposable
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
            // Named as the queue is on metrics: an unnamed queue's own limiter is an unnamed limiter (one tag for all).
            _ownLimiter = new ConcurrencyLimiter(limit, name: name, system: system);
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
            // Named as the queue is on metrics: an unnamed queue's own limiter is an unnamed limiter (one tag for all).
            _ownLimiter = new ConcurrencyLimiter(limit, name: name, system: system);
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
    /// <exception cref="InvalidOperationException">A <c>BatchProcessAsync</c> runs on this queue: its workers are not replaced (nothing was sent).</exception>
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
    /// <exception cref="InvalidOperationException">A <c>BatchProcessAsync</c> runs on this queue (see the first overload).</exception>
    public Task ProcessAsync(Func<T, CancellationToken, Task> worker, int? numWorkers, Func<Exception, T, Task>? errorHandler) =>
        StartWorkersAsync(worker, numWorkers, errorHandler, forBatch: false);

    /// <summary>
    /// Starts the workers, <paramref name="numWorkers"/> or by default the concurrency limit, else 1: for <c>ProcessAsync</c>,
    /// or for the batch that owns the workers (<paramref name="lastTryOnly"/>: its collector, which hears only an item's last try).
    /// </summary>
    private Task StartWorkersAsync(Func<T, CancellationToken, Task> worker, int? numWorkers, Func<Exception, T, Task>? errorHandler, bool forBatch,
                                   bool lastTryOnly = false) =>
        Queue.StartWorkersAsync(worker, numWorkers ?? ConcurrencyLimit ?? 1, errorHandler, Limiter, _ownSlots, forBatch, lastTryOnly);

    /// <summary>Starts workers as the other overloads; <paramref name="cancellationToken"/> stops waiting for them to exist (they still start).</summary>
    /// <param name="worker">Processes one item; its token is cancelled by a stop's timeout.</param>
    /// <param name="numWorkers">How many workers; <c>null</c> for the concurrency limit, else 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes once the workers exist.</returns>
    /// <exception cref="InvalidOperationException">A <c>BatchProcessAsync</c> runs on this queue (see the first overload).</exception>
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

    /// <summary>Takes back the items left in an idle or stopped queue.</summary>
    /// <param name="cancellationToken">Checked before the drain; see <see cref="BoundedQueue{T}.DrainAsync(CancellationToken)"/>.</param>
    /// <returns>The items, oldest first.</returns>
    public Task<IReadOnlyList<T>> DrainAsync(CancellationToken cancellationToken) => Queue.DrainAsync(cancellationToken);

    /// <summary>Takes back the items left in an idle or stopped queue.</summary>
    /// <returns>The items, oldest first.</returns>
    public Task<IReadOnlyList<T>> DrainAsync() => Queue.DrainAsync();

    /// <summary>Disposes the queue (stopping it) and, once it has stopped, the limiter it created, without waiting.</summary>
    public void Dispose()
    {
        var disposed = Queue.DisposeAsync();
        if (_ownLimiter is { } limiter)
        {
            // After the queue, as DisposeAsync does: until it has stopped, its workers may still wait for a permit, and
            // a limiter disposed under them would fail their items with its own disposal instead of the queue's.
            _ = disposed.AsTask().ContinueWith(static (_, limiter) => ((ConcurrencyLimiter)limiter!).Dispose(), limiter, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
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
