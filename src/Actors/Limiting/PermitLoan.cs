using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// The one word a gatekeeper without rates shares with its callers: the permits held as the facade counts them (high
/// half) and the free permits it has lent, or <c>shut</c>/<c>closed</c> (low half). Packed so that a claim moves a
/// permit from lent to held, and a return from held to lent, in one compare-and-swap, and <see cref="Running"/> is
/// exact at every instant. The channel, written down:
/// <list type="bullet">
/// <item>Writer of loans: the gatekeeper only, at the end of a message, and only while nobody waits, the gate is open
/// and its pool is within its limit (<see cref="Lend"/>): it takes every free permit from its pool and opens the loan
/// with them; and the facade once, as it makes the limiter, before the gatekeeper exists (<see cref="LendFirst"/>): every
/// permit, which the gatekeeper's first pool counts as out. While the loan is open, held + lent = the limit, and
/// claims and returns keep that sum.</item>
/// <item>Shut: the gatekeeper, at the start of every message (<see cref="Reclaim"/>, one CAS that keeps the held
/// count): from then on until it lends again every claim and every return fails, so inside a message its pool is
/// exact and it is the only writer of the held count (<see cref="Publish"/>). It queues a waiter only inside a
/// message, so only while the loan is shut: a release that races a waiter's arrival either went into the loan before
/// the shut (and the reclaim hands it to the gate, which grants the waiter) or fails on the shut word and goes to the
/// gatekeeper by message. It never strands a waiter beside a lent permit.</item>
/// <item>Announcers: a facade caller whose claim failed, before it sends its request (<see cref="Announce"/>): counts
/// the request on its way and suspends the loan, so that nobody who calls after it claims before the gatekeeper queued
/// it, and no release goes into the loan past it; the gatekeeper counts it off when it arrives (<see cref="Leave"/>)
/// and lends only while none is on its way.</item>
/// <item>Claimers: any thread, <see cref="TryClaim"/>: a CAS that never takes the lent part below zero, so a permit
/// is claimed once, and never succeeds while the loan is shut (someone waits, or a message is being handled).</item>
/// <item>Returners: any thread, <see cref="TryReturn"/>: a CAS that succeeds only on an open loan; on a shut or closed
/// loan the lease goes back by message, as before.</item>
/// <item>Suspend: the facade, before it asks the gatekeeper to resize (<see cref="Suspend"/>): shuts the loan, keeps what
/// was lent aside for the gatekeeper's next reclaim, and keeps the gatekeeper from opening a loan before that reclaim,
/// so no claim is served on the old limit after a resize call returned.</item>
/// <item>Close: the facade's dispose or the gatekeeper's stop (<see cref="Close"/>): for good. The word keeps no lent
/// count after it, so a reclaim of a closed loan gives nothing back: the gatekeeper, which still handles the messages
/// ahead of the dispose's stop, takes back what its pool has out beyond the held count.</item>
/// </list>
/// </summary>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
internal sealed class PermitLoan
{
    /// <summary>The low half while nobody may claim or return: someone waits, or a message is being handled.</summary>
    private const int Shut = -1;

    /// <summary>The low half once the limiter or its gatekeeper stopped: nothing is lent again.</summary>
    private const int Closed = -2;

    /// <summary>
    /// The low half after a facade's announce or resize: shut, and not lent again before the gatekeeper's next reclaim;
    /// this value with nothing set aside, <c>Suspended - k</c> with the <c>k</c> lent permits nobody had claimed set aside
    /// for that reclaim. In the word itself, so the suspend that sets them aside is the same CAS that shuts the loan: a
    /// second store after it (as the set-aside once was) let a reclaim between the two count those permits as held, so a
    /// caller queued behind permits nobody held, and the next reclaim put them in the pool without serving the queue —
    /// the partitioned limiter's loan had the same two steps and hung its racing test that way.
    /// </summary>
    private const int Suspended = -3;

    /// <summary>The most permits one loan lends: a suspended word sets them aside as <c>Suspended - k</c>, which must stay an <c>int</c>.</summary>
    public const int MaxLent = int.MaxValue + Suspended;

    /// <summary>Held permits (high 32 bits) and the lent permits, <see cref="Shut"/>, <see cref="Closed"/> or suspended (low 32 bits).</summary>
    private long _word = Pack(0, Shut);

    /// <summary>Facade requests announced (<see cref="Announce"/>) and not yet handled by the gatekeeper (<see cref="Leave"/>): nothing is lent while any is.</summary>
    private readonly OnTheWay _announced = new();

    /// <summary>The last lease number given to a claimed lease; claimed leases count down from -1, apart from the gate's.</summary>
    private long _lastLeaseId;

