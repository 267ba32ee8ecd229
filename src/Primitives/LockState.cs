using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Primitives;

/// <summary>
/// The lock's shared state: one 64-bit word that says whether it is held (bit 0), how many waiters are announced and
/// not yet gone (bits 32–62) and whether the coordinator has stopped (bit 63), so that one compare-and-swap sees and
/// changes all three; beside it the holder and its depth (the one place they are kept). It is also the coordinator
/// gate's permit policy: a pool of one permit, the word's held bit. The channel, written down:
/// <list type="bullet">
/// <item>Acquire (a facade flow, <see cref="TryTakeOrAnnounce"/>): takes the lock when the whole word is 0 (free,
/// nobody announced, not closed), else counts itself as a waiter and then sends its waiter to the coordinator. The
/// taker then writes its depth and itself as holder (<see cref="Grant"/>) before its acquire returns.</item>
/// <item>Release (the holding flow, its last level claimed, <see cref="TryPassOn"/>): clears the holder, then frees
/// the word by a CAS that requires nobody announced (<see cref="TryFreeUnannounced"/>); when someone is, it takes the
/// published head out of the hand-off slot (one exchange), counts it out of the word and grants it, the held bit never
/// clearing; when nothing is published, the holder stays and the flow tells the coordinator
/// (<see cref="LockRelease"/>), which frees the lock and hands it on.</item>
/// <item>The line (<see cref="LockLine"/>): while only flows wait, the coordinator moves them into it at the end of a
/// message (<see cref="EndMessage"/>) and takes it back at the start of the next (<see cref="BeginMessage"/>); a flow
/// that announced joins it instead of sending its waiter (<see cref="TryJoinLine"/>, not while another flow's waiter
/// is on its way), and a releaser serves its next flow as it would take the published head. Each waiter is served by
/// one releaser or handed back to the coordinator, never both.</item>
/// <item>The hand-off slot: the coordinator empties it (one exchange) at the start of every message
/// (<see cref="BeginMessage"/>) and puts the gate's head in it at the end (<see cref="EndMessage"/>) if that head is a
/// flow's <see cref="LockWaiter"/>; finding it emptied by a releaser, it unlinks that waiter from the gate before it
/// sweeps, and counts nothing out (the releaser did).</item>
/// <item>The coordinator: counts an actor caller, or a condition waiter moving into the gate, as a waiter before
/// offering it (<see cref="Announce"/>); uncounts a waiter when it leaves the gate (<see cref="Leave"/>: granted,
/// withdrawn, or not queued at all); and, at the start of every message and after every announcement, copies the held
/// bit into its gate's view (<see cref="Sweep"/>). Its gate takes and frees the word itself (<see cref="Take"/>,
/// <see cref="Release"/>).</item>
/// </list>
/// </summary>
/// <remarks>
/// <para>No barging and no lost wake-up: the word is freed outside the coordinator only by a CAS that saw nobody
/// announced, and taken outside it only by a CAS that saw nobody announced. So from an announcement until the count
/// falls back to 0 only the coordinator takes or frees the word: its view, copied after the announcement, is exact,
/// and a lock freed while anyone waits was freed by the coordinator itself, which grants its head in the same step. A
/// waiter whose message is still on its way finds the lock as the sweep on its arrival copies it.</para>
/// <para>The holder field while the word changes hands: a fast releaser clears it before its CAS (so a newcomer that
/// takes the word never has its own holder overwritten), and puts it back if the CAS fails because someone announced
/// meanwhile (only the word's holder writes the field; the coordinator reads it only for messages sent after it was
/// written). Between its CAS and its <see cref="Grant"/> a fast taker holds the word with no holder written: nobody
/// but the taker's own flow can act on the holder then, and that flow has not returned yet.</para>
/// <para>The hand-off. Each publication is emptied exactly once, by one exchange, either by the coordinator (the
/// waiter stays queued, as before) or by one releaser (the waiter's turn is over): no waiter is granted twice, and the
/// gate never grants while a waiter is published, because nothing is published during a message. Only the gate's true
/// head is published, and never an actor's or a condition waiter's turn, so FIFO order holds across flows and actors.
/// A releaser takes only while someone is announced (its free failed) and the lock stays held throughout, so no
/// newcomer barges in. A taken waiter that was cancelled at that instant takes nothing: the releaser still holds the
/// lock and goes round again (free, take the next published head, or tell the coordinator). The taken waiter leaves the
/// gate only at the coordinator's next message, and the gate's view can say "free" only after that message's sweep, so
/// the gate never offers the lock to it again. A granted hand-off writes the holder after it has won over the
/// cancellation and before the continuation is scheduled (<see cref="HandOver"/>: holder, then depth); a coordinator
/// message that began after the take may still see the releaser as holder at depth 0, so a reentry needs a level held
/// (<see cref="TryReenter"/>: depth read first, then the holder, then a CAS on the depth).</para>
/// </remarks>
[DebuggerDisplay("held {IsHeld}, depth {Depth}, announced {Announced}, waiting {Waiting}, head published {IsHeadPublished}")]
internal sealed partial class LockState : Coordination.PrimitiveState, IPermitPolicy
{
    /// <summary>The held bit.</summary>
    private const long Held = 1;

