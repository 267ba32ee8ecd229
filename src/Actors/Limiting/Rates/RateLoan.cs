using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// The one value a gatekeeper with rates shares with callers that need not wait: slots, requests and tokens it has
/// lent, packed in one <see cref="long"/> so that a call claims all three with one compare-and-swap. The channel,
/// written down:
/// <list type="bullet">
/// <item>Writer of loans: the gatekeeper only (<see cref="RateLender"/>), at the end of a message, only while nobody
/// waits and the gate is open: it takes what its pool and rates could grant now out of them and publishes it here with
/// the clock stamp at which the rates' current step ends (<see cref="Lend"/>); and the limiter once, as it is made and
/// before its gatekeeper exists (<see cref="RateLender.LendFirst"/>): what the fresh pool and rates grant, which the
/// gatekeeper's first instance counts as taken. The loan is the only writer's while it
/// is <see cref="Shut"/>; the write is a compare-and-swap from shut only because the limiter may close it meanwhile.</item>
/// <item>Close: the limiter when disposed, or the gatekeeper when it stops (<see cref="Close"/>): for good; an open
/// loan's unclaimed part is kept for the gatekeeper's last reclaim.</item>
/// <item>Claimers: any thread; <see cref="TryClaim"/> checks that the step has not ended (a <see cref="CheapTick"/> before
/// its deadline, or else the injected clock), and then subtracts one slot, one request and the tokens with a
/// compare-and-swap that never takes a field below zero.</item>
/// <item>Returners: any thread, for a claimed lease or one the gate granted; <see cref="TryReturnSlot"/> adds a slot back while the loan is open and was lent with
/// the pool within its limit (a pool slot given back is then what the gatekeeper would lend again at once); when it is
/// shut, or the pool held more than its limit (a shrink), the slot goes back by message.</item>
/// <item>The gatekeeper as a claimer: a request the open loan covers, or a slot coming back, it serves from the loan
/// as its sender could have, leaving the loan open (<see cref="RateLender.TryServe"/>); a claim it could not hand over
/// it puts back (<see cref="Unclaim"/>).</item>
/// <item>Reclaim: the gatekeeper, at the start of every other message, exchanges the loan for <see cref="Shut"/>
/// (<see cref="Reclaim"/>) and gives what nobody claimed back to its policies before they catch up on time.</item>
/// </list>
/// Exact because a claim is a take made at the moment of the loan: the rates' answers change with time only at the end
/// of a step (<see cref="Coordination.ISteppedRate"/>), no claim succeeds after it, and the gatekeeper reclaims
/// before its rates move on. It never lets a caller pass a waiter: nothing is lent while one waits. It may refuse a
/// claim the gatekeeper would grant (the loan is shut while a message is handled, spent, or past its step).
/// </summary>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
internal sealed partial class RateLoan
{
    /// <summary>
    /// The low bits hold the tokens: 31, so one loan holds any <see cref="int"/> permit count a
    /// <see cref="System.Threading.RateLimiting.RateLimiter"/> caller can ask (once 24 bits: an <c>AttemptAcquire</c> of
    /// more than 16,777,215 tokens was refused for ever).
    /// </summary>
    private const int TokenBits = 31;

    /// <summary>The middle bits hold the requests: 65,535 per loan; a limiter with more lends them a loan at a time (<see cref="LoanCaps.Calls"/>).</summary>
    private const int CallBits = 16;

    /// <summary>The high bits (below the flag) hold the slots: 32,767 per loan; more are lent a loan at a time (<see cref="LoanCaps.Slots"/>).</summary>
    private const int SlotBits = 15;

    private const int CallShift = TokenBits;
    private const int SlotShift = TokenBits + CallBits;

    /// <summary>The most tokens one loan holds; a larger claim goes to the gatekeeper.</summary>
    public const long MaxTokens = (1L << TokenBits) - 1;

    /// <summary>The most requests one loan holds.</summary>
    public const long MaxCalls = (1L << CallBits) - 1;

    /// <summary>The most slots one loan holds.</summary>
    public const long MaxSlots = (1L << SlotBits) - 1;

    private const long OneCall = 1L << CallShift;

