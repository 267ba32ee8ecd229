using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The limit a model API sets, in one call: at most <see cref="ModelApiLimiterOptions.MaxConcurrent"/> calls in flight,
/// <see cref="ModelApiLimiterOptions.RequestsPerPeriod"/> requests and <see cref="ModelApiLimiterOptions.TokensPerPeriod"/>
/// tokens per period, all checked and granted at once by one gatekeeper actor: a caller never holds a slot while it
/// waits for tokens, callers are served in arrival order (by priority), and nobody passes a waiter.
/// </summary>
/// <remarks>
/// <para>A caller acquires with its token estimate, makes the call, then <see cref="ModelApiLease.Settle"/>s with the
/// tokens the API billed: unused tokens come back at once, an excess is owed and paid from the next refill, the way
/// model APIs count. The rates run on <see cref="ModelApiLimiterOptions.TimeProvider"/>, so tests use a fake clock.</para>
/// <para>Actors share the limit through <see cref="Gatekeeper"/> and <see cref="GatekeeperProtocol"/>: a protocol
/// acquire costs one slot, one request and its <see cref="GatekeeperProtocol.Acquire.Tokens"/>, and
/// <see cref="GatekeeperProtocol.Settle"/> settles it as <see cref="ModelApiLease.Settle"/> does.</para>
/// </remarks>
[DebuggerDisplay("{Name ?? \"unnamed model API limiter\"}: running {RunningCount}, waiting {WaitingCount}")]
public sealed class ModelApiLimiter : IDisposable, IAsyncDisposable
{
    /// <summary>The counts the gatekeeper publishes.</summary>
    private readonly LimiterCounts _counts = new();

    /// <summary>Opens the wait spans.</summary>
    private readonly WaitSpans _spans;

    /// <summary>The <see cref="System.Threading.RateLimiting.RateLimiter"/> view, made on first use.</summary>
    private ModelApiRateLimiter? _rateLimiter;

    /// <summary>The gatekeeper, stopped by Dispose or, for a limiter dropped undisposed, by a finaliser.</summary>
    private readonly OwnedActor<DisposeGatekeeper> _gatekeeper;

    /// <summary>What the gatekeeper lends, from the limiter's construction on, to callers that need not wait.</summary>
    private readonly RateLoan _loan;

    /// <summary>Where a claimed call's slot goes back.</summary>
    private readonly LoanReleaser _loanReleaser;

    /// <summary>Where every lease's settle goes: the gatekeeper, an excess first taken out of the loan (one for all leases).</summary>
    private readonly LoanSettler _settler;

    /// <summary>Meters the calls claimed from the loan, which the gatekeeper never sees one by one.</summary>
    private readonly GatekeeperTelemetry _claims;

    /// <summary>Creates the limiter and its gatekeeper actor.</summary>
    /// <param name="options">The concurrency, the two rates, their period, the queue bound, the wait timeout and the clock.</param>
    /// <param name="name">A name for traces, metrics, logs and rejection messages.</param>
    /// <param name="tracer">Where wait spans go; the library's <see cref="ActorQueueTelemetry.Source"/> when <c>null</c>.</param>
    /// <param name="system">The actor system for the gatekeeper; the embedded default when <c>null</c>.</param>
    public ModelApiLimiter(ModelApiLimiterOptions options, string? name = null, ActivitySource? tracer = null, ActorSystem? system = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        RateGatekeeper.Check(options);
        Options = options;
        Name = name;
        _spans = new WaitSpans(tracer ?? ActorQueueTelemetry.Source, name);
        var runtime = ActorQueueRuntime.Resolve(system);
        _loan = new RateLoan(options.TimeProvider ?? TimeProvider.System);
        var settings = RateGatekeeper.Settings(options, name, name ?? runtime.Settings.DefaultLimiterName, _counts) with { RateLoan = _loan };
        _counts.PublishLimits(options.MaxConcurrent, options.MaxQueued);

        // Ready to lend from here on, not from the actor's start: what the fresh rates grant, which the gatekeeper's first instance takes on.
        RateLender.LendFirst(_loan, options.MaxConcurrent, RateGatekeeper.Policies(options), options.TimeProvider ?? TimeProvider.System);
        var stop = new DisposeGatekeeper(); // completed by the gatekeeper's stop, whatever stopped it (GatekeeperSettings.Stop)
        var props = GatekeeperActor.Props(settings with { Stop = stop }).WithDispatcher(runtime.Settings.CoordinatorDispatcher);
        _gatekeeper = new OwnedActor<DisposeGatekeeper>(runtime.System.ActorOf(props, runtime.UniqueActorName("model-api-limiter", name)), () => stop);
        _claims = new GatekeeperTelemetry(settings.MetricName, new ListenerFailureLog(runtime.System.Log, settings.MetricName));
        _loanReleaser = new LoanReleaser(_loan, Gatekeeper);
        _settler = new LoanSettler(_loan, Gatekeeper);

        // The gatekeeper's first message: it reclaims the first loan and lends anew on its own rates' clock (a restarted
        // instance, which has no first loan, is asked again in PreRestart).
        Gatekeeper.Tell(StartLending.Instance, ActorRefs.NoSender);
    }

