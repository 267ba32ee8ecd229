using System.Diagnostics;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>
/// A reentrant async lock whose waiters live in a coordinator actor. The flow that holds it may acquire it again
/// and must release it as many times; other flows wait in FIFO order. While nobody waits, a flow takes the free lock
/// and frees it again without a message (see <see cref="LockState"/>); a newcomer never takes it while anyone waits.
/// While only flows wait, the coordinator leaves them in a line (<see cref="LockLine"/>) that a flow finding the lock
/// held joins and a flow's last release serves, again without a message.
/// </summary>
/// <remarks>
/// <para>"Flow" means the logical async flow that acquired (an <see cref="AsyncLocal{T}"/> identity). The caveat of
/// async reentrancy: a task started inside the held region shares the holder's identity, so it may enter too and
/// may release for the holder. Give such tasks their own lock, or start them outside the region.</para>
/// <para>Actor callers send <see cref="CoordinatorProtocol"/> messages to <see cref="Coordinator"/>; the owner is the
/// actor (reentrant per actor), and an owner actor that stops releases the lock.</para>
/// </remarks>
[DebuggerDisplay("AsyncLock: locked = {IsLocked}, depth = {State.Depth}")]
public sealed class AsyncLock : IDisposable, IAsyncDisposable
{
    private readonly CoordinatorHandle _handle;
    private readonly FlowIdentity _identity;

    /// <summary>The answer of an acquire that took the lock at once.</summary>
    private static readonly Task<bool> Taken = Task.FromResult(true);

    /// <summary>Numbers the conditions bound to this lock.</summary>
    private int _lastConditionId;

    /// <summary>Creates a lock and its coordinator actor.</summary>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    public AsyncLock(ActorSystem? system = null)
    {
        _identity = new FlowIdentity(State.IsHeldBy);
        _handle = new CoordinatorHandle(system, LockCoordinator.Props(State), "lock", _identity);
    }

    /// <summary>Whether some flow or actor holds the lock.</summary>
    public bool IsLocked => State.IsHeld;

    /// <summary>Callers waiting now: in the coordinator's gate as of its last message, and in the published line.</summary>
    internal int WaitingCount => State.Waiting + State.InLine;

    /// <summary>The coordinator actor, for actor callers.</summary>
    public IActorRef Coordinator => _handle.Coordinator;

    internal LockState State { get; } = new();

    /// <summary>Who the calling flow is for this primitive.</summary>
    internal FlowIdentity Identity => _identity;

    /// <summary>Whether the calling flow holds the lock.</summary>
    internal bool IsHeldByCurrentFlow => State.IsHeldBy(_identity.Current);

    /// <summary>Acquires the lock, waiting in FIFO order; immediately if the calling flow already holds it.</summary>
    /// <param name="cancellationToken">Withdraws the wait; a cancelled waiter takes nothing and the lock stays usable.</param>
    /// <returns><c>true</c> once the lock is held.</returns>
    public Task<bool> AcquireAsync(CancellationToken cancellationToken = default)
    {
        _handle.ThrowIfDisposed(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<bool>(cancellationToken);
        }

        var owner = _identity.ForAcquire();
        if (State.TryTakeOrAnnounce())
        {
            State.Grant(owner, 1); // free and nobody waiting: no message
            return Taken;
        }

        // Announced: a wait, in the published line without a message if there is one, else in the coordinator's FIFO;
        // or a holder's reentry, which is the coordinator's.
        var reentry = State.IsHeldBy(owner);
        var waiter = new LockWaiter(Coordinator, owner, reentry);
        if (!reentry && State.TryJoinLine(waiter))
        {
            return waiter.WaitAsTaskAsync(cancellationToken);
        }

        State.Sending();
        return _handle.Send(waiter, cancellationToken);
    }

    /// <summary>Releases one level of the calling flow's hold; the lock is free once every acquire is matched.</summary>
    /// <exception cref="SynchronizationLockException">The calling flow does not hold the lock.</exception>
    public void Release() =>
        ReleaseFor(_identity.Current ?? throw new SynchronizationLockException(NotHeldMessage));

