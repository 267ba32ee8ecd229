using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// The contended side of a gatekeeper without rates, beside its <see cref="PermitLoan"/>: while callers wait, the
/// gatekeeper publishes the plain facade waiters at the front of its gate, and a release whose permits could not go
/// back into the (shut) loan hands them straight to those heads, in order, with no message. It also keeps the waiting
/// count the facade reads, which a hand-off lowers at once. The channel, written down:
/// <list type="bullet">
/// <item>One word: the heads taken (bits 0–7), the heads published (bits 8–15), <c>open</c>, <c>suspended</c>,
/// <c>closed</c> (bits 16–18) and a generation (bits 32–63). Beside it the heads themselves (an array the gatekeeper
/// writes only while the word is not open) and the prioritised requests on their way.</item>
/// <item>Gatekeeper, at the start of <b>every</b> message, before any handler may change its queue
/// (<see cref="BeginMessage"/>): one CAS closes the publication and moves to a new generation; the heads taken so far
/// leave the gate as handed off (their permits stay in use, passed on by their releaser) and the rest stay queued.
/// From then on until it publishes again nothing is taken, so inside a message the gate is the only judge of its
/// queue. The one exception is a message that can only queue a newcomer behind every published head (a facade
/// request of priority 0 or less while the pool is full and a full queue rejects newcomers): there the gatekeeper
/// only unlinks the heads taken since its last look (<see cref="Sync"/>) and leaves the publication open, since under
/// contention its mailbox is never empty and a publication closed at every message would hardly ever be open. Such a
/// handler touches only the queue's tail and the deadlines, which releasers never read.</item>
/// <item>Gatekeeper, at the end of a message: heads still published and not all taken stay as they are; else it
/// closes the word if it moved since the start of the message and publishes anew.</item>
/// <item>Gatekeeper, at the end of a message (<see cref="Publish"/>), only while callers wait, the gate is open and its
/// pool is within its limit (the loan is then shut: it lends only while nobody waits): copies the gate's front in
/// serving order and publishes its longest prefix of plain facade waiters (<see cref="AcquireRequest"/> of priority 0
/// or more; an actor's waiter or anything else ends it) by one CAS from the word it left at the start of the message,
/// so a suspend or close since then keeps it unpublished. With free permits in the pool (a weighted head needs more)
/// the prefix ends before any head whose successor would fit them: a hand-off leaves the pool as it is, so that
/// successor would wait beside free permits until the next message.</item>
/// <item>Releasers, any thread (<see cref="PassOn"/>): read the word, read the next head, and take it by one CAS on
/// the word (taken + 1, same generation, still open) if their permits cover its demand; a CAS that succeeds proves the
/// head read was this generation's. Then the waiting count drops by one and the head is granted
/// (<see cref="PermitWaiter.TryGrant"/>); a head that withdrew at that instant takes nothing, counts as taken all the
/// same, and its permits go on to the next head. What no head takes goes to the gatekeeper by message.</item>
/// <item>Facade: a resize (<see cref="Suspend"/>) and an announced request of a priority above 0
/// (<see cref="AnnouncePrioritised"/>) suspend the publication until the gatekeeper's next message, and the latter
/// keeps anything from being published until it arrived (<see cref="LeavePrioritised"/>), since it may belong in
/// front of the published heads; a dispose closes it for good (<see cref="Close"/>).</item>
/// </list>
/// A head is taken at most once (one CAS per take on one word), only while published, and only in gate order, so FIFO
/// across facade and actor callers holds and permits are only ever passed from a holder to a waiter (the count in use
/// does not move). The 32-bit generation makes a stale read impossible short of 2^32 publications during one
/// releaser's two reads.
/// </summary>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
internal sealed class PermitHandOff
{
    /// <summary>The most heads published at once: enough to keep a burst of releases off the gatekeeper, bounded by the word's 8 bits.</summary>
    public const int MaxHeads = 64;

    private const long TakenMask = 0xFF;
    private const int CountShift = 8;
    private const long CountMask = 0xFF << CountShift;
    private const long Open = 1L << 16;
    private const long Suspended = 1L << 17;
    private const long Closed = 1L << 18;
    private const long GenerationMask = unchecked((long)0xFFFF_FFFF_0000_0000);
    private const long GenerationOne = 1L << 32;

    /// <summary>The heads published; written by the gatekeeper only while the word is not open.</summary>
    private readonly PermitWaiter?[] _heads = new PermitWaiter?[MaxHeads];

    /// <summary>Taken, published, open / suspended / closed, generation (see the class remarks).</summary>
    private long _word;

    /// <summary>The word the gatekeeper left at the start of its message: the only one it publishes from. The gatekeeper's only.</summary>
    private long _begun;

