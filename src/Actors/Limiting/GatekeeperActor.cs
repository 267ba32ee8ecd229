using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// The one owner of a concurrency limiter's state: a <see cref="PermitGate"/> over a pool of slots, and the books of
/// which actor holds which lease. It handles one message at a time, so the <c>max_queued</c> check and the enqueue
/// are atomic without a lock. As the gate's listener it publishes the counts for the facade before any caller hears
/// of a change, and keeps the telemetry.
/// </summary>
internal sealed class GatekeeperActor : ReceiveActor, IPermitGateListener
{
    /// <summary>How many slots there are.</summary>
    private readonly int _maxRunning;

    /// <summary>The limiter's name, <c>null</c> when unnamed.</summary>
    private readonly string? _name;

    /// <summary>Where the counts go for synchronous reads.</summary>
    private readonly LimiterCounts _counts;

    /// <summary>The metric tag naming this limiter.</summary>
    private readonly KeyValuePair<string, object?> _metricTag;

    /// <summary>The slots.</summary>
    private readonly PermitPool _slots;

    /// <summary>The FIFO of waiters for <see cref="_slots"/>, facade callers and actors alike.</summary>
    private readonly PermitGate _gate;

    /// <summary>Actors that wait or hold leases, each watched while it has any.</summary>
    private readonly Dictionary<IActorRef, HolderRecord> _holders = [];

    /// <summary>Which actor holds each actor-held lease.</summary>
    private readonly Dictionary<long, HolderRecord> _actorLeases = [];

    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Hands facade leases their way back here.</summary>
    private readonly GatekeeperReleaser _releaser;

    /// <summary>The running and waiting counts last added to the up-down counters, so that each change adds its delta.</summary>
    private (long Running, int Waiting) _metered;

    /// <summary>Set once a dispose request arrived; completed in <see cref="PostStop"/>.</summary>
    private DisposeGatekeeper? _disposeRequest;

    public GatekeeperActor(int maxRunning, int? maxQueued, string? name, string metricName, LimiterCounts counts)
    {
        _maxRunning = maxRunning;
        _name = name;
        _counts = counts;
        _metricTag = new(ActorQueueTelemetry.LimiterNameTag, metricName);
        _releaser = new GatekeeperReleaser(Self);
        _slots = new PermitPool(maxRunning);
        _gate = new PermitGate(this, [_slots], maxQueued);

        Receive<AcquireRequest>(HandleAcquireRequest);
        Receive<ReleaseSlot>(_ => ReleaseOne());
        Receive<WithdrawWaiter>(message => _gate.Withdraw(message.Waiter));
        Receive<GatekeeperProtocol.Acquire>(HandleAcquire);
        Receive<GatekeeperProtocol.Release>(HandleRelease);
        Receive<GatekeeperProtocol.CancelAcquire>(HandleCancelAcquire);
        Receive<GatekeeperProtocol.GetStatus>(_ => HandleGetStatus());
        Receive<HolderStopped>(HandleHolderStopped);
        Receive<DisposeGatekeeper>(HandleDispose);
    }

    public static Props Props(int maxRunning, int? maxQueued, string? name, string metricName, LimiterCounts counts) =>
        Akka.Actor.Props.Create(() => new GatekeeperActor(maxRunning, maxQueued, name, metricName, counts));

    /// <inheritdoc />
    void IPermitGateListener.Publish(in PermitSnapshot now)
    {
        _counts.Publish((int)now.InUse, now.Waiting);
        Meter(now.InUse, now.Waiting);
    }

    /// <inheritdoc />
    void IPermitGateListener.Queued(PermitWaiter waiter) =>
        // Reading the clock costs a measurable share of a contended hand-off, so only when someone records wait times.
        waiter.ArrivedAt = ActorQueueTelemetry.LimiterWaitTimeHistogram.Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <inheritdoc />
    void IPermitGateListener.Granting(PermitWaiter waiter, in PermitGrant grant)
    {
        if (waiter is ActorWaiter actor)
        {
            var holder = _holders[actor.ReplyTo];
            holder.Pending.Remove(actor.RequestId);
            holder.LeaseByRequest.Add(actor.RequestId, grant.LeaseId);
            _actorLeases.Add(grant.LeaseId, holder);
        }
    }

    /// <inheritdoc />
    void IPermitGateListener.GrantLost(PermitWaiter waiter, in PermitGrant grant)
    {
        // Only a facade caller can withdraw at the instant of its grant, and it left nothing in the books.
    }

