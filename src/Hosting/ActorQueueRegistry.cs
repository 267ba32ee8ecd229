using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Hosting;

/// <summary>
/// The named limiters and work queues of <see cref="ActorQueueOptions"/>, on the host's actor system. Resolve it from
/// the container once the host has started; the host stops its queues and then disposes them and its limiters, before
/// the actor system terminates.
/// </summary>
/// <remarks>
/// Names compare as configuration keys do, whatever their case (ordinal, ignoring case): <c>GetLimiter("LLM")</c> is
/// the limiter configured as <c>llm</c>, and <c>GetQueue&lt;T&gt;("Fetch")</c> the queue configured as <c>fetch</c>, which
/// logs, counts and reports its health as <c>fetch</c>.
/// </remarks>
public sealed class ActorQueueRegistry : IAsyncDisposable, IDisposable
{
    /// <summary>The settings the limiters and queues are made from: a copy of those the registry was given, checked when it was made.</summary>
    private readonly ActorQueueOptions _options;

    /// <summary>Gives each queue its own logger category, <c>ActorQueue.Queues.{name}</c>.</summary>
    private readonly ILoggerFactory _loggerFactory;

    /// <summary>Every named limiter, made when the registry is.</summary>
    private readonly Dictionary<string, ConcurrencyLimiter> _limiters = new(ActorQueueOptions.Names);

    /// <summary>The named queues asked for so far, each a <c>WorkQueue&lt;T&gt;</c> of the type it was first asked with.</summary>
    private readonly ConcurrentDictionary<string, INamedQueue> _queues = new(ActorQueueOptions.Names);

    /// <summary>The first stop, shared by every later <see cref="StopAsync"/> and disposal; set once stopping has begun: no new queue is handed out after it.</summary>
    private Task? _stopping;

    /// <summary>Each queue's stop, by name, once the first stop has begun (what <see cref="QueuesStillStopping"/> reads).</summary>
    private (string Name, Task Stop)[] _stops = [];

    /// <summary>The queues still running when the stop's deadline passed; <c>null</c> before (or without) that.</summary>
    private List<string>? _runningAtDeadline;

    /// <summary>
    /// How the stop waits for its queues' stops until the deadline (<see cref="Task.WaitAsync(CancellationToken)"/>). For
    /// tests: a wait that gives up at the deadline and throws only once the stops have completed forces the order in which
    /// the stops complete after the wait gave up but before the stop looks at them.
    /// </summary>
    internal Func<Task, CancellationToken, Task> WaitForStops { get; set; } = static (stopped, deadline) => stopped.WaitAsync(deadline);

    /// <summary>Creates the named limiters on <paramref name="system"/>.</summary>
    /// <param name="system">The host's actor system.</param>
    /// <param name="options">The limiters and queues.</param>
    /// <param name="loggerFactory">Where the queues log.</param>
    /// <exception cref="ArgumentOutOfRangeException">A limiter's or queue's setting is out of range (a negative <see cref="QueueOptions.PutTimeout"/> too); the message names its configuration key and value.</exception>
    /// <exception cref="ArgumentException">A limiter's or queue's name is blank, begins or ends with white space or is digits only (what a JSON array under <c>Limiters</c> becomes; <c>ParamName</c> is its key); or a queue names a limiter that is not configured, or sets both a limiter and a concurrency limit (<c>ParamName</c> is the queue's <c>Limiter</c> key, and the message names the keys).</exception>
    /// <remarks>The registry keeps a copy of <paramref name="options"/>: changes made to them afterwards do not reach it.</remarks>
    public ActorQueueRegistry(ActorSystem system, ActorQueueOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        System = system;
        _loggerFactory = loggerFactory;

        // A copy, checked: what the queues are made from later is what was checked now, whatever the caller changes on
        // its options afterwards (and nothing reads a dictionary another thread writes).
        _options = options.Snapshot();
        ActorQueueOptionsValidation.Check(_options); // as at the host's start (ValidateOnStart), for a registry made without one

        // Every setting is checked before the first limiter exists, so a bad one leaves no actor behind.
        foreach (var (name, limiter) in _options.Limiters)
        {
            _limiters.Add(name, new ConcurrencyLimiter(limiter.MaxRunning, limiter.MaxQueued, name: name, system: system));
        }
    }