    /// <summary>One announced waiter.</summary>
    private const long OneWaiter = 1L << 32;

    /// <summary>The coordinator has stopped: no fast take succeeds any more.</summary>
    private const long Closed = long.MinValue;

    /// <summary>Bit 0: held. Bits 32–62: waiters announced and not yet gone. Bit 63: closed.</summary>
    private long _word;

    /// <summary>The gate's view of the held bit: set by <see cref="Sweep"/> and the gate's own steps; the coordinator's only.</summary>
    private bool _freeForGate = true;

    /// <summary>The holder (a flow token or an actor); <c>null</c> when free or between a fast take and its <see cref="Grant"/>.</summary>
    private volatile object? _owner;

    /// <summary>How many levels the holder holds.</summary>
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

    /// <summary>The holder (a flow token or an actor); <c>null</c> when free.</summary>
    public object? Owner => _owner;

    /// <summary>How many levels the holder holds.</summary>
    public int Depth => Volatile.Read(ref _depth);

    /// <summary>Whether some flow or actor holds the lock (the word's held bit).</summary>
    public bool IsHeld => (Volatile.Read(ref _word) & Held) != 0;

    /// <summary>Waiters announced and not yet granted or withdrawn (including those whose message is on its way).</summary>
    public int Announced => (int)((Volatile.Read(ref _word) >> 32) & int.MaxValue);

    /// <inheritdoc />
    public PermitMeasure Measure => PermitMeasure.Permits;

    /// <inheritdoc />
    public bool IsTimed => false;

    /// <inheritdoc />
    public long Limit => 1;

    /// <inheritdoc />
    public long InUse => _freeForGate ? 0 : 1;

    /// <summary>
    /// A flow acquires: takes the lock if it is free and nobody waits (<c>true</c>; the caller then calls
    /// <see cref="Grant"/>), else counts itself as a waiter (<c>false</c>; it must then send its waiter to the coordinator).
    /// A flow that holds the lock already is announced too: its reentry is the coordinator's.
    /// </summary>
    public bool TryTakeOrAnnounce()
    {
        var word = Volatile.Read(ref _word);
        while (true)
        {
            var take = word == 0; // free, nobody announced, not closed
            var seen = Interlocked.CompareExchange(ref _word, take ? Held : word + OneWaiter, word);
            if (seen == word)
            {
                return take;
            }

            word = seen;
        }
    }

    /// <summary>
    /// The holding flow has claimed its last level: frees the lock without the coordinator if nobody is announced (or the
    /// coordinator has stopped). <c>false</c>: someone waits; the holder stays written and the flow must tell the
    /// coordinator, which frees the lock and hands it on.
    /// </summary>
    /// <param name="owner">The releasing flow's token, put back if the free fails.</param>
    public bool TryFreeUnannounced(object owner)
    {
        var word = Volatile.Read(ref _word);
        while ((word & Closed) != 0 || word >> 32 == 0)
        {
            Debug.Assert((word & Held) != 0, "only a holder frees the lock");

            // Cleared before the word is free: a newcomer that takes it next writes its own holder, never to be overwritten.
            _owner = null;
            var seen = Interlocked.CompareExchange(ref _word, word & ~Held, word);
            if (seen == word)
            {
                return true;
            }

            _owner = owner; // the word moved (someone announced): still the holder until the coordinator frees it
            word = seen;
        }

        return false;
    }

    /// <summary>The lock is granted (by a fast take or the coordinator): the depth first, so whoever sees the new holder sees its depth.</summary>
    public void Grant(object owner, int depth)
    {
        Volatile.Write(ref _depth, depth);
        _owner = owner;
    }

    /// <summary>
    /// The coordinator grants <paramref name="owner"/> one level more if it holds at least one now. A holder that
    /// has claimed its last level holds none: its next acquire queues like anyone's, and a hand-off it may be
    /// making meanwhile (its depth 0, then the new holder written before the new depth) never gains a level.
    /// </summary>
    public bool TryReenter(object? owner)
    {
        var depth = Volatile.Read(ref _depth);
        while (depth > 0 && Equals(_owner, owner))
        {
            var seen = Interlocked.CompareExchange(ref _depth, depth + 1, depth);
            if (seen == depth)
            {
                return true;
            }

            depth = seen;
        }

        return false;
    }

