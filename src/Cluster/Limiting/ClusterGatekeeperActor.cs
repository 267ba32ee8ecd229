using System.Diagnostics.CodeAnalysis;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;
using AkkaCluster = Akka.Cluster.Cluster;
using ClusterEvent = Akka.Cluster.ClusterEvent;

namespace ActorQueue.Cluster;

/// <summary>
/// A cluster limiter's gatekeeper, a child of the singleton hub: the one owner of the cluster-wide permits, in a
/// <see cref="PermitGate"/> like every local limiter's (weights, priorities, no barging, the queue bound). Its callers
/// are the limiter agents, one per node and limiter, which it watches: when a node leaves or is downed, its agent's
/// leases are released and its waits withdrawn.
/// </summary>
/// <remarks>
/// A new incarnation (first start, or after the singleton moved) does not know who holds slots. It starts
/// <see cref="Recovering"/>: it asks every cluster member for its leases and waits (its <see cref="Incarnation"/>'s
/// roll call) and grants nothing until every member has answered or been removed from the cluster, so it never admits
/// more than the limit while holders of the previous incarnation are still running. Then it is <see cref="Serving"/>.
/// The announcements carry each lease's permits (a weighted lease is re-adopted with its weight) and the newest resized
/// limit the agent knows, so a resize survives the hand-over; resizes that arrive while recovering wait until it serves.
/// An agent sends the resizes it made and has not heard applied again after its announcement (one sent to an
/// incarnation that was stopping is lost); one that the limit's <see cref="LimitChanged.Applied"/> already includes (an
/// earlier incarnation applied it and some agent heard so) is not applied again, so it never undoes a newer resize.
/// </remarks>
internal sealed partial class ClusterGatekeeperActor : ReceiveActor, IWithTimers, IWithUnboundedStash, IRecoveryRequests, IPermitGateListener
{
    /// <summary>The limiter's name.</summary>
    private readonly string _name;

    /// <summary>How often members that have not answered are asked again.</summary>
    private readonly TimeSpan _recoverInterval;

    /// <summary>How long it lives on serving with nothing held and nobody waiting (a partition's); zero for ever.</summary>
    private readonly TimeSpan _idleTimeout;

    /// <summary>This incarnation: its epoch, the agents announced to it, and the roll call of the members.</summary>
    private readonly Incarnation _incarnation;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Agents announced to this incarnation, with what each holds and waits for.</summary>
    private readonly Dictionary<IActorRef, AgentRecord> _agents = [];

    /// <summary>
    /// Waits announced while recovering that their agents sent while following no incarnation (a first contact, or
    /// after a loss), in arrival order: never accepted by anyone, so they are offered as newcomers once the gate opens (offered at a closed gate, a small bound would refuse them all).
    /// Also the acquires (that may wait) received while recovering: offered once the gate opens, after the re-announced
    /// waits (accepted earlier) and under any held resize (<see cref="_heldResizes"/>), as a serving gatekeeper would judge
    /// them (judged at once at the closed gate, they met the old bound and limit: <c>Review/GatekeeperLeftoversReviewTests</c>,
    /// and with no queue were all refused: <c>Review/RecoveringGateReviewTests</c>). They are in their agents'
    /// <see cref="AgentRecord.Pending"/>, not in the gate.
    /// </summary>
    private readonly List<RemoteWaiter> _newcomers = [];

    /// <summary>
    /// Resizes received while recovering, with their senders, in arrival order: held back (a member not heard yet may know
    /// a newer one, which they come after) and applied just before the gate opens, so the recovered waits and the
    /// <see cref="_newcomers"/> are granted under them. A node's resize goes out before its later requests, which a new
    /// incarnation keeps aside as newcomers: stashed and applied after the gate opened, the resize came after them, and
    /// they were granted under the old limit (a new limiter or partition resized down before its first acquires ran all
    /// of them: <c>Review/RecoveryRacesReviewTests</c>).
    /// </summary>
    private readonly List<(ResizeLimiter Resize, IActorRef Sender)> _heldResizes = [];

    /// <summary>
    /// Agents asked to announce themselves that have not yet (nor stopped: each is watched). A gatekeeper with rates does
    /// not stop idle while one is silent: the agent follows it once asked, so its stop would make the next incarnation a
    /// successor, whose rates start empty though these were at rest (<see cref="StopIdle"/>).
    /// </summary>
    private readonly HashSet<IActorRef> _asked = [];

    /// <summary>The cluster-wide permits.</summary>
    private readonly PermitPool _slots;