    /// <summary>The actor system the limiters and queues run on.</summary>
    public ActorSystem System { get; }

    /// <summary>The names of the configured limiters.</summary>
    public IReadOnlyCollection<string> LimiterNames => _limiters.Keys;

    /// <summary>Whether the registry's stop has begun (the host is stopping): its queues stop and are disposed, then its limiters.</summary>
    internal bool IsStopping => Volatile.Read(ref _stopping) is not null;

    /// <summary>Every named limiter by name, whatever the registry's state (what <see cref="ActorQueueHealthCheck"/> reads).</summary>
    internal IReadOnlyDictionary<string, ConcurrencyLimiter> Limiters => _limiters;

    /// <summary>The state of every queue made so far, by name (what <see cref="ActorQueueHealthCheck"/> reads); a queue never asked for is not made.</summary>
    internal IEnumerable<QueueState> QueueStates() => _queues.Select(queue => queue.Value.State(queue.Key));

    /// <summary>The limiter configured under <paramref name="name"/>.</summary>
    /// <param name="name">Its key in <see cref="ActorQueueOptions.Limiters"/>.</param>
    /// <returns>The limiter; the registry disposes it when the host stops.</returns>
    /// <exception cref="KeyNotFoundException">No limiter has that name; the message lists the configured ones.</exception>
    /// <exception cref="ObjectDisposedException">The registry is stopping or has stopped (the host has stopped): its limiters are disposed; the message names the limiter.</exception>
    public IConcurrencyLimiter GetLimiter(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_limiters.TryGetValue(name, out var limiter))
        {
            throw new KeyNotFoundException($"No limiter named '{name}' is configured ({Section("Limiters")} has: {string.Join(", ", _limiters.Keys)})");
        }