    /// <summary>
    /// What the facade lent at construction (<see cref="LendFirst"/>) and the gatekeeper's first instance has not yet
    /// counted out of its pool (<see cref="TakeFirstLent"/>); 0 once counted, or when nothing was lent first.
    /// </summary>
    private int _firstLent;

    /// <summary>How many leases were claimed from the loan so far (their numbers count down from -1), read by any thread.</summary>
    public long Claims => -Volatile.Read(ref _lastLeaseId);

    /// <summary>Permits held now: what the gatekeeper counted and what callers claimed from, or returned into, the loan since.</summary>
    public int Running => HeldOf(Volatile.Read(ref _word));

    /// <summary>Lent and not yet claimed (0 when shut or closed).</summary>
    public int Unclaimed => Math.Max(0, LentOf(Volatile.Read(ref _word)));

    /// <summary>Whether a loan is open (possibly spent).</summary>
    public bool IsOpen => LentOf(Volatile.Read(ref _word)) >= 0;

    /// <summary>Whether a facade request is on its way to the gatekeeper.</summary>
    public bool HasAnnounced => _announced.Any;

    /// <summary>Whether a suspend (a pusher's, an announce's, a resize's) keeps it shut until the gatekeeper's next reclaim.</summary>
    public bool IsSuspended => LentOf(Volatile.Read(ref _word)) <= Suspended;

    /// <summary>Whether the loan is closed for good.</summary>
    public bool IsClosed => LentOf(Volatile.Read(ref _word)) == Closed;

    private string DebuggerDisplay
    {
        get
        {
            var word = Volatile.Read(ref _word);
            var lent = LentOf(word);
            return $"held {HeldOf(word)}, " + (lent >= 0 ? $"lent {lent}" : lent == Closed ? "closed" : lent <= Suspended ? $"suspended, {Suspended - lent} set aside" : "shut");
        }
    }

