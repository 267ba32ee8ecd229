using System.Diagnostics;
using System.Threading.Tasks.Sources;
using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>A caller waiting in the gatekeeper's queue: a facade request or an actor's protocol request.</summary>
internal abstract class GatekeeperWaiter : WaiterNode<GatekeeperWaiter>
{
    /// <summary>
    /// When the request reached the gatekeeper (<see cref="Stopwatch.GetTimestamp"/>), for the wait-time metric; 0 when
    /// nobody recorded that metric as it queued.
    /// </summary>
    public long ArrivedAt;

    /// <summary>Who asks.</summary>
    public abstract string Source { get; }
}

/// <summary>
/// A facade's request for a slot. It is its own completion (an <see cref="IValueTaskSource{TResult}"/> awaited once),
/// so a request costs one allocation and no temporary Ask actor; its continuations run asynchronously, never on the
/// gatekeeper's thread. Grant, failure and cancellation race from different threads; the first one wins.
/// </summary>
internal sealed class AcquireRequest : GatekeeperWaiter, IUndeliverableRequest, IValueTaskSource<ConcurrencyLease>
{
    /// <summary>The gatekeeper to tell when the caller cancels.</summary>
    private readonly IActorRef _gatekeeper;

    /// <summary>The awaitable state; written once, by whoever wins <see cref="_completed"/>.</summary>
    private ManualResetValueTaskSourceCore<ConcurrencyLease> _core = new() { RunContinuationsAsynchronously = true };

    /// <summary>1 once granted, failed or cancelled.</summary>
    private int _completed;

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

    /// <summary>
    /// Completes with the lease, a rejection, cancellation, or <see cref="ObjectDisposedException"/>. A request is
    /// awaited exactly once (by the facade that made it).
    /// </summary>
    public ValueTask<ConcurrencyLease> Completion => new(this, 0);

    /// <summary>
    /// Present only when someone listens to the tracer: completes with the waiting count (this request included)
    /// when the request has to wait, or with -1 when it does not, so the facade opens a wait span only for a real wait.
    /// </summary>
    public TaskCompletionSource<int>? QueuedSignal { get; }

    /// <summary>Whether the request is already answered (a cancelled request reaching the gatekeeper late).</summary>
    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <summary>Grants the slot unless the caller has cancelled meanwhile.</summary>
    /// <returns><c>true</c> when the caller now holds the lease.</returns>
    public bool TryGrant(ConcurrencyLease lease)
    {
        QueuedSignal?.TrySetResult(-1);
        if (!TryComplete())
        {
            return false;
        }

        _core.SetResult(lease);
        return true;
    }

    public void SignalQueued(int waitingCount) => QueuedSignal?.TrySetResult(waitingCount);

    public void Fail(Exception exception)
    {
        QueuedSignal?.TrySetResult(-1);
        if (TryComplete())
        {
            _core.SetException(exception);
        }
    }

    /// <summary>Completes the request as cancelled, unless it is already answered.</summary>
    /// <returns><c>true</c> when this call cancelled it.</returns>
    public bool TryCancel(CancellationToken cancellationToken)
    {
        if (!TryComplete())
        {
            return false;
        }

        _core.SetException(new TaskCanceledException(null, null, cancellationToken));
        return true;
    }

    /// <summary>The grant, withdrawn if <paramref name="cancellationToken"/> fires first; the one way a facade awaits a request.</summary>
    public ValueTask<ConcurrencyLease> WaitAsync(CancellationToken cancellationToken) =>
        cancellationToken.CanBeCanceled ? WaitCancellableAsync(cancellationToken) : Completion;

    /// <summary>Called from the caller's cancellation callback: cancels first, then tells the gatekeeper to drop the waiter.</summary>
    public void Cancel(CancellationToken cancellationToken)
    {
        if (TryCancel(cancellationToken))
        {
            QueuedSignal?.TrySetResult(-1);
            _gatekeeper.Tell(new CancelWaiting(this), ActorRefs.NoSender);
        }
    }

    /// <inheritdoc />
    public ConcurrencyLease GetResult(short token) => _core.GetResult(token);

    /// <inheritdoc />
    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    /// <inheritdoc />
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private bool TryComplete() => Interlocked.Exchange(ref _completed, 1) == 0;

    private async ValueTask<ConcurrencyLease> WaitCancellableAsync(CancellationToken cancellationToken)
    {
        using var registration = cancellationToken.UnsafeRegister(static (state, token) => ((AcquireRequest)state!).Cancel(token), this);
        return await Completion.ConfigureAwait(false);
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
