using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// The one owner of a concurrency limiter's state: running slots, the FIFO of waiters and the bounds. It handles
/// one message at a time, so the <c>max_queued</c> check and the enqueue are atomic without a lock.
/// </summary>
internal sealed class GatekeeperActor : ReceiveActor
{
    /// <summary>How many slots there are.</summary>
    private readonly int _maxRunning;

    /// <summary>How many may wait; <c>null</c> for no bound.</summary>
    private readonly int? _maxQueued;

    /// <summary>The limiter's name, <c>null</c> when unnamed.</summary>
    private readonly string? _name;

    /// <summary>Where the counts go for synchronous reads.</summary>
    private readonly LimiterCounts _counts;

    /// <summary>The metric tag naming this limiter.</summary>
    private readonly KeyValuePair<string, object?> _metricTag;

    /// <summary>Callers waiting for a slot, oldest first.</summary>
    private readonly WaiterQueue<GatekeeperWaiter> _waiters = new();

    /// <summary>Actors that wait or hold leases, each watched while it has any.</summary>
    private readonly Dictionary<IActorRef, HolderRecord> _holders = [];

    /// <summary>Which actor holds each actor-held lease.</summary>
    private readonly Dictionary<long, HolderRecord> _actorLeases = [];

    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Hands facade leases their way back here.</summary>
    private readonly GatekeeperReleaser _releaser;

    /// <summary>Slots held now, by facades and actors.</summary>
    private int _running;

    /// <summary>The last lease number given out.</summary>
    private long _lastLeaseId;

    /// <summary>Set once a dispose request arrived; completed in <see cref="PostStop"/>.</summary>
    private DisposeGatekeeper? _disposeRequest;

    public GatekeeperActor(int maxRunning, int? maxQueued, string? name, string metricName, LimiterCounts counts)
    {
        _maxRunning = maxRunning;
        _maxQueued = maxQueued;
        _name = name;
        _counts = counts;
        _metricTag = new(ActorQueueTelemetry.LimiterNameTag, metricName);
        _releaser = new GatekeeperReleaser(Self);

        Receive<AcquireRequest>(HandleAcquireRequest);
        Receive<ReleaseSlot>(_ => HandleReleaseSlot());
        Receive<CancelWaiting>(HandleCancelWaiting);
        Receive<GatekeeperProtocol.Acquire>(HandleAcquire);
        Receive<GatekeeperProtocol.Release>(HandleRelease);
        Receive<GatekeeperProtocol.CancelAcquire>(HandleCancelAcquire);
        Receive<GatekeeperProtocol.GetStatus>(_ => HandleGetStatus());
        Receive<HolderStopped>(HandleHolderStopped);
        Receive<DisposeGatekeeper>(HandleDispose);
    }

    public static Props Props(int maxRunning, int? maxQueued, string? name, string metricName, LimiterCounts counts) =>
        Akka.Actor.Props.Create(() => new GatekeeperActor(maxRunning, maxQueued, name, metricName, counts));

    /// <summary>Whether a newcomer may take a slot now: one is free and nobody waits (no barging).</summary>
    private bool CanGrantImmediately => _running < _maxRunning && _waiters.IsEmpty;

    private bool IsQueueFull => _maxQueued is { } maxQueued && _waiters.Count >= maxQueued;

    /// <inheritdoc />
    protected override void PostStop()
    {
        var disposed = new ObjectDisposedException(nameof(ConcurrencyLimiter), "The concurrency limiter has been disposed.");
        _waiters.DrainAll(waiter =>
        {
            switch (waiter)
            {
                case AcquireRequest request:
                    request.Fail(disposed);
                    break;
                case ActorWaiter actorWaiter:
                    actorWaiter.Requester.Tell(new GatekeeperProtocol.Rejected(actorWaiter.RequestId, "The concurrency limiter has been disposed."));
                    break;
            }
        });
        ActorQueueTelemetry.LimiterRunningCounter.Add(-_running, _metricTag);
        _running = 0;
        Publish();
        _disposeRequest?.Stopped.TrySetResult();
        base.PostStop();
    }

    private void HandleAcquireRequest(AcquireRequest request)
    {
        if (request.IsCompleted)
        {
            return; // cancelled before it got here: it takes nothing and never stood in the queue
        }

        if (CanGrantImmediately)
        {
            TryGrantTo(request, waitedSince: null);
            return;
        }

        if (IsQueueFull)
        {
            request.Fail(RejectionException(request.Source));
            ActorQueueTelemetry.LimiterRejectedCounter.Add(1, _metricTag);
            return;
        }

        Enqueue(request);
        request.SignalQueued(_waiters.Count);
    }

