using System.Diagnostics;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Primitives.Coordination;

/// <summary>
/// A facade's hold on its coordinator actor. Disposing it stops the actor; if the facade is dropped without
/// Dispose, a finaliser stops the actor (see <see cref="OwnedActor{TStop}"/>), so dropped primitives do not leak
/// actors. Only the facade refers to it.
/// </summary>
internal sealed class CoordinatorHandle
{
    private readonly OwnedActor<DisposeCoordinator> _coordinator;

    /// <summary>The primitive's flow identity, if it has one: disposing takes the calling flow's entry out.</summary>
    private readonly FlowIdentity? _identity;

    public CoordinatorHandle(ActorSystem? system, Props props, string kind, FlowIdentity? identity = null)
    {
        _identity = identity;
        Runtime = ActorQueueRuntime.Resolve(system);
        RefusedAcquires.Start(Runtime.System); // an actor's Acquire that comes after the coordinator stopped is refused
        var coordinator = Runtime.System.ActorOf(props.WithDispatcher(Runtime.Settings.CoordinatorDispatcher), Runtime.UniqueActorName(kind, null));
        _coordinator = new OwnedActor<DisposeCoordinator>(coordinator, () => new DisposeCoordinator());
    }

    public ActorQueueExtension Runtime { get; }

    public IActorRef Coordinator => _coordinator.Actor;

    public bool IsDisposed => _coordinator.IsDisposed;

    public void ThrowIfDisposed(object facade) => _coordinator.ThrowIfDisposed(facade);

    public void Dispose()
    {
        _identity?.Forget();
        _coordinator.Stop();
    }

    public ValueTask DisposeAsync()
    {
        _identity?.Forget();
        return _coordinator.Stop() is { } dispose ? new ValueTask(dispose.Stopped.Task) : default;
    }

    /// <summary>
    /// Sends a facade waiter (the waiter is the acquire message) and returns the task to await, with cancellation
    /// when the token can fire.
    /// </summary>
    public Task<bool> Send(PrimitiveWaiter waiter, CancellationToken cancellationToken)
    {
        Coordinator.Tell(waiter, ActorRefs.NoSender);
        return waiter.WaitAsTaskAsync(cancellationToken);
    }
}

/// <summary>The disposable that <c>LockAsync</c> returns: gives back what was acquired, once.</summary>
internal sealed class Releaser(Action release) : IAsyncDisposable, IDisposable
{
    private Action? _release = release;

    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();

    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }
}

/// <summary>
/// Who "the current flow" is for one primitive. A flow gets a token on its first acquire and keeps it while it
/// holds the primitive or has an acquire under way that keeps it (one of its waiters made with
/// <c>keepsIdentity</c> and not yet answered, <see cref="FlowToken.IsAsking"/>: every acquire of the capacity limiter,
/// only a holder's reentry of the lock), so nested acquires in that flow are recognised and a reentry granted after
/// the flow's last release is granted to an identity the flow still carries; tasks the flow starts meanwhile share
/// the token (the forked-task caveat of async reentrancy). A flow that neither holds nor asks gets a fresh token on
/// its next acquire, so tasks forked earlier do not pass as the holder — nor do tasks a flow starts while it merely
/// waits for the lock (review of f02ae64: they shared its hold).
/// </summary>
/// <remarks>
/// The token is an <see cref="AsyncLocal{T}"/> entry in the flow's ExecutionContext, and every primitive has its own.
/// The flow's last release and the primitive's disposal take the entry out again (an <see cref="AsyncLocal{T}"/> set
/// to <c>null</c> leaves the context), so a long-lived flow that goes through many primitives carries only those it
/// holds: the context's map is copied on every change, and dead entries made each acquire slower than the last.
/// </remarks>
internal sealed class FlowIdentity(Func<object, bool> holds)
{
    private readonly AsyncLocal<FlowToken?> _token = new();

    /// <summary>The calling flow's token, or <c>null</c> if it never acquired. Call synchronously from the caller's flow.</summary>
    public object? Current => _token.Value;

    /// <summary>
    /// The token to acquire with: the flow's own while it asks (read first: a waiter's grant writes the holder before
    /// the ask is answered) or the primitive's <c>holds</c> check says it still holds, else a fresh one. Call
    /// synchronously from the caller's flow.
    /// </summary>
    public object ForAcquire()
    {
        var token = _token.Value;
        if (token is null || !(token.IsAsking || holds(token)))
        {
            token = new FlowToken();
            _token.Value = token;
        }

        return token;
    }

    /// <summary>
    /// Takes the calling flow's entry out once it no longer holds through <paramref name="token"/> (its last release),
    /// unless an acquire of its own is still under way: answered after this release, it may be granted to the token,
    /// which the flow must then carry to release (a lock's reentry sent just before the last release). With
    /// <paramref name="token"/> <c>null</c> (disposal), takes out whatever entry the flow has. Call synchronously
    /// from the caller's flow, after the release has been claimed.
    /// </summary>
    public void Forget(object? token = null)
    {
        var current = _token.Value;
        if (current is not null && (token is null || (ReferenceEquals(current, token) && !current.IsAsking)))
        {
            _token.Value = null;
        }
    }
}

/// <summary>
/// A flow's identity for one primitive (<see cref="FlowIdentity"/>), and how many of its acquires are under way: a
/// <see cref="PrimitiveWaiter"/> made for the token counts one until it is answered (granted, failed or cancelled;
/// counted down before the caller can resume).
/// </summary>
internal sealed class FlowToken
{
    private static long _next;
    private readonly long _id = Interlocked.Increment(ref _next);

    /// <summary>Waiters made for this token and not yet answered.</summary>
    private int _asking;

    /// <summary>Whether an acquire with this token is under way.</summary>
    public bool IsAsking => Volatile.Read(ref _asking) > 0;

    /// <summary>A waiter was made for this token, before it is sent or joins a line.</summary>
    public void Ask() => Interlocked.Increment(ref _asking);

    /// <summary>A waiter made for this token was answered.</summary>
    public void Answered()
    {
        var left = Interlocked.Decrement(ref _asking);
        Debug.Assert(left >= 0, "each waiter made for a token is answered once");
    }

    /// <inheritdoc />
    public override string ToString() => $"flow-{_id}";
}