    /// <summary>Why a release is refused.</summary>
    private const string NotHeldMessage = "The lock is not held by the calling flow; only the flow that acquired it may release it.";

    /// <summary>Releases one level of <paramref name="owner"/>'s hold (the calling flow's, or a scope's).</summary>
    private void ReleaseFor(object owner)
    {
        if (!State.TryClaimRelease(owner, out var remaining))
        {
            throw new SynchronizationLockException(NotHeldMessage);
        }

        if (remaining == 0)
        {
            // The last level: the flow forgets the lock; it frees it itself unless someone waits, hands it to the
            // head the coordinator published, or else tells the coordinator, which frees it and hands it on (the
            // mirror already counted the other levels). It keeps its identity while a reentry of its own is
            // unanswered: handled after this release, it is granted as a fresh hold to that identity, and the flow
            // must carry it to release (review 72: forgotten, the flow held a lock it could not release). Forget
            // decides before the coordinator hears of this release, so that grant cannot come first.
            _identity.Forget(owner);

            if (!State.TryPassOn(owner))
            {
                Coordinator.Tell(new LockRelease(owner), ActorRefs.NoSender);
            }
        }
    }

    /// <summary>Acquires the lock for an <c>await using</c> scope: <c>await using (await l.LockAsync()) { ... }</c>.</summary>
    /// <param name="cancellationToken">Withdraws the wait.</param>
    /// <returns>
    /// A scope whose disposal gives back the level it took, once, whichever flow ends it; ended after the lock's
    /// disposal (even one made inside the scope by its own flow), it does not throw, so an <c>await using</c> body's own
    /// exception is what its caller sees.
    /// </returns>
    public ValueTask<IAsyncDisposable> LockAsync(CancellationToken cancellationToken = default)
    {
        var acquire = AcquireAsync(cancellationToken);
        // The token the acquire holds with (set in this flow by AcquireAsync; unused when the acquire did not start):
        // the scope releases for it, not for whichever flow ends it. A disposal inside the scope takes the token out of
        // the flow, and the scope's release then threw SynchronizationLockException over the body's exception (review round 40).
        var owner = _identity.Current;
        return ScopeAsync(acquire, owner);

        async ValueTask<IAsyncDisposable> ScopeAsync(Task<bool> acquired, object? holder)
        {
            await acquired.ConfigureAwait(false);
            return new Releaser(() => ReleaseFor(holder!));
        }
    }

    /// <summary>Stops the coordinator; waiters get <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _handle.Dispose();

    /// <summary>Stops the coordinator and waits until it has stopped.</summary>
    /// <returns>A task that completes when the coordinator has stopped.</returns>
    public ValueTask DisposeAsync() => _handle.DisposeAsync();

    /// <summary>Numbers a new condition bound to this lock, which must not be disposed.</summary>
    internal int NewConditionId()
    {
        if (_handle.IsDisposed)
        {
            throw new ObjectDisposedException(nameof(AsyncLock), "The lock passed as 'lock' has been disposed; a condition needs a lock that is not.");
        }

        return Interlocked.Increment(ref _lastConditionId);
    }

    /// <summary>For a condition wait: the calling flow's token after taking every level of its hold off the mirror.</summary>
    internal (object Owner, int Depth) ClaimForConditionWait()
    {
        _handle.ThrowIfDisposed(this);
        var owner = _identity.Current;
        var depth = owner is null ? 0 : State.ClaimAll(owner);
        return depth > 0 ? (owner!, depth) : throw new InvalidOperationException("WaitAsync requires holding the condition's lock.");
    }

    internal object OwnerForNotify()
    {
        _handle.ThrowIfDisposed(this);
        return IsHeldByCurrentFlow ? _identity.Current! : throw new InvalidOperationException("Notify requires holding the condition's lock.");
    }
}
