using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Primitives;

// The lock's hand-off: the coordinator publishes its line of flows or its gate's head, a releasing holder serves or takes it (the protocol is in the remarks on LockState).
internal sealed partial class LockState
{
    /// <summary>
    /// The hand-off slot: the gate's head, published by the coordinator at the end of a message while it is a flow's
    /// waiter; emptied by exactly one of a releaser that takes it and the coordinator at the start of its next message.
    /// </summary>
    private LockWaiter? _head;

    /// <summary>
    /// The line of waiting flows, published by the coordinator at the end of a message instead of the head when every
    /// waiter in its gate is a flow's; taken back at the start of its next one. Written by the coordinator only.
    /// </summary>
    private volatile LockLine? _line;

    /// <summary>Flows' waiters sent to the coordinator and not yet arrived.</summary>
    private int _sending;

    /// <summary>What the coordinator put in the slot at the end of its last message; the coordinator's only.</summary>
    private LockWaiter? _published;

    /// <summary>Actors' and condition waiters in the gate: a line is published only while there are none; the coordinator's only.</summary>
    private int _othersInGate;

    /// <summary>The gate's FIFO (its one priority level: every lock waiter has priority 0), whose head is the gate's head; the coordinator's only.</summary>
    private WaiterQueue<PermitWaiter>? _gateQueue;

    /// <summary>Whether a waiter is published for a releaser to take: the gate's head, or a flow in the line.</summary>
    public bool IsHeadPublished => Volatile.Read(ref _head) is not null || InLine > 0;

    /// <summary>
    /// The holding flow has claimed its last level: frees the lock if nobody is announced, else hands it straight to
    /// the next waiter of the published line or to the published head, if any (<c>true</c> either way). <c>false</c>:
    /// someone waits and nothing is published; the holder stays written and the flow must tell the coordinator
    /// (<see cref="LockRelease"/>).
    /// </summary>
    /// <param name="owner">The releasing flow's token.</param>
    public bool TryPassOn(object owner)
    {
        while (!TryFreeUnannounced(owner))
        {
            var next = _line is { } line ? line.TryServe() : Interlocked.Exchange(ref _head, null);
            if (next is null)
            {
                return false;
            }

            // Taken, it has left the gate or the line whether the grant below wins or not: its announcement goes with
            // it, here. The held bit never clears, so nobody takes the lock meanwhile.
            Leave();
            if (next.TryTakeHandOff(this))
            {
                return true;
            }

            // It was cancelled at this instant: still this flow's lock, with one announced waiter fewer; again.
        }

        return true;
    }

    /// <summary>
    /// A flow that announced itself joins the published line instead of sending its waiter; <c>false</c> when no line
    /// is published (or it has just been taken back): then it sends its waiter to the coordinator.
    /// </summary>
    /// <remarks>
    /// Not while a flow's waiter is on its way to the coordinator (<see cref="Sending"/>): a flow whose acquire returned
    /// after sending its waiter is ahead of every later acquire, and a line published before its waiter arrived would
    /// let a later flow pass it. Its waiter is counted before it is sent and uncounted by the coordinator after the
    /// line was taken back, so a later flow sees either the count or a line that is closed.
    /// </remarks>
    public bool TryJoinLine(LockWaiter waiter) =>
        Volatile.Read(ref _sending) == 0 && _line is { } line && line.TryJoin(waiter);

    /// <summary>A flow is about to send its waiter to the coordinator: no flow joins a line until it has arrived.</summary>
    public void Sending() => Interlocked.Increment(ref _sending);

    /// <summary>Coordinator: a flow's waiter arrived (after the line, if any, was taken back).</summary>
    public void Arrived() => Interlocked.Decrement(ref _sending);

    /// <summary>Waiters in the published line nobody has served yet (for diagnostics: a walk of the line).</summary>
    public int InLine => _line?.Count ?? 0;

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
    /// Coordinator, at the start of every message: takes the published line or head back, then sweeps. The line's
    /// waiters nobody served go back into the gate in their order (a cancelled one leaves instead), **after** a sweep:
    /// the gate grants a requeued waiter at once if it thinks the lock free, and its view may be stale — a flow may have
    /// taken the free lock on the fast path during the message that published the line (nobody was announced then; the
    /// line's flows announce themselves after that message's sweep), so only a sweep after the take-back (which stops
    /// every serve) tells whether the lock is really free. A head is unlinked if a releaser took it meanwhile (the
    /// releaser already counted it out of the word), before the sweep, so that the gate never sees a free lock while it
    /// still holds a waiter that was handed the lock.
    /// </summary>
    public void BeginMessage(PermitGate gate)
    {
        if (_line is { } line)
        {
            _line = null;
            var unserved = line.TakeBack();
            Sweep(gate);
            foreach (var waiter in unserved)
            {
                if (waiter.IsWithdrawn)
                {
                    Leave(); // cancelled while in the line: its withdrawal will find it in no queue
                }
                else
                {
                    Requeue(gate, waiter);
                }
            }
        }
        else if (_published is { } published)
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
    /// Coordinator, at the end of every message, while the lock is held and not closed: publishes the line if every
    /// waiter in the gate is a flow's lock waiter (moving them all into it, in order), else the gate's head if it is a
    /// flow's lock waiter that has not withdrawn. Never an actor's or a condition waiter's turn: those are served by
    /// the coordinator, so a release finds nothing published and tells it, and no flow joins a line behind them.
    /// </summary>
    public void EndMessage(PermitGate gate)
    {
        if ((Volatile.Read(ref _word) & (Closed | Held)) != Held)
        {
            return; // free (nobody to hand on to; a newcomer takes it or queues by message) or closed
        }

        if (_othersInGate == 0)
        {
            var waiters = new List<LockWaiter>(gate.Waiting);
            while (_gateQueue?.Head is LockWaiter head)
            {
                gate.Withdraw(head); // into the line: its announcement stays, whoever takes it from there counts it out
                waiters.Add(head);
            }

            _line = new LockLine(waiters);
        }
        else if (_gateQueue?.Head is LockWaiter { IsWithdrawn: false } head)
        {
            _published = head;
            Volatile.Write(ref _head, head);
        }
    }

    /// <summary>Coordinator: an actor's or a condition waiter queued in the gate; no line is published while one waits.</summary>
    public void OtherQueued(PermitWaiter waiter)
    {
        if (waiter is not LockWaiter)
        {
            _othersInGate++;
        }
    }

    /// <summary>Coordinator: a waiter left the gate (granted from it or withdrawn).</summary>
    public void OtherLeft(PermitWaiter waiter)
    {
        if (waiter is not LockWaiter)
        {
            _othersInGate--;
            Debug.Assert(_othersInGate >= 0, "only a queued waiter leaves the gate");
        }
    }

    /// <summary>Coordinator: a notified or cancelled condition waiter, announced and swept, queues at the gate's tail.</summary>
    public void Requeue(PermitGate gate, PermitWaiter waiter)
    {
        OtherQueued(waiter);
        gate.Requeue(waiter);
        _gateQueue ??= (WaiterQueue<PermitWaiter>?)waiter.Queue;
    }
}