    /// <summary>How many entries of <see cref="_heads"/> the gatekeeper filled last; it clears them. The gatekeeper's only.</summary>
    private int _filled;

    /// <summary>The heads of the current publication the gatekeeper has unlinked already (<see cref="Sync"/>). The gatekeeper's only.</summary>
    private int _synced;

    /// <summary>Facade requests of a priority above 0 sent and not arrived; nothing is published while any is.</summary>
    private int _prioritisedAnnounced;

    /// <summary>Waiters as the gatekeeper last counted them, less the heads taken since (releasers take them off at once).</summary>
    private int _waiting;

    /// <summary>What the gatekeeper last published as waiting, less the heads it has learnt were taken. The gatekeeper's only.</summary>
    private int _publishedWaiting;

    /// <summary>Waiting now: what the gatekeeper published, less every head handed off since, each counted off before it is granted.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Whether heads are published for releasers to take.</summary>
    public bool IsPublished => (Volatile.Read(ref _word) & Open) != 0;

    /// <summary>Whether the word moved since the gatekeeper's last <see cref="BeginMessage"/> (published, taken from, suspended or closed): the gatekeeper closes it again before it publishes.</summary>
    public bool MovedSinceBegun => Volatile.Read(ref _word) != _begun;

    /// <summary>Whether heads are published and some are left to take.</summary>
    public bool IsServing
    {
        get
        {
            var word = Volatile.Read(ref _word);
            return (word & Open) != 0 && (word & TakenMask) < (word & CountMask) >> CountShift;
        }
    }

    private string DebuggerDisplay
    {
        get
        {
            var word = Volatile.Read(ref _word);
            var state = (word & Closed) != 0 ? "closed" : (word & Suspended) != 0 ? "suspended" : (word & Open) != 0 ? "open" : "shut";
            return $"{state}, taken {word & TakenMask} of {(word & CountMask) >> CountShift}, waiting {Waiting}";
        }
    }

    /// <summary>
    /// Releaser: hands <paramref name="permits"/> to the published heads in order while they cover the next one's demand.
    /// </summary>
    /// <param name="permits">The permits of the lease being released (held, so counted in use).</param>
    /// <param name="leaseIds">Numbers the new leases (a claimed lease's number space, apart from the gate's).</param>
    /// <param name="telemetry">Meters each grant as the gate would (acquired, permits, wait time, one fewer waiting) on this thread.</param>
    /// <returns>The permits no head took: they go to the gatekeeper by message.</returns>
    public int PassOn(int permits, PermitLoan leaseIds, GatekeeperTelemetry telemetry)
    {
        var seen = Volatile.Read(ref _word);
        while ((seen & Open) != 0 && (seen & TakenMask) < (seen & CountMask) >> CountShift)
        {
            // Read before the CAS: a CAS on the same word proves the gatekeeper has not rewritten the array since.
            var head = _heads[seen & TakenMask];
            if (head is null || head.Demand.Permits > permits)
            {
                var now = Volatile.Read(ref _word);
                if (now == seen)
                {
                    break; // the next head needs more than is left: the rest goes by message
                }

                seen = now;
                continue;
            }

            var was = Interlocked.CompareExchange(ref _word, seen + 1, seen);
            if (was != seen)
            {
                seen = was;
                continue;
            }

            // Counted off before it hears: a caller that runs on its grant never sees itself waiting.
            Interlocked.Decrement(ref _waiting);
            var grant = new PermitGrant(leaseIds.NextLeaseId(), head.Demand, default, Waited: true);
            telemetry.HandedOff();
            if (head.TryGrant(grant))
            {
                telemetry.Granted(head, grant);
                permits -= grant.Demand.Permits;
                if (permits == 0)
                {
                    return 0;
                }
            }

            // A head that withdrew at this instant took nothing: its permits go on to the next head.
            seen = Volatile.Read(ref _word);
        }

        return permits;
    }

    /// <summary>
    /// Gatekeeper, start of every message, before anything may change its queue: closes the publication (a closed word
    /// stays closed) and lets the heads taken since leave <paramref name="gate"/> as handed off.
    /// </summary>
    /// <param name="gate">The gate the heads were published from.</param>
    /// <param name="telemetry">The gatekeeper's: its waiting instrument already shows the heads taken (each taker metered its own).</param>
    /// <returns>How many heads were taken.</returns>
    public int BeginMessage(PermitGate gate, GatekeeperTelemetry telemetry)
    {
        var seen = Volatile.Read(ref _word);
        while (true)
        {
            var next = ((seen & GenerationMask) + GenerationOne) | (seen & Closed);
            var was = Interlocked.CompareExchange(ref _word, next, seen);
            if (was == seen)
            {
                _begun = next;
                break;
            }

            seen = was;
        }

        var taken = Unlink(gate, telemetry, (int)(seen & TakenMask));
        _synced = 0;
        Array.Clear(_heads, 0, _filled);
        _filled = 0;
        return taken;
    }

