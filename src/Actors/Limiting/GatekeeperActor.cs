using ActorQueue.Coordination;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// The one owner of a concurrency limiter's state: a <see cref="PermitGate"/> over a pool of permits, and the books of
/// which actor holds which lease. It handles one message at a time, so the <c>max_queued</c> check and the enqueue
/// are atomic without a lock. As the gate's listener it publishes the counts for the facade before any caller hears
/// of a change, and keeps the telemetry (<see cref="GatekeeperTelemetry"/>). One timer from its clock wakes it at the
/// gate's next deadline. Without rates its state is owned by whoever holds its turn (<see cref="GateTurn"/>): the actor
/// for each of its messages, a facade caller for a contended request or release (<see cref="IGateTurnOwner"/>).
/// </summary>
internal sealed partial class GatekeeperActor : ReceiveActor, IPermitGateListener, IGateTurnOwner
{
    private readonly GatekeeperSettings _settings;

    /// <summary>The permits.</summary>
    private readonly PermitPool _slots;

    /// <summary>The waiters for <see cref="_slots"/> by priority then arrival, facade callers and actors alike.</summary>
    private readonly PermitGate _gate;

    /// <summary>Actors that wait or hold leases, each watched while it has any.</summary>
    private readonly Dictionary<IActorRef, HolderRecord> _holders = new(Runtime.ActorRefComparer.Instance);

    /// <summary>Idle actor callers kept watched before a sweep forgets them (see <see cref="ForgetIfIdle"/>).</summary>
    internal const int IdleHoldersKept = 1024;

    /// <summary>Callers in the books with nothing held or waiting (<see cref="HolderRecord.CountedIdle"/>).</summary>
    private int _idleHolders;

    /// <summary>The ticket of each actor-held lease: its holder, what it was granted, and whether it was settled.</summary>
    private readonly Dictionary<long, HolderTicket> _actorLeases = [];

    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Hands facade leases their way back: into the loan (either kind) while it is open, else here by message.</summary>
    private readonly ILeaseReleaser _releaser;

    private readonly GatekeeperTelemetry _telemetry;

    /// <summary>Where a metrics listener that throws on any of this gatekeeper's measurements is reported: one count for its telemetry and its rates'.</summary>
    private readonly ListenerFailureLog _listenerFailures;

    /// <summary>Tokens granted and settled, the next refill; <c>null</c> without rates.</summary>
    private readonly RateTelemetry? _rateTelemetry;

    /// <summary>Lends slots and rates to callers that need not wait; <c>null</c> without a <see cref="GatekeeperSettings.RateLoan"/>.</summary>
    private readonly RateLender? _rateLender;

    /// <summary>Wakes the actor at the gate's next deadline.</summary>
    private readonly WakeTimer _wakeTimer;

    /// <summary>Whether free permits are lent (<see cref="PermitLoan"/>) after each message: from the start without rates.</summary>
    private bool _lending;

    /// <summary>A <see cref="LendAgain"/> was sent and not yet handled (written in the turn only).</summary>
    private bool _lendAgainAsked;

    /// <summary>Set while the actor restarts after a failed message: its loans are shut, not closed, for the next instance.</summary>
    private bool _restarting;

    /// <summary>Set once a dispose request arrived; completed in <see cref="PostStop"/>.</summary>
    private DisposeGatekeeper? _disposeRequest;

    /// <summary>The gate's counts not yet written for the facade (<see cref="PublishCounts"/>) and last metered, on a line of their own.</summary>
    private readonly TurnCounts _turnCounts = new();

    /// <summary>The turn its state is touched in, without rates (the facade's contended calls run in it); <c>null</c> with rates.</summary>
    private readonly GateTurn? _turn;

    /// <summary>This actor, for what a turn on another thread sends.</summary>
    private readonly IActorRef _self;

