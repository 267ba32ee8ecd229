using ActorQueue.Coordination;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;
using ActorQueue.Runtime;
using Akka.Event;

namespace ActorQueue.Primitives;

/// <summary>
/// The one owner of an <see cref="AsyncLock"/>'s state: its owner (a flow or an actor), the reentrancy depth, the
/// FIFO of waiters, and the waiters of every <see cref="AsyncCondition"/> bound to the lock. Keeping conditions
/// here makes "release the lock and start waiting" one atomic step, so no notify can fall between the two.
/// </summary>
internal sealed class LockCoordinator : CoordinatorActor
{
    private readonly LockState _state;
    private readonly Dictionary<int, WaiterQueue<Waiter>> _conditions = [];
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>The holder: a flow token or an actor; <c>null</c> when free.</summary>
    private object? _owner;

    /// <summary>How many times the holder has acquired without releasing.</summary>
    private int _depth;

    public LockCoordinator(LockState state)
        : base(nameof(AsyncLock), state)
    {
        _state = state;
        Receive<Waiter>(Offer); // a facade flow asks for the lock: the waiter is the message
        Receive<LockRelease>(HandleLockRelease);
        Receive<ConditionWait>(HandleConditionWait);
        Receive<ConditionNotify>(HandleConditionNotify);
        Receive<CoordinatorProtocol.Acquire>(message => Offer(ActorWaiter(message.RequestId)));
        Receive<CoordinatorProtocol.Release>(HandleProtocolRelease);
    }

    public static Props Props(LockState state) => Akka.Actor.Props.Create(() => new LockCoordinator(state));

    /// <inheritdoc />
    protected override void Publish()
    {
        // The lock's state is mirrored as it changes (see LockState), before any grant completes.
    }

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        foreach (var condition in _conditions.Values)
        {
            ConditionWaitersChanged(-condition.RemoveWhere(w => Equals(w.Owner, owner)).Count);
        }

        if (Equals(_owner, owner))
        {
            _log.Info("Lock holder {0} stopped; the lock is released", owner.Path);
            FreeLock();
        }
    }

    /// <inheritdoc />
    protected override void OnStopped(ObjectDisposedException disposed)
    {
        foreach (var condition in _conditions.Values)
        {
            condition.DrainAll(waiter => waiter.Fail(disposed));
        }

        _state.ConditionWaiters = 0;
    }

    /// <inheritdoc />
    protected override void HandleCancelWait(CancelWait message)
    {
        var waiter = message.Waiter;
        if (!waiter.DeferCancellation)
        {
            base.HandleCancelWait(message);
            return;
        }

        // A condition waiter: it must hold the lock again before its cancellation surfaces.
        if (waiter.CancelledBy is not null || waiter.Task.IsCompleted)
        {
            return;
        }

        waiter.CancelledBy = message.Token;
        var condition = ConditionQueue(waiter.ConditionId);
        if (condition.Remove(waiter))
        {
            ConditionWaitersChanged(-1);
            Waiters.Enqueue(waiter);
            GrantNext();
        }
        else if (condition.Dequeue() is { } next)
        {
            // Already notified and waiting for the lock: the notify passes on to the next condition waiter.
            ConditionWaitersChanged(-1);
            Waiters.Enqueue(next);
        }
    }

    private void Offer(Waiter waiter)
    {
        if (waiter.IsAbandoned)
        {
            return;
        }

        if (_owner is null && Waiters.IsEmpty)
        {
            GrantTo(waiter);
        }
        else if (Equals(_owner, waiter.Owner))
        {
            _depth++;
            _state.Reenter();
            if (!waiter.TryGrant())
            {
                _depth--;
                _state.UndoReenter();
            }
        }
        else
        {
            Waiters.Enqueue(waiter);
        }
    }

    private void HandleLockRelease(LockRelease message)
    {
        if (!Equals(_owner, message.Owner) || _depth == 0)
        {
            _log.Error("Release by {0}, which does not hold the lock; ignored", message.Owner);
            return;
        }

        // The facade already took this level off the mirror, so only the coordinator's own count changes.
        _depth--;
        if (_depth == 0)
        {
            FreeLock();
        }
    }

    private void HandleProtocolRelease(CoordinatorProtocol.Release message)
    {
        if (!Equals(_owner, Sender))
        {
            Sender.Tell(new CoordinatorProtocol.Refused(message.RequestId, "The lock is not held by this actor"));
            return;
        }

        _depth--;
        _state.ReleaseOne();
        if (_depth == 0)
        {
            FreeLock();
        }
    }

    private void HandleConditionWait(ConditionWait message)
    {
        var waiter = message.Waiter;
        if (!Equals(_owner, waiter.Owner))
        {
            waiter.Fail(new InvalidOperationException("WaitAsync requires holding the condition's lock."));
            return;
        }

        waiter.Depth = _depth;
        ConditionQueue(waiter.ConditionId).Enqueue(waiter);
        ConditionWaitersChanged(+1); // published before the lock passes on, so the next holder sees this waiter
        _depth = 0;
        FreeLock();
    }

    private void HandleConditionNotify(ConditionNotify message)
    {
        if (!Equals(_owner, message.Owner))
        {
            message.Completion.TrySetException(new InvalidOperationException("Notify requires holding the condition's lock."));
            return;
        }

        var condition = ConditionQueue(message.ConditionId);
        var woken = 0;
        while (woken < message.Count && condition.Dequeue() is { } waiter)
        {
            // A notified waiter queues for the lock; it gets it once the notifier (and anyone ahead) releases.
            Waiters.Enqueue(waiter);
            woken++;
        }

        ConditionWaitersChanged(-woken);
        message.Completion.TrySetResult(woken);
    }

    private void FreeLock()
    {
        _owner = null;
        _depth = 0;
        _state.Clear();
        GrantNext();
    }

    private void GrantNext()
    {
        while (_owner is null && Waiters.Dequeue() is { } next)
        {
            GrantTo(next);
        }
    }

    private void GrantTo(Waiter waiter)
    {
        _owner = waiter.Owner;
        _depth = waiter.Depth;
        _state.Grant(waiter.Owner, waiter.Depth);
        if (!waiter.TryGrant())
        {
            _owner = null;
            _depth = 0;
            _state.Clear();
        }
    }

    private void ConditionWaitersChanged(int delta) => _state.ConditionWaiters += delta;

    private WaiterQueue<Waiter> ConditionQueue(int conditionId)
    {
        if (!_conditions.TryGetValue(conditionId, out var queue))
        {
            queue = new WaiterQueue<Waiter>();
            _conditions.Add(conditionId, queue);
        }

        return queue;
    }
}

