using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Cluster;

// What a node's limiter agent is started with, and the messages only it and its facade exchange.

/// <summary>A request's wait timeout passed (the agent's timer, keyed by this message).</summary>
internal sealed record WaitExpired(long RequestId);

/// <summary>What a node's limiter agent is started with.</summary>
/// <param name="Name">The limiter's cluster-wide name.</param>
/// <param name="Limit">The limit as this node created it.</param>
/// <param name="HubProxy">The proxy to the singleton hub.</param>
/// <param name="SelfAddress">This node's address, given in announcements.</param>
/// <param name="ClusterCounts">Where the cluster-wide counts go for the facade.</param>
/// <param name="LocalCounts">Where this node's counts go for the facade.</param>
/// <param name="Limits">Where the current (resized) limit goes for the facade.</param>
/// <param name="HelloInterval">How often to say hello again while nothing answers.</param>
internal sealed record LimiterAgentSetup(string Name, ClusterLimit Limit, IActorRef HubProxy, Akka.Actor.Address SelfAddress,
                                        LimiterCounts ClusterCounts, LimiterCounts LocalCounts, LimitMirror Limits, TimeSpan HelloInterval)
{
    /// <summary>A partition's key; <c>null</c> for a plain cluster limiter.</summary>
    public string? Partition { get; init; }

    /// <summary>A partition's idle timeout, for its agent here and its gatekeeper in the singleton; zero for ever.</summary>
    public TimeSpan IdleTimeout { get; init; }

    /// <summary>A model-API limiter's rates, for a gatekeeper this agent's envelope creates; <c>null</c> for a concurrency limit only.</summary>
    public ModelApiLimiterOptions? Rates { get; init; }

    /// <summary>Where the facade's refused attempts ask the agent for a block (<see cref="WantBlock"/>), one at a time.</summary>
    public BlockWish Wish { get; init; } = new();

    /// <summary>
    /// A partition's agent: the facade's requests on their way to the partitions' parent for the keys of its key's stripe
    /// that had no live partition when sent, not yet announced in any agent's loan; it lends nothing while any is.
    /// <c>null</c> otherwise.
    /// </summary>
    public RoutingCount? Routing { get; init; }

    /// <summary>
    /// A concurrency partition's agent: the facade's requests for its key on their way to the parent that found its
    /// partition live (<see cref="LivePartition.OnTheWay"/>); it lends nothing while any is. <c>null</c> otherwise.
    /// </summary>
    public RoutingCount? OnTheWay { get; init; }

    /// <summary>What an agent hands its next instance across a restart (one per agent, never shared by two).</summary>
    public AgentCarry Carry { get; init; } = new();
}

/// <summary>
/// What a restarted agent (it failed outside its handlers) hands its next instance: the last request number its failed
/// instance used, so the next one numbers on past it (the gatekeeper may still know those numbers, until it hears the
/// next instance's announcement), and the books of the leases its callers still hold (<see cref="AgentBooks"/>), so
/// the next instance announces them and the gatekeeper goes on counting them until they are released. Written by the
/// failed instance as it stops, read by the next one as it is made (the same actor: one carry per agent, never shared).
/// </summary>
internal sealed class AgentCarry
{
    /// <summary>The failed instance's last request number; 0 before any restart.</summary>
    public long LastId { get; set; }

    /// <summary>A partition's agent: how many messages its parent routed to the failed instance, counted on by the next.</summary>
    public long Routed { get; set; }

    /// <summary>
    /// The last message a failed instance handed the next one unhandled (<c>LimiterAgentActor.RedeliverUnhandled</c>), until
    /// it reaches its handler: not handed on twice.
    /// </summary>
    public object? Redelivered { get; set; }

    /// <summary>
    /// A dispose two instances failed on before their handler (<c>LimiterAgentActor.AnswerUnhandled</c>), until the next
    /// instance takes it (<see cref="TakeDispose"/>) and stops at once.
    /// </summary>
    public DisposeGatekeeper? Dispose { get; set; }

    /// <summary>How many messages two instances failed on before their handler (each answered or applied) since the agent started.</summary>
    public long Unhandled { get; set; }

    /// <summary>The failed instance's held leases and block, until the next instance takes them (<see cref="TakeBooks"/>).</summary>
    private AgentBooks? _books;

    /// <summary>The next instance, as it starts: the dispose the failed ones could not take, once; <c>null</c> if none.</summary>
    public DisposeGatekeeper? TakeDispose()
    {
        var dispose = Dispose;
        Dispose = null;
        return dispose;
    }

    /// <summary>The failed instance, as it stops: what its callers hold, for the next instance.</summary>
    public void Keep(AgentBooks books) => _books = books;

