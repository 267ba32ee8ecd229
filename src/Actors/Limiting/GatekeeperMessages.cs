using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>A caller waiting in the gatekeeper's queue: a facade request or an actor's protocol request.</summary>
internal abstract class GatekeeperWaiter : WaiterNode<GatekeeperWaiter>
{
    /// <summary>When the request reached the gatekeeper (<see cref="Stopwatch.GetTimestamp"/>), for the wait-time metric.</summary>
    public long ArrivedAt;

    /// <summary>Who asks.</summary>
    public abstract string Source { get; }
}

/// <summary>
/// A facade's request for a slot. It carries its own completion, so no temporary Ask actor is needed; its
/// continuations run asynchronously, never on the gatekeeper's thread.
/// </summary>
internal sealed class AcquireRequest : GatekeeperWaiter, IUndeliverableRequest
{
    /// <summary>The gatekeeper to tell when the caller cancels.</summary>
    private readonly IActorRef _gatekeeper;

    public AcquireRequest(string source, IActorRef gatekeeper, bool signalQueued)
    {
        Source = source;
        _gatekeeper = gatekeeper;
        if (signalQueued)
        {
            QueuedSignal = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <inheritdoc />
    public override string Source { get; }

    /// <summary>Completes with the lease, a rejection, cancellation, or <see cref="ObjectDisposedException"/>.</summary>
    public TaskCompletionSource<ConcurrencyLease> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Present only when someone listens to the tracer: completes with the waiting count (this request included)
    /// when the request has to wait, or with -1 when it does not, so the facade opens a wait span only for a real wait.
    /// </summary>
    public TaskCompletionSource<int>? QueuedSignal { get; }

    /// <summary>Whether the request is already answered (a cancelled request reaching the gatekeeper late).</summary>
    public bool IsCompleted => Completion.Task.IsCompleted;

    /// <summary>Grants the slot unless the caller has cancelled meanwhile.</summary>
    /// <returns><c>true</c> when the caller now holds the lease.</returns>
    public bool TryGrant(ConcurrencyLease lease)
    {
        QueuedSignal?.TrySetResult(-1);
        return Completion.TrySetResult(lease);
    }

    public void SignalQueued(int waitingCount) => QueuedSignal?.TrySetResult(waitingCount);

    public void Fail(Exception exception)
    {
        QueuedSignal?.TrySetResult(-1);
        Completion.TrySetException(exception);
    }

    /// <summary>Called from the caller's cancellation callback: cancels first, then tells the gatekeeper to drop the waiter.</summary>
    public void Cancel(CancellationToken cancellationToken)
    {
        if (Completion.TrySetCanceled(cancellationToken))
        {
            QueuedSignal?.TrySetResult(-1);
            _gatekeeper.Tell(new CancelWaiting(this), ActorRefs.NoSender);
        }
    }

    /// <inheritdoc />
    public void Undelivered() => Fail(new ObjectDisposedException(nameof(ConcurrencyLimiter), "The concurrency limiter has been disposed."));
}

/// <summary>An actor's <see cref="GatekeeperProtocol.Acquire"/> waiting in the queue.</summary>
internal sealed class ActorWaiter(IActorRef requester, long requestId, string source) : GatekeeperWaiter
{
    public IActorRef Requester { get; } = requester;

    public long RequestId { get; } = requestId;

    /// <inheritdoc />
    public override string Source { get; } = source;
}

/// <summary>A facade lease was disposed: one slot comes back.</summary>
internal sealed class ReleaseSlot : IDeadLetterSuppression
{
    public static readonly ReleaseSlot Instance = new();
}

/// <summary>A facade caller cancelled; drop its waiter if it still waits.</summary>
internal sealed record CancelWaiting(AcquireRequest Request) : IDeadLetterSuppression;

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
