using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Diagnostics.CodeAnalysis;
using ActorQueue.Runtime;
using Akka.Actor;
using MelLogger = Microsoft.Extensions.Logging.ILogger;
using SerilogLogger = Serilog.ILogger;

namespace ActorQueue.Actors;

/// <summary>
/// A bounded async queue with backpressure, workers and a lifecycle (lionfuncs' <c>BoundedQueue</c>), whose
/// state lives in a router actor that owns the buffer and a pool of pulling worker actors.
/// </summary>
/// <remarks>
/// <para>Lifecycle: <c>Idle → Processing → Stopping → Stopped</c>; <see cref="StartAsync"/> restarts a stopped queue and
/// its workers resume the items left in it. Nothing is dropped: every accepted item is processed, reported to the
/// error handler, put back at the head of the queue (work cancelled by a stop timeout), handed back by
/// <see cref="DrainAsync()"/>, or — still queued when the queue is disposed — reported to the error handler as failed
/// and counted in <see cref="QueueMetrics.Discarded"/>.</para>
/// <para>Actors put items with <see cref="QueueProtocol"/> messages sent to <see cref="Router"/>.</para>
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("{Name}: {Status}, {Size}/{Capacity} queued, {WorkerCount} workers")]
public sealed partial class BoundedQueue<T> : IDisposable, IAsyncDisposable
{
    private static readonly Task<bool> s_accepted = Task.FromResult(true);

    /// <summary>How often the router logs its state at debug level (and takes in credited puts, if nothing else made it).</summary>
    internal static readonly TimeSpan DefaultHeartbeatPeriod = TimeSpan.FromSeconds(1);

    private readonly QueueCounters _counters = new();
    private readonly PutInbox<T> _inbox;
    private readonly ActorQueueExtension _runtime;

    /// <summary>How many items taken with <see cref="GetAsync"/> still await <see cref="TaskDone"/>; guards against extra calls.</summary>
    private int _outstandingGets;

    /// <summary>The router, stopped by Dispose or, for a queue dropped undisposed, by a finaliser.</summary>
    private readonly OwnedActor<StopQueue> _router;

    /// <summary>A durable router's recovery: a start waits for it (and fails with its error); <c>null</c> for an in-memory queue.</summary>
    private readonly Task? _recovered;

    /// <summary>Creates a queue and its router actor, in <see cref="QueueStatus.Idle"/>.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space by default; <c>null</c> for the configured default (100 ms),
    /// <see cref="TimeSpan.Zero"/> for no wait, <see cref="Timeout.InfiniteTimeSpan"/> (or anything over 49.7 days, such as
    /// <see cref="TimeSpan.MaxValue"/>) to wait until space or stop.</param>
    /// <param name="logger">Where start, stop, backpressure and worker errors are logged; when <c>null</c>, the logger
    /// factory attached to the system (<see cref="ActorQueueRuntime.UseLoggerFactory"/>, done by ActorQueue.Hosting), else
    /// Serilog's <c>Log.Logger</c>.</param>
    /// <param name="system">The actor system; <see cref="ActorQueueRuntime.Default"/> when <c>null</c>.</param>
    /// <param name="name">A name for logs, metrics and the router's actor name; generated when <c>null</c>.</param>
    /// <param name="workerBatch">The most queued items one worker takes at once (at least 1); <c>null</c> for
    /// <c>actorqueue.queue.worker-batch</c> (32). 1 hands items out one by one, so no item waits in a busy worker's run
    /// while another worker is free: for long items.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> or <paramref name="workerBatch"/> is below 1, or <paramref name="timeout"/> is negative and not infinite.</exception>
    // A bare `logger: null` keeps meaning this constructor, as before the Microsoft.Extensions.Logging one existed; that
    // priority is what makes the second overload with optional parameters safe (RS0026).
    [OverloadResolutionPriority(1)]
#pragma warning disable RS0026
    public BoundedQueue(int maxSize = 100, TimeSpan? timeout = null, SerilogLogger? logger = null, ActorSystem? system = null, string? name = null,
                        int? workerBatch = null)
        : this(maxSize, timeout, DefaultHeartbeatPeriod, QueueLogs.Serilog(logger), system, name, workerBatch)
    {
    }

