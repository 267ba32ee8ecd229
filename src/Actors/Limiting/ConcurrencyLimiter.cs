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
/// <para>Async callers use <see cref="AcquireAsync(string, CancellationToken)"/> (or <see cref="ConcurrencyLimiterExtensions.RunAsync{TResult}"/>,
/// <see cref="ConcurrencyContext.EnterAsync"/>); actors talk to <see cref="Gatekeeper"/> with
/// <see cref="GatekeeperProtocol"/>. Both share the same slots and the same queue.</para>
/// <para>While a caller really waits, an <see cref="Activity"/> named <c>waiting for {name ?? source} concurrency</c>
/// is open in its flow. Counts are readable synchronously and reflect every message the gatekeeper has handled and
/// every lease taken or given back without one.</para>
/// <para>While nobody waits the gatekeeper lends its free permits (see docs/ARCHITECTURE.md): an acquire that finds
/// them claims its lease with one compare-and-swap and a release gives it back with one, no message either way. An
/// acquire or release that cannot is run in the gatekeeper's turn on the caller's thread, or left to the thread in it:
/// no message either.</para>
/// </remarks>
[DebuggerDisplay("{DisplayName}: running {RunningCount}/{MaxRunning}, waiting {WaitingCount}")]
public sealed class ConcurrencyLimiter : IConcurrencyLimiter, IDisposable, IAsyncDisposable
{
    /// <summary>The counts the gatekeeper publishes.</summary>
    private readonly LimiterCounts _counts = new();

    /// <summary>Opens the wait spans.</summary>
    private readonly WaitSpans _spans;

    /// <summary>The <see cref="System.Threading.RateLimiting.RateLimiter"/> view, made on first use.</summary>
    private ConcurrencyRateLimiter? _rateLimiter;

    /// <summary>Claims leases from the gatekeeper's loan while nobody waits, and gives leases back into it.</summary>
    private readonly PermitLoanReleaser _loanLeases;

    /// <summary>The gatekeeper, stopped by Dispose or, for a limiter dropped undisposed, by a finaliser.</summary>
    private readonly OwnedActor<DisposeGatekeeper> _gatekeeper;

    /// <summary>Creates a limiter and its gatekeeper actor.</summary>
    /// <param name="maxRunning">How many permits there are (callers holding one each); at least 1.</param>
    /// <param name="maxQueued">How many may wait; <c>null</c> for no bound, 0 to reject anyone who would wait.</param>
    /// <param name="name">A name for traces, metrics, logs and rejection messages.</param>
    /// <param name="tracer">Where wait spans go; the library's <see cref="ActorQueueTelemetry.Source"/> when <c>null</c>.</param>
    /// <param name="system">The actor system for the gatekeeper; the embedded default when <c>null</c>.</param>
    /// <param name="waitTimeout">How long a caller may wait by default: <c>null</c> for ever, zero not at all.</param>
    /// <param name="whenFull">What a full queue does with a newcomer.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxRunning"/> is below 1, <paramref name="maxQueued"/> is negative, <paramref name="waitTimeout"/> is negative and not infinite, or <paramref name="whenFull"/> is not a <see cref="QueueFullMode"/> value.</exception>
#pragma warning disable RS0026 // The overloads are told apart by their first parameter's type (API.md fixes them); both keep optional tails for callers.
    public ConcurrencyLimiter(int maxRunning, int? maxQueued = null, string? name = null,
                              ActivitySource? tracer = null, ActorSystem? system = null,
                              TimeSpan? waitTimeout = null, QueueFullMode whenFull = QueueFullMode.RejectNewcomer)
#pragma warning restore RS0026
        : this(new ConcurrencyLimit(LimitValidation.MaxRunning(maxRunning, nameof(maxRunning)), LimitValidation.MaxQueued(maxQueued, nameof(maxQueued)))
        {
            WaitTimeout = LimitValidation.WaitTimeout(waitTimeout, nameof(waitTimeout)),
            WhenFull = LimitValidation.WhenFull(whenFull, nameof(whenFull)),
        }, name, tracer, system)
    {
    }