    private void HandleReleaseSlot() => FreeSlot();

    private void HandleCancelWaiting(CancelWaiting message)
    {
        if (_waiters.Remove(message.Request))
        {
            ActorQueueTelemetry.LimiterWaitingCounter.Add(-1, _metricTag);
            Publish();
        }
    }

    private void HandleAcquire(GatekeeperProtocol.Acquire message)
    {
        var requester = Sender;
        if (requester.IsNobody())
        {
            _log.Warning("Acquire {0} from {1} has no sender to answer; use Tell with a sender or Ask", message.RequestId, message.Source);
            return;
        }

        var holder = HolderFor(requester);
        if (holder.Pending.ContainsKey(message.RequestId) || holder.LeaseByRequest.ContainsKey(message.RequestId))
        {
            requester.Tell(new GatekeeperProtocol.Rejected(message.RequestId, $"Request id {message.RequestId} is already in use by this actor"));
            return;
        }

        if (CanGrantImmediately)
        {
            GrantToActor(holder, message.RequestId, waitedSince: null);
            return;
        }

        if (IsQueueFull)
        {
            requester.Tell(new GatekeeperProtocol.Rejected(message.RequestId, RejectionException(message.Source).Message));
            ActorQueueTelemetry.LimiterRejectedCounter.Add(1, _metricTag);
            ForgetIfIdle(holder);
            return;
        }

        var waiter = new ActorWaiter(requester, message.RequestId, message.Source);
        holder.Pending.Add(message.RequestId, waiter);
        Enqueue(waiter);
        requester.Tell(new GatekeeperProtocol.Queued(message.RequestId, _waiters.Count));
    }

    private void HandleRelease(GatekeeperProtocol.Release message)
    {
        if (!_actorLeases.Remove(message.LeaseId, out var holder))
        {
            _log.Warning("Release of unknown lease {0} from {1} ignored (released twice, or never granted)", message.LeaseId, Sender);
            return;
        }

        holder.RemoveLease(message.LeaseId);
        ForgetIfIdle(holder);
        FreeSlot();
    }

    private void HandleCancelAcquire(GatekeeperProtocol.CancelAcquire message)
    {
        if (!_holders.TryGetValue(Sender, out var holder))
        {
            return;
        }

        if (holder.Pending.Remove(message.RequestId, out var waiter))
        {
            _waiters.Remove(waiter);
            ActorQueueTelemetry.LimiterWaitingCounter.Add(-1, _metricTag);
            Sender.Tell(new GatekeeperProtocol.Cancelled(message.RequestId));
            ForgetIfIdle(holder);
            Publish();
            return;
        }

        if (holder.LeaseByRequest.TryGetValue(message.RequestId, out var leaseId))
        {
            // Granted before the cancel arrived: the caller has withdrawn, so the slot comes back here.
            _actorLeases.Remove(leaseId);
            holder.RemoveLease(leaseId);
            ForgetIfIdle(holder);
            FreeSlot();
        }
    }

    private void HandleGetStatus() =>
        Sender.Tell(new GatekeeperProtocol.Status(_running, _waiters.Count, _maxRunning, _maxQueued, _name));

    private void HandleHolderStopped(HolderStopped message)
    {
        if (!_holders.Remove(message.Holder, out var holder))
        {
            return;
        }

        foreach (var waiter in holder.Pending.Values)
        {
            if (_waiters.Remove(waiter))
            {
                ActorQueueTelemetry.LimiterWaitingCounter.Add(-1, _metricTag);
            }
        }

        var released = holder.LeaseByRequest.Count;
        foreach (var leaseId in holder.LeaseByRequest.Values)
        {
            _actorLeases.Remove(leaseId);
        }

        if (released > 0)
        {
            _log.Info("Holder {0} stopped; released its {1} lease(s)", message.Holder.Path, released);
        }

        for (var i = 0; i < released; i++)
        {
            FreeSlot();
        }

        Publish();
    }

    private void HandleDispose(DisposeGatekeeper message)
    {
        _disposeRequest = message;
        Context.Stop(Self);
    }

    private void Enqueue(GatekeeperWaiter waiter)
    {
        // Reading the clock costs a measurable share of a contended hand-off, so only when someone records wait times.
        waiter.ArrivedAt = ActorQueueTelemetry.LimiterWaitTimeHistogram.Enabled ? Stopwatch.GetTimestamp() : 0;
        _waiters.Enqueue(waiter);
        ActorQueueTelemetry.LimiterWaitingCounter.Add(1, _metricTag);
        Publish();
    }

