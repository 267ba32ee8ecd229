using System.Diagnostics;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>
/// An async condition variable bound to an <see cref="AsyncLock"/>. <see cref="WaitAsync"/> releases the lock,
/// waits for a notify and re-acquires the lock (at the same reentrancy depth) before it returns, also when it is
/// cancelled. Its waiters live in the lock's coordinator, so releasing and starting to wait are one atomic step.
/// </summary>
/// <example>
/// <code>
/// await using (await condition.LockAsync())
/// {
///     while (queue.Count == 0) await condition.WaitAsync();
///     var item = queue.Dequeue();
/// }
/// </code>
/// </example>
[DebuggerDisplay("AsyncCondition on a lock locked = {Lock.IsLocked}")]
public sealed class AsyncCondition : IDisposable, IAsyncDisposable
{
    /// <summary>Whether the condition created its lock and so disposes it.</summary>
    private readonly bool _ownsLock;

    /// <summary>Which of the lock's condition queues is this condition's.</summary>
    private readonly int _conditionId;

    /// <summary>Creates a condition on <paramref name="lock"/>, or on a new lock of its own.</summary>
    /// <param name="lock">The lock to bind to; <c>null</c> to create one (disposed with the condition).</param>
    /// <param name="system">The actor system for a lock of its own; the embedded default when <c>null</c>.</param>
    /// <exception cref="ObjectDisposedException"><paramref name="lock"/> has been disposed.</exception>
    public AsyncCondition(AsyncLock? @lock = null, ActorSystem? system = null)
    {
        _ownsLock = @lock is null;
        Lock = @lock ?? new AsyncLock(system);
        _conditionId = Lock.NewConditionId();
    }

    /// <summary>The lock the condition is bound to.</summary>
    public AsyncLock Lock { get; }

    /// <summary>Acquires the condition's lock (see <see cref="AsyncLock.AcquireAsync"/>).</summary>
    /// <param name="cancellationToken">Withdraws the wait.</param>
    /// <returns><c>true</c> once the lock is held.</returns>
    public Task<bool> AcquireAsync(CancellationToken cancellationToken = default) => Lock.AcquireAsync(cancellationToken);

    /// <summary>Releases the condition's lock (see <see cref="AsyncLock.Release"/>).</summary>
    public void Release() => Lock.Release();

    /// <summary>Acquires the condition's lock for an <c>await using</c> scope.</summary>
    /// <param name="cancellationToken">Withdraws the wait.</param>
    /// <returns>A scope whose disposal releases the lock.</returns>
    public ValueTask<IAsyncDisposable> LockAsync(CancellationToken cancellationToken = default) => Lock.LockAsync(cancellationToken);

    /// <summary>
    /// Releases the lock, waits for <see cref="NotifyAsync(int, CancellationToken)"/> or <see cref="NotifyAllAsync()"/>, and re-acquires the
    /// lock before returning. When cancelled it still re-acquires the lock first, then throws; a waiter that was
    /// notified and then cancelled passes its notify on to the next waiter.
    /// </summary>
    /// <param name="cancellationToken">Ends the wait (the lock is held again when the cancellation surfaces).</param>
    /// <returns>A task that completes once notified and holding the lock.</returns>
    /// <exception cref="InvalidOperationException">The calling flow does not hold the lock.</exception>
    /// <exception cref="ObjectDisposedException">The lock has been disposed.</exception>
    public Task WaitAsync(CancellationToken cancellationToken = default)
    {
        var (owner, depth) = Lock.ClaimForConditionWait();
        var waiter = new ConditionWaiter(Lock.Coordinator, owner, depth, _conditionId);
        Lock.Coordinator.Tell(new ConditionWait(waiter), ActorRefs.NoSender);
        return waiter.WaitAsTaskAsync(cancellationToken);
    }

    /// <summary>Wakes up to <paramref name="n"/> waiters, oldest first; they get the lock after the caller releases it.</summary>
    /// <param name="n">How many to wake; at least 1.</param>
    /// <returns>A task that completes once the waiters are woken (a <see cref="Task{TResult}"/> of how many were).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is below 1.</exception>
    /// <exception cref="InvalidOperationException">The calling flow does not hold the lock.</exception>
    /// <exception cref="ObjectDisposedException">The lock has been disposed.</exception>
    public Task NotifyAsync(int n) => NotifyAsync(n, CancellationToken.None);

    /// <summary>Wakes up to <paramref name="n"/> waiters as <see cref="NotifyAsync(int)"/>; <paramref name="cancellationToken"/> stops waiting for the answer.</summary>
    /// <param name="n">How many to wake; at least 1.</param>
    /// <param name="cancellationToken">Stops waiting for the coordinator's answer. A notify already sent still wakes its
    /// waiters (a wake-up cannot be taken back); an already cancelled token sends nothing and returns a cancelled task.</param>
    /// <returns>A task that completes once the waiters are woken (a <see cref="Task{TResult}"/> of how many were).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is below 1.</exception>
    /// <exception cref="InvalidOperationException">The calling flow does not hold the lock.</exception>
    /// <exception cref="ObjectDisposedException">The lock has been disposed.</exception>
    public Task NotifyAsync(int n = 1, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        return Cancellable(n, cancellationToken);
    }

    /// <summary>Wakes every waiter; they get the lock one by one after the caller releases it.</summary>
    /// <returns>A task that completes once the waiters are woken.</returns>
    /// <exception cref="InvalidOperationException">The calling flow does not hold the lock.</exception>
    /// <exception cref="ObjectDisposedException">The lock has been disposed.</exception>
    public Task NotifyAllAsync() => Notify(int.MaxValue);

    /// <summary>Wakes every waiter as <see cref="NotifyAllAsync()"/>; <paramref name="cancellationToken"/> stops waiting for the answer (see <see cref="NotifyAsync(int, CancellationToken)"/>).</summary>
    /// <param name="cancellationToken">Stops waiting; an already cancelled token sends nothing.</param>
    /// <returns>A task that completes once the waiters are woken.</returns>
    /// <exception cref="InvalidOperationException">The calling flow does not hold the lock.</exception>
    /// <exception cref="ObjectDisposedException">The lock has been disposed.</exception>
    public Task NotifyAllAsync(CancellationToken cancellationToken) => Cancellable(int.MaxValue, cancellationToken);

    /// <summary>A notify whose answer the caller may stop waiting for; still a <see cref="Task{TResult}"/> of how many woke.</summary>
    private Task<int> Cancellable(int n, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<int>(cancellationToken); // sends nothing; a cancelled task, as every async method here
        }

        var notified = Notify(n);
        return cancellationToken.CanBeCanceled ? notified.WaitAsync(cancellationToken) : notified;
    }

    /// <summary>Disposes the lock if the condition created it.</summary>
    public void Dispose()
    {
        if (_ownsLock)
        {
            Lock.Dispose();
        }
    }

    /// <summary>Disposes the lock if the condition created it, and waits for its coordinator to stop.</summary>
    /// <returns>A task that completes when done.</returns>
    public ValueTask DisposeAsync() => _ownsLock ? Lock.DisposeAsync() : default;

    private Task<int> Notify(int count)
    {
        var owner = Lock.OwnerForNotify();
        if (Lock.State.ConditionWaiters == 0)
        {
            // Only the holder's own flow can add a condition waiter, and every waiter is counted before the lock
            // passes on: nobody waits, so there is nothing to tell the coordinator.
            return Task.FromResult(0);
        }

        var notify = new ConditionNotify(_conditionId, count, owner);
        Lock.Coordinator.Tell(notify, ActorRefs.NoSender);
        return notify.Completion.Task;
    }
}
