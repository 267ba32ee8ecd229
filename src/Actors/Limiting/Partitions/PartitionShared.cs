using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// What every <see cref="Partition"/> of one limiter shares, so that a partition carries only its own counts: the
/// settings, the actor that owns them, the limiter's telemetry and the exceptions its waiters are failed with.
/// </summary>
internal sealed class PartitionShared
{
    private readonly ILoggingAdapter _log;

    /// <summary>The limiter's grants and rejections (its running/waiting counters move by each partition's deltas here).</summary>
    private readonly GatekeeperTelemetry _telemetry;

    /// <summary>The clock's stamp when the actor started: the actor's time counts from here.</summary>
    private readonly long _startedAt;

    /// <summary>The actor's router of a request to its key's live partition or a new one (set by the actor as it starts).</summary>
    private Action<PartitionAcquireRequest>? _route;

    /// <summary>The partitioned limiter's actor (set once it is made).</summary>
    private IActorRef? _self;

    /// <summary>The requests on their way to the actor.</summary>
    private readonly OnTheWay _routing;

    /// <param name="self">The partitioned limiter's actor.</param>
    /// <param name="settings">Every partition's limits, name and clock.</param>
    /// <param name="log">The limiter's log.</param>
    /// <param name="routing">The requests on their way to the actor.</param>
    /// <param name="route">The actor's router of a request to its key's live partition or a new one; called only on the actor's thread.</param>
    public PartitionShared(IActorRef self, GatekeeperSettings settings, ILoggingAdapter log, OnTheWay routing, Action<PartitionAcquireRequest> route)
        : this(settings, log, routing)
    {
        Bind(self, route);
    }

    /// <summary>
    /// Shared before the actor is made (a caller that will not wait makes a key's partition itself, from the limiter's
    /// construction on); the facade, once it has the actor, and the actor, as it starts, <see cref="Bind"/> it.
    /// </summary>
    /// <param name="settings">Every partition's limits, name and clock.</param>
    /// <param name="log">The limiter's log.</param>
    /// <param name="routing">The requests on their way to the actor.</param>
    public PartitionShared(GatekeeperSettings settings, ILoggingAdapter log, OnTheWay routing)
    {
        _routing = routing;
        Settings = settings;
        _log = log;
        var failures = new ListenerFailureLog(log, settings.MetricName);
        _telemetry = new GatekeeperTelemetry(settings.MetricName, failures);
        RateTelemetry = settings.Rates is null ? null : new RateTelemetry(settings.MetricName, [], settings.Time, gauged: false, failures);
        WhenFull = settings.WhenFull == QueueFullMode.EvictLowestPriorityNewest ? QueueFullPolicy.EvictLowestNewest : QueueFullPolicy.RejectNewcomer;
        _startedAt = settings.Time.GetTimestamp();
        GateTime = GateClock.For(settings.Time);
    }

    /// <summary>The clock every partition's gate reads: the limit's, as a <see cref="GateClock"/>.</summary>
    public TimeProvider GateTime { get; }

    /// <summary>The partitioned limiter's actor: a partition tells it of its wakes, and sends it what must be rerouted.</summary>
    /// <remarks>
    /// Bound by the facade right after it made the actor (before any caller can reach a partition) and by the actor as it
    /// starts (before its timers run): whoever reads it, on a caller's thread or the actor's, comes after one of them.
    /// </remarks>
    public IActorRef Self => Volatile.Read(ref _self)!;

    /// <summary>Binds the actor and, from the actor itself, its router (<paramref name="route"/>, <c>null</c> from the facade).</summary>
    public void Bind(IActorRef self, Action<PartitionAcquireRequest>? route)
    {
        Volatile.Write(ref _self, self);
        if (route is not null)
        {
            Volatile.Write(ref _route, route);
        }
    }

    /// <summary>Every partition's limits, name and clock.</summary>
    public GatekeeperSettings Settings { get; }

    /// <summary>What a full queue does with a newcomer, as the gate says it.</summary>
    public QueueFullPolicy WhenFull { get; }