    public GatekeeperActor(GatekeeperSettings settings)
    {
        _settings = settings;
        _self = Self;
        _listenerFailures = new ListenerFailureLog(_log, settings.MetricName);
        _telemetry = new GatekeeperTelemetry(settings.MetricName, _listenerFailures);
        _lending = settings.Rates is null;
        _turn = _lending ? settings.Counts.Turn : null;
        _releaser = _turn is not null ? new PermitLoanReleaser(settings.Counts.Loan, _turn, Self, _telemetry)
                  : settings.RateLoan is { } rateLoan ? new LoanReleaser(rateLoan, Self)
                  : new GatekeeperReleaser(Self);
        // A restarted instance starts from the limits in force (resizes included), not the limiter's first ones.
        var (maxRunning, maxQueued) = settings.Counts.Applied ?? (settings.MaxRunning, settings.MaxQueued);
        _slots = new PermitPool(maxRunning);
        if (settings.Counts.Loan.TakeFirstLent() is var lentFirst and > 0)
        {
            // The first instance: the facade lent every permit at construction (held + lent = that limit), and the
            // first turn's reclaim gives back what nobody claimed, so the pool then holds exactly the held count.
            _slots.Take(lentFirst, TimeSpan.Zero);
        }
        else if (settings.Counts.Loan.Running is var held and > 0)
        {
            _slots.Take(held, TimeSpan.Zero); // facade leases held across a restart: the shut word keeps their count (PostStop)
            _turnCounts.Absorb(held); // and the running counter still shows them (CloseState left it there)
        }

        var whenFull = settings.WhenFull == QueueFullMode.EvictLowestPriorityNewest ? QueueFullPolicy.EvictLowestNewest : QueueFullPolicy.RejectNewcomer;
        // A limit with rates is a model API's: its callers queue for tokens, which its RateLimiter adapter's permits are.
        var queuedIn = settings.Rates is null ? PermitMeasure.Permits : PermitMeasure.Tokens;
        // The first instance of a limiter that lent at construction counts its rates' periods from that lend, as the loan did.
        var firstRateLoan = settings.RateLoan?.TakeFirst();
        var startedAt = firstRateLoan?.StartedAt ?? settings.StartedAt;
        IRestingPolicy[] rates = [];
        if (settings.Rates is not null)
        {
            // The first instance makes the rates; a restarted one goes on with them, on the same gate time (LimiterCounts.Rates).
            (rates, var ratesFrom) = settings.Counts.Rates ??= (settings.Rates(), startedAt ?? settings.Time.GetTimestamp());
            startedAt = ratesFrom;
        }

        _gate = new PermitGate(this, [_slots, .. rates], maxQueued, whenFull, GateClock.For(settings.Time), queuedIn, startedAt,
                               // After a restart its leases are numbered on past every number its predecessors gave out:
                               // a lease's number is unique within its limiter (ConcurrencyLease.LeaseId).
                               lastLeaseId: settings.Counts.CarriedOver?.LeaseIdBase ?? 0);
        _rateTelemetry = rates.Length != 0 ? new RateTelemetry(settings.MetricName, rates, settings.Time, gauged: true, _listenerFailures, settings.RateLoan) : null;
        _rateLender = RateLender.For(settings.RateLoan, _slots, rates, settings.Time, _rateTelemetry);
        if (firstRateLoan is not null)
        {
            _rateLender?.TakeFirst(firstRateLoan); // the first instance: what the limiter lent at construction, taken from these fresh rates
        }
        _wakeTimer = new WakeTimer(settings.Time, Self, () => _gate.Now);
        settings.Counts.PublishApplied(maxRunning, maxQueued);

        // AcquireRequest and ReleaseSlot, the contended pair, are dispatched in AroundReceive, before this table.
        Receive<WithdrawWaiter>(message =>
        {
            if (!WithdrawLean(message.Waiter))
            {
                _gate.Withdraw(message.Waiter);
            }
        });
        Receive<GateWake>(_ =>
        {
            _wakeTimer.Fired();
            _gate.Wake();
        });
        Receive<GatekeeperProtocol.Acquire>(HandleAcquire);
        Receive<GatekeeperProtocol.Release>(HandleRelease);
        Receive<GatekeeperProtocol.ReleaseAndAcquire>(HandleReleaseAndAcquire);
        Receive<GatekeeperProtocol.CancelAcquire>(HandleCancelAcquire);
        Receive<GatekeeperProtocol.Settle>(HandleSettle);
        Receive<GatekeeperProtocol.Resize>(message => HandleResize(message, facadeSequence: null));
        Receive<FacadeResize>(message =>
        {
            Arrived(message);
            HandleResize(message.Resize, message.Sequence);
        });
        Receive<GatekeeperProtocol.GetStatus>(_ => HandleGetStatus());
        Receive<HolderStopped>(HandleHolderStopped);
        Receive<CountHolders>(_ => Sender.Tell(_holders.Count));
        Receive<CountLeanWaiters>(_ => Sender.Tell(_fifo.Count));
        Receive<ForgetIdle>(_ => ForgetIdleHolders());
        Receive<SettleTokens>(message =>
        {
            _rateTelemetry?.Settled(message.ActualTokens);
            _gate.Settle(message.Charged, message.ActualTokens);
        });

        // A limit with rates lends through its own loan (RateLoan), which also carries requests, tokens and the step's end.
        Receive<LendAgain>(_ => _lendAgainAsked = false); // taken in the turn: its take reclaimed, its rest lends
        Receive<StartLending>(_ =>
        {
            _lending = settings.Rates is null;
            _rateLender?.Start();
        });
        Receive<DisposeGatekeeper>(HandleDispose);
    }