    /// <summary>The next instance, as it is made: the books the failed one kept, once; <c>null</c> if none.</summary>
    public AgentBooks? TakeBooks()
    {
        var books = _books;
        _books = null;
        return books;
    }
}

/// <summary>
/// The books of a failed agent instance that its callers still depend on: their held leases (a facade's releaser and a
/// local actor's release name the agent, the same actor after the restart, and the lease's id), the node's block with
/// the block leases among them, the settles of model-API leases, and its resizes (numbered on past the failed
/// instance's: numbered from 1 again, the gatekeeper took them for resizes it had applied and dropped them). Waits are
/// not carried: the stop fails them.
/// </summary>
/// <param name="Held">The held leases by request id.</param>
/// <param name="ActorIds">The held leases of local actors: their ids by the actor and its own request id.</param>
/// <param name="FromBlock">The held leases granted from the block.</param>
/// <param name="Block">The permits leased to the node as a block.</param>
/// <param name="KeepBlock">Whether released block leases stay in the block (no recall since the last block grant).</param>
/// <param name="ClaimsSeen">The loan's claim count as of the failed instance's last reclaim (the claims since are metered once).</param>
/// <param name="Settled">The held leases whose tokens were settled.</param>
/// <param name="Unconfirmed">The settles not yet confirmed by the gatekeeper.</param>
/// <param name="LastSettle">The last settle's sequence number.</param>
/// <param name="Limit">The newest limit the failed instance heard of.</param>
/// <param name="LastResizeId">The failed instance's last resize number: the gatekeeper applies an agent's resize once by its number.</param>
/// <param name="Resizes">The resizes not yet heard applied, in order, sent again to the incarnation it announces itself to.</param>
internal sealed record AgentBooks(Dictionary<long, PermitWaiter> Held, Dictionary<(IActorRef Actor, long RequestId), long> ActorIds, HashSet<long> FromBlock,
                                  int Block, bool KeepBlock, long ClaimsSeen, HashSet<long> Settled, Dictionary<long, RemoteSettle> Unconfirmed, long LastSettle,
                                  LimitChanged Limit, long LastResizeId, List<ResizeLimiter> Resizes)
{
    /// <summary>The epoch of the incarnation that granted (and charged) each held lease of a limiter with rates, by request id.</summary>
    public Dictionary<long, long> ChargedBy { get; init; } = [];

    /// <summary>The answers awaited by the callers of the resizes not yet heard applied, by resize id.</summary>
    public Dictionary<long, TaskCompletionSource> ResizeAnswers { get; init; } = [];
}

/// <summary>
/// A synchronous attempt found no permit of the node's block lent: the agent asks the gatekeeper for a block if it
/// holds no unused permit and nobody of its node waits. Local only; at most one on its way (<see cref="BlockWish"/>).
/// </summary>
internal sealed class WantBlock : Akka.Event.IDeadLetterSuppression
{
    public static readonly WantBlock Instance = new();
}

/// <summary>
/// The facade's and the agent's shared word about <see cref="WantBlock"/>: the facade sends one only while none is on its
/// way or being answered and the agent's quiet time has passed; the agent ends each (at once, or after its fetch).
/// </summary>
internal sealed class BlockWish
{
    /// <summary>1 while a wish is on its way to the agent or its fetch to the gatekeeper.</summary>
    private int _open;

    /// <summary>The <see cref="Environment.TickCount64"/> before which the facade sends no wish.</summary>
    private long _quietUntil;

    /// <summary>Facade, after a refused attempt: whether it should send a wish now (and it is then counted on its way).</summary>
    public bool TryOpen() =>
        Volatile.Read(ref _open) == 0 && Environment.TickCount64 >= Volatile.Read(ref _quietUntil) && Interlocked.Exchange(ref _open, 1) == 0;

    /// <summary>Agent: the wish is answered; the facade sends none for <paramref name="quiet"/>.</summary>
    public void Handled(TimeSpan quiet)
    {
        Volatile.Write(ref _quietUntil, Environment.TickCount64 + (long)quiet.TotalMilliseconds);
        Volatile.Write(ref _open, 0);
    }
}

/// <summary>A partition agent's timer: it has held nothing and waited for nothing for its whole idle timeout.</summary>
internal sealed class AgentIdleTick
{
    public static readonly AgentIdleTick Instance = new();
}

/// <summary>A facade lease of a cluster limiter was disposed.</summary>
internal sealed record ReleaseAgentLease(long RequestId) : Akka.Event.IDeadLetterSuppression;

