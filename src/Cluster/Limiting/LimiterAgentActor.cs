using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

/// <summary>
/// A cluster limiter's agent on one node: the local end of the cluster gatekeeper. Facade callers and local
/// actors (speaking <see cref="GatekeeperProtocol"/>) talk to it; it numbers their requests, forwards them to the
/// gatekeeper, and keeps what the node waits for and holds, so that it can announce exactly that to a new
/// gatekeeper incarnation.
/// </summary>
/// <remarks>A handler that throws costs the agent nothing but that message (<see cref="ReceiveKeepingBooks"/>). Not sealed: tests hold back its answers to recover requests from a subclass's <c>AroundReceive</c>, so the agent carries no test hook.</remarks>
internal partial class LimiterAgentActor : ReceiveActor, IWithTimers, IWithUnboundedStash
{
    /// <summary>The limiter's cluster-wide name.</summary>
    private readonly string _name;

    /// <summary>The limiter's name in error messages: a partition's names its limiter and its key in words.</summary>
    private readonly string _displayName;

    /// <summary>What a full queue does with a newcomer, for a gatekeeper this agent's envelope creates.</summary>
    private readonly QueueFullMode _whenFull;
    private readonly Akka.Actor.Address _selfAddress;

    /// <summary>The limit as of the newest resize this agent heard of; published to the facade through <see cref="_limits"/>.</summary>
    private LimitChanged _limit;

    /// <summary>Where the facade reads <see cref="_limit"/>.</summary>
    private readonly LimitMirror _limits;

    /// <summary>The cluster-wide counts as of the last reply from the gatekeeper.</summary>
    private readonly LimiterCounts _clusterCounts;

    /// <summary>This node's exact counts.</summary>
    private readonly LimiterCounts _localCounts;

    /// <summary>Gives facade leases back to this agent.</summary>
    private readonly ILeaseReleaser _releaser;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Reports a metrics listener that throws on this agent's measurements (at each power of two of its failures).</summary>
    private readonly ListenerFailureLog _listenerFailures;

    /// <summary>How often to say hello again while nothing answers (the proxy may drop a first contact).</summary>
    private readonly TimeSpan _helloInterval;

    /// <summary>
    /// Requests waiting for a grant, by the agent's request id (ids ascend with arrival): facade requests
    /// (<see cref="ClusterAcquireRequest"/>) and local actors' protocol requests (<see cref="ActorWaiter"/>), answered
    /// alike through <see cref="PermitWaiter"/>; with their demand summed, for the facade's queued count.
    /// </summary>
    private readonly PendingRequests _pending;

    /// <summary>
    /// Pending requests (and some since answered, until the next announcement) whose acquire went out while the agent
    /// followed no incarnation: through the hub with epoch 0 or a lost incarnation's, which every live one drops.
    /// </summary>
    private readonly HashSet<long> _unsent = [];

    /// <summary>Granted requests still held, by request id; added by <see cref="Hold"/>, removed by <see cref="ReleaseHeld"/>.</summary>
    private readonly Dictionary<long, PermitWaiter> _held = [];

    /// <summary>The permits of the leases in <see cref="_held"/>: this node's running count, as the gatekeeper counts permits.</summary>
    private int _heldPermits;

    /// <summary>The id of each waiting facade request, for its cancellation.</summary>
    private readonly Dictionary<PermitWaiter, long> _idByFacadeRequest = new(ReferenceEqualityComparer.Instance);

    /// <summary>The id of each actor request, by the actor and its own request id.</summary>
    private readonly Dictionary<(IActorRef Actor, long RequestId), long> _idByActorRequest = [];

    /// <summary>The last request id given out; ids are never reused.</summary>
    private long _lastId;

    /// <summary>How long an actor caller waits when its request names no timeout; <c>null</c> for ever.</summary>
    private readonly TimeSpan? _defaultWaitTimeout;