    public static Props Props(GatekeeperSettings settings) => Akka.Actor.Props.Create(() => new GatekeeperActor(settings));

    public static Props Props(int maxRunning, int? maxQueued, string? name, string metricName, LimiterCounts counts) =>
        Props(new GatekeeperSettings(maxRunning, maxQueued, null, QueueFullMode.RejectNewcomer, name, metricName, counts, TimeProvider.System));

    private void HandleAcquireRequest(AcquireRequest request)
    {
        Arrived(request);
        Offer(request);
    }

    /// <summary>A facade's call by message arrived: if it was announced, it is no longer on its way.</summary>
    private void Arrived(IFacadeOp op)
    {
        if (op.Announced)
        {
            _settings.Counts.Loan.Leave();
        }
    }

    /// <summary>
    /// A facade's request (its lease will go back through this gatekeeper's releaser): queued in the lean FIFO when it
    /// asks the common thing and must wait (<see cref="WaitsLean"/>), else offered to the gate — the lean waiters first
    /// moved into it, so nobody passes them.
    /// </summary>
    private void Offer(AcquireRequest request)
    {
        request.Releaser = _releaser;
        if (WaitsLean(request))
        {
            QueueLean(request);
            return;
        }

        OfferToGate(request);
    }

    /// <summary>Offers <paramref name="waiter"/> to the gate, the lean waiters moved into it first, so nobody passes them.</summary>
    private void OfferToGate(PermitWaiter waiter)
    {
        SpillLean();
        _gate.Offer(waiter);
    }

    /// <summary>
    /// Applies a resize (a facade's, numbered <paramref name="facadeSequence"/>, or an actor's); publishes the limits unless a
    /// newer facade resize already published its own, so that the limits read after a <c>Resize</c> returned never go
    /// back to an older call's.
    /// </summary>
    private void HandleResize(GatekeeperProtocol.Resize message, long? facadeSequence)
    {
        if (message.MaxRunning is < 1 || message.MaxQueued is < 0)
        {
            _log.Warning("Resize to max_running {0}, max_queued {1} ignored: max_running must be >= 1 and max_queued >= 0", message.MaxRunning, message.MaxQueued);
            return;
        }

        SpillLean(); // a facade's resize runs in the turn, not through the actor's dispatch: the gate grants or keeps them by the new limits

        if (message.MaxQueued is { } maxQueued)
        {
            _gate.SetMaxQueued(maxQueued);
        }

        if (message.MaxRunning is { } maxRunning)
        {
            _gate.Resize(_slots, maxRunning);
        }

        _settings.Counts.PublishApplied((int)_slots.Limit, _gate.MaxQueued, facadeSequence);
    }

    private void HandleGetStatus() => Sender.Tell(StatusNow());

    private GatekeeperProtocol.Status StatusNow()
    {
        var snapshot = _gate.Snapshot;
        return new GatekeeperProtocol.Status((int)snapshot.InUse, snapshot.Waiting, (int)_slots.Limit, _gate.MaxQueued, _settings.Name);
    }