/// <summary>Returns facade leases to their node's agent.</summary>
internal sealed class AgentLeaseReleaser(IActorRef agent) : ILeaseReleaser
{
    /// <inheritdoc />
    public void Release(ConcurrencyLease lease) => agent.Tell(new ReleaseAgentLease(lease.LeaseId), ActorRefs.NoSender);
}

/// <summary>
/// A lease of <paramref name="Permits"/> claimed from the node agent's block loan was released while the loan was shut
/// or closed (so it could not go back into it): the agent keeps its permits in the block, or returns them to the
/// gatekeeper after a recall. Local only.
/// </summary>
internal sealed record ReleaseClaimedLease(int Permits) : Akka.Event.IDeadLetterSuppression;

/// <summary>
/// Gives back leases claimed from a node agent's block loan (<see cref="PermitLoan"/>): into the loan while it is open
/// (one compare-and-swap, no message), else by <see cref="ReleaseClaimedLease"/> to the agent; a lease comes back once,
/// one way or the other (a stopped agent's loan is closed, and the message then goes nowhere: the gatekeeper freed the
/// block with the agent). A lease claimed before its agent's restart is the next instance's, which carries the block
/// (<see cref="AgentCarry"/>): it goes back into the shared loan or to the same actor.
/// </summary>
internal sealed class ClaimedLeaseReleaser(PermitLoan loan, IActorRef agent) : ILeaseReleaser
{
    /// <summary>A lease of <paramref name="permits"/> claimed from the loan for <paramref name="source"/>, or <c>null</c> when that many are not lent now.</summary>
    public ConcurrencyLease? TryClaim(int permits, string source) =>
        loan.TryClaim(permits) ? new ConcurrencyLease(this, loan.NextLeaseId(), source, permits) : null;

    /// <inheritdoc />
    public void Release(ConcurrencyLease lease)
    {
        if (!loan.TryReturn(lease.Permits))
        {
            agent.Tell(new ReleaseClaimedLease(lease.Permits), ActorRefs.NoSender);
        }
    }
}

/// <summary>
/// The facade → its node's agent: a resize whose caller awaits its answer (<see cref="ClusterConcurrencyLimiter.ResizeAsync"/>;
/// a partitioned facade's goes in a <see cref="ClusterPartitionMessage"/>, routed to the key's agent). Local only. <see cref="Applied"/> completes once a <see cref="LimitChanged"/> names the resize applied, and fails if
/// the agent stops first (the node's limiter disposed): a definite answer either way.
/// </summary>
/// <remarks>
/// One that reaches no agent — routed to a partition's agent that stopped on its own before its parent heard of it, or
/// sent to a whole limiter's agent that has stopped — is a dead letter, never taken, so never applied: its caller is
/// failed then (<see cref="Undelivered"/>, by <see cref="ActorQueue.Runtime.UndeliveredRequestResponder"/>). Before, a
/// partition's was left unanswered for ever: the facade watches only the partitions' parent, which lives on
/// (Review/PartitionAgentStoppedResizeRound40Tests).
/// </remarks>
/// <param name="Resize">The resize, sent on as any other.</param>
/// <param name="Applied">The caller's answer; made with <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>.</param>
internal sealed record AwaitedResize(ResizeLimiter Resize, TaskCompletionSource Applied) : ActorQueue.Runtime.IUndeliverableRequest
{
    /// <summary>The limiter's name in words (a partition's with its key: <see cref="PartitionAgentsActor.DisplayName(string, string)"/>), for the caller's error.</summary>
    public string LimiterName { get; init; } = "";

    /// <summary>Where the facade sent it (its agent, or the partitions' parent), for whether its actor system is shutting down; <c>null</c>: not known.</summary>
    public IActorRef? SentTo { get; init; }

    /// <inheritdoc />
    /// <remarks>
    /// On the thread that published the dead letter: <see cref="Applied"/> runs its continuations asynchronously. Its
    /// actor system shutting down, the caller is told so, as <see cref="ObjectDisposedException"/> (<see cref="SystemShutdown"/>).
    /// </remarks>
    public void Undelivered() => Applied.TrySetException(SentTo is not null && SystemShutdown.IsUnderway(SentTo)
        ? new ObjectDisposedException(nameof(ClusterConcurrencyLimiter),
            $"The actor system of cluster limiter '{LimiterName}' is shutting down: its node agent stopped before taking its resize ({Resize.Bounds}), which was not applied.")
        : new InvalidOperationException(
            $"The node agent of cluster limiter '{LimiterName}' stopped before taking its resize ({Resize.Bounds}): it was not applied, and nobody sends it again"));
}

