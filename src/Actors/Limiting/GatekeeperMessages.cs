using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// A facade's request for a slot: its own message and its own completion (see <see cref="FacadeWaiter{TResult}"/>).
/// Whoever serves it (the gatekeeper, or a cluster limiter's node agent) stamps <see cref="Releaser"/> on arrival.
/// </summary>
internal sealed class AcquireRequest : FacadeWaiter<ConcurrencyLease>
{
    public AcquireRequest(string source, IActorRef gatekeeper, bool signalQueued)
        : base(gatekeeper)
    {
        Source = source;
        if (signalQueued)
        {
            QueuedSignal = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <inheritdoc />
    public override string Source { get; }

    /// <summary>
    /// Present only when someone listens to the tracer: completes with the waiting count (this request included)
    /// when the request has to wait, or with -1 when it does not, so the facade opens a wait span only for a real wait.
    /// </summary>
    public TaskCompletionSource<int>? QueuedSignal { get; }

    /// <summary>Where the granted lease goes back; set by whoever serves the request, before it can be granted.</summary>
    public ILeaseReleaser? Releaser { get; set; }

    /// <inheritdoc />
    public override bool TryGrant(in PermitGrant grant)
    {
        QueuedSignal?.TrySetResult(-1);
        return base.TryGrant(grant);
    }

    /// <inheritdoc />
    public override void Fail(Exception error)
    {
        QueuedSignal?.TrySetResult(-1);
        base.Fail(error);
    }

    /// <inheritdoc />
    public override void OnQueued(in PermitSnapshot now) => QueuedSignal?.TrySetResult(now.Waiting);

    /// <inheritdoc />
    public override void Undelivered() => Fail(new ObjectDisposedException(nameof(ConcurrencyLimiter), "The concurrency limiter has been disposed."));

    /// <inheritdoc />
    protected override ConcurrencyLease ResultOf(in PermitGrant grant) => new(Releaser!, grant.LeaseId, Source);

    /// <inheritdoc />
    protected override void OnCancellationRequested(CancellationToken cancellationToken)
    {
        base.OnCancellationRequested(cancellationToken);
        QueuedSignal?.TrySetResult(-1);
    }
}

/// <summary>The replies of <see cref="GatekeeperProtocol"/>, for actor waiters of the gatekeeper and of a cluster limiter's agent.</summary>
internal sealed class GatekeeperReplies : IPermitReplies
{
    public static readonly GatekeeperReplies Instance = new();

    /// <inheritdoc />
    public object Granted(long requestId, in PermitGrant grant) => new GatekeeperProtocol.Granted(requestId, grant.LeaseId);

    /// <inheritdoc />
    public object? Queued(long requestId, in PermitSnapshot now) => new GatekeeperProtocol.Queued(requestId, now.Waiting);

    /// <inheritdoc />
    public object Failed(long requestId, Exception error) => new GatekeeperProtocol.Rejected(requestId, error.Message);
}

/// <summary>A facade lease was disposed: one slot comes back.</summary>
internal sealed class ReleaseSlot : IDeadLetterSuppression
{
    public static readonly ReleaseSlot Instance = new();
}

/// <summary>An actor that waited or held leases has stopped.</summary>
internal sealed record HolderStopped(IActorRef Holder);

/// <summary>The facade is disposed: fail every waiter and stop. <see cref="Stopped"/> completes once the gatekeeper has stopped.</summary>
internal sealed class DisposeGatekeeper : IUndeliverableRequest
{
    public TaskCompletionSource Stopped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Stopped.TrySetResult();
}

/// <summary>The counts the gatekeeper publishes after every message, for synchronous reads by the facade.</summary>
internal sealed class LimiterCounts
{
    private volatile int _running;
    private volatile int _waiting;

    public int Running => _running;

    public int Waiting => _waiting;

    public void Publish(int running, int waiting)
    {
        _running = running;
        _waiting = waiting;
    }
}

/// <summary>Returns facade leases to their gatekeeper.</summary>
internal sealed class GatekeeperReleaser(IActorRef gatekeeper) : ILeaseReleaser
{
    /// <inheritdoc />
    public void Release(ConcurrencyLease lease) => gatekeeper.Tell(ReleaseSlot.Instance, ActorRefs.NoSender);
}
