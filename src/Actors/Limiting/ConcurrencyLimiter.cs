using System.Diagnostics;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// A concurrency limiter whose state lives in a gatekeeper actor: at most <see cref="MaxRunning"/> callers hold a
/// slot at once, the rest wait in strict FIFO order (no barging), and at most <see cref="MaxQueued"/> may wait.
/// </summary>
/// <remarks>
/// <para>Async callers use <see cref="AcquireAsync"/> (or <see cref="ConcurrencyLimiterExtensions.RunAsync{TResult}"/>,
/// <see cref="ConcurrencyContext.EnterAsync"/>); actors talk to <see cref="Gatekeeper"/> with
/// <see cref="GatekeeperProtocol"/>. Both share the same slots and the same queue.</para>
/// <para>While a caller really waits, an <see cref="Activity"/> named <c>waiting for {name ?? source} concurrency</c>
/// is open in its flow. Counts are readable synchronously and reflect every message the gatekeeper has handled.</para>
/// </remarks>
[DebuggerDisplay("{DisplayName}: running {RunningCount}/{MaxRunning}, waiting {WaitingCount}")]
public sealed class ConcurrencyLimiter : IConcurrencyLimiter, IDisposable, IAsyncDisposable
{
    /// <summary>The counts the gatekeeper publishes.</summary>
    private readonly LimiterCounts _counts = new();

    /// <summary>The gatekeeper, stopped by Dispose or, for a limiter dropped undisposed, by a finaliser.</summary>
    private readonly OwnedActor<DisposeGatekeeper> _gatekeeper;

    /// <summary>Creates a limiter and its gatekeeper actor.</summary>
    /// <param name="maxRunning">How many callers may hold a slot at once; at least 1.</param>
    /// <param name="maxQueued">How many may wait; <c>null</c> for no bound, 0 to reject anyone who would wait.</param>
    /// <param name="name">A name for traces, metrics, logs and rejection messages.</param>
    /// <param name="tracer">Where wait spans go; the library's <see cref="ActorQueueTelemetry.Source"/> when <c>null</c>.</param>
    /// <param name="system">The actor system for the gatekeeper; the embedded default when <c>null</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxRunning"/> is below 1 or <paramref name="maxQueued"/> is negative.</exception>
    public ConcurrencyLimiter(int maxRunning, int? maxQueued = null, string? name = null,
                              ActivitySource? tracer = null, ActorSystem? system = null)
    {
        MaxRunning = LimitValidation.MaxRunning(maxRunning, nameof(maxRunning));
        MaxQueued = LimitValidation.MaxQueued(maxQueued, nameof(maxQueued));
        Name = name;
        Tracer = tracer ?? ActorQueueTelemetry.Source;
        var runtime = ActorQueueRuntime.Resolve(system);
        var props = GatekeeperActor.Props(MaxRunning, MaxQueued, name, name ?? runtime.Settings.DefaultLimiterName, _counts)
            .WithDispatcher(runtime.Settings.CoordinatorDispatcher);
        _gatekeeper = new OwnedActor<DisposeGatekeeper>(runtime.System.ActorOf(props, runtime.UniqueActorName("limiter", name)), () => new DisposeGatekeeper());
    }

    /// <inheritdoc />
    public string? Name { get; }

    /// <inheritdoc />
    public int MaxRunning { get; }

    /// <inheritdoc />
    public int? MaxQueued { get; }

    /// <inheritdoc />
    public int RunningCount => _counts.Running;

    /// <inheritdoc />
    public int WaitingCount => _counts.Waiting;

    /// <inheritdoc />
    public int AvailableCount => Math.Max(0, MaxRunning - _counts.Running);

    /// <summary>The gatekeeper actor, for actor callers (<see cref="GatekeeperProtocol"/>).</summary>
    /// <remarks>Keep the limiter referenced while actors use its gatekeeper: a limiter dropped without Dispose stops it.</remarks>
    public IActorRef Gatekeeper => _gatekeeper.Actor;