    /// <inheritdoc />
    void IPermitGateListener.Granted(PermitWaiter waiter, in PermitGrant grant)
    {
        ActorQueueTelemetry.LimiterAcquiredCounter.Add(1, _metricTag);
        if (!grant.Waited)
        {
            ActorQueueTelemetry.LimiterWaitTimeHistogram.Record(0d, _metricTag);
        }
        else if (waiter.ArrivedAt != 0)
        {
            // 0: it queued while nobody recorded wait times, so its wait is unknown.
            ActorQueueTelemetry.LimiterWaitTimeHistogram.Record(Stopwatch.GetElapsedTime(waiter.ArrivedAt).TotalMilliseconds, _metricTag);
        }
    }

    /// <inheritdoc />
    Exception IPermitGateListener.Rejecting(PermitWaiter waiter, in PermitRejection rejection)
    {
        if (rejection.Kind == PermitRejectionKind.Disposed)
        {
            return new ObjectDisposedException(nameof(ConcurrencyLimiter), "The concurrency limiter has been disposed.");
        }

        System.Diagnostics.Debug.Assert(rejection.Kind == PermitRejectionKind.QueueFull, "One permit per request, no timeouts: only a full queue rejects.");
        ActorQueueTelemetry.LimiterRejectedCounter.Add(1, _metricTag);
        return new ConcurrencyLimitExceededException(rejection.QueueDepth, rejection.MaxQueued.GetValueOrDefault(), _name ?? waiter.Source);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _gate.RejectAll(PermitRejectionKind.Disposed);
        _counts.Publish(0, 0);
        Meter(0, 0);
        _disposeRequest?.Stopped.TrySetResult();
        base.PostStop();
    }

    private void HandleAcquireRequest(AcquireRequest request)
    {
        request.Releaser = _releaser;
        _gate.Offer(request);
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

        var waiter = new ActorWaiter(requester, message.RequestId, message.Source, GatekeeperReplies.Instance);
        switch (_gate.Offer(waiter))
        {
            case OfferOutcome.Queued:
                holder.Pending.Add(message.RequestId, waiter);
                break;
            case OfferOutcome.Rejected:
                ForgetIfIdle(holder);
                break;
        }
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
        ReleaseOne();
    }

    private void HandleCancelAcquire(GatekeeperProtocol.CancelAcquire message)
    {
        if (!_holders.TryGetValue(Sender, out var holder))
        {
            return;
        }

        if (holder.Pending.Remove(message.RequestId, out var waiter))
        {
            _gate.Withdraw(waiter);
            Sender.Tell(new GatekeeperProtocol.Cancelled(message.RequestId));
            ForgetIfIdle(holder);
            return;
        }

        if (holder.LeaseByRequest.TryGetValue(message.RequestId, out var leaseId))
        {
            // Granted before the cancel arrived: the caller has withdrawn, so the slot comes back here.
            _actorLeases.Remove(leaseId);
            holder.RemoveLease(leaseId);
            ForgetIfIdle(holder);
            ReleaseOne();
        }
    }

    private void HandleGetStatus()
    {
        var snapshot = _gate.Snapshot;
        Sender.Tell(new GatekeeperProtocol.Status((int)snapshot.InUse, snapshot.Waiting, _maxRunning, _gate.MaxQueued, _name));
    }

    private void HandleHolderStopped(HolderStopped message)
    {
        if (!_holders.Remove(message.Holder, out var holder))
        {
            return;
        }

        foreach (var waiter in holder.Pending.Values)
        {
            _gate.Withdraw(waiter);
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
            ReleaseOne();
        }
    }

    private void HandleDispose(DisposeGatekeeper message)
    {
        _disposeRequest = message;
        Context.Stop(Self);
    }

    /// <summary>A slot comes back; the gate hands it to the oldest waiter. A release with none held is a bug elsewhere.</summary>
    private void ReleaseOne()
    {
        if (_slots.InUse == 0)
        {
            _log.Error("A slot was released while none was held; ignored");
            return;
        }

        _gate.Release(PermitDemand.One);
    }

    /// <summary>Adds what changed since the last call to the running and waiting up-down counters.</summary>
    private void Meter(long running, int waiting)
    {
        if (running != _metered.Running)
        {
            ActorQueueTelemetry.LimiterRunningCounter.Add((int)(running - _metered.Running), _metricTag);
        }

        if (waiting != _metered.Waiting)
        {
            ActorQueueTelemetry.LimiterWaitingCounter.Add(waiting - _metered.Waiting, _metricTag);
        }

        _metered = (running, waiting);
    }

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