    /// <summary>The gatekeeper incarnation this agent has announced itself to.</summary>
    private readonly SingletonLink _gatekeeper;

    /// <summary>A partition's agent: how long it lives on with nothing held and nobody waiting; zero for ever.</summary>
    private readonly TimeSpan _idleTimeout;

    /// <summary>A partition's agent: its key, told to the parent when it is idle.</summary>
    private readonly string? _partition;

    /// <summary>How many messages the parent routed here (requests, cancellations, status asks), so the parent can tell whether one is still on its way.</summary>
    private long _routed;

    /// <summary>Set once a dispose request arrived; completed in PostStop.</summary>
    private DisposeGatekeeper? _disposeRequest;

    /// <summary>What failed this agent outside its handlers (to its supervisor), for the waiters its stop fails; <c>null</c> otherwise.</summary>
    private Exception? _failedWith;

    /// <summary>Whether the current message's handler may have run (set once the loan is reclaimed); what fails before it is redelivered (<see cref="RedeliverUnhandled"/>).</summary>
    private bool _handling;

    /// <summary>Set as a restart begins: its <see cref="PostStop"/> shuts the loan rather than close it (<see cref="PreRestart"/>).</summary>
    private bool _restarting;

    /// <summary>What this agent hands its next instance across a restart.</summary>
    private readonly AgentCarry _carry;

