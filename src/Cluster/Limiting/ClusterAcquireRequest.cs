using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A facade caller's request to a cluster limiter's node agent: its own message and its own completion
/// (<see cref="FacadeWaiter{TResult}"/>), with what it asks (permits, priority, wait timeout). The agent stamps
/// <see cref="Releaser"/> on arrival.
/// </summary>
internal sealed class ClusterAcquireRequest(string source, PermitDemand demand, int priority, TimeSpan? timeout, IActorRef agent)
    : FacadeWaiter<ConcurrencyLease>(agent)
{
    /// <inheritdoc />
    public override string Source { get; } = source;

    /// <inheritdoc />
    public override PermitDemand Demand { get; } = demand;

    /// <inheritdoc />
    public override int Priority { get; } = priority;

    /// <inheritdoc />
    public override TimeSpan? Timeout { get; } = timeout;

    /// <summary>
    /// The caller's name for what it asked (<c>permits</c>, <c>estimatedTokens</c>, a <c>RateLimiter</c>'s
    /// <c>permitCount</c>), for the error when the gatekeeper finds it more than it can ever grant; <c>null</c> for the
    /// facade's own name.
    /// </summary>
    public string? ArgumentName { get; init; }

    /// <summary>The partition key, for a partitioned limiter's request; <c>null</c> otherwise.</summary>
    public string? Partition { get; init; }

    /// <summary>
    /// When a limit over time could grant it, counting the demand queued ahead, if the gatekeeper rejected it; <c>null</c>
    /// when no rate knows (and for a wait timeout, which runs on the caller's node). Set by the agent before it fails the
    /// request, read by the caller after the failure.
    /// </summary>
    public TimeSpan? RetryAfter { get; set; }

    /// <summary>
    /// Whether the facade announced it in its agent's block loan before it sent it (<see cref="PermitLoan.Announce"/>),
    /// so that no synchronous claim passes it on its way; the agent counts it off as it arrives.
    /// </summary>
    public bool Announced { get; init; }

    /// <summary>
    /// A partitioned limiter's announced request: where the facade counted it on its way to the partitions' parent (its
    /// key's live partition, or its stripe), which the parent counts it off once it announced it in the agent's loan.
    /// </summary>
    public RoutingCount? Routing { get; init; }

    /// <summary>Where the granted lease goes back; set by the agent before it can be granted.</summary>
    public ILeaseReleaser? Releaser { get; set; }

    /// <summary>
    /// The disposal of the facade that sent it, and the limiter's name (a partition's limiter's: <see cref="Partition"/>
    /// names the key), so that an undelivered request of a limiter not disposed says what happened; <c>null</c>: failed
    /// as disposed.
    /// </summary>
    public (FacadeDisposal Disposal, string Name)? SentBy { get; init; }

    /// <inheritdoc />
    /// <remarks>
    /// Its agent had stopped or stopped before taking it: as the facade was disposed, or else on its own (a partition's
    /// agent a routed message stopped, whose key's next request makes a new one; an agent that could not be made
    /// again). The caller is told which: before, a request routed to a partition's agent that stopped on its own failed
    /// with <see cref="ObjectDisposedException"/> for a limiter that was not disposed and went on
    /// (Review/PartitionAgentStoppedResizeRound40Tests).
    /// </remarks>
    public override void Undelivered() => Fail(AgentStopped(taken: false));

    /// <summary>
    /// What its caller is failed with as its agent stops neither failed nor by the facade's disposal (<see cref="Undelivered"/>,
    /// or waiting in the agent, <paramref name="taken"/>): <see cref="InvalidOperationException"/> naming the limiter while
    /// its facade is not disposed and the actor system runs, <see cref="ObjectDisposedException"/> once the facade is disposed
    /// or when no facade sent it, and <see cref="ObjectDisposedException"/> naming the limiter when the actor system is
    /// shutting down (<see cref="SystemShutdown"/>): the whole node is going away. (A request waiting in an agent stopped
    /// unasked was failed as disposed before: Review/AgentStoppedUnaskedRound40SecondReadingTests; one waiting in an agent
    /// the system's shutdown stopped was told the limiter was not disposed: Review/SystemShutdownAgentRound41Tests.)
    /// </summary>
    internal Exception AgentStopped(bool taken)
    {
        if (SentBy is not ({ IsDisposed: false }, var name))
        {
            return new ObjectDisposedException(nameof(ClusterConcurrencyLimiter), "The cluster concurrency limiter has been disposed.");
        }

        var limiter = Partition is null ? name : PartitionAgentsActor.DisplayName(name, Partition);
        var stopped = taken ? $"stopped with this request of {Source} ({Demand.Permits} permit(s)) waiting" : $"stopped before taking this request of {Source} ({Demand.Permits} permit(s))";
        return SystemShutdown.IsUnderway(Server)
            ? new ObjectDisposedException(nameof(ClusterConcurrencyLimiter),
                $"The actor system of cluster limiter '{limiter}' is shutting down: its node agent {stopped}; it was not granted.")
            : new InvalidOperationException(
                $"The node agent of cluster limiter '{limiter}' {stopped}, while the limiter was not disposed: it was not granted; " +
                (Partition is null ? "this node's limiter takes no more requests" : "the key's next request makes a new agent"));
    }

    /// <inheritdoc />
    protected override ConcurrencyLease ResultOf(in PermitGrant grant) => new(Releaser!, grant.LeaseId, Source, grant.Demand.Permits);
}