    /// <summary>The limiter's name; <c>null</c> when unnamed.</summary>
    public string? Name { get; }

    /// <summary>The limits it was made with.</summary>
    public ModelApiLimiterOptions Options { get; }

    /// <summary>Calls in flight now (leases not yet disposed).</summary>
    public int RunningCount => Math.Max(0, _counts.Running + (int)_loan.ClaimedSlots);

    /// <summary>Calls waiting now.</summary>
    public int WaitingCount => _counts.Waiting;

    /// <summary>The token estimates of the calls waiting now, summed: the permits its <see cref="System.Threading.RateLimiting.RateLimiter"/> adapter reports queued.</summary>
    internal long QueuedTokens => _counts.Queued;

    /// <summary>What the gatekeeper lends to callers that need not wait (for diagnostics and tests).</summary>
    internal RateLoan Loan => _loan;

    /// <summary>The gatekeeper actor, for actor callers (<see cref="GatekeeperProtocol"/>).</summary>
    public IActorRef Gatekeeper => _gatekeeper.Actor;

    /// <summary>
    /// Waits until a slot, a request and <paramref name="estimatedTokens"/> tokens are all free, then takes them together.
    /// While nobody waits, the gatekeeper lends what it could grant now until the rates' current step ends; a call the
    /// loan covers claims it with one compare-and-swap and completes at once, without a message (see docs/ARCHITECTURE.md).
    /// </summary>
    /// <param name="estimatedTokens">The tokens the call is expected to use; at least 1 and at most <see cref="ModelApiLimiterOptions.TokensPerPeriod"/>.</param>
    /// <param name="priority">Higher is served first; FIFO within one priority.</param>
    /// <param name="waitTimeout">How long it may wait: <c>null</c> for the options' default, <see cref="Timeout.InfiniteTimeSpan"/> for ever, zero not at all.</param>
    /// <param name="source">Who asks; shows in traces and rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the call while it waits; it then takes nothing.</param>
    /// <returns>The lease: settle it with the real token count, then dispose it.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="estimatedTokens"/> or <paramref name="waitTimeout"/> is out of range.</exception>
    /// <exception cref="ConcurrencyLimitExceededException">The queue is full, or this waiter was evicted.</exception>
    /// <exception cref="ConcurrencyWaitTimeoutException">The wait timeout passed, or a zero timeout would have had to wait.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public ValueTask<ModelApiLease> AcquireAsync(long estimatedTokens, int priority = 0, TimeSpan? waitTimeout = null,
                                                 string source = "unnamed", CancellationToken cancellationToken = default)
    {
        var timeout = Check(estimatedTokens, waitTimeout, source);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ModelApiLease>(cancellationToken);
        }

        if (_loan.TryClaim(estimatedTokens))
        {
            _claims.ClaimedWithoutWait(1);
            return ValueTask.FromResult(new ModelApiLease(new ConcurrencyLease(_loanReleaser, _loan.NextLeaseId(), source), estimatedTokens, _settler, Name));
        }

        var request = Request(estimatedTokens, priority, timeout, source);
        return LeaseOf(request, Send(request, cancellationToken), Name, _settler);
    }

    /// <summary>
    /// This limiter as a <see cref="System.Threading.RateLimiting.RateLimiter"/> whose permits are tokens, for ASP.NET
    /// Core's rate-limiting middleware or Polly's <c>AddRateLimiter</c>; the same instance on every call. A full queue
    /// or a wait timeout gives a failed lease with a reason phrase and, when a rate decides, <c>RetryAfter</c>.
    /// The gatekeeper lends from the limiter's construction on, while nobody waits, what its slots and rates could grant
    /// now until their current step (refill, segment) ends; <c>AttemptAcquire</c> and an <c>AcquireAsync</c> that would
    /// not wait claim from that loan with one compare-and-swap (see docs/ARCHITECTURE.md), never passing a waiter.
    /// Disposing the adapter leaves this limiter running.
    /// </summary>
    /// <returns>The adapter.</returns>
    public System.Threading.RateLimiting.RateLimiter AsRateLimiter()
    {
        _gatekeeper.ThrowIfDisposed(this);
        return LazyInitializer.EnsureInitialized(ref _rateLimiter, () =>
        {
            _loan.ReadRefusals(); // its refusals while someone waits say when to retry (RateLoan.QueueRetryAfter)
            return new ModelApiRateLimiter(this, _loan, _loanReleaser);
        });
    }

    /// <summary>Stops the gatekeeper without waiting: every waiter gets <see cref="ObjectDisposedException"/>, and so does every later call.</summary>
    public void Dispose() => Stop();

    /// <summary>As <see cref="Dispose"/>, and completes once the gatekeeper has stopped and every waiter has been failed.</summary>
    /// <returns>A task that completes when the gatekeeper has stopped.</returns>
    public ValueTask DisposeAsync() => Stop() is { } dispose ? new ValueTask(dispose.Stopped.Task) : default;

    /// <summary>Whether the limiter is disposed.</summary>
    internal bool IsDisposed => _gatekeeper.IsDisposed;

    /// <summary>Throws <see cref="ObjectDisposedException"/> once the limiter is disposed.</summary>
    internal void ThrowIfDisposed() => _gatekeeper.ThrowIfDisposed(this);

    /// <summary>
    /// Closes the loan at once, so no caller claims from it while the gatekeeper has not yet stopped, then stops the
    /// gatekeeper: closed before the stop is sent, the loan's last reclaim (in <c>PostStop</c>) sees what was claimed.
    /// </summary>
    private DisposeGatekeeper? Stop()
    {
        _loan.Close();
        return _gatekeeper.Stop();
    }

    /// <summary>Checks the arguments and that the limiter is not disposed.</summary>
    /// <returns>The wait timeout, resolved against the options' default.</returns>
    internal TimeSpan? Check(long estimatedTokens, TimeSpan? waitTimeout, string source, string tokensName = "estimatedTokens")
    {
        ArgumentNullException.ThrowIfNull(source);
        LimitValidation.EstimatedTokens(estimatedTokens, Options.TokensPerPeriod, Name, tokensName);
        var timeout = waitTimeout is null ? Options.WaitTimeout : LimitValidation.WaitTimeout(waitTimeout, nameof(waitTimeout));
        _gatekeeper.ThrowIfDisposed(this);
        return timeout;
    }

    /// <summary>The request for a checked call (<see cref="Check"/>); the adapter sends it itself to read its retry-after.</summary>
    /// <param name="estimatedTokens">The call's estimate.</param>
    /// <param name="priority">Higher is served first.</param>
    /// <param name="timeout">How long it may wait.</param>
    /// <param name="source">Who asks.</param>
    /// <param name="probe">A zero-permit acquire's wait, which takes nothing when its turn comes (<see cref="AcquireRequest.IsProbe"/>); not traced.</param>
    internal RateAcquireRequest Request(long estimatedTokens, int priority, TimeSpan? timeout, string source, bool probe = false) =>
        new(source, Gatekeeper, _spans.IsTraced && !probe, estimatedTokens, priority, timeout) { IsProbe = probe };

    /// <summary>Sends <paramref name="request"/> to the gatekeeper and awaits its grant, tracing a real wait.</summary>
    internal ValueTask<ConcurrencyLease> Send(RateAcquireRequest request, CancellationToken cancellationToken)
    {
        Gatekeeper.Tell(request, ActorRefs.NoSender);
        var grant = request.WaitAsync(cancellationToken);
        return request.QueuedSignal is { } queued ? _spans.TraceWaitAsync(request, queued.Task, grant, Options.MaxConcurrent, Options.MaxQueued, partitionKey: null) : grant;
    }

    /// <summary>
    /// The lease over a granted slot of the limiter named <paramref name="limiterName"/> (<c>null</c>: unnamed), which its
    /// errors name; it settles through <paramref name="settler"/>, or its grantor when <c>null</c>.
    /// </summary>
    internal static ModelApiLease LeaseOf(AcquireRequest request, ConcurrencyLease slot, string? limiterName, ITokenSettler? settler = null) =>
        new(slot, request.Demand.Tokens, settler ?? (ITokenSettler)request.Releaser!, limiterName);

    /// <summary>The lease once <paramref name="grant"/> completes.</summary>
    internal static ValueTask<ModelApiLease> LeaseOf(AcquireRequest request, ValueTask<ConcurrencyLease> grant, string? limiterName, ITokenSettler? settler = null) =>
        RelayedWait<ModelApiLease>.Relay(LeaseOfAsync(request, grant, limiterName, settler)); // the caller awaits a facade waiter, not .NET's task

    private static async ValueTask<ModelApiLease> LeaseOfAsync(AcquireRequest request, ValueTask<ConcurrencyLease> grant, string? limiterName, ITokenSettler? settler) =>
        LeaseOf(request, await grant.ConfigureAwait(false), limiterName, settler);

    /// <summary>Meters a call claimed from the loan (the adapter's claims too): acquired, its slot, no wait.</summary>
    internal GatekeeperTelemetry Claims => _claims;

    /// <summary>This limiter's settle path: an excess first comes out of the loan (the adapter's leases use it too).</summary>
    internal ITokenSettler Settler => _settler;
}