/// <summary>A facade flow releases one level (already taken off the mirror by the facade).</summary>
internal sealed record LockRelease(object Owner) : IDeadLetterSuppression;

/// <summary>A holder waits on a condition: release the lock fully and wait for a notify.</summary>
internal sealed record ConditionWait(Waiter Waiter) : IUndeliverableRequest
{
    /// <inheritdoc />
    public void Undelivered() => Waiter.Undelivered();
}

/// <summary>A holder wakes up to <see cref="Count"/> waiters of a condition; completes with how many were woken.</summary>
internal sealed class ConditionNotify(int conditionId, int count, object owner) : CoordinatorCommand<int>
{
    public int ConditionId { get; } = conditionId;

    public int Count { get; } = count;

    public object Owner { get; } = owner;
}

/// <summary>
/// The lock's owner and depth, written by the coordinator before a grant completes, so the facade can check
/// synchronously that a release comes from the holder. A facade release takes its level off here atomically before
/// telling the coordinator, so a second release cannot pass the check while the first is on its way.
/// </summary>
internal sealed class LockState : PrimitiveState
{
    private volatile object? _owner;
    private int _depth;
    private volatile int _conditionWaiters;

    /// <summary>
    /// Flows waiting on any condition of this lock. A waiter is counted before the lock passes to the next holder,
    /// so a holder that reads 0 knows no condition of the lock has a waiter to notify.
    /// </summary>
    public int ConditionWaiters
    {
        get => _conditionWaiters;
        set => _conditionWaiters = value;
    }

    public object? Owner => _owner;

    public int Depth => Volatile.Read(ref _depth);

    public void Grant(object owner, int depth)
    {
        Volatile.Write(ref _depth, depth);
        _owner = owner;
    }

    public void Reenter() => Interlocked.Increment(ref _depth);

    public void UndoReenter() => Interlocked.Decrement(ref _depth);

    public void ReleaseOne() => Interlocked.Decrement(ref _depth);

    public void Clear()
    {
        _owner = null;
        Volatile.Write(ref _depth, 0);
    }

    /// <summary>Takes one level for <paramref name="owner"/>; <c>false</c> when it holds none.</summary>
    /// <param name="owner">The releasing flow's token.</param>
    /// <param name="remaining">The levels <paramref name="owner"/> still holds after this one.</param>
    public bool TryClaimRelease(object owner, out int remaining)
    {
        while (true)
        {
            remaining = 0;
            if (!ReferenceEquals(_owner, owner))
            {
                return false;
            }

            var depth = Volatile.Read(ref _depth);
            if (depth <= 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _depth, depth - 1, depth) == depth)
            {
                remaining = depth - 1;
                return true;
            }
        }
    }

    /// <summary>Takes every level for <paramref name="owner"/> (a condition wait); 0 when it holds none.</summary>
    public int ClaimAll(object owner) => ReferenceEquals(_owner, owner) ? Interlocked.Exchange(ref _depth, 0) : 0;

    /// <summary>Whether <paramref name="owner"/> holds the lock, as far as the mirror knows.</summary>
    public bool IsHeldBy(object? owner) => owner is not null && ReferenceEquals(_owner, owner) && Depth > 0;
}
