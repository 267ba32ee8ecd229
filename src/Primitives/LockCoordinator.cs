using ActorQueue.Coordination;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Primitives;

/// <summary>
/// The one owner of an <see cref="AsyncLock"/>'s waiters: a gate over the one permit of the <see cref="LockState"/>
/// word shared with the facade (whose flows take and free the lock without a message while nobody waits), and the
/// waiters of every <see cref="AsyncCondition"/> bound to the lock. Keeping conditions here makes "release the lock
/// and start waiting" one atomic step, so no notify can fall between the two. Every waiter it puts in the gate was
/// announced in the word (by the facade before sending it, here for an actor or a notified condition waiter) and
/// leaves it exactly once.
/// </summary>
internal sealed class LockCoordinator : CoordinatorActor
{
    private readonly LockState _state;

    /// <summary>Each condition's waiters, oldest first; a notified waiter moves into the gate.</summary>
    private readonly Dictionary<int, WaiterQueue<PermitWaiter>> _conditions = [];
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public LockCoordinator(LockState state)
        : base(nameof(AsyncLock), state, state)
    {
        _state = state;
        Receive<PrimitiveWaiter>(Arrive); // a facade flow announced itself, then sent its waiter
        Receive<LockRelease>(HandleLockRelease);
        Receive<ConditionWait>(HandleConditionWait);
        Receive<ConditionNotify>(HandleConditionNotify);
        Receive<CancelConditionWait>(HandleCancelConditionWait);
        Receive<CoordinatorProtocol.Acquire>(HandleProtocolAcquire);
        Receive<CoordinatorProtocol.Release>(HandleProtocolRelease);
    }

    public static Props Props(LockState state) => Akka.Actor.Props.Create(() => new LockCoordinator(state));