    /// <summary>
    /// Checked by the compiler: the three fields and the flag fit the 63 bits below the sign (which marks a shut or
    /// closed loan), and a loan holds any <see cref="int"/> token count; a negative constant does not convert to
    /// <see cref="uint"/>, so a wrong width fails the build.
    /// </summary>
    private const uint SpareBits = 62 - (TokenBits + CallBits + SlotBits), SpareTokensOverAnyInt = (uint)(MaxTokens - int.MaxValue);
    private const long OneSlot = 1L << SlotShift;

    /// <summary>
    /// The bit below the sign: set when the pool was within its limit after the loan, so a slot given back may go into
    /// it. In the word, not beside it, so a return checks it in the same compare-and-swap that adds the slot.
    /// </summary>
    private const long ReturnsInto = 1L << (SlotShift + SlotBits);

    /// <summary>Nothing lent: every claim and every return fails (the gatekeeper is inside a message, someone waits, or it never lent).</summary>
    private const long Shut = -1;

    /// <summary>The gatekeeper stopped: nothing is ever lent again.</summary>
    private const long Closed = long.MinValue;

    /// <summary>The clock the rates run on, read by claimers to stay inside the loan's step.</summary>
    private readonly TimeProvider _time;

    /// <summary>A tick cheaper than <see cref="_time"/> that runs with it; <c>null</c> when none does.</summary>
    private readonly CheapTick? _tick;

    /// <summary>Slots, requests and tokens lent and not claimed (slots returned included); negative when shut or closed.</summary>
    private long _packed = Shut;

    /// <summary>What the open loan held when it was closed, for the gatekeeper's last <see cref="Reclaim"/>; negative once taken or when none was open.</summary>
    private long _closedWith = Shut;

    /// <summary>The clock stamp at which the loan's step ends; written before <see cref="_packed"/>, read after it.</summary>
    private long _expiresAt;

    /// <summary>
    /// The <see cref="CheapTick"/> before which the loan's step has surely not ended (<see cref="long.MinValue"/>: never
    /// trusted); written before <see cref="_packed"/>, read after it. Deadlines only grow from loan to loan, so one read
    /// beside a newer loan's word is still early.
    /// </summary>
    private long _tickExpiresAt = long.MinValue;

    /// <summary>The slots the current loan put in, so that lent minus unclaimed is what callers hold beyond the published count.</summary>
    private long _lentSlots;

    /// <summary>The fields the gatekeeper had more of than the loan could hold, so a loan spent on one is worth renewing.</summary>
    private volatile LoanCaps _capped;

    /// <summary>1 once a claimer asked the gatekeeper to renew this loan; reset by every loan.</summary>
    private int _renewAsked;

    /// <summary>The last lease number given to a claimed lease; claimed leases count down from -1, apart from the gate's.</summary>
    private long _lastLeaseId;

    /// <summary>
    /// The clock's UTC ticks at which the rates next give something back once the open loan is claimed (what it took from
    /// them counted as taken); 0 for none. Written by <see cref="Lend"/> before the loan opens, and by
    /// <see cref="PublishNextRefill"/> only while it is open, so a refusal never reads a refill of the rates without the loan.
    /// </summary>
    private long _nextRefillUtcTicks;

    /// <summary>Tokens settles took out of the loan as an excess (<see cref="TakeExcess"/>), not granted: kept out of the granted count.</summary>
    private long _settledOut;

    /// <summary>What the limiter lent at construction (<see cref="RateLender.LendFirst"/>) until the gatekeeper's first instance takes it on (<see cref="TakeFirst"/>).</summary>
    private FirstLoan? _first;

    /// <summary>A loan on <paramref name="time"/>, checked against the cheap tick that runs with it if one is known.</summary>
    public RateLoan(TimeProvider time)
        : this(time, CheapTick.For(time))
    {
    }

    /// <summary>A loan on <paramref name="time"/> whose claims trust <paramref name="tick"/> before a loan's tick deadline.</summary>
    public RateLoan(TimeProvider time, CheapTick? tick)
    {
        _time = time;
        _tick = tick;
    }

