using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Primitives.Coordination;

/// <summary>
/// One caller waiting on a primitive, in the shared <see cref="WaiterQueue{TWaiter}"/>. A facade caller awaits a
/// completion (continuations run asynchronously, never on the coordinator's thread); an actor caller is answered
/// with <see cref="CoordinatorProtocol"/> messages. Every coordinator grants, fails and cancels through this type.
/// </summary>
internal sealed class Waiter : WaiterNode<Waiter>, IUndeliverableRequest
{
    private readonly IActorRef _coordinator;
    private readonly TaskCompletionSource<bool>? _completion;
    private readonly IActorRef? _replyTo;

    /// <summary>A facade caller.</summary>
    /// <param name="coordinator">Where to send the cancellation.</param>
    /// <param name="owner">Who waits: a flow, a borrower.</param>
    /// <param name="deferCancellation">Whether the coordinator, not the caller, completes a cancelled wait (condition waits re-acquire the lock first).</param>
    public Waiter(IActorRef coordinator, object owner, bool deferCancellation = false)
    {
        _coordinator = coordinator;
        Owner = owner;
        DeferCancellation = deferCancellation;
        _completion = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>An actor caller; the actor is the owner.</summary>
    public Waiter(IActorRef coordinator, IActorRef replyTo, long requestId)
    {
        _coordinator = coordinator;
        _replyTo = replyTo;
        Owner = replyTo;
        RequestId = requestId;
    }

    /// <summary>Who waits: the flow token, the borrower, or the actor.</summary>
    public object Owner { get; }

    /// <summary>The actor caller's request id.</summary>
    public long RequestId { get; }

    /// <summary>The actor to answer, for an actor caller.</summary>
    public IActorRef? ReplyTo => _replyTo;

    /// <summary>Completes with <c>true</c> when the wait is granted; fails or is cancelled otherwise (facade callers only).</summary>
    public Task<bool> Task => _completion!.Task;

    /// <summary>Whether a facade caller has already been answered (cancelled before its turn).</summary>
    public bool IsAbandoned => _completion?.Task.IsCompleted ?? false;

    /// <summary>Whether cancellation is completed by the coordinator rather than by the caller's token callback.</summary>
    public bool DeferCancellation { get; }

    /// <summary>For a condition waiter: the lock depth to restore when it gets the lock back.</summary>
    public int Depth { get; set; } = 1;

    /// <summary>For a condition waiter: the condition it waits on, or -1.</summary>
    public int ConditionId { get; set; } = -1;

    /// <summary>Set when a deferred-cancellation waiter was cancelled: its grant completes as cancelled.</summary>
    public CancellationToken? CancelledBy { get; set; }

    /// <summary>Grants the wait. Returns <c>false</c> when a facade caller cancelled meanwhile (then it takes nothing).</summary>
    public bool TryGrant()
    {
        if (_completion is null)
        {
            _replyTo!.Tell(new CoordinatorProtocol.Acquired(RequestId));
            return true;
        }

        return CancelledBy is { } token ? _completion.TrySetCanceled(token) : _completion.TrySetResult(true);
    }

    /// <summary>Fails the wait.</summary>
    public void Fail(Exception exception)
    {
        if (_completion is null)
        {
            _replyTo!.Tell(new CoordinatorProtocol.Refused(RequestId, exception.Message));
        }
        else
        {
            _completion.TrySetException(exception);
        }
    }

    /// <summary>From the caller's token: cancels (unless deferred) and tells the coordinator.</summary>
    public void Cancel(CancellationToken cancellationToken)
    {
        if (DeferCancellation)
        {
            _coordinator.Tell(new CancelWait(this, cancellationToken), ActorRefs.NoSender);
        }
        else if (_completion!.TrySetCanceled(cancellationToken))
        {
            _coordinator.Tell(new CancelWait(this, cancellationToken), ActorRefs.NoSender);
        }
    }

    /// <summary>Awaits the wait, withdrawing it if <paramref name="cancellationToken"/> fires.</summary>
    public async Task<bool> WaitAsync(CancellationToken cancellationToken)
    {
        await using var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Cancel(token), this)
            : default;
        return await Task.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Undelivered() => Fail(new ObjectDisposedException("primitive", "The primitive has been disposed."));
}

/// <summary>A facade caller cancelled its wait.</summary>
internal sealed record CancelWait(Waiter Waiter, CancellationToken Token) : IDeadLetterSuppression;

/// <summary>An actor that waited or held has stopped.</summary>
internal sealed record OwnerStopped(IActorRef Owner);

/// <summary>The facade is disposed or dropped: fail every waiter and stop.</summary>
internal sealed class DisposeCoordinator : IUndeliverableRequest
{
    public TaskCompletionSource Stopped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Stopped.TrySetResult();
}

/// <summary>A facade command the coordinator answers by completing <see cref="Completion"/>.</summary>
internal abstract class CoordinatorCommand<TResult> : IUndeliverableRequest
{
    public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Completion.TrySetException(new ObjectDisposedException("primitive", "The primitive has been disposed."));
}