    /// <inheritdoc />
    public override void Granting(PermitWaiter waiter, in PermitGrant grant)
    {
        // Mirrored before the holder resumes, so its first release already finds it the holder.
        _state.Grant(waiter.Owner!, waiter is ConditionWaiter condition ? condition.Depth : 1);
        if (grant.Waited)
        {
            _state.Leave(); // it left the queue; a waiter granted on arrival leaves in Offer
            _state.OtherLeft(waiter);
        }
    }

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        // The published head is taken back for the whole message, so a releaser never hands the lock on while the
        // gate changes, and published again when the message is done.
        _state.BeginMessage(Gate);
        var handled = base.AroundReceive(receive, message);
        _state.EndMessage(Gate);
        return handled;
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        // Closed before the gate fails its waiters, so no releaser takes one of them as it is failed.
        _state.Close(Gate);
        base.PostStop();
    }

    /// <inheritdoc />
    protected override void Withdrawn(PermitWaiter waiter)
    {
        _state.Leave();
        _state.OtherLeft(waiter);
    }

    /// <inheritdoc />
    protected override void HandleOwnerStopped(IActorRef owner)
    {
        foreach (var condition in _conditions.Values)
        {
            ConditionWaitersChanged(-condition.RemoveWhere(w => Equals(w.Owner, owner)).Count);
        }

        if (Equals(_state.Owner, owner))
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
        _state.Close(Gate);
    }

    private void HandleProtocolAcquire(CoordinatorProtocol.Acquire message)
    {
        // Counted before it is offered, so no facade flow takes the lock past it; the sweep after the count is the one
        // the gate's view may rely on.
        _state.Announce();
        _state.Sweep(Gate);
        Offer(ActorWaiter(message.RequestId));
    }

    /// <summary>A flow's waiter arrived (the line, if any, was taken back at the start of this message).</summary>
    private void Arrive(PrimitiveWaiter waiter)
    {
        _state.Arrived();
        Offer(waiter);
    }

    /// <summary>Offers an announced waiter: a reentry at once, anyone else through the gate.</summary>
    private void Offer(PermitWaiter waiter)
    {
        if (waiter.IsWithdrawn)
        {
            _state.Leave();
            return;
        }

        if (_state.TryReenter(waiter.Owner))
        {
            // Reentry passes the gate: the holder already has the permit, it only goes one level deeper.
            var freed = !waiter.TryGrant(default) && _state.UndoReenter() == 0;
            _state.Leave();
            if (freed)
            {
                // The caller withdrew at that instant, and its flow released its one real level meanwhile: that release
                // saw this level and left it "remaining", so it neither passed the lock on nor told this coordinator.
                // The undo takes the last level: the lock is freed here, as that release would have (review 72: it
                // stayed held at depth 0 by a flow that had let go, and every later acquire waited for ever).
                FreeLock();
            }

            return;
        }

        _state.Offer(Gate, waiter);
    }

    /// <summary>A notified (or cancelled) condition waiter queues for the lock, announced first like any other waiter.</summary>
    private void Requeue(PermitWaiter waiter)
    {
        _state.Announce();
        _state.Sweep(Gate);
        _state.Requeue(Gate, waiter);
    }

    /// <summary>
    /// The facade took a holder's last level off the mirror and found someone waiting and no head published: the lock
    /// is free. The facade checked the holder and a reentry needs a level held (<see cref="LockState.TryReenter"/>),
    /// so the depth is still 0; the check stays for a release that would arrive for a hold already ended.
    /// </summary>
    private void HandleLockRelease(LockRelease message)
    {
        if (Equals(_state.Owner, message.Owner) && _state.Depth == 0)
        {
            FreeLock();
        }
    }

    private void HandleProtocolRelease(CoordinatorProtocol.Release message)
    {
        if (!Equals(_state.Owner, Sender))
        {
            Sender.Tell(new CoordinatorProtocol.Refused(message.RequestId, "The lock is not held by this actor"));
            return;
        }

        if (_state.ReleaseOne() == 0)
        {
            FreeLock();
        }
    }

    private void HandleConditionWait(ConditionWait message)
    {
        var waiter = message.Waiter;
        if (!Equals(_state.Owner, waiter.Owner))
        {
            waiter.Fail(new InvalidOperationException("WaitAsync requires holding the condition's lock."));
            return;
        }

        waiter.Depth += _state.Depth; // levels a reentry took after the facade claimed the others
        ConditionQueue(waiter.ConditionId).Enqueue(waiter);
        ConditionWaitersChanged(+1); // published before the lock passes on, so the next holder sees this waiter
        FreeLock();
    }

    private void HandleConditionNotify(ConditionNotify message)
    {
        if (!Equals(_state.Owner, message.Owner))
        {
            message.Completion.TrySetException(new InvalidOperationException("Notify requires holding the condition's lock."));
            return;
        }

        var condition = ConditionQueue(message.ConditionId);
        var woken = 0;
        while (woken < message.Count && condition.Dequeue() is { } waiter)
        {
            // A notified waiter queues for the lock; it gets it once the notifier (and anyone ahead) releases.
            Requeue(waiter);
            woken++;
        }

        ConditionWaitersChanged(-woken);
        message.Completion.TrySetResult(woken);
    }

    /// <summary>A condition waiter's token fired: it must hold the lock again before its cancellation surfaces.</summary>
    private void HandleCancelConditionWait(CancelConditionWait message)
    {
        var waiter = message.Waiter;
        if (waiter.CancelledBy is not null || waiter.IsCompleted)
        {
            return;
        }

        waiter.CancelledBy = message.Token;
        var condition = ConditionQueue(waiter.ConditionId);
        if (condition.Remove(waiter))
        {
            ConditionWaitersChanged(-1);
            Requeue(waiter);
        }
        else if (condition.Dequeue() is { } next)
        {
            // Already notified and waiting for the lock: the notify passes on to the next condition waiter.
            ConditionWaitersChanged(-1);
            Requeue(next);
        }
    }

    private void FreeLock()
    {
        _state.Clear();
        Gate.Release(PermitDemand.One);
    }

    private void ConditionWaitersChanged(int delta) => _state.ConditionWaiters += delta;

    private WaiterQueue<PermitWaiter> ConditionQueue(int conditionId)
    {
        if (!_conditions.TryGetValue(conditionId, out var queue))
        {
            queue = new WaiterQueue<PermitWaiter>();
            _conditions.Add(conditionId, queue);
        }

        return queue;
    }
}