/// <summary>
/// A status ask to a node agent, one per call (a partition's, <see cref="PartitionStatusAsk"/>; a whole limiter's,
/// <see cref="LimiterStatusAsk"/>), with the asker as its sender: the agent asks its gatekeeper as for
/// <see cref="GetLimiterStatus"/>. One that reaches no agent fails its asker as it is published (<see cref="Undelivered"/>),
/// rather than leave it to its ask timeout. Local only.
/// </summary>
/// <param name="LimiterName">The limiter in words (a partition's with its key: <see cref="PartitionAgentsActor.DisplayName(string, string)"/>), for the asker's error.</param>
/// <param name="Asker">Who asked: answered with a <see cref="Status.Failure"/> if it reaches no agent.</param>
internal abstract record AgentStatusAsk(string LimiterName, IActorRef Asker) : ActorQueue.Runtime.IUndeliverableRequest
{
    /// <inheritdoc />
    /// <remarks>On the thread that published the dead letter: only a message to the asker.</remarks>
    public void Undelivered() => Asker.Tell(new Status.Failure(WhyUndelivered()));

    /// <summary>What the asker of one that reached no agent is failed with.</summary>
    protected abstract Exception WhyUndelivered();
}

/// <summary>
/// A partition's status ask (<see cref="PartitionStatus"/>), routed by the parent to the key's agent. One that reaches no
/// agent — routed to an agent that stopped before the parent heard of it — fails its asker as it is published:
/// <see cref="ObjectDisposedException"/> once the facade's disposal has begun or the actor system is shutting down (its
/// agents stop with it: Review/PartitionsParentAskRound41Tests), else <see cref="InvalidOperationException"/> (an agent
/// stopped unasked; the key's next request makes a new one). (Routed as the shared <see cref="GetLimiterStatus"/> before,
/// its asker waited for its ask timeout: Review/AgentStoppedUnaskedRound40SecondReadingTests.)
/// </summary>
/// <param name="LimiterName">The partition's limiter in words (<see cref="PartitionAgentsActor.DisplayName(string, string)"/>).</param>
/// <param name="Asker">Who asked.</param>
/// <param name="Parent">The parent that routed it (a local system actor), for whether its actor system is shutting down.</param>
internal sealed record PartitionStatusAsk(string LimiterName, IActorRef Asker, IActorRef Parent) : AgentStatusAsk(LimiterName, Asker)
{
    /// <summary>The facade's disposal, as the <see cref="PartitionStatus"/> carried it; <c>null</c>: not known.</summary>
    public FacadeDisposal? Disposal { get; init; }

    /// <inheritdoc />
    protected override Exception WhyUndelivered() => SystemShutdown.Disposes(Disposal, Parent)
        ? new ObjectDisposedException(nameof(ClusterPartitionedLimiter),
            $"The cluster limiter '{LimiterName}' is disposed (or its actor system is shutting down): its node agent stopped before taking this status ask.")
        : new InvalidOperationException(
            $"The node agent of cluster limiter '{LimiterName}' stopped before taking this status ask; the key's next request makes a new agent");
}

/// <summary>
/// A whole limiter's status ask (<see cref="ClusterConcurrencyLimiter.GetStatusAsync"/>), sent by the facade to its node's
/// agent. One that reaches no agent (it has stopped: failed for good, stopped by something else, or by the facade's
/// disposal racing the ask) fails its asker as it is published: <see cref="ObjectDisposedException"/> once the facade's
/// disposal has begun or the actor system is shutting down, else <see cref="InvalidOperationException"/>. (Sent as the
/// shared <see cref="GetLimiterStatus"/> before, which dead letters cannot fail per call, its asker waited for its ask
/// timeout: Review/StoppedAgentStatusAskRound41Tests.)
/// </summary>
/// <param name="LimiterName">The limiter's name.</param>
/// <param name="Asker">Who asked.</param>
/// <param name="Disposal">The facade's disposal, read as the ask is found undelivered.</param>
internal sealed record LimiterStatusAsk(string LimiterName, IActorRef Asker, FacadeDisposal Disposal) : AgentStatusAsk(LimiterName, Asker)
{
    /// <inheritdoc />
    protected override Exception WhyUndelivered() =>
        SystemShutdown.Disposes(Disposal, Disposal.Agent)
            ? new ObjectDisposedException(nameof(ClusterConcurrencyLimiter), $"The cluster limiter '{LimiterName}' is disposed (or its actor system is shutting down): its node agent stopped before taking this status ask.")
            : new InvalidOperationException($"The node agent of cluster limiter '{LimiterName}' stopped before taking this status ask, while the limiter was not disposed; this node's limiter takes no more requests");
}