    /// <summary>Slots claimed from the current loan net of slots returned to it: held by callers the gatekeeper has not counted yet (negative when more came back).</summary>
    public long ClaimedSlots
    {
        get
        {
            var packed = Volatile.Read(ref _packed);
            return packed < 0 ? 0 : Volatile.Read(ref _lentSlots) - SlotsOf(packed);
        }
    }

    /// <summary>Whether the loan is closed for good (the limiter was disposed or its gatekeeper stopped).</summary>
    public bool IsClosed => Volatile.Read(ref _packed) == Closed;

    /// <summary>Whether a loan is open (possibly spent): the gatekeeper lent at the end of its last message.</summary>
    public bool IsOpen => Volatile.Read(ref _packed) >= 0;

    /// <summary>Whether a claim of one request and <paramref name="tokens"/> would find them lent now (a probe; it claims nothing).</summary>
    public bool Covers(long tokens) => Fits(Volatile.Read(ref _packed), tokens) && InStep();

    /// <summary>The tokens a claim could take now: those lent, while a slot and a request are lent too and the loan's step has not ended; 0 otherwise.</summary>
    public long AvailableTokens
    {
        get
        {
            var packed = Volatile.Read(ref _packed);
            return Fits(packed, 1) && InStep() ? packed & MaxTokens : 0;
        }
    }

    /// <summary>
    /// Gatekeeper, after a message: the clock's UTC ticks at which a rate next gives something back; 0 for none. Kept only
    /// while a loan is open (the rates were then asked with the loan taken, as <see cref="Lend"/> asks them): a refill
    /// published while the loan is shut, before the gatekeeper lends, leaves out what the next loan takes (a fresh bucket
    /// has no refill to come until a loan takes it), and <see cref="Lend"/> publishes its own.
    /// </summary>
    public void PublishNextRefill(long utcTicks)
    {
        if (Volatile.Read(ref _packed) >= 0)
        {
            Volatile.Write(ref _nextRefillUtcTicks, utcTicks);
        }
    }

    /// <summary>
    /// After a claim of <paramref name="tokens"/> failed: how long until the rates next give something back (a bucket's
    /// refill, a window's segment sliding out), counting what the loan took from them, when the loan is open with a slot
    /// but short of a request or the tokens (the rates are spent); <c>null</c> when they did not decide (the loan is shut:
    /// someone waits or the gatekeeper is inside a message; a slot is what is short; the field short is one the gatekeeper
    /// had more of than the loan could hold, so its next loan serves it) or the refill is not in the future.
    /// </summary>
    public TimeSpan? RetryAfter(long tokens)
    {
        var packed = Volatile.Read(ref _packed);
        if (packed < 0 || SlotsOf(packed) < 1 || (((packed >> CallShift) & MaxCalls) >= 1 && (packed & MaxTokens) >= tokens))
        {
            return null;
        }

        if ((_capped & (((packed >> CallShift) & MaxCalls) < 1 ? LoanCaps.Calls : LoanCaps.Tokens)) != 0)
        {
            // Short of what the gatekeeper had more of than one loan holds: its next loan serves it, not a refill.
            return null;
        }

        var left = Volatile.Read(ref _nextRefillUtcTicks) is var at and not 0 ? at - _time.GetUtcNow().UtcTicks : 0;
        return left > 0 ? TimeSpan.FromTicks(left) : null;
    }

    private string DebuggerDisplay
    {
        get
        {
            var packed = Volatile.Read(ref _packed);
            return packed >= 0 ? $"lent: {SlotsOf(packed)} slots, {(packed >> CallShift) & MaxCalls} requests, {packed & MaxTokens} tokens"
                 : packed == Closed ? "closed" : "shut";
        }
    }