    /// <summary>The coordinator takes back a reentry whose caller withdrew at that instant.</summary>
    /// <returns>The levels left: 0 when the holder released its own level meanwhile (the coordinator then frees the lock).</returns>
    public int UndoReenter() => Interlocked.Decrement(ref _depth);

    /// <summary>The coordinator releases one level for an actor holder.</summary>
    /// <returns>The levels left.</returns>
    public int ReleaseOne() => Interlocked.Decrement(ref _depth);

    /// <summary>The coordinator forgets the holder (the word is freed by its gate's <see cref="Release"/>).</summary>
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

    /// <summary>Coordinator: an actor caller or a condition waiter is about to be offered; it counts as a waiter from now on.</summary>
    public void Announce() => Interlocked.Add(ref _word, OneWaiter);

    /// <summary>Coordinator: an announced waiter is granted, withdrawn, or was never queued; it no longer blocks the fast path.</summary>
    public void Leave()
    {
        var after = Interlocked.Add(ref _word, -OneWaiter);
        Debug.Assert(((after >> 32) & int.MaxValue) != int.MaxValue, "only an announced waiter leaves");
    }

    /// <summary>Coordinator, at the start of every message and after an announcement: copies the held bit, granting whoever a free lock lets in.</summary>
    public void Sweep(PermitGate gate)
    {
        var wasFree = _freeForGate;
        _freeForGate = !IsHeld;
        if (_freeForGate && !wasFree && gate.Waiting > 0)
        {
            gate.Wake();
        }
    }

    /// <summary>Coordinator: offers an announced waiter; unless it now waits in the gate, it leaves at once.</summary>
    public void Offer(PermitGate gate, PermitWaiter waiter)
    {
        if (gate.Offer(waiter) != OfferOutcome.Queued)
        {
            Leave();
            return;
        }

        OtherQueued(waiter);
        _gateQueue ??= (WaiterQueue<PermitWaiter>?)waiter.Queue;
    }

    /// <summary>Coordinator, stopping: every later acquire goes to the stopped coordinator and fails; nothing is left to take.</summary>
    public void Close(PermitGate gate)
    {
        Interlocked.Or(ref _word, Closed);
        Interlocked.Exchange(ref _head, null);
        _published = null;
        if (_line is { } line)
        {
            // Back into the gate, whose waiters are failed next; a flow that joins later is refused and sends its
            // waiter to the stopped coordinator, which fails it. Not granted on the way: the gate's view of a free
            // lock may be stale (a fast take during the message that published the line), and a closed lock grants nothing.
            _line = null;
            _freeForGate = false;
            foreach (var waiter in line.TakeBack())
            {
                OtherQueued(waiter);
                gate.Requeue(waiter);
            }
        }
    }

    /// <inheritdoc />
    public long Available(TimeSpan now) => _freeForGate ? 1 : 0;

    /// <inheritdoc />
    public bool CanTake(long cost, TimeSpan now) => cost <= Available(now);

    /// <inheritdoc />
    public void Take(long cost, TimeSpan now)
    {
        // The gate takes only for an announced waiter, so no fast take competes: the bit is clear and stays the gate's.
        var before = Interlocked.Or(ref _word, Held);
        _freeForGate = false;
        Debug.Assert((before & Held) == 0 && before >> 32 != 0, "the gate takes a free lock, for an announced waiter");
    }

    /// <inheritdoc />
    /// <remarks>
    /// A grant lost to its waiter's cancellation: the holder the coordinator wrote for it (<c>Granting</c>) is cleared
    /// before the word is freed, as every release clears it. Once freed with nobody announced (the lost waiter left in
    /// <c>Granting</c>), a flow may take the word on the fast path and write itself as holder; an undo after the free
    /// (the gate calls <c>GrantLost</c> after this) wiped that holder, whose release then threw and the lock stayed held
    /// for ever (review round 40).
    /// </remarks>
    public void Refund(long cost, TimeSpan now)
    {
        Clear();
        Release(cost, now);
    }

    /// <inheritdoc />
    public void Release(long cost, TimeSpan now)
    {
        Interlocked.And(ref _word, ~Held);
        _freeForGate = true;
    }

    /// <inheritdoc />
    public void Settle(long charged, long actual, TimeSpan now)
    {
        // The lock is held, not consumed.
    }

    /// <inheritdoc />
    public TimeSpan NextAvailableAt(long cost, TimeSpan now) => CanTake(cost, now) ? now : TimeSpan.MaxValue;

    /// <inheritdoc />
    public void Resize(long limit) => throw new NotSupportedException("A lock has one holder.");
}