        return Volatile.Read(ref _stopping) is null
            ? limiter
            : throw new ObjectDisposedException(GetType().FullName, $"Limiter '{name}' is disposed: ActorQueue's registry disposes its limiters when it stops (the host has stopped)");
    }

    /// <summary>The work queue configured under <paramref name="name"/>, made on the first call (idle: start it and its workers yourself).</summary>
    /// <typeparam name="T">The item type; every call for one name must use the same type.</typeparam>
    /// <param name="name">Its key in <see cref="ActorQueueOptions.Queues"/>.</param>
    /// <returns>The queue; the registry stops and disposes it when the host stops.</returns>
    /// <exception cref="KeyNotFoundException">No queue has that name; the message lists the configured ones.</exception>
    /// <exception cref="InvalidOperationException">The queue was first asked for with another item type.</exception>
    /// <exception cref="ObjectDisposedException">The registry is stopping or has stopped (the host has stopped), even for a queue made before.</exception>
    public WorkQueue<T> GetQueue<T>(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _stopping) is not null, this);
        if (!_queues.TryGetValue(name, out var queue))
        {
            if (!_options.Queues.TryGetValue(name, out var options))
            {
                throw new KeyNotFoundException($"No queue named '{name}' is configured ({Section("Queues")} has: {string.Join(", ", _options.Queues.Keys)})");
            }

            // The queue runs (logs, metrics, health) under its configured name, whatever case the first caller wrote.
            var configured = _options.Queues.Keys.First(key => ActorQueueOptions.Names.Equals(key, name));
            var made = Create<T>(configured, options);
            queue = _queues.GetOrAdd(configured, made);
            if (!ReferenceEquals(queue, made))
            {
                made.Dispose(); // another caller made it first
            }

            // A stop that began while the queue was being made may have listed the queues without it: it is added, then
            // the stop is looked for (a full fence, as StopAsync's exchange is), so either the stop lists it or this sees the stop.
            if (Interlocked.CompareExchange(ref _stopping, null, null) is not null)
            {
                if (ReferenceEquals(queue, made))
                {
                    queue.Dispose(); // without waiting; another caller's queue is its caller's to dispose (or the stop's)
                }

                ObjectDisposedException.ThrowIf(true, this);
            }
        }

        return queue is NamedQueue<T> named
            ? named.Queue
            : throw new InvalidOperationException($"Queue '{name}' was made for {queue.ItemType} items, not {typeof(T)}");
    }

    /// <summary>
    /// Stops every queue made so far (workers finish their item, for as long as <paramref name="cancellationToken"/>
    /// allows), then disposes the queues and the limiters. The queues' own stop timeout
    /// (<c>actorqueue.queue.stop-timeout</c>) does not apply: the token alone ends the grace period, or, when it cannot
    /// be cancelled (<see cref="CancellationToken.None"/>, as disposal passes), that stop timeout does.
    /// </summary>
    /// <param name="cancellationToken">
    /// Ends the queues' grace period (the host passes its shutdown token, cancelled at HostOptions.ShutdownTimeout): the
    /// work still in flight is cancelled through its token and goes back to the head of its queue, and the stop no
    /// longer waits for workers that ignore their token: the queues are disposed, which reports every item still held
    /// or queued to the queue's error handler as failed (<see cref="ObjectDisposedException"/>, counted in
    /// <c>Metrics.Discarded</c>).
    /// </param>
    /// <returns>
    /// A task that completes when everything has stopped. A later call (or disposal) returns the first call's task,
    /// which completes then too; its own token has no effect (bound your wait with <c>WaitAsync</c>).
    /// </returns>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        // Made cold, published, then run: GetQueue sees the stop before it lists the queues.
        var stop = new Task<Task>(() => StopQueuesAsync(cancellationToken));
        var stopping = stop.Unwrap();
        if (Interlocked.CompareExchange(ref _stopping, stopping, null) is { } first)
        {
            return first;
        }

        stop.RunSynchronously(TaskScheduler.Default); // inline on this thread (a custom current scheduler could queue it and wait)
        return stopping;
    }

    /// <summary>
    /// The queues whose stop has begun and not completed (workers still running items); once the stop's deadline has
    /// passed, those it found still running then (their disposal, which follows, completes their stops).
    /// </summary>
    internal IReadOnlyList<string> QueuesStillStopping => Volatile.Read(ref _runningAtDeadline) ?? Running(Volatile.Read(ref _stops));

    /// <summary>The names of the queues among <paramref name="stops"/> whose stop has not completed.</summary>
    private static List<string> Running((string Name, Task Stop)[] stops) => stops.Where(stop => !stop.Stop.IsCompleted).Select(stop => stop.Name).ToList();

    /// <summary>
    /// Stops the queues made so far until they have or <paramref name="cancellationToken"/> is cancelled (for a token
    /// that cannot be, until the queues' stop timeout), then disposes them and the limiters.
    /// </summary>
    private async Task StopQueuesAsync(CancellationToken cancellationToken)
    {
        using var stopTimeout = cancellationToken.CanBeCanceled ? null : StopTimeoutSource();
        var deadline = stopTimeout?.Token ?? cancellationToken;
        var stops = _queues.Select(queue => (queue.Key, queue.Value.StopAsync(deadline))).ToArray();
        Volatile.Write(ref _stops, stops);
        var stopped = Task.WhenAll(stops.Select(stop => stop.Item2));
        try
        {
            await WaitForStops(stopped, deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            Volatile.Write(ref _runningAtDeadline, Running(stops));

            // The grace period is over and some worker has not returned: its token is cancelled; the disposal below stops
            // its queue without waiting for it and reports its item as failed, so nothing waits for it any longer. The stops
            // may have completed since the wait gave up (the actor system terminating completes them): the disposal runs
            // all the same. Before, the exception then escaped, and no queue or limiter was disposed (Review/HostingStopRound42Tests).
        }

        await Task.WhenAll(_queues.Values.Select(queue => queue.DisposeAsync().AsTask())).ConfigureAwait(false);
        await Task.WhenAll(_limiters.Values.Select(limiter => limiter.DisposeAsync().AsTask())).ConfigureAwait(false);
    }

    /// <summary>A source cancelled after the queues' stop timeout (<c>actorqueue.queue.stop-timeout</c>); <c>null</c> when it is infinite.</summary>
    private CancellationTokenSource? StopTimeoutSource()
    {
        var timeout = ActorQueueSettings.From(System.Settings.Config).QueueStopTimeout;
        return timeout == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(timeout);
    }

    /// <summary>
    /// Stops the queues and disposes them and the limiters (as <see cref="StopAsync"/> with
    /// <see cref="CancellationToken.None"/>: the queues' stop timeout ends the grace period), or waits for the stop under
    /// way, which its own token bounds (the host's, for a host that stopped). A stop that failed is logged (category
    /// <c>ActorQueue.Hosting</c>), not thrown: <see cref="StopAsync"/> already threw it to the host, and a container
    /// whose disposal throws leaves the services made before this one undisposed.
    /// </summary>
    /// <returns>A task that completes when everything has stopped (the first stop's, when one is under way).</returns>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception error)
        {
            LogStopFailure(error);
        }
    }

    /// <summary>
    /// Starts stopping the queues and disposing them and the limiters (as <see cref="DisposeAsync"/>) without waiting
    /// for it, as <c>WorkQueue.Dispose</c> does: no thread blocks. For a container disposed synchronously; await
    /// <see cref="StopAsync"/> or <see cref="DisposeAsync"/> to know when everything has stopped. A failure of the stop
    /// is logged (category <c>ActorQueue.Hosting</c>), there being no caller left to see it.
    /// </summary>
    public void Dispose() =>
        StopAsync(CancellationToken.None).ContinueWith(
            static (stop, registry) => ((ActorQueueRegistry)registry!).LogStopFailure(stop.Exception!),
            this, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private void LogStopFailure(Exception error) =>
        _loggerFactory.CreateLogger("ActorQueue.Hosting").LogError(error, "ActorQueue's registry failed to stop its queues and limiters");

    /// <summary>The configuration path of a section of the options (<c>ActorQueue:Limiters</c>, or the path they were read from).</summary>
    private string Section(string section) => ActorQueueOptionsValidation.Section(_options, section);

    private NamedQueue<T> Create<T>(string name, QueueOptions options)
    {
        var logger = _loggerFactory.CreateLogger($"ActorQueue.Queues.{name}");
        var queue = options.Limiter is { } limiter
            ? new WorkQueue<T>(options.MaxSize, options.PutTimeout, GetLimiter(limiter), logger, System, name)
            : new WorkQueue<T>(options.MaxSize, options.PutTimeout, options.ConcurrencyLimit, logger, System, name);
        return new NamedQueue<T>(queue);
    }

    /// <summary>A named queue whatever its item type: what the registry needs to stop it.</summary>
    private interface INamedQueue : IAsyncDisposable
    {
        Type ItemType { get; }

        /// <summary>Stops the queue; <paramref name="cancellationToken"/> alone ends the grace period.</summary>
        Task StopAsync(CancellationToken cancellationToken);

        void Dispose();

        /// <summary>What the queue reports now, under <paramref name="name"/>.</summary>
        QueueState State(string name);
    }

    private sealed class NamedQueue<T>(WorkQueue<T> queue) : INamedQueue
    {
        public WorkQueue<T> Queue { get; } = queue;

        public Type ItemType => typeof(T);

        /// <summary>
        /// Stops a processing queue with no timeout of its own: the token ends the grace period (one that cannot be
        /// cancelled leaves the queue's stop timeout). One never started, already stopped or disposed by its user has
        /// nothing to stop.
        /// </summary>
        public async Task StopAsync(CancellationToken cancellationToken)
        {
            try
            {
                if (Queue.Status is QueueStatus.Processing or QueueStatus.Stopping)
                {
                    await Queue.StopAsync(cancellationToken.CanBeCanceled ? Timeout.InfiniteTimeSpan : null, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (ObjectDisposedException)
            {
                // Disposed by its user meanwhile: disposal stopped it.
            }
        }

        public void Dispose() => Queue.Dispose();

        public QueueState State(string name) => new(name, Queue.Status, Queue.Size, Queue.Queue.Capacity, Queue.Metrics);

        public ValueTask DisposeAsync() => Queue.DisposeAsync();
    }
}