    /// <summary>Tokens granted and settled; <c>null</c> without rates.</summary>
    public RateTelemetry? RateTelemetry { get; }

    /// <summary>The actor's time: since it started, on the limiter's clock.</summary>
    public TimeSpan Now => Settings.Time.GetElapsedTime(_startedAt);

    /// <summary>A partition's counts moved by these deltas.</summary>
    /// <remarks>
    /// Every measurement here runs on the thread in a partition's turn: the telemetry, given the actor's log, logs a
    /// listener that throws and drops its measurement, never lets it into the turn.
    /// </remarks>
    public void Meter(int running, int waiting) => _telemetry.MeterChange(running, waiting);

    /// <summary>A lease's permits returned into a partition's loan, on the returner's thread (its claim, or its grant, metered them running).</summary>
    public void Returned(int permits) => _telemetry.Returned(permits);

    /// <summary>A waiter queued: stamp it only when someone records wait times (the clock read is a measurable cost).</summary>
    public void Queued(PermitWaiter waiter) =>
        waiter.ArrivedAt = ActorQueueTelemetry.LimiterWaitTimeHistogram.Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>A grant: metered as a gatekeeper meters it, with its tokens when the partitions have rates.</summary>
    public void Granted(PermitWaiter waiter, in PermitGrant grant)
    {
        _telemetry.Granted(waiter, grant);
        RateTelemetry?.Granted(grant);
    }