    /// <summary>Creates a limiter and its gatekeeper actor from <paramref name="limit"/>.</summary>
    /// <param name="limit">The permits, the bound on waiters, the default wait timeout, the full-queue mode, the clock.</param>
    /// <param name="name">A name for traces, metrics, logs and rejection messages.</param>
    /// <param name="tracer">Where wait spans go; the library's <see cref="ActorQueueTelemetry.Source"/> when <c>null</c>.</param>
    /// <param name="system">The actor system for the gatekeeper; the embedded default when <c>null</c>.</param>
#pragma warning disable RS0026 // The overloads are told apart by their first parameter's type (API.md fixes them); both keep optional tails for callers.
    public ConcurrencyLimiter(ConcurrencyLimit limit, string? name = null, ActivitySource? tracer = null, ActorSystem? system = null)
#pragma warning restore RS0026
    {
        ArgumentNullException.ThrowIfNull(limit);
        Name = name;
        Tracer = tracer ?? ActorQueueTelemetry.Source;
        _spans = new WaitSpans(Tracer, name);
        var runtime = ActorQueueRuntime.Resolve(system);
        WaitTimeout = limit.WaitTimeout;
        WhenFull = limit.WhenFull;
        var time = limit.TimeProvider ?? TimeProvider.System;
        var settings = new GatekeeperSettings(limit.MaxRunning, limit.MaxQueued, limit.WaitTimeout, limit.WhenFull, name,
                                              name ?? runtime.Settings.DefaultLimiterName, _counts, time)
        {
            StartedAt = time.GetTimestamp(), // here: a clock that throws throws from this constructor, before any actor is made
        };
        _counts.PublishLimits(limit.MaxRunning, limit.MaxQueued);
        // Ready to lend from here on, not from the actor's start: every permit is lent until the gatekeeper's first turn reclaims.
        _counts.Loan.LendFirst(Math.Min(limit.MaxRunning, PermitLoan.MaxLent));
        var stop = new DisposeGatekeeper(); // completed by the gatekeeper's stop, whatever stopped it (GatekeeperSettings.Stop)
        var props = GatekeeperActor.Props(settings with { Stop = stop }).WithDispatcher(runtime.Settings.CoordinatorDispatcher);
        _gatekeeper = new OwnedActor<DisposeGatekeeper>(runtime.System.ActorOf(props, runtime.UniqueActorName("limiter", name)), () => stop);
        _loanLeases = new PermitLoanReleaser(_counts.Loan, _counts.Turn, _gatekeeper.Actor, new GatekeeperTelemetry(settings.MetricName, new ListenerFailureLog(runtime.System.Log, settings.MetricName)));
    }

    /// <inheritdoc />
    public string? Name { get; }

    /// <inheritdoc />
    public int MaxRunning => _counts.MaxRunning;

    /// <inheritdoc />
    public int? MaxQueued => _counts.MaxQueued;

    /// <summary>How long a caller may wait when it names no timeout: <c>null</c> for ever, zero not at all.</summary>
    public TimeSpan? WaitTimeout { get; }

    /// <summary>What a full queue does with a newcomer.</summary>
    public QueueFullMode WhenFull { get; }

    /// <inheritdoc />
    public int RunningCount => _counts.Running;

    /// <inheritdoc />
    public int WaitingCount => _counts.Waiting;

    /// <summary>The permits the callers waiting now asked for, summed: the permits its <see cref="System.Threading.RateLimiting.RateLimiter"/> adapter reports queued.</summary>
    internal long QueuedPermits => _counts.Queued;

    /// <summary>The leases granted so far to every caller, as <see cref="LimiterCounts.Leases"/>: its adapter's idle clock restarts when it moves.</summary>
    internal long LeasesGranted => _counts.Leases;

    /// <inheritdoc />
    public int AvailableCount => Math.Max(0, MaxRunning - _counts.Running);

    /// <summary>The gatekeeper actor, for actor callers (<see cref="GatekeeperProtocol"/>).</summary>
    /// <remarks>Keep the limiter referenced while actors use its gatekeeper: a limiter dropped without Dispose stops it.</remarks>
    public IActorRef Gatekeeper => _gatekeeper.Actor;

    /// <summary>Throws <see cref="ObjectDisposedException"/> once the limiter is disposed (the adapter checks before it claims).</summary>
    internal void ThrowIfDisposed() => _gatekeeper.ThrowIfDisposed(this);

    /// <summary>Whether the limiter has been disposed (every acquire throws); for readers that must not throw, as a health check.</summary>
    internal bool IsDisposed => _gatekeeper.IsDisposed;

    /// <summary>The gatekeeper's turn (for tests: a test holds it as a contended caller would).</summary>
    internal GateTurn Turn => _counts.Turn;

    /// <summary>The gatekeeper's loan (for tests: whether it lends).</summary>
    internal PermitLoan Loan => _counts.Loan;

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
        new(new ConcurrencyLimit(LimitValidation.MaxRunning(limit, nameof(limit))), name, tracer, system);

    /// <summary>Creates a private limiter from a <see cref="ConcurrencyLimit"/>.</summary>
    /// <param name="limit">The permits, the bound on waiters, the default wait timeout, the full-queue mode, the clock.</param>
    /// <param name="name">A name for traces, metrics and messages.</param>
    /// <param name="tracer">Where wait spans go.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <returns>The new limiter.</returns>
    public static ConcurrencyLimiter FromLimit(ConcurrencyLimit limit, string? name = null, ActivitySource? tracer = null, ActorSystem? system = null)
    {
        ArgumentNullException.ThrowIfNull(limit);
        return new(limit, name, tracer, system);
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

        if (_loanLeases.TryClaim(1, source) is { } claimed)
        {
            return new ValueTask<ConcurrencyLease>(claimed);
        }

        var request = WaitTimeout is null
            ? new AcquireRequest(source, Gatekeeper, signalQueued: Tracer.HasListeners())
            : new AcquireRequest(source, Gatekeeper, Tracer.HasListeners(), 1, 0, WaitTimeout);
        return Send(request, cancellationToken);
    }