    /// <summary>A slot comes back: hand it to the oldest waiter still waiting, skipping any that cancelled meanwhile.</summary>
    private void FreeSlot()
    {
        if (_running == 0)
        {
            _log.Error("A slot was released while none was held; ignored");
            return;
        }

        _running--;
        ActorQueueTelemetry.LimiterRunningCounter.Add(-1, _metricTag);
        while (_running < _maxRunning && _waiters.Dequeue() is { } waiter)
        {
            ActorQueueTelemetry.LimiterWaitingCounter.Add(-1, _metricTag);
            switch (waiter)
            {
                case AcquireRequest request:
                    TryGrantTo(request, waiter.ArrivedAt);
                    break;
                case ActorWaiter actorWaiter:
                    var holder = _holders[actorWaiter.Requester];
                    holder.Pending.Remove(actorWaiter.RequestId);
                    GrantToActor(holder, actorWaiter.RequestId, waiter.ArrivedAt);
                    break;
            }
        }

        Publish();
    }

    /// <summary>
    /// Grants a slot to a facade caller. The counts are published before the caller is answered, so
    /// <c>RunningCount</c> read after <c>AcquireAsync</c> returns includes its slot; a caller that cancelled at that
    /// same instant takes nothing, and the slot stays free for the next waiter.
    /// </summary>
    private void TryGrantTo(AcquireRequest request, long? waitedSince)
    {
        _running++;
        Publish();
        if (request.TryGrant(new ConcurrencyLease(_releaser, ++_lastLeaseId, request.Source)))
        {
            RecordGrant(waitedSince);
            return;
        }

        _running--;
        Publish();
    }

    private void GrantToActor(HolderRecord holder, long requestId, long? waitedSince)
    {
        var leaseId = ++_lastLeaseId;
        holder.LeaseByRequest.Add(requestId, leaseId);
        _actorLeases.Add(leaseId, holder);
        TakeSlot(waitedSince);
        holder.Actor.Tell(new GatekeeperProtocol.Granted(requestId, leaseId));
    }

    private void TakeSlot(long? waitedSince)
    {
        _running++;
        RecordGrant(waitedSince);
        Publish();
    }

    private void RecordGrant(long? waitedSince)
    {
        ActorQueueTelemetry.LimiterRunningCounter.Add(1, _metricTag);
        ActorQueueTelemetry.LimiterAcquiredCounter.Add(1, _metricTag);
        switch (waitedSince)
        {
            case null:
                ActorQueueTelemetry.LimiterWaitTimeHistogram.Record(0d, _metricTag);
                break;
            case 0:
                break; // it queued while nobody recorded wait times, so its wait is unknown
            case { } since:
                ActorQueueTelemetry.LimiterWaitTimeHistogram.Record(Stopwatch.GetElapsedTime(since).TotalMilliseconds, _metricTag);
                break;
        }
    }

    private void Publish() => _counts.Publish(_running, _waiters.Count);

    private ConcurrencyLimitExceededException RejectionException(string source) =>
        new(_waiters.Count + 1, _maxQueued.GetValueOrDefault(), _name ?? source);

    private HolderRecord HolderFor(IActorRef actor)
    {
        if (!_holders.TryGetValue(actor, out var holder))
        {
            holder = new HolderRecord(actor);
            _holders.Add(actor, holder);
            Context.WatchWith(actor, new HolderStopped(actor));
        }

        return holder;
    }

    private void ForgetIfIdle(HolderRecord holder)
    {
        if (holder.IsIdle)
        {
            _holders.Remove(holder.Actor);
            Context.Unwatch(holder.Actor);
        }
    }

    /// <summary>What one actor caller waits for and holds.</summary>
    private sealed class HolderRecord(IActorRef actor)
    {
        public IActorRef Actor { get; } = actor;

        /// <summary>Its requests still waiting, by request id.</summary>
        public Dictionary<long, ActorWaiter> Pending { get; } = [];

        /// <summary>Its leases, by the request id that got them.</summary>
        public Dictionary<long, long> LeaseByRequest { get; } = [];

        public bool IsIdle => Pending.Count == 0 && LeaseByRequest.Count == 0;

        public void RemoveLease(long leaseId)
        {
            foreach (var (requestId, held) in LeaseByRequest)
            {
                if (held == leaseId)
                {
                    LeaseByRequest.Remove(requestId);
                    return;
                }
            }
        }
    }
}