    private void HandleDispose(DisposeGatekeeper message)
    {
        _disposeRequest = message;
        Context.Stop(Self);
    }

    /// <summary>Permits come back; the lean FIFO or the gate hands them on in order. Releasing more than is held is a bug elsewhere.</summary>
    private void ReleasePermits(int permits)
    {
        if (_slots.InUse < permits)
        {
            _log.Error("{0} permit(s) were released while {1} were held; ignored", permits, _slots.InUse);
            return;
        }

        if (_fifo.Count != 0)
        {
            _slots.Release(permits, TimeSpan.Zero);
            GrantLeanOrPublish();
            return;
        }

        _gate.Release(permits == 1 ? PermitDemand.One : new PermitDemand(permits));
    }

    /// <summary>
    /// Lends every free permit, only while nobody waits nor is on the way (a claimer must not pass a waiter) and the pool is within its
    /// limit (after a shrink, released permits must reach the pool). The limit is the lower of the pool's and the one a
    /// facade published for a resize still in the mailbox (<see cref="PermitLoan.Suspend"/>).
    /// </summary>
    private void Lend()
    {
        if (_gate.Waiting != 0 || _fifo.Count != 0)
        {
            return; // under contention: read nothing more
        }

        var held = (int)_slots.InUse;
        var limit = (int)Math.Min(_slots.Limit, _settings.Counts.MaxRunning);
        if (!_gate.IsOpen || held > limit || _settings.Counts.Loan.HasAnnounced)
        {
            return;
        }

        var free = Math.Min(limit - held, PermitLoan.MaxLent);
        if (_settings.Counts.Loan.Lend(held, free))
        {
            _slots.Take(free, TimeSpan.Zero);
        }
        else if (!_lendAgainAsked && _settings.Counts.Loan.IsSuspended)
        {
            // A pusher's suspend: only a take answers it (LendAgain); one asked at a time. Under contention someone usually
            // waits and this is not reached; a turn kept busy with nobody waiting (a high limit) may hand each LendAgain
            // over as an actor message, whose push suspends again, so one LendAgain after another circulates until the
            // turn is free: one message at a time, never more.
            _lendAgainAsked = true;
            _self.Tell(LendAgain.Instance, ActorRefs.NoSender);
        }
    }

    /// <summary>Writes the gate's counts as last reported (<see cref="IPermitGateListener.Publish"/>) for the facade, if any are new.</summary>
    private void PublishCounts()
    {
        if (_turnCounts.TryTake(out var running, out var waiting, out var queued))
        {
            _settings.Counts.Publish(running, waiting, queued);
            _settings.Counts.PublishLeases(_gate.LastLeaseId); // every grant reports counts, so it is published with them
        }
    }

    /// <summary>
    /// Sets the timer for the gate's next deadline if it moved; the clock is read only then. Should the limit's clock
    /// (the application's) throw, the waits that needed the timer fail at once (<see cref="UnsetWake"/>), and the next
    /// deadline sets it anew.
    /// </summary>
    private void ArmWake()
    {
        try
        {
            SetWake();
        }
        catch (Exception error)
        {
            var failed = UnsetWake.FailWaiters(_gate, error, _settings.MetricName, SetWake, FailUnwoken);
            _log.ErrorSafely(error, "Limiter {0}: its TimeProvider threw as it set its wake timer; {1} waiter(s) that needed the timer failed", _settings.MetricName, failed);
        }
    }

    /// <summary>Sets the timer for the gate's next deadline; one that threw is set for nothing, so the next call sets it again.</summary>
    private void SetWake()
    {
        try
        {
            _wakeTimer.Arm(_gate.NextWakeAt);
        }
        catch
        {
            _wakeTimer.Fired();
            throw;
        }
    }

    /// <summary>A waiter taken out of the gate because its wake could not be set: failed with <paramref name="failure"/>, counted <c>handler_failed</c>.</summary>
    private void FailUnwoken(PermitWaiter waiter, Exception failure)
    {
        if (waiter is HolderTicket ticket)
        {
            BookRejection(ticket);
        }

        if (!waiter.IsWithdrawn)
        {
            _telemetry.HandlerFailed();
            waiter.Fail(failure);
        }
    }
}
