using ActorQueue.Primitives.Coordination;
using ActorQueue.Runtime;
using Akka.Event;

namespace ActorQueue.Primitives;

/// <summary>A facade flow took its last level of the lock off the mirror: the coordinator frees the lock.</summary>
internal sealed record LockRelease(object Owner) : IDeadLetterSuppression;

/// <summary>
/// A flow waiting for the lock. Besides the coordinator's gate, a releasing holder may grant it directly while it
/// stands in the published line or is published as the gate's head (<see cref="LockState.TryPassOn"/>); then the holder is written by
/// the grant itself, once it has won over a cancellation and before the continuation is scheduled. A condition waiter
/// is never published: its deferred cancellation is ordered by the coordinator's mailbox, which a hand-off bypasses.
/// </summary>
/// <param name="coordinator">The lock's coordinator.</param>
/// <param name="owner">The flow's token.</param>
/// <param name="reentry">Sent while the token held the lock: the flow keeps its identity until it is answered.</param>
internal sealed class LockWaiter(Akka.Actor.IActorRef coordinator, object owner, bool reentry = false) : PrimitiveWaiter(coordinator, owner, keepsIdentity: reentry)
{
    /// <summary>The lock whose releaser hands this waiter the lock; <c>null</c> while the coordinator's gate serves it.</summary>
    private LockState? _handedBy;

    /// <summary>A releaser that took this waiter as the published head grants it the lock.</summary>
    /// <returns><c>false</c> when it was cancelled first: it takes nothing and the releaser still holds the lock.</returns>
    public bool TryTakeHandOff(LockState state)
    {
        _handedBy = state; // only the releaser that took it from the published slot gets here, once
        return TryGrant(default);
    }

    /// <inheritdoc />
    protected override bool ResultOf(in ActorQueue.Coordination.PermitGrant grant)
    {
        // The coordinator's gate writes the holder in its own Granting; a hand-off writes it here, after winning.
        _handedBy?.HandOver(Owner!, 1);
        return true;
    }
}

/// <summary>A holder waits on a condition: release the lock fully and wait for a notify.</summary>
internal sealed record ConditionWait(ConditionWaiter Waiter) : IUndeliverableRequest
{
    /// <inheritdoc />
    public void Undelivered() => Waiter.Undelivered();
}

/// <summary>A condition waiter's token fired; the coordinator completes the cancellation once the waiter holds the lock again.</summary>
internal sealed record CancelConditionWait(ConditionWaiter Waiter, CancellationToken Token) : IDeadLetterSuppression;

/// <summary>A holder wakes up to <see cref="Count"/> waiters of a condition; completes with how many were woken.</summary>
internal sealed class ConditionNotify(int conditionId, int count, object owner) : CoordinatorCommand<int>
{
    public int ConditionId { get; } = conditionId;

    public int Count { get; } = count;

    public object Owner { get; } = owner;
}

/// <summary>
/// A flow waiting on a condition. It waits in its condition's queue until notified, then in the lock's gate; when
/// granted it holds the lock again at the depth it held before. Its cancellation is deferred: the token only tells the
/// coordinator, which queues it for the lock, and the grant then completes it as cancelled, holding the lock. It does
/// not count in its token's asks: a condition wait forgets nothing, so its flow keeps its identity through it anyway.
/// </summary>
internal sealed class ConditionWaiter(Akka.Actor.IActorRef coordinator, object owner, int depth, int conditionId)
    : PrimitiveWaiter(coordinator, owner, keepsIdentity: false)
{
    /// <summary>The lock depth to restore when it gets the lock back.</summary>
    public int Depth { get; set; } = depth;

    /// <summary>The condition it waits on.</summary>
    public int ConditionId { get; } = conditionId;

    /// <summary>Set when it was cancelled: its grant completes as cancelled.</summary>
    public CancellationToken? CancelledBy { get; set; }

    /// <inheritdoc />
    public override bool TryGrant(in ActorQueue.Coordination.PermitGrant grant) =>
        CancelledBy is { } token ? TryCancel(token) : base.TryGrant(grant);

    /// <inheritdoc />
    protected override void OnCancellationRequested(CancellationToken cancellationToken) =>
        TellServer(new CancelConditionWait(this, cancellationToken));
}