    /// <inheritdoc />
#pragma warning disable RS0026 // The overloads are told apart by their first parameter's type (API.md fixes them); both keep optional tails for callers.
    public ValueTask<ConcurrencyLease> AcquireAsync(int permits, int priority = 0, TimeSpan? waitTimeout = null,
                                                    string source = "unnamed", CancellationToken cancellationToken = default)
#pragma warning restore RS0026
    {
        ArgumentNullException.ThrowIfNull(source);
        LimitValidation.Permits(permits, MaxRunning, Name, nameof(permits));
        var timeout = waitTimeout is null ? WaitTimeout : LimitValidation.WaitTimeout(waitTimeout, nameof(waitTimeout));
        _gatekeeper.ThrowIfDisposed(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ConcurrencyLease>(cancellationToken);
        }

        if (_loanLeases.TryClaim(permits, source) is { } claimed)
        {
            return new ValueTask<ConcurrencyLease>(claimed);
        }

        return Send(new AcquireRequest(source, Gatekeeper, Tracer.HasListeners(), permits, priority, timeout), cancellationToken);
    }

    /// <inheritdoc />
    public void Resize(int? maxRunning = null, int? maxQueued = null)
    {
        if (maxRunning is { } running)
        {
            LimitValidation.MaxRunning(running, nameof(maxRunning));
        }

        LimitValidation.MaxQueued(maxQueued, nameof(maxQueued));
        _gatekeeper.ThrowIfDisposed(this);
        var sequence = _counts.PublishResize(maxRunning ?? MaxRunning, maxQueued ?? MaxQueued);
        if (maxRunning is not null)
        {
            // After the limit is published: no claim is served on the old limit once this call returned.
            _counts.Loan.Suspend();
        }

        // In the turn, as requests are, so no request made after this call returned is served on the old limits.
        SubmitOrSend(new FacadeResize(new GatekeeperProtocol.Resize(maxRunning, maxQueued), sequence));
    }

    /// <summary>
    /// This limiter as a <see cref="System.Threading.RateLimiting.RateLimiter"/> for ASP.NET Core's rate-limiting
    /// middleware, Polly's <c>AddRateLimiter</c> or an <c>HttpClient</c> handler; the same instance on every call.
    /// A full queue, an eviction or a wait timeout gives a failed lease whose <c>ReasonPhrase</c> says why.
    /// <c>AttemptAcquire</c> never blocks: it claims from the free permits the gatekeeper lends while nobody
    /// waits (see docs/ARCHITECTURE.md). Disposing the adapter leaves this limiter running.
    /// </summary>
    /// <returns>The adapter.</returns>
    public System.Threading.RateLimiting.RateLimiter AsRateLimiter()
    {
        _gatekeeper.ThrowIfDisposed(this);
        return LazyInitializer.EnsureInitialized(ref _rateLimiter, () => new ConcurrencyRateLimiter(this, _counts.Loan, _loanLeases));
    }

    /// <summary>
    /// Stops the gatekeeper without waiting for it: every waiter gets <see cref="ObjectDisposedException"/>, and so
    /// does every later call. Leases still held need no release.
    /// </summary>
    public void Dispose()
    {
        _counts.Loan.Close();
        _gatekeeper.Stop();
    }

    /// <summary>As <see cref="Dispose"/>, and completes once the gatekeeper has stopped and every waiter has been failed.</summary>
    /// <returns>A task that completes when the gatekeeper has stopped.</returns>
    public ValueTask DisposeAsync()
    {
        _counts.Loan.Close();
        return _gatekeeper.Stop() is { } dispose ? new ValueTask(dispose.Stopped.Task) : default;
    }

    /// <summary>Runs <paramref name="request"/> in the gatekeeper's turn, or sends it (<see cref="SubmitOrSend"/>), and awaits its grant, tracing a real wait.</summary>
    private ValueTask<ConcurrencyLease> Send(AcquireRequest request, CancellationToken cancellationToken)
    {
        SubmitOrSend(request);

        var grant = request.WaitAsync(cancellationToken);
        return request.QueuedSignal is { } queued ? _spans.TraceWaitAsync(request, queued.Task, grant, MaxRunning, MaxQueued, partitionKey: null) : grant;
    }

    /// <summary>
    /// Runs <paramref name="op"/> in the gatekeeper's turn (or leaves it to whoever holds the turn); while the turn is
    /// not open, or a call sent earlier is still on its way to the gatekeeper (nobody passes it), sends it announced.
    /// </summary>
    private void SubmitOrSend(IFacadeOp op)
    {
        if (_counts.Loan.HasAnnounced || !_counts.Turn.Submit(op))
        {
            op.Announced = true;
            _counts.Loan.Announce();
            Gatekeeper.Tell(op, ActorRefs.NoSender);
        }
    }
}