    /// <summary>Creates a queue that logs to a Microsoft.Extensions.Logging logger; otherwise as the Serilog constructor.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space by default; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="logger">Where start, stop, backpressure and worker errors are logged.</param>
    /// <param name="system">The actor system; <see cref="ActorQueueRuntime.Default"/> when <c>null</c>.</param>
    /// <param name="name">A name for logs, metrics and the router's actor name; generated when <c>null</c>.</param>
    /// <param name="workerBatch">The most queued items one worker takes at once (at least 1); <c>null</c> for <c>actorqueue.queue.worker-batch</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> or <paramref name="workerBatch"/> is below 1, or <paramref name="timeout"/> is negative and not infinite.</exception>
    public BoundedQueue(int maxSize, TimeSpan? timeout, MelLogger logger, ActorSystem? system = null, string? name = null, int? workerBatch = null)
        : this(maxSize, timeout, DefaultHeartbeatPeriod, QueueLogs.Microsoft(logger), system, name, workerBatch)
    {
    }
#pragma warning restore RS0026

    /// <summary>Creates a durable queue: its items are journaled, and a queue created again under the same <paramref name="name"/> after a crash runs every item that had not finished.</summary>
    /// <param name="maxSize">How many items may wait in the queue; at least 1.</param>
    /// <param name="durability">Where the journal is and how failing items are retried.</param>
    /// <param name="name">The queue's name, which is also its identity in the journal: the same name finds the same items.</param>
    /// <param name="timeout">How long a put waits for space by default; <c>null</c> for the configured default (100 ms).</param>
    /// <param name="logger">Where the queue logs; Serilog's <c>Log.Logger</c> when <c>null</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <exception cref="QueueStorageException">The database cannot be opened, read or written.</exception>
    /// <exception cref="InvalidOperationException">A durable queue of that name is already open on the same storage: in any actor system, and on a SQLite file or a PostgreSQL journal in any process.</exception>
    [SuppressMessage("ApiDesign", "RS0026", Justification = "The required durability parameter tells the overloads apart; no call is ambiguous.")]
    public BoundedQueue(int maxSize, QueueDurability durability, string name, TimeSpan? timeout = null, SerilogLogger? logger = null, ActorSystem? system = null)
        : this(maxSize, timeout, DefaultHeartbeatPeriod, QueueLogs.Serilog(logger), system, name, workerBatch: null, durability ?? throw new ArgumentNullException(nameof(durability)))
    {
    }

    /// <summary>Creates a queue with a heartbeat period of its own.</summary>
    /// <param name="maxSize">How many items the queue holds; at least 1.</param>
    /// <param name="timeout">How long a put waits for space by default.</param>
    /// <param name="heartbeatPeriod">How often the router logs its state at debug level.</param>
    /// <param name="log">Makes the queue's log sink from its name; <c>null</c> for the system's default.</param>
    /// <param name="system">The actor system; <see cref="ActorQueueRuntime.Default"/> when <c>null</c>.</param>
    /// <param name="name">A name for logs, metrics and the router's actor name.</param>
    /// <param name="workerBatch">The most queued items one worker takes at once; <c>null</c> for <c>actorqueue.queue.worker-batch</c>.</param>
    /// <param name="durability">Makes the queue durable; <c>null</c> for in memory.</param>
    internal BoundedQueue(int maxSize, TimeSpan? timeout, TimeSpan heartbeatPeriod, Func<string, LogSink>? log, ActorSystem? system, string? name,
                          int? workerBatch = null, QueueDurability? durability = null)
    {
        if (maxSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, $"maxSize must be >= 1, got {maxSize}");
        }