    /// <summary>The exception a turned-away waiter gets, as a gatekeeper of its own would give it.</summary>
    public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection)
    {
        if (rejection.Kind == PermitRejectionKind.Disposed)
        {
            return PermitRejections.Disposed();
        }

        _telemetry.Rejected(rejection.Kind);
        return PermitRejections.ToException(waiter, rejection, Settings.Name);
    }

    /// <summary>
    /// Something threw inside a partition's turn: the turn goes on (it is given back whatever happens), the request it
    /// came from, if any and still unanswered, fails with it, counted as a rejection (<see cref="GatekeeperTelemetry.HandlerFailed"/>,
    /// as the actor's backstop counts what its handlers threw), and it is logged (the key by its text, <see cref="UserText"/>).
    /// </summary>
    public void Faulted(object key, ITurnOp? op, Exception error)
    {
        _log.ErrorSafely(error, "Partition {0} of {1}: {2} failed inside its turn", UserText.Of(key, "key"), Settings.MetricName, op?.GetType().Name ?? "the turn's bookkeeping");
        if (op is PermitWaiter { IsWithdrawn: false } waiter)
        {
            _telemetry.HandlerFailed();
            waiter.Fail(error);
        }
    }

    /// <summary>
    /// Something threw inside a partition's turn while it judged a caller that will not wait: logged; the caller is
    /// refused (its adapter counts the refusal, <c>would_wait</c>), so nothing else is counted for it.
    /// </summary>
    public void AttemptFaulted(object key, Exception error) =>
        _log.ErrorSafely(error, "Partition {0} of {1}: an attempt failed inside its turn and was refused", UserText.Of(key, "key"), Settings.MetricName);

    /// <summary>
    /// A request pushed to a partition before a sweep dropped it: the actor routes it to the key's next partition. It is
    /// run by the sweep's own give-back, on the actor's thread, so it is routed at once, ahead of every request sent after
    /// the drop; should that give-back have handed the rest of the turn to the pool, it is sent (counted on its way).
    /// </summary>
    public void Reroute(PartitionAcquireRequest request)
    {
        if (Self.Equals(ActorCell.GetCurrentSelfOrNoSender()) && Volatile.Read(ref _route) is { } route)
        {
            route(request);
            return;
        }

        _routing.Sending();
        Self.Tell(request, ActorRefs.NoSender);
    }

    /// <summary>
    /// On the actor's thread, <paramref name="request"/>'s key threw from its <c>GetHashCode</c> or <c>Equals</c> as the
    /// table was asked (any <c>TKey</c> is a key): that request alone fails, with an <see cref="ArgumentException"/>
    /// carrying the key's exception, counted as a rejection (<see cref="GatekeeperTelemetry.KeyFailed"/>) unless its caller had cancelled
    /// already, and it is logged; every other partition, lease and waiter is untouched.
    /// </summary>
    public void KeyFailed(PartitionAcquireRequest request, Exception error)
    {
        _log.ErrorSafely(error, "Partitioned limiter {0}: a partition key's GetHashCode or Equals threw ({1}); its request was failed with it", Settings.MetricName, request.Key.GetType().Name);
        if (request.IsWithdrawn)
        {
            return; // cancelled before it got here: answered, and turned away by nobody (a gate counts nothing for it either)
        }

        var failure = new ArgumentException(
            $"The partition key's GetHashCode or Equals threw inside partitioned limiter '{Settings.MetricName}' ({error.GetType().Name}: {UserText.MessageOf(error)}); the request was turned away",
            "key", error);
        _telemetry.KeyFailed();
        request.Fail(failure);
    }

    /// <summary>On the actor's thread, a key threw from its <c>GetHashCode</c> or <c>Equals</c> where no request is at stake: logged, with what was done instead (<paramref name="instead"/>).</summary>
    public void KeyLookupFailed(string instead, Exception error) =>
        _log.ErrorSafely(error, "Partitioned limiter {0}: a partition key's GetHashCode or Equals threw; {1}", Settings.MetricName, instead);

    /// <summary>
    /// A handler of the actor threw (a defect): logged, the actor keeps its partitions and goes on, and a request the
    /// message was, if still unanswered, fails with an <see cref="InvalidOperationException"/> naming the cause, counted
    /// as a rejection (<see cref="GatekeeperTelemetry.HandlerFailed"/>) unless its caller had cancelled already (or it
    /// was answered before the handler threw), as <see cref="KeyFailed"/> counts.
    /// </summary>
    public void HandlerFailed(object message, Exception error)
    {
        _log.ErrorSafely(error, "Partitioned limiter {0}: its actor failed handling {1}; it keeps its partitions and goes on", Settings.MetricName, message.GetType().Name);
        if (message is PermitWaiter { IsWithdrawn: false } waiter)
        {
            var failure = new InvalidOperationException(
                $"Partitioned limiter '{Settings.MetricName}' failed handling this request: {error.GetType().Name}: {UserText.MessageOf(error)}", error);
            _telemetry.HandlerFailed();
            waiter.Fail(failure);
        }
    }

    /// <summary>The limit's clock (the application's) threw <paramref name="error"/> on the actor's thread, or a caller's, <paramref name="what"/> (what happened, and what follows): logged.</summary>
    public void ClockFailed(Exception error, string what) =>
        _log.ErrorSafely(error, "Partitioned limiter {0}: its TimeProvider threw {1}", Settings.MetricName, what);

    /// <summary>
    /// In a partition's turn, a waiter taken out of its gate because the actor could not set the wake its wait needed
    /// (<see cref="UnsetWake"/>): failed with <paramref name="failure"/>, counted <c>handler_failed</c> unless its caller
    /// had cancelled already.
    /// </summary>
    public void FailUnwoken(PermitWaiter waiter, Exception failure)
    {
        if (!waiter.IsWithdrawn)
        {
            _telemetry.HandlerFailed();
            waiter.Fail(failure);
        }
    }

    /// <summary>Disposes one of the actor's timers as it stops: should the application's clock's timer throw, it is logged and the stop goes on.</summary>
    public void DisposeTimer(IDisposable timer)
    {
        try
        {
            timer.Dispose();
        }
        catch (Exception error)
        {
            _log.ErrorSafely(error, "Partitioned limiter {0}: disposing its timer threw as it stopped; it stops all the same", Settings.MetricName);
        }
    }

    /// <summary>More permits came back than were held: a bug elsewhere, logged and ignored.</summary>
    public void ReleasedTooMany(object key, int permits, long held) =>
        _log.Error("{0} permit(s) of partition {1} were released while {2} were held; ignored", permits, UserText.Of(key, "key"), held);
}