    /// <summary>The tracer given to the constructor, else the library's <see cref="ActivitySource"/> <c>"ActorQueue"</c>.</summary>
    public ActivitySource Tracer { get; }

    private string DisplayName => Name ?? "unnamed limiter";

    /// <summary>Creates a private limiter of <paramref name="limit"/> slots with no bound on waiters.</summary>
    /// <param name="limit">How many callers may hold a slot at once.</param>
    /// <param name="name">A name for traces, metrics and messages.</param>
    /// <param name="tracer">Where wait spans go.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <returns>The new limiter.</returns>
    public static ConcurrencyLimiter FromLimit(int limit, string? name = null, ActivitySource? tracer = null, ActorSystem? system = null) =>
        new(LimitValidation.MaxRunning(limit, nameof(limit)), maxQueued: null, name, tracer, system);

    /// <summary>Creates a private limiter from a <see cref="ConcurrencyLimit"/>.</summary>
    /// <param name="limit">The slots and the bound on waiters.</param>
    /// <param name="name">A name for traces, metrics and messages.</param>
    /// <param name="tracer">Where wait spans go.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <returns>The new limiter.</returns>
    public static ConcurrencyLimiter FromLimit(ConcurrencyLimit limit, string? name = null, ActivitySource? tracer = null, ActorSystem? system = null)
    {
        ArgumentNullException.ThrowIfNull(limit);
        return new(limit.MaxRunning, limit.MaxQueued, name, tracer, system);
    }

    /// <inheritdoc />
    public ValueTask<ConcurrencyLease> AcquireAsync(string source = "unnamed", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        _gatekeeper.ThrowIfDisposed(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ConcurrencyLease>(cancellationToken);
        }

        var request = new AcquireRequest(source, Gatekeeper, signalQueued: Tracer.HasListeners());
        Gatekeeper.Tell(request, ActorRefs.NoSender);
        var grant = request.WaitAsync(cancellationToken);
        return request.QueuedSignal is { } queued ? TraceWaitAsync(request.Source, queued.Task, grant) : grant;
    }

    /// <summary>
    /// Stops the gatekeeper without waiting for it: every waiter gets <see cref="ObjectDisposedException"/>, and so
    /// does every later call. Leases still held need no release.
    /// </summary>
    public void Dispose() => _gatekeeper.Stop();

    /// <summary>As <see cref="Dispose"/>, and completes once the gatekeeper has stopped and every waiter has been failed.</summary>
    /// <returns>A task that completes when the gatekeeper has stopped.</returns>
    public ValueTask DisposeAsync() => _gatekeeper.Stop() is { } dispose ? new ValueTask(dispose.Stopped.Task) : default;

    /// <summary>Opens a wait span around <paramref name="grant"/> when the gatekeeper says the request really waits.</summary>
    private async ValueTask<ConcurrencyLease> TraceWaitAsync(string source, Task<int> queued, ValueTask<ConcurrencyLease> grant)
    {
        var waitingCount = await queued.ConfigureAwait(false);
        using var activity = waitingCount >= 0 ? StartWaitActivity(source, waitingCount) : null;
        return await grant.ConfigureAwait(false);
    }

    private Activity? StartWaitActivity(string source, int waitingCount)
    {
        var activity = Tracer.StartActivity($"waiting for {Name ?? source} concurrency", ActivityKind.Internal);
        if (activity is null)
        {
            return null;
        }

        activity.SetTag("source", source);
        activity.SetTag("waiting_count", waitingCount);
        activity.SetTag("max_running", MaxRunning);
        if (Name is not null)
        {
            activity.SetTag("limiter_name", Name);
        }

        if (MaxQueued is { } maxQueued)
        {
            activity.SetTag("max_queued", maxQueued);
        }

        return activity;
    }
}