/// <summary>How a gatekeeper with rates is set up from <see cref="ModelApiLimiterOptions"/>.</summary>
internal static class RateGatekeeper
{
    /// <summary>Checks what the options cannot check value by value.</summary>
    public static void Check(ModelApiLimiterOptions options)
    {
        if (options.SlidingWindowSegments is { } segments && options.Period.Ticks % segments != 0)
        {
            throw new ArgumentException($"SlidingWindowSegments ({segments}) must split Period ({options.Period}) into equal whole ticks", nameof(options));
        }
    }

    /// <summary>The two rates of <paramref name="options"/>, fresh (full): requests then tokens, as buckets or sliding windows.</summary>
    public static IRestingPolicy[] Policies(ModelApiLimiterOptions options) => options.SlidingWindowSegments is { } segments
        ?
        [
            new SlidingWindowPolicy(options.RequestsPerPeriod, options.Period, segments, PermitMeasure.Calls),
            new SlidingWindowPolicy(options.TokensPerPeriod, options.Period, segments, PermitMeasure.Tokens),
        ]
        :
        [
            new TokenBucketPolicy(options.RequestsPerPeriod, options.RequestsPerPeriod, options.Period, PermitMeasure.Calls),
            new TokenBucketPolicy(options.TokensPerPeriod, options.TokensPerPeriod, options.Period, PermitMeasure.Tokens),
        ];

    public static GatekeeperSettings Settings(ModelApiLimiterOptions options, string? name, string metricName, LimiterCounts counts) =>
        new(options.MaxConcurrent, options.MaxQueued, options.WaitTimeout, QueueFullMode.RejectNewcomer, name, metricName, counts,
            options.TimeProvider ?? TimeProvider.System)
        {
            Rates = () => Policies(options),
        };
}