    /// <summary>
    /// Gatekeeper, start of a message that only queues a newcomer behind every published head (a facade request of
    /// priority 0 or less, while the pool is full and a full queue rejects the newcomer): leaves the publication open, so
    /// releases keep taking heads while the gatekeeper is busy, and lets the heads taken since its last look leave the gate.
    /// </summary>
    /// <returns>How many heads were taken since the last look.</returns>
    public int Sync(PermitGate gate, GatekeeperTelemetry telemetry) => Unlink(gate, telemetry, (int)(Volatile.Read(ref _word) & TakenMask));

    /// <summary>
    /// Gatekeeper, end of a message while callers wait and the pool is within its limit: publishes the plain facade
    /// waiters at the front of <paramref name="gate"/> for releasers to take.
    /// </summary>
    /// <param name="gate">The gate whose front is published.</param>
    /// <param name="spare">The pool's free permits (fewer than the head needs): a head is published only if the waiter behind it needs more, since a hand-off leaves the pool as it is and nobody would grant that waiter the spare permits before the next message.</param>
    /// <returns>How many heads were published (0: none, or a suspend or close came first).</returns>
    public int Publish(PermitGate gate, long spare)
    {
        if ((_begun & Closed) != 0 || Volatile.Read(ref _prioritisedAnnounced) != 0)
        {
            return 0;
        }

        _filled = gate.CopyFront(_heads);
        var count = 0;
        while (count < _filled && _heads[count] is AcquireRequest { Priority: >= 0 })
        {
            count++;
        }

        if (spare > 0)
        {
            count = Math.Min(count, HeadsNotExposing(spare, count));
        }

        if (count == 0 || Interlocked.CompareExchange(ref _word, _begun | Open | ((long)count << CountShift), _begun) != _begun)
        {
            return 0;
        }

        return count;
    }

    /// <summary>The heads taken up to <paramref name="taken"/> leave the gate, those not unlinked yet.</summary>
    private int Unlink(PermitGate gate, GatekeeperTelemetry telemetry, int taken)
    {
        var fresh = taken - _synced;
        if (fresh > 0)
        {
            // The releasers counted them off the waiting count already; the gate's next publish must not do it again.
            _publishedWaiting -= fresh;
            telemetry.AbsorbHandedOff(fresh);
            gate.HandedOff(_heads.AsSpan(_synced, fresh));
            _synced = taken;
        }

        return fresh;
    }

    /// <summary>
    /// How many of the first <paramref name="count"/> copied heads may be taken without leaving the waiter behind the
    /// last one beside <paramref name="spare"/> free permits it fits; a waiter beyond a full copy is unknown, so counted as fitting.
    /// </summary>
    private int HeadsNotExposing(long spare, int count)
    {
        for (var behind = 1; behind <= count; behind++)
        {
            var fits = behind < _filled ? _heads[behind]!.Demand.Permits <= spare : _filled == _heads.Length;
            if (fits)
            {
                return behind - 1;
            }
        }

        return count;
    }

    /// <summary>Gatekeeper, inside a message (nothing published): the waiting count its gate reports.</summary>
    public void PublishWaiting(int waiting)
    {
        if (waiting != _publishedWaiting)
        {
            Interlocked.Add(ref _waiting, waiting - _publishedWaiting);
            _publishedWaiting = waiting;
        }
    }

    /// <summary>Facade, before a resize (after it published the new limit): nothing is taken once the call returned, nor published before the gatekeeper's next message.</summary>
    public void Suspend() => Set(Suspended);

    /// <summary>Facade, before it sends a request of a priority above 0: it may belong in front of the published heads.</summary>
    public void AnnouncePrioritised()
    {
        Interlocked.Increment(ref _prioritisedAnnounced);
        Suspend();
    }

    /// <summary>Gatekeeper: an announced request of a priority above 0 arrived (before it is offered).</summary>
    public void LeavePrioritised()
    {
        var left = Interlocked.Decrement(ref _prioritisedAnnounced);
        Debug.Assert(left >= 0, "Every prioritised request leaves once, after it was announced.");
    }

    /// <summary>The limiter is disposed or its gatekeeper stops: nothing is taken or published again.</summary>
    public void Close() => Set(Closed);

    /// <summary>Sets <paramref name="flag"/> and clears <c>open</c>, keeping the taken count for the gatekeeper's next <see cref="BeginMessage"/>.</summary>
    private void Set(long flag)
    {
        var seen = Volatile.Read(ref _word);
        while ((seen & flag) == 0)
        {
            var was = Interlocked.CompareExchange(ref _word, (seen | flag) & ~Open, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }
}