    public LimiterAgentActor(LimiterAgentSetup setup)
    {
        _helloInterval = setup.HelloInterval;
        _name = setup.Name;
        _displayName = PartitionAgentsActor.DisplayName(setup.Name);
        _listenerFailures = new ListenerFailureLog(_log, _name);
        _whenFull = setup.Limit.WhenFull;
        _defaultWaitTimeout = setup.Limit.WaitTimeout;
        _limit = LimitChanged.None with { MaxRunning = setup.Limit.MaxRunning, MaxQueued = setup.Limit.MaxQueued };
        _limits = setup.Limits;
        _gatekeeper = new SingletonLink(setup.HubProxy, message => new LimiterEnvelope(_name, _limit.MaxRunning, _limit.MaxQueued, message)
        {
            WhenFull = _whenFull, IdleTimeout = setup.IdleTimeout, Rates = setup.Rates,
        });
        _selfAddress = setup.SelfAddress;
        _clusterCounts = setup.ClusterCounts;
        _localCounts = setup.LocalCounts;
        _pending = new PendingRequests(weighTokens: setup.Rates is not null);
        _releaser = new AgentLeaseReleaser(Self);
        _wish = setup.Wish;
        _idleTimeout = setup.IdleTimeout;
        _partition = setup.Partition;
        _routing = setup.Routing;
        _onTheWay = setup.OnTheWay;
        _carry = setup.Carry;
        _lastId = _carry.LastId; // past the failed instance's numbers after a restart
        _routed = _carry.Routed;
        TakeOver(_carry.TakeBooks()); // and the leases its callers hold
        _blocks = setup.Rates is null // a plain limiter's or a concurrency partition's; a rate is spent per grant
            ? LimiterBlockSettings.From(Context.System.Settings.Config)
            : LimiterBlockSettings.Off;

        Receive<ClusterAcquireRequest>(HandleFacadeAcquire);
        Receive<WithdrawWaiter>(HandleFacadeCancel);
        Receive<ReleaseAgentLease>(message => ReleaseHeld(message.RequestId));
        Receive<ReleaseClaimedLease>(HandleClaimedRelease);
        Receive<GatekeeperProtocol.Acquire>(HandleActorAcquire);
        Receive<GatekeeperProtocol.Release>(message => ReleaseActorLease(message, Sender));
        Receive<GatekeeperProtocol.ReleaseAndAcquire>(HandleActorReleaseAndAcquire);
        Receive<GatekeeperProtocol.Resize>(HandleActorResize);
        Receive<GatekeeperProtocol.CancelAcquire>(message => CancelActorRequest(message, Sender));
        Receive<GatekeeperProtocol.Settle>(message => SettleActorLease(message, Sender));
        Receive<SettleTokens>(HandleFacadeSettle);
        Receive<RemoteSettled>(HandleSettled);
        Receive<GatekeeperProtocol.GetStatus>(_ => TellStatus());
        Receive<ResizeLimiter>(Resize);
        Receive<AwaitedResize>(HandleAwaitedResize);
        Receive<LimitChanged>(HandleLimitChanged);
        Receive<WaitExpired>(HandleWaitExpired);
        Receive<AgentIdleTick>(_ =>
        {
            if (IsIdle)
            {
                Context.Parent.Tell(new PartitionIdle(_partition!, _routed));
            }
        });
        Receive<GetLimiterStatus>(message => _gatekeeper.Send(message, Sender));
        Receive<AgentStatusAsk>(_ => _gatekeeper.Send(GetLimiterStatus.Instance, Sender));
        Receive<RemoteGranted>(HandleGranted);
        Receive<RemoteQueued>(HandleQueued);
        Receive<RemoteRejected>(HandleRejected);
        Receive<RecoverLimiter>(message => SingletonBinding.Check(Context, message, HandleRecover));
        Receive<CheckedRecovery<RecoverLimiter>>(message => HandleRecover(message.Request));
        Receive<BlockRecall>(HandleBlockRecall);
        Receive<BlockLingerTick>(_ => HandleBlockLinger());
        Receive<WantBlock>(_ => HandleWantBlock());
        Receive<HelloTick>(_ => HelloIfUnanswered());
        Receive<Terminated>(HandleTerminated);
        Receive<DisposeGatekeeper>(message =>
        {
            _disposeRequest = message;
            Context.Stop(Self);
        });
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Whether it holds nothing (no block either), nothing waits, no block fetch is on its way, and no resize waits to be applied.</summary>
    private bool IsIdle => _pending.Count == 0 && _held.Count == 0 && _block == 0 && _fetchId == 0 && _resizes.Count == 0;

    /// <inheritdoc />
    /// <remarks>
    /// What throws outside the handler (the agent's own books: a defect) goes to the supervisor, which restarts the agent
    /// (a plain limiter's and a partition's alike); the waiters the stop fails are told why, the leases held are carried.
    /// </remarks>
    protected override bool AroundReceive(Receive receive, object message)
    {
        _handling = false;
        try
        {
            return ReceiveLendingBlock(receive, message);
        }
        catch (Exception error)
        {
            _failedWith = error;
            RedeliverUnhandled(message, error);
            throw;
        }
    }

    /// <summary>One message between the block loan's reclaim and its lend, the idle timer restarted after it.</summary>
    private bool ReceiveLendingBlock(Receive receive, object message)
    {
        if (message is ClusterAcquireRequest or WithdrawWaiter or GetLimiterStatus or AgentStatusAsk)
        {
            _routed++;
        }

        ReclaimBlockLoan();
        _handling = true;
        if (ReferenceEquals(message, _carry.Redelivered))
        {
            _carry.Redelivered = null; // reached its handler: the same object failed on later (the shared GetLimiterStatus) is handed on again
        }

        var handled = ReceiveKeepingBooks(receive, message); // a handler that throws does not restart the agent
        LendBlock();
        if (_idleTimeout > TimeSpan.Zero)
        {
            // Every message restarts the wait: the parent hears of it only after a whole idle timeout without any.
            if (IsIdle)
            {
                Timers.StartSingleTimer(AgentIdleTick.Instance, AgentIdleTick.Instance, _idleTimeout);
            }
            else
            {
                Timers.Cancel(AgentIdleTick.Instance);
            }
        }

        return handled;
    }

    /// <inheritdoc />
    protected override void PreStart() => Timers.StartPeriodicTimer(HelloTick.Instance, HelloTick.Instance, _helloInterval);

    public static Props Props(LimiterAgentSetup setup) => Akka.Actor.Props.Create(() => new LimiterAgentActor(setup));

    private void HandleFacadeAcquire(ClusterAcquireRequest request)
    {
        if (request.Announced)
        {
            _localCounts.Loan.Leave(); // arrived: the loan may be lent again once it is answered or queued here
        }

        if (request.IsWithdrawn)
        {
            return; // cancelled before it got here
        }

        request.Releaser = _releaser;
        var id = ++_lastId;
        _idByFacadeRequest.Add(request, id);
        AddPending(id, request);
    }

    private void HandleFacadeCancel(WithdrawWaiter message)
    {
        if (_idByFacadeRequest.Remove(message.Waiter, out var id) && _pending.Remove(id))
        {
            Timers.Cancel(new WaitExpired(id));
            PublishLocal();
            Send(new RemoteCancel(_gatekeeper.Epoch, id));
        }
    }

    /// <summary>
    /// Drops a request that ended without a grant from the books that find it. One booked nowhere (<paramref name="id"/>
    /// 0) changed no count, so nothing is published: an instance that failed before its loan's reclaim
    /// (<see cref="AnswerUnhandled"/>) would publish a held count without the leases claimed from the loan, and their
    /// permits would be granted again while they are held (Review/AgentFailsTwiceReviewTests).
    /// </summary>
    private void Forget(long id, PermitWaiter request)
    {
        if (id != 0)
        {
            Timers.Cancel(new WaitExpired(id));
            PublishLocal();
        }

        _idByFacadeRequest.Remove(request);
        if (request is ActorWaiter actor)
        {
            _idByActorRequest.Remove((actor.ReplyTo, actor.RequestId));
        }
    }

    private void AddPending(long id, PermitWaiter request)
    {
        if (TryGrantFromBlock(id, request))
        {
            return;
        }

        _pending.Add(id, request);
        PublishLocal();
        var timeout = request.Timeout;
        if (timeout is { } wait && wait > TimeSpan.Zero && wait != Timeout.InfiniteTimeSpan)
        {
            Timers.StartSingleTimer(new WaitExpired(id), new WaitExpired(id), wait); // on this node: the caller's clock, across hand-overs
        }

        if (_gatekeeper.Current is null)
        {
            _unsent.Add(id);
        }

        Send(new RemoteAcquire(_gatekeeper.Epoch, id, request.Source)
        {
            Permits = request.Demand.Permits, Priority = request.Priority, MayWait = timeout != TimeSpan.Zero, Tokens = request.Demand.Tokens,
            Block = TakesBlock(request),
        });
    }

    /// <summary>Books a granted request as held, with its permits.</summary>
    private void Hold(long id, PermitWaiter request)
    {
        _held.Add(id, request);
        _heldPermits += request.Demand.Permits;
    }

    private void ReleaseHeld(long id)
    {
        if (_held.Remove(id, out var released))
        {
            _heldPermits -= released.Demand.Permits;
            _settled.Remove(id);
            _chargedBy.Remove(id);
            PublishLocal();
            if (!ReleaseToBlock(id))
            {
                Send(new RemoteRelease(_gatekeeper.Epoch, id));
            }
        }
    }

    private void Send(object message) => _gatekeeper.Send(message, Self);

    /// <summary>The cluster-wide counts a reply of the gatekeeper carries, as a waiter is told them.</summary>
    private PermitSnapshot ClusterSnapshot(int running, int waiting) => new(running, Math.Max(0, _limit.MaxRunning - running), waiting);

    /// <summary>
    /// This node's counts for the facade: the permits it holds (a weighted lease counts its permits, as cluster-wide;
    /// leases claimed from the block's loan included), the requests it waits for, and what they ask for (their tokens
    /// with rates, else their permits: a <c>RateLimiter</c> adapter's queued count, in its permits).
    /// </summary>
    private void PublishLocal() => _localCounts.Publish(_heldPermits + _claimed, _pending.Count, _pending.Demand);
}