    /// <summary>Claims <paramref name="permits"/> if that many are lent; never blocks, never claims a permit twice.</summary>
    public bool TryClaim(int permits)
    {
        var seen = Volatile.Read(ref _word);
        while (LentOf(seen) >= permits)
        {
            var was = Interlocked.CompareExchange(ref _word, Pack(HeldOf(seen) + permits, LentOf(seen) - permits), seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>
    /// Gives <paramref name="permits"/> back into the open loan, where the next claimer finds them; <c>false</c> when the
    /// loan is shut or closed (the caller sends them to the gatekeeper), or when fewer are counted held (a lease of an
    /// earlier gatekeeper instance: the gatekeeper sorts it out).
    /// </summary>
    public bool TryReturn(int permits)
    {
        var seen = Volatile.Read(ref _word);
        // Never past MaxLent: a suspend must be able to set every lent permit aside as Suspended - k (the lease goes by message).
        while (LentOf(seen) >= 0 && HeldOf(seen) >= permits && LentOf(seen) <= MaxLent - permits)
        {
            var was = Interlocked.CompareExchange(ref _word, Pack(HeldOf(seen) - permits, LentOf(seen) + permits), seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>
    /// The facade, as it makes the limiter and before its gatekeeper exists: opens the loan with every permit, so a free
    /// limiter lends from its construction, not from its actor's start. While open, held + lent = the limit from here on
    /// as after any lend; the gatekeeper's first instance counts these permits out of its pool (<see cref="TakeFirstLent"/>)
    /// and its first turn reclaims what nobody claimed, as every turn does.
    /// </summary>
    public void LendFirst(int permits)
    {
        Debug.Assert(permits is > 0 and <= MaxLent, "A loan lends what is free, at most MaxLent.");
        Debug.Assert(Volatile.Read(ref _word) == Pack(0, Shut), "Only a new loan is lent first.");
        _firstLent = permits;
        Volatile.Write(ref _word, Pack(0, permits));
    }

    /// <summary>
    /// The gatekeeper's instance, as it makes its pool: the permits lent at construction (<see cref="LendFirst"/>),
    /// which its pool counts as out, the first time; 0 after that (a restarted instance starts from the held count).
    /// </summary>
    public int TakeFirstLent() => Interlocked.Exchange(ref _firstLent, 0);

    /// <summary>A unique number for a claimed lease: negative, so never one the gate gives.</summary>
    public long NextLeaseId() => Interlocked.Decrement(ref _lastLeaseId);

    /// <summary>
    /// Gatekeeper, start of a message: shuts the loan (closed stays closed; suspended becomes plain shut, so the end of
    /// this message may lend again) and takes back what nobody claimed.
    /// </summary>
    /// <param name="held">The permits callers hold, claims and returns included; equal to the pool's count once the result is released.</param>
    /// <returns>The permits to give back to the pool; 0 for a closed loan, whose word no longer says what was lent.</returns>
    public long Reclaim(out int held)
    {
        var seen = Volatile.Read(ref _word);
        while (true)
        {
            var lent = LentOf(seen);
            var next = Pack(HeldOf(seen), lent == Closed ? Closed : Shut);
            var was = seen == next ? seen : Interlocked.CompareExchange(ref _word, next, seen);
            if (was == seen)
            {
                held = HeldOf(seen);
                return lent >= 0 ? lent : lent <= Suspended ? Suspended - lent : 0;
            }

            seen = was;
        }
    }

    /// <summary>Gatekeeper, inside a message (the loan shut): the permits held now, for <see cref="Running"/>.</summary>
    public void Publish(int held)
    {
        var seen = Volatile.Read(ref _word);
        while (true)
        {
            Debug.Assert(LentOf(seen) < 0, "The held count is the gatekeeper's only while the loan is shut.");
            if (HeldOf(seen) == held)
            {
                return; // under contention a grant follows each release: the count stays, and no CAS need touch the line callers hammer
            }

            var was = Interlocked.CompareExchange(ref _word, Pack(held, LentOf(seen)), seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }

    /// <summary>Gatekeeper, end of a message, nobody waiting: opens the loan with <paramref name="free"/> permits it takes from its pool if this succeeds.</summary>
    /// <returns><c>false</c> when the loan is closed or suspended (meanwhile): nothing was lent.</returns>
    public bool Lend(int held, int free)
    {
        Debug.Assert(free is >= 0 and <= MaxLent, "A loan lends what is free, at most MaxLent.");
        var seen = Volatile.Read(ref _word);
        Debug.Assert(LentOf(seen) < 0, "Only a shut loan is lent anew.");
        Debug.Assert(HeldOf(seen) == held, "Nobody but the gatekeeper changes the held count while the loan is shut.");
        return LentOf(seen) == Shut && Interlocked.CompareExchange(ref _word, Pack(held, free), seen) == seen;
    }

    /// <summary>
    /// Facade, before a resize, after it published the new limit: shuts the loan so that no claim is served on the old
    /// limit once the resize call returned, and keeps what was lent for the gatekeeper's next <see cref="Reclaim"/>. A
    /// loan the gatekeeper is about to open at the end of its current message is not opened (<see cref="Lend"/> opens
    /// only a plain shut loan), and the next one it opens reads the published limit.
    /// </summary>
    public void Suspend()
    {
        var seen = Volatile.Read(ref _word);
        while (LentOf(seen) is >= 0 or Shut)
        {
            // What nobody claimed is set aside in the same CAS (see Suspended).
            var was = Interlocked.CompareExchange(ref _word, Pack(HeldOf(seen), Suspended - Math.Max(0, LentOf(seen))), seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }

    /// <summary>
    /// A pusher, after its op landed in the gatekeeper's turn: suspends the loan if it is open (a later owner lent between
    /// the pusher's <see cref="Suspend"/> and its push); one read otherwise.
    /// </summary>
    /// <returns>Whether it suspended an open loan (then only the gatekeeper's next reclaim opens it again).</returns>
    public bool SuspendIfOpen()
    {
        var seen = Volatile.Read(ref _word);
        while (LentOf(seen) >= 0)
        {
            var was = Interlocked.CompareExchange(ref _word, Pack(HeldOf(seen), Suspended - LentOf(seen)), seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>
    /// Facade, before it sends a request it could not claim: counts it on its way and suspends the loan, so no caller
    /// after it claims a permit before the gatekeeper has queued it (FIFO from the moment the call returned) and no
    /// release goes into the loan past it. The gatekeeper lends again only once every announced request is handled.
    /// </summary>
    public void Announce()
    {
        _announced.Sending();
        Suspend();
    }

    /// <summary>Gatekeeper: an announced request arrived (before it is offered to the gate).</summary>
    public void Leave() => _announced.Handled();

    /// <summary>The limiter is disposed or its gatekeeper stopped: every later claim and return fails.</summary>
    public void Close()
    {
        var seen = Volatile.Read(ref _word);
        while (LentOf(seen) != Closed)
        {
            var was = Interlocked.CompareExchange(ref _word, Pack(HeldOf(seen), Closed), seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }

    private static long Pack(int held, int lent) => ((long)held << 32) | (uint)lent;

    private static int HeldOf(long word) => (int)(word >> 32);

    private static int LentOf(long word) => (int)word;
}

/// <summary>An adapter asks the gatekeeper to lend its free permits for synchronous acquires from now on.</summary>
internal sealed class StartLending
{
    public static readonly StartLending Instance = new();
}
