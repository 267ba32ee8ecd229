using System.Diagnostics;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>
/// An async semaphore whose FIFO of waiters lives in a coordinator actor. While nobody waits, an acquire takes a free
/// permit and a release returns it without a message (see <see cref="SemaphoreState"/>); a newcomer never takes a
/// permit while anyone waits.
/// </summary>
/// <remarks>Actor callers send <see cref="CoordinatorProtocol"/> messages to <see cref="Coordinator"/>; permits held by an actor come back when it stops.</remarks>
[DebuggerDisplay("AsyncSemaphore: {Value} free")]
public sealed class AsyncSemaphore : IDisposable, IAsyncDisposable
{
    private readonly CoordinatorHandle _handle;
    private readonly SemaphoreState _state;

    /// <summary>Creates a semaphore with <paramref name="initialValue"/> free permits.</summary>
    /// <param name="initialValue">Free permits at the start; at least 0.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="initialValue"/> is negative.</exception>
    public AsyncSemaphore(int initialValue, ActorSystem? system = null)
    {
        if (initialValue < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(initialValue), initialValue, "The initial value must be >= 0");
        }

        _state = new SemaphoreState(initialValue);
        _handle = new CoordinatorHandle(system, SemaphoreCoordinator.Props(_state), "semaphore");
    }

    /// <summary>Free permits: a release counts at once, a grant before its caller resumes.</summary>
    public int Value => _state.Value;

    /// <summary>Callers waiting now, as of the last message the coordinator handled.</summary>
    internal int WaitingCount => _state.Waiting;

    /// <summary>The coordinator actor, for actor callers.</summary>
    public IActorRef Coordinator => _handle.Coordinator;

    /// <summary>Takes a permit, waiting in FIFO order when none is free.</summary>
    /// <param name="cancellationToken">Withdraws the wait; a cancelled waiter takes nothing.</param>
    /// <returns>A task that completes once a permit is held.</returns>
    public Task AcquireAsync(CancellationToken cancellationToken = default)
    {
        _handle.ThrowIfDisposed(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        if (_state.TryTakeOrAnnounce())
        {
            return Task.CompletedTask; // a free permit and nobody waiting: no message
        }

        var waiter = new PrimitiveWaiter(Coordinator, this);
        return _handle.Send(waiter, cancellationToken);
    }

    /// <summary>Gives a permit back; the oldest waiter gets it, else it returns to the pool.</summary>
    /// <exception cref="SemaphoreFullException"><see cref="Value"/> is already <see cref="int.MaxValue"/>; nothing is added.</exception>
    public void Release()
    {
        _handle.ThrowIfDisposed(this);
        ReleaseHeld();
    }

    /// <summary>Takes a permit for an <c>await using</c> scope.</summary>
    /// <param name="cancellationToken">Withdraws the wait.</param>
    /// <returns>
    /// A scope whose disposal gives the permit back once; after the semaphore's disposal it does not throw (the permit
    /// goes to nobody), so an <c>await using</c> body's own exception is what its caller sees.
    /// </returns>
    public async ValueTask<IAsyncDisposable> LockAsync(CancellationToken cancellationToken = default)
    {
        await AcquireAsync(cancellationToken).ConfigureAwait(false);
        return new Releaser(ReleaseHeld);
    }

    /// <summary>
    /// Gives a permit back. Without <see cref="Release"/>'s disposed check, for a scope: a scope ended after the
    /// disposal threw <see cref="ObjectDisposedException"/> over its body's exception (review h151). A permit given back
    /// to a disposed semaphore goes to nobody: its coordinator has stopped and every acquire is refused.
    /// </summary>
    private void ReleaseHeld()
    {
        if (!_state.TryRelease(out var someoneWaits))
        {
            throw new SemaphoreFullException($"{SemaphoreState.FullMessage}; Value is {Value}.");
        }

        if (someoneWaits)
        {
            Coordinator.Tell(SemaphoreRelease.Instance, ActorRefs.NoSender);
        }
    }

    /// <summary>Stops the coordinator; waiters get <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _handle.Dispose();

    /// <summary>Stops the coordinator and waits until it has stopped.</summary>
    /// <returns>A task that completes when the coordinator has stopped.</returns>
    public ValueTask DisposeAsync() => _handle.DisposeAsync();
}