    /// <summary>The gate's limits (<see cref="_slots"/> and the rates, the same objects), to judge an announced wait before it is requeued.</summary>
    private readonly PermitPolicies _limits;

    /// <summary>The waiters for <see cref="_slots"/>, by priority then arrival; closed while recovering.</summary>
    private readonly PermitGate _gate;

    /// <summary>This incarnation's replies, stamped with its epoch.</summary>
    private readonly ClusterReplies _replies;

    /// <summary>Puts the permits in use on the running up-down counter.</summary>
    private readonly UpDownPublisher _runningCounter;

    /// <summary>Puts the number of waiters on the waiting up-down counter.</summary>
    private readonly UpDownPublisher _waitingCounter;

    /// <summary>The metric tag naming this limiter.</summary>
    private readonly KeyValuePair<string, object?> _metricTag;

    /// <summary>Where a metrics listener that throws on any of this gatekeeper's measurements is reported (inside a message, it would restart the gatekeeper).</summary>
    private readonly ListenerFailureLog _listenerFailures;

    /// <summary>Grants (calls, permits, wait times) and rejections by reason, under the local limiters' instrument names.</summary>
    private readonly GatekeeperTelemetry _telemetry;

    /// <summary>The limit as of the newest resize this incarnation knows (version 0: none, the limit it was created with).</summary>
    private LimitChanged _limit;