    /// <summary>Claims one slot, one request and <paramref name="tokens"/> if they are lent and the loan's step has not ended; never blocks.</summary>
    public bool TryClaim(long tokens)
    {
        var seen = Volatile.Read(ref _packed);
        if (!Fits(seen, tokens) || !InStep())
        {
            return false;
        }

        var claim = OneSlot + OneCall + tokens;
        while (true)
        {
            var was = Interlocked.CompareExchange(ref _packed, seen - claim, seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
            if (!Fits(seen, tokens))
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Gatekeeper, inside a message: puts back a claim it made itself for a request it then could not grant (the caller
    /// withdrew in between). Nothing but the gatekeeper re-lends, so the loan it claimed from is still the open one,
    /// unless the limiter closed it meanwhile (then nothing matters any more: the gatekeeper is stopping).
    /// </summary>
    /// <returns>Whether the slot went back too; <c>false</c> when the loan is closed or already holds all the slots it can, and the slot must go back to the pool.</returns>
    public bool Unclaim(long tokens)
    {
        var seen = Volatile.Read(ref _packed);
        while (seen >= 0)
        {
            var slot = SlotsOf(seen) < MaxSlots ? OneSlot : 0;
            var was = Interlocked.CompareExchange(ref _packed, seen + slot + OneCall + tokens, seen);
            if (was == seen)
            {
                return slot != 0;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>
    /// A settle's excess over its estimate: takes up to <paramref name="tokens"/> tokens out of the open loan (whatever it
    /// has of them; slots and requests untouched), so no later claim spends tokens the settle owes. The loan's tokens
    /// were taken from the rates when it was lent, so taking them is charging them.
    /// </summary>
    /// <returns>The tokens taken; the rest of the excess is the gatekeeper's to charge.</returns>
    public long TakeExcess(long tokens)
    {
        var seen = Volatile.Read(ref _packed);
        while (seen >= 0 && tokens > 0 && (seen & MaxTokens) > 0)
        {
            var taken = Math.Min(tokens, seen & MaxTokens);
            var was = Interlocked.CompareExchange(ref _packed, seen - taken, seen);
            if (was == seen)
            {
                Interlocked.Add(ref _settledOut, taken);
                return taken;
            }

            seen = was;
        }

        return 0;
    }

    /// <summary>
    /// Gives one slot back into the open loan; <c>false</c> when it is shut, full, or was lent while the pool held more
    /// than its limit, and the slot must go back by message.
    /// </summary>
    public bool TryReturnSlot()
    {
        var seen = Volatile.Read(ref _packed);
        while (seen >= 0 && (seen & ReturnsInto) != 0 && SlotsOf(seen) < MaxSlots)
        {
            var was = Interlocked.CompareExchange(ref _packed, seen + OneSlot, seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>
    /// After a claim failed: whether the gatekeeper should be asked (once per loan) to lend anew, because the loan is
    /// open but past its step, or short of the field the gatekeeper had more of than it could hold. A claim short of
    /// slots or requests failed on them, whatever the tokens; one with both failed on tokens.
    /// </summary>
    public bool ShouldAskRenewal()
    {
        var packed = Volatile.Read(ref _packed);
        if (packed < 0)
        {
            return false;
        }

        var shortOf = SlotsOf(packed) < 1 ? LoanCaps.Slots : ((packed >> CallShift) & MaxCalls) < 1 ? LoanCaps.Calls : LoanCaps.Tokens;
        if (InStep() && (_capped & shortOf) == 0)
        {
            return false;
        }

        return Interlocked.Exchange(ref _renewAsked, 1) == 0;
    }

    /// <summary>A number for a claimed lease, unique within the limiter and apart from the gate's (which count up from 1).</summary>
    public long NextLeaseId() => Interlocked.Decrement(ref _lastLeaseId);

    /// <summary>
    /// Whether the loan's step has not ended: the cheap tick, read first, answers while it is before its deadline (the
    /// clock is then surely before the step's end); from there on, the clock itself.
    /// </summary>
    private bool InStep() =>
        (_tick is { } tick && tick.Now < Volatile.Read(ref _tickExpiresAt)) || _time.GetTimestamp() < Volatile.Read(ref _expiresAt);

    private static long SlotsOf(long packed) => (packed >> SlotShift) & MaxSlots;

    private static bool Fits(long packed, long tokens) =>
        packed >= 0 && SlotsOf(packed) >= 1 && ((packed >> CallShift) & MaxCalls) >= 1 && tokens is >= 0 and <= MaxTokens && (packed & MaxTokens) >= tokens;
}