        if (workerBatch < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(workerBatch), workerBatch, $"workerBatch must be >= 1 when set, got {workerBatch}");
        }

        _runtime = ActorQueueRuntime.Resolve(system);
        DefaultPutTimeout = QueueArguments.PutTimeout(timeout ?? _runtime.Settings.QueuePutTimeout, nameof(timeout));
        Capacity = maxSize;
        var actorName = _runtime.UniqueActorName("queue", name);
        Name = name ?? actorName;
        var telemetry = Telemetry = new QueueTelemetry(Name, log?.Invoke(Name) ?? LogSink.SystemDefault(_runtime, QueueLogs.Category, "Queue", Name),
            name ?? QueueTelemetry.Unnamed);
        _inbox = new PutInbox<T>(telemetry, _counters);
        Props props;
        Action? releaseName = null;
        if (durability is null)
        {
            props = QueueRouterActor<T>.Props(maxSize, workerBatch ?? _runtime.Settings.QueueWorkerBatch, heartbeatPeriod, _runtime.Settings.WorkerDispatcher, telemetry, _counters, _inbox);
        }
        else
        {
            Durability = durability;
            var recovered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _recovered = recovered.Task;
            props = DurableStorage.RouterProps<T>(_runtime.System, durability, DurableStorage.RequireName(name), maxSize, telemetry, _counters, recovered,
                out releaseName);
        }

        props = props.WithDispatcher(_runtime.Settings.CoordinatorDispatcher);
        var stopTimeout = _runtime.Settings.QueueStopTimeout;
        IActorRef router;
        try
        {
            router = _runtime.System.ActorOf(props, actorName);
        }
        catch
        {
            releaseName?.Invoke(); // no router will: a terminated actor system makes none, and the name stayed taken for good
            throw;
        }

        _router = new OwnedActor<StopQueue>(router, () => new StopQueue(stopTimeout, terminate: true));
    }

    /// <summary>The queue's name in logs and metrics.</summary>
    public string Name { get; }

    /// <summary>The queue's logs and meter (a batch reports the items its cancellation refused through it).</summary>
    internal QueueTelemetry Telemetry { get; }

    /// <summary>How many items the queue holds (<c>maxSize</c>).</summary>
    public int Capacity { get; }

    /// <summary>How long a put waits for space when it is given no timeout; <see cref="Timeout.InfiniteTimeSpan"/> for no timeout.</summary>
    public TimeSpan DefaultPutTimeout { get; }

    /// <summary>The lifecycle status; <see cref="QueueStatus.Stopped"/> once the queue is disposed, or once its actor system has stopped its router (terminating).</summary>
    public QueueStatus Status => _router.IsDisposed ? QueueStatus.Stopped : _counters.Status;

    /// <summary>The counters, as of the last message the router handled, with the puts that completed since.</summary>
    public QueueMetrics Metrics => _counters.MetricsWith(_inbox);

    /// <summary>Items waiting in the queue (a completed put's item is counted from the moment the put returns).</summary>
    public int Size => _counters.SizeWith(_inbox);

    /// <summary>Whether the queue holds <see cref="Capacity"/> items.</summary>
    public bool IsFull => Size >= Capacity;

    /// <summary>Whether no item waits in the queue.</summary>
    public bool IsEmpty => Size == 0;

    /// <summary>Workers that take new items (retiring workers finishing their last item are not counted).</summary>
    public int WorkerCount => _counters.WorkerCount;

    /// <summary>How the queue is durable; <c>null</c> for a queue in memory.</summary>
    public QueueDurability? Durability { get; }

    /// <summary>The queue's router actor, for actor callers (<see cref="QueueProtocol"/>).</summary>
    /// <remarks>Keep the queue referenced while actors use its router: a queue dropped without Dispose is disposed by its finaliser.</remarks>
    public IActorRef Router => _router.Actor;

    /// <summary>For tests: the router's owner, whose claim a disposal takes before it sends its stop.</summary>
    internal OwnedActor<StopQueue> RouterOwner => _router;

    /// <summary>Starts processing: from <see cref="QueueStatus.Idle"/> or <see cref="QueueStatus.Stopped"/> (a restart resumes leftover items and respawns the last workers).</summary>
    /// <param name="cancellationToken">Stops waiting for the router's answer; the start itself still happens.</param>
    /// <returns>A task that completes once the queue is processing.</returns>
    /// <exception cref="QueueStateException">The queue is stopping.</exception>
    /// <exception cref="QueueStorageException">A durable queue could not recover from its journal.</exception>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_recovered is { } recovered)
        {
            return StartDurableAsync(recovered, cancellationToken);
        }

        _inbox.Open();
        return SendAsync(new StartQueue(), cancellationToken);
    }

    /// <summary>
    /// Stops the queue: puts and gets are refused, workers finish their current item, and after
    /// <paramref name="timeout"/> in-flight work is cancelled through its token and goes back to the head of the queue.
    /// Items still queued stay queued.
    /// </summary>
    /// <param name="timeout">How long in-flight work may run on; <c>null</c> for the configured default (5 s), <see cref="Timeout.InfiniteTimeSpan"/> (or anything over 49.7 days) to never cancel.
    /// While a stop is under way, the earliest deadline of the stops (the disposal's included) ends the grace period.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not infinite.</exception>
    /// <returns>A task that completes once every worker has stopped.</returns>
    public Task StopAsync(TimeSpan? timeout) => StopAsync(timeout, CancellationToken.None);

    /// <summary>Stops the queue as <see cref="StopAsync(TimeSpan?)"/>; <paramref name="cancellationToken"/> ends the grace period early.</summary>
    /// <param name="timeout">How long in-flight work may run on; <c>null</c> for the configured default (5 s).</param>
    /// <param name="cancellationToken">Cancelled, it cancels the work still in flight at once, as the timeout would (the
    /// items go back to the head of the queue); the task still completes only once every worker has returned, so a
    /// host's shutdown token makes the stop prompt without losing an item.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not infinite.</exception>
    /// <returns>A task that completes once every worker has stopped.</returns>
    public Task StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var stopTimeout = QueueArguments.PutTimeout(timeout ?? _runtime.Settings.QueueStopTimeout, nameof(timeout));
        _inbox.Close();
        var stopped = SendAsync(new StopQueue(stopTimeout, terminate: false), CancellationToken.None);
        return cancellationToken.CanBeCanceled && !stopped.IsCompleted ? EndGraceOnCancel(stopped, cancellationToken) : stopped;
    }

    /// <summary>Adds an item, waiting for space up to <paramref name="timeout"/>.</summary>
    /// <param name="item">The item.</param>
    /// <param name="timeout">How long to wait for space; <c>null</c> for <see cref="DefaultPutTimeout"/>, <see cref="TimeSpan.Zero"/> for no wait, <see cref="Timeout.InfiniteTimeSpan"/> (or anything over 49.7 days) to wait until space or stop.</param>
    /// <param name="cancellationToken">Withdraws the put while it waits; a cancelled put adds nothing.</param>
    /// <returns><c>true</c> when the item was added; <c>false</c> when the queue stayed full (a backpressure event, logged as a warning).</returns>
    /// <exception cref="QueueStateException">The queue is not processing (or stops while the put waits).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not infinite.</exception>
    public Task<bool> PutAsync(T item, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var putTimeout = timeout is null ? DefaultPutTimeout : QueueArguments.PutTimeout(timeout.Value, nameof(timeout));
        ThrowIfDisposed();
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<bool>(cancellationToken);
        }

        // With a credit (space the router reserved for this facade) the put completes at once and the router takes the
        // item in before its next message; otherwise the router answers it. A traced put goes to the router with its
        // context, so the credited path stays as small as it is for everyone else.
        var trace = ItemTraces.Capture();
        if (trace == default && _inbox.TryPut(item, Router))
        {
            return s_accepted;
        }

        return Route(new FacadePut<T>(item, putTimeout, Router, _inbox) { Trace = trace }, cancellationToken);
    }

    /// <summary>Adds an item with a priority and, optionally, a time before which it must not run.</summary>
    /// <param name="item">The item.</param>
    /// <param name="priority">Higher runs first; items of one priority run in the order they were accepted.</param>
    /// <param name="notBefore">The item is not handed out before this time; <c>null</c> for at once. In a durable queue the time survives a restart.</param>
    /// <param name="timeout">How long to wait for space; <c>null</c> for <see cref="DefaultPutTimeout"/>.</param>
    /// <param name="cancellationToken">Withdraws the put while it waits; a cancelled put adds nothing.</param>
    /// <returns><c>true</c> when the item was added; <c>false</c> when the queue stayed full.</returns>
    /// <exception cref="QueueStateException">The queue is not processing.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not infinite.</exception>
    /// <exception cref="NotSupportedException">A priority or a time is given to a queue without <see cref="Durability"/> (use <see cref="QueueDurability.InMemory"/>).</exception>
    [SuppressMessage("ApiDesign", "RS0026", Justification = "The required priority parameter tells the overloads apart; no call is ambiguous.")]
    public Task<bool> PutAsync(T item, int priority, DateTimeOffset? notBefore = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var putTimeout = timeout is null ? DefaultPutTimeout : QueueArguments.PutTimeout(timeout.Value, nameof(timeout));
        ThrowIfDisposed();
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<bool>(cancellationToken);
        }

        if (Durability is null && (priority != 0 || notBefore is not null))
        {
            throw new NotSupportedException(
                $"priority ({priority}) and notBefore ({notBefore}) need a queue with a QueueDurability; QueueDurability.InMemory keeps the items in memory only");
        }

        return Route(new FacadePut<T>(item, putTimeout, Router, _inbox) { Priority = priority, NotBefore = notBefore, Trace = ItemTraces.Capture() }, cancellationToken);
    }

    /// <summary>Takes the next item for manual processing; call <see cref="TaskDone"/> when it is finished.</summary>
    /// <param name="cancellationToken">Withdraws the get while it waits.</param>
    /// <returns>The oldest item, once one is available.</returns>
    /// <exception cref="QueueStateException">The queue is not processing (or stops while the get waits).</exception>
    public async Task<T> GetAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        var get = new GetRequest<T>(Router);
        Router.Tell(get, ActorRefs.NoSender);
        var item = await Explained(AwaitCancellable(get.Completion, get.Cancel, cancellationToken)).ConfigureAwait(false);
        Interlocked.Increment(ref _outstandingGets);
        if (get.ItemTrace != default)
        {
            ItemTraces.Received(Telemetry.MetricName, get.ItemTrace);
        }

        return item;
    }

    /// <summary>Marks an item taken with <see cref="GetAsync"/> as finished (counted as processed; <see cref="JoinAsync"/> waits for it).</summary>
    /// <exception cref="InvalidOperationException">Called more times than items were taken with <see cref="GetAsync"/>.</exception>
    public void TaskDone()
    {
        ThrowIfDisposed();
        if (Interlocked.Decrement(ref _outstandingGets) < 0)
        {
            Interlocked.Increment(ref _outstandingGets);
            throw new InvalidOperationException("TaskDone() was called more times than items were taken with GetAsync().");
        }

        Router.Tell(TaskDoneSignal.Instance, ActorRefs.NoSender);
    }

    /// <summary>Waits until every accepted item is finished.</summary>
    /// <param name="cancellationToken">Stops waiting, and withdraws the join (the router keeps no join its caller gave up).</param>
    /// <returns>A task that completes when nothing is queued or in flight.</returns>
    /// <exception cref="QueueStateException">The queue is (or becomes) stopped with items pending; the message names the count.</exception>
    public Task JoinAsync(CancellationToken cancellationToken = default)
    {
        var join = new JoinQueue();
        var joined = SendAsync(join, CancellationToken.None);

        // Cancelled, the join itself is (the router drops an answered join at the next one), not only the wait for it.
        return cancellationToken.CanBeCanceled
            ? Explained(AwaitCancellable(join.Completion, token => join.Completion.TrySetCanceled(token), cancellationToken))
            : joined;
    }

    /// <summary>Stops nothing; takes back every item still queued in an idle or stopped queue, oldest first.</summary>
    /// <returns>The items; they no longer count as queued (<see cref="QueueMetrics.Drained"/>).</returns>
    /// <exception cref="QueueStateException">The queue is processing or stopping.</exception>
    public Task<IReadOnlyList<T>> DrainAsync() => DrainAsync(CancellationToken.None);

    /// <summary>As <see cref="DrainAsync()"/>, unless <paramref name="cancellationToken"/> is already cancelled.</summary>
    /// <param name="cancellationToken">Checked before the drain is sent. Once sent, the router answers it at once (a drain
    /// never waits), and the call returns the items: giving up then would lose items already taken out of the queue.</param>
    /// <returns>The items, oldest first.</returns>
    /// <exception cref="QueueStateException">The queue is processing or stopping.</exception>
    public Task<IReadOnlyList<T>> DrainAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        var drain = new DrainQueue<T>();
        Router.Tell(drain, ActorRefs.NoSender);
        return drain.Completion.Task;
    }

    /// <summary>
    /// Starts stopping the queue (as <see cref="StopAsync(TimeSpan?, CancellationToken)"/>) and then its router actor,
    /// without waiting; <see cref="Status"/> reads <see cref="QueueStatus.Stopped"/> from now on. Items still queued
    /// once it has stopped go to the error handler of the last <c>ProcessAsync</c> as failed
    /// (<see cref="ObjectDisposedException"/>), are counted in <see cref="QueueMetrics.Discarded"/>, and without a handler
    /// an error log names their count; <see cref="DrainAsync()"/> first to keep them.
    /// </summary>
    public void Dispose() => _router.Stop();

    /// <summary>
    /// Stops the queue (as <see cref="StopAsync(TimeSpan?, CancellationToken)"/>) and its router actor, and waits for
    /// both; items still queued, and those <see cref="GetAsync"/> callers hold (their <see cref="TaskDone"/> is refused as
    /// disposed; counted in <see cref="QueueMetrics.Discarded"/> by the time it completes), are reported as by
    /// <see cref="Dispose"/>, and the task waits for their reports too, for
    /// at most the queue's stop timeout (<c>actorqueue.queue.stop-timeout</c>), after which the reports go on without it.
    /// Once the grace period is over (the work in flight cancelled), it waits for the workers at most that timeout more:
    /// a worker that ignores its token is then left behind, and the items of its run not finished are reported as
    /// discarded, as when the actor system terminates. So it completes at most twice the stop timeout after it is called,
    /// whatever the workers, the error handler or a durable queue's journal do (a journal that has not answered a write by
    /// then: the put whose write was under way fails saying its item may have been stored, and the queue's name stays
    /// taken until the journal answers). A later call (after <see cref="Dispose"/>, say) completes with the first.
    /// </summary>
    /// <returns>A task that completes when the router has stopped and every item still queued has been reported (or the stop timeout passed), within twice the stop timeout.</returns>
    public ValueTask DisposeAsync() => _router.Stop() is { } stop ? new ValueTask(stop.Completion.Task) : default;
    /// <summary>Puts <paramref name="items"/> as one message, waiting for space as long as it takes (no backpressure result).</summary>
    internal Task PutBatchAsync(IReadOnlyList<T> items) =>
        PutBatchAsync(new BatchPut<T>(items) { Trace = ItemTraces.Capture() });

    /// <summary>Puts <paramref name="batch"/> as one message; after a refusal its <see cref="BatchPut{T}.Admitted"/> says how many of its items are in the queue.</summary>
    internal Task PutBatchAsync(BatchPut<T> batch) => SendAsync(batch, CancellationToken.None);
}