    public ClusterGatekeeperActor(string name, int maxRunning, int? maxQueued, QueueFullMode whenFull, TimeSpan idleTimeout, TimeSpan recoverInterval,
                                  ModelApiLimiterOptions? rates, TimeProvider time)
    {
        _name = name;
        _recoverInterval = recoverInterval;
        _idleTimeout = idleTimeout;
        _incarnation = new Incarnation(this, awaitEveryMember: true);
        _replies = new ClusterReplies(_incarnation.Epoch, StampRates);
        _limit = LimitChanged.None with { MaxRunning = maxRunning, MaxQueued = maxQueued };
        _slots = new PermitPool(maxRunning);
        _rates = rates is null ? [] : RateGatekeeper.Policies(rates);
        _listenerFailures = new ListenerFailureLog(_log, name);
        var metricName = PartitionAgentsActor.MetricName(name); // a partition's measurements are its limiter's: no key in a tag
        _rateTelemetry = rates is null ? null : new RateTelemetry(metricName, _rates, time, gauged: metricName == name, _listenerFailures);
        _limits = new PermitPolicies([_slots, .. _rates]);
        _gate = new PermitGate(this, [_slots, .. _rates], maxQueued,
            whenFull == QueueFullMode.EvictLowestPriorityNewest ? QueueFullPolicy.EvictLowestNewest : QueueFullPolicy.RejectNewcomer, time);
        _wakeTimer = new WakeTimer(time, Self, () => _gate.Now);
        _gate.Close();
        _metricTag = new(ActorQueueTelemetry.LimiterNameTag, metricName);
        _telemetry = new GatekeeperTelemetry(metricName, _listenerFailures);
        _runningCounter = new(ActorQueueTelemetry.LimiterRunningCounter, _metricTag, _listenerFailures);
        _waitingCounter = new(ActorQueueTelemetry.LimiterWaitingCounter, _metricTag, _listenerFailures);
        Become(Recovering);
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The requests waiting: in the gate, and those a recovering incarnation keeps aside for its gate's opening (<see cref="_newcomers"/>).</summary>
    private int Waiting => _gate.Waiting + _newcomers.Count;

    /// <inheritdoc />
    public IStash Stash { get; set; } = null!;

    public static Props Props(string name, int maxRunning, int? maxQueued, QueueFullMode whenFull, TimeSpan idleTimeout, TimeSpan recoverInterval,
                              ModelApiLimiterOptions? rates = null, TimeProvider? time = null) =>
        Akka.Actor.Props.Create(() => new ClusterGatekeeperActor(name, maxRunning, maxQueued, whenFull, idleTimeout, recoverInterval, rates, time ?? TimeProvider.System));

    /// <inheritdoc />
    protected override void PreStart()
    {
        AkkaCluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.MemberRemoved));
        _log.Info("Cluster gatekeeper {0} (limit {1}) started with epoch {2}; recovering leases from the members", _name, _slots.Limit, _incarnation.Epoch);
    }

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        var handled = base.AroundReceive(receive, message);
        RecallBlocksIfContended();
        AssertInvariants();
        if (_idleTimeout > TimeSpan.Zero)
        {
            // Every message restarts the wait: it stops only after a whole idle timeout without any.
            if (_gate.IsOpen && _slots.InUse == 0 && _gate.Waiting == 0)
            {
                Timers.StartSingleTimer(IdleTick.Instance, IdleTick.Instance, _idleTimeout);
            }
            else
            {
                Timers.Cancel(IdleTick.Instance);
            }
        }

        _runningCounter.Publish((int)_slots.InUse);
        _waitingCounter.Publish(Waiting);
        AfterRates();
        return handled;
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        // The next incarnation adds what it recovers; the agents re-announce their waits to it, so none is failed here.
        _runningCounter.Publish(0);
        _waitingCounter.Publish(0);
        _wakeTimer.Dispose();
        _rateTelemetry?.Dispose();
        AkkaCluster.Get(Context.System).Unsubscribe(Self);
        base.PostStop();
    }

    /// <summary>
    /// A new incarnation until every member answered its roll call: it learns leases and waits from the announcements,
    /// keeps new requests that may wait aside for its gate's opening (<see cref="_newcomers"/>; one that may not wait is
    /// rejected) and takes back released permits, but grants nothing (its gate is closed). An
    /// agent's block fetch, which may not wait, is kept until it serves: refused here, a fresh node whose agent announced
    /// before the membership was known would get no block for its first attempt.
    /// </summary>
    private void Recovering()
    {
        Receive<ClusterEvent.CurrentClusterState>(HandleClusterState);
        Receive<ClusterEvent.MemberRemoved>(removed => HandleMemberRemoved(removed.Member.Address));
        Receive<RecoverTick>(_ => _incarnation.AskAgain());
        Receive<NoLimiterAgent>(message => { if (_incarnation.NoAgent(message.Epoch, message.Node)) { ServeIfRecovered(); } });
        Receive<ActorIdentity>(HandleHostIdentity);
        Receive<LimiterAnnounce>(message => { if (Adopt(message) && _incarnation.Answered(message.Node)) { ServeIfRecovered(); } });
        Receive<ResizeLimiter>(message => _heldResizes.Add((message, Sender))); // a member not heard yet may know a newer resize: this one comes after it
        Receive<RemoteSettle>(_ => Stash.Stash()); // the rates' starting state is known only once every member has answered
        Receive<RemoteAcquire>(message => message.Fetch, _ => Stash.Stash()); // a block goes out only through an open gate: answered once serving
        ReceiveCommon(recovering: true);
    }

    /// <summary>Every member has answered: permits are granted in order; agents that start later announce themselves as they come.</summary>
    private void Serving()
    {
        Receive<LimiterAnnounce>(message => { Adopt(message); });
        Receive<ResizeLimiter>(message => HandleResize(message, Sender));
        Receive<RemoteSettle>(HandleSettle);
        Receive<IdleTick>(_ => StopIdle());

        // Roll-call answers still in flight when it ended change nothing.
        Receive<ClusterEvent.MemberRemoved>(_ => { });
        Receive<RecoverTick>(_ => { });
        Receive<NoLimiterAgent>(_ => { });
        Receive<ActorIdentity>(_ => { });
        ReceiveCommon(recovering: false);
    }

    /// <summary>What both behaviours do alike: the gate's open or closed state makes the difference.</summary>
    private void ReceiveCommon(bool recovering)
    {
        Receive<RemoteAcquire>(HandleAcquire);
        Receive<RemoteRelease>(message => { Release(message.Epoch, message.RequestId); }); // block bodies: a bool lambda would mean "unhandled" when false
        Receive<RemoteCancel>(HandleCancel);
        Receive<BlockReturn>(HandleBlockReturn);
        Receive<Terminated>(message => Forget(message.ActorRef));
        Receive<GateWake>(_ =>
        {
            _wakeTimer.Fired();
            _gate.Wake();
        });
        Receive<AgentHello>(hello => _incarnation.Hello(hello.Epoch, Sender));
        Receive<GetLimiterStatus>(_ => Sender.Tell(new ClusterLimiterStatus(
            _name, (int)_slots.InUse, Waiting, (int)_slots.Limit, _gate.MaxQueued, recovering, _agents.Count)
        {
            RequestsAvailable = Available(PermitMeasure.Calls), TokensAvailable = Available(PermitMeasure.Tokens),
        }));
    }

    /// <summary>
    /// A partition's gatekeeper with nothing held and nobody waiting for its idle timeout stops, so partitions do not
    /// accumulate on the singleton. A request racing with the stop is not lost: its agent sees the gatekeeper stop and
    /// says hello again, and the next incarnation (created by the hub on that message) recovers it from the agents.
    /// </summary>
    private void StopIdle()
    {
        // With rates only at rest, after its last agent and with no agent asked and silent: an incarnation made anew then
        // starts full, as this one is now (an agent that followed this one would make it a successor, which starts empty).
        var rested = _rates.Length == 0 || (_agents.Count == 0 && _asked.Count == 0 && Array.TrueForAll(_rates, rate => rate.RestsAt(_gate.Now) <= _gate.Now));
        if (_slots.InUse == 0 && _gate.Waiting == 0 && rested)
        {
            _log.Debug("Cluster gatekeeper {0}: idle for {1}; stopping", _name, _idleTimeout);
            Context.Stop(Self);
        }
    }

    /// <summary>
    /// A new limit: held permits stay held; waiters that can never fit now fail; waiters that fit now are granted. A
    /// resize its agent numbered is applied once: sent again (after a hand-over, or through the hub and then directly),
    /// one this limit already includes is not applied again, or it would undo a newer resize of another node; its agent
    /// is told the limit, which names it applied, so it stops sending it.
    /// </summary>
    private void HandleResize(ResizeLimiter message, IActorRef sender)
    {
        if (message.Id > 0 && _limit.Applied.IdOf(sender) >= message.Id)
        {
            sender.Tell(_limit);
            return;
        }

        var version = _limit.Version < long.MaxValue ? _limit.Version + 1 : long.MaxValue; // a peer's highest version stops there
        ApplyLimit(new LimitChanged(version, message.MaxRunning ?? _limit.MaxRunning, message.MaxQueued ?? _limit.MaxQueued)
        {
            Applied = message.Id > 0 ? _limit.Applied.With(sender, message.Id) : _limit.Applied,
        });
        if (message.Id > 0 && !_agents.ContainsKey(sender))
        {
            sender.Tell(_limit); // not announced here (it sent through the hub): told anyway, so it stops sending it
        }
    }

    /// <summary>
    /// Makes <paramref name="limit"/> the limit and tells every agent. The agents it names as resizers are watched, so
    /// that one which stops leaves <see cref="LimitChanged.Applied"/> (<see cref="Forget"/>).
    /// </summary>
    private void ApplyLimit(LimitChanged limit)
    {
        if (limit.MaxRunning < _limit.MaxRunning)
        {
            RecallBlocks(); // fewer permits: the unused ones leased out come back first
        }

        _limit = limit;
        foreach (var (resizer, _) in limit.Applied.Entries)
        {
            Context.Watch(resizer);
        }

        _gate.SetMaxQueued(limit.MaxQueued);
        _gate.Resize(_slots, limit.MaxRunning);
        _log.Info("Cluster gatekeeper {0}: limit {1}, max queued {2} (resize {3})", _name, limit.MaxRunning, limit.MaxQueued?.ToString() ?? "unbounded", limit.Version);
        foreach (var agent in _agents.Keys)
        {
            agent.Tell(limit);
        }
    }

    /// <summary>An agent stopped (its node left or was downed, or its limiter was disposed): its waits go, its leases come back.</summary>
    private void Forget(IActorRef stopped)
    {
        _incarnation.Forget(stopped);
        _asked.Remove(stopped);
        _limit = _limit with { Applied = _limit.Applied.Without(stopped) }; // its resizes cannot come again
        if (!_agents.Remove(stopped, out var agent))
        {
            return;
        }

        _gate.WithdrawWhere(waiter => ((RemoteWaiter)waiter).Agent == agent);
        _newcomers.RemoveAll(waiter => waiter.Agent == agent);
        agent.Pending.Clear();
        if (agent.Held.Count == 0 && agent.Block == 0)
        {
            return;
        }

        var permits = agent.Held.Values.Sum(held => held.Permits) + agent.Block;
        _log.Info("Cluster gatekeeper {0}: agent {1} is gone; released its {2} lease(s) and block of {3}: {4} permit(s)",
            _name, stopped.Path, agent.Held.Count, agent.Block, permits);
        agent.Held.Clear();
        agent.Block = 0;
        _gate.Release(new PermitDemand(permits));
    }

    /// <summary>Whether a message belongs to this incarnation; if not, its sender is asked to announce itself and the message is dropped.</summary>
    private bool IsCurrent(long epoch, [NotNullWhen(true)] out AgentRecord? agent)
    {
        agent = null;
        return _incarnation.Admit(epoch, Sender) && _agents.TryGetValue(Sender, out agent);
    }
}
