using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Primitives;

// The lock's hand-off slot: the coordinator publishes its gate's head, a releasing holder takes it (the protocol is in the remarks on LockState).
internal sealed partial class LockState
{
    /// <summary>
    /// The hand-off slot: the gate's head, published by the coordinator at the end of a message while it is a flow's
    /// waiter; emptied by exactly one of a releaser that takes it and the coordinator at the start of its next message.
    /// </summary>
    private LockWaiter? _head;

    /// <summary>What the coordinator put in the slot at the end of its last message; the coordinator's only.</summary>
    private LockWaiter? _published;

    /// <summary>The gate's FIFO (its one priority level: every lock waiter has priority 0), whose head is the gate's head; the coordinator's only.</summary>
    private WaiterQueue<PermitWaiter>? _gateQueue;

    /// <summary>Whether a waiter is published for a releaser to take (the gate's head, as of the coordinator's last message).</summary>
    public bool IsHeadPublished => Volatile.Read(ref _head) is not null;

    /// <summary>
    /// The holding flow has claimed its last level: frees the lock if nobody is announced, else hands it straight to
    /// the head the coordinator published, if any (<c>true</c> either way). <c>false</c>: someone waits and nothing is
    /// published; the holder stays written and the flow must tell the coordinator (<see cref="LockRelease"/>).
    /// </summary>
    /// <param name="owner">The releasing flow's token.</param>
    public bool TryPassOn(object owner)
    {
        while (!TryFreeUnannounced(owner))
        {
            if (Interlocked.Exchange(ref _head, null) is not { } head)
            {
                return false;
            }

            // Taken, it has left the gate whether the grant below wins or not: its announcement goes with it, here,
            // and the coordinator only unlinks it. The held bit never clears, so nobody takes the lock meanwhile.
            Leave();
            if (head.TryTakeHandOff(this))
            {
                return true;
            }

            // It was cancelled at this instant: still this flow's lock, with one announced waiter fewer; again.
        }

        return true;
    }

    /// <summary>
    /// A hand-off's grant has won: the holder, then its depth. The reverse of <see cref="Grant"/>, for
    /// <see cref="TryReenter"/>: a coordinator that sees a depth above 0 then sees the holder that goes with it.
    /// Nobody else reads the holder in between (the new holder's flow runs only after its grant completes).
    /// </summary>
    public void HandOver(object owner, int depth)
    {
        _owner = owner;
        Volatile.Write(ref _depth, depth);
    }

    /// <summary>
    /// Coordinator, at the start of every message: takes the published head back, unlinking it if a releaser took it
    /// meanwhile (the releaser already counted it out of the word), then sweeps. Before the sweep, so that the gate
    /// never sees a free lock while it still holds a waiter that was handed the lock.
    /// </summary>
    public void BeginMessage(PermitGate gate)
    {
        if (_published is { } published)
        {
            _published = null;
            if (Interlocked.Exchange(ref _head, null) is null)
            {
                // Its turn is over either way: granted, or cancelled and still to be withdrawn by its own message.
                var unlinked = gate.Withdraw(published);
                Debug.Assert(unlinked, "a published head stands in the gate until the coordinator takes it back");
            }
        }

        Sweep(gate);
    }

    /// <summary>
    /// Coordinator, at the end of every message: publishes the gate's head for a releaser to take, if it is a flow's
    /// lock waiter that has not withdrawn. Only the true head, and never an actor's or a condition waiter's turn: those
    /// are served by the coordinator, so a release finds nothing published and tells it.
    /// </summary>
    public void EndMessage()
    {
        if (_gateQueue?.Head is LockWaiter { IsWithdrawn: false } head && (Volatile.Read(ref _word) & Closed) == 0)
        {
            Debug.Assert(IsHeld && !_freeForGate, "someone waits in the gate only while the lock is held");
            _published = head;
            Volatile.Write(ref _head, head);
        }
    }

    /// <summary>Coordinator: a notified or cancelled condition waiter, announced and swept, queues at the gate's tail.</summary>
    public void Requeue(PermitGate gate, PermitWaiter waiter)
    {
        gate.Requeue(waiter);
        _gateQueue ??= waiter.Queue;
    }
}
