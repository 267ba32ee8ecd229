using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper's side of the loan (and the limiter's, once, at construction): lending, taking the first loan on,
/// reclaiming what nobody claimed, and closing it for good. The claimers' side and the channel's rules are in
/// <c>RateLoan.cs</c>.
/// </summary>
internal sealed partial class RateLoan
{
    /// <summary>Gatekeeper: the tokens settles took out of loans since it last asked (<see cref="TakeExcess"/>).</summary>
    public long TakeSettledOut() => Interlocked.Exchange(ref _settledOut, 0);

    /// <summary>Gatekeeper, on a shut loan: lends these until the clock reaches <paramref name="expiresAt"/>; nothing once the loan is closed.</summary>
    /// <param name="slots">Slots, at most <see cref="MaxSlots"/>.</param>
    /// <param name="calls">Requests, at most <see cref="MaxCalls"/>.</param>
    /// <param name="tokens">Tokens, at most <see cref="MaxTokens"/>.</param>
    /// <param name="expiresAt">The clock stamp at which the rates' current step ends.</param>
    /// <param name="capped">The fields of which the pool or a rate had more than the loan holds.</param>
    /// <param name="withinLimit">Whether the pool's slots in use, the lent ones included, are within its limit, so a slot given back may go into the loan.</param>
    /// <param name="tickExpiresAt">The <see cref="CheapTick"/> before which the step has surely not ended (<see cref="CheapTick.DeadlineAfter"/>); by default never trusted.</param>
    /// <param name="nextRefillUtcTicks">The clock's UTC ticks at which the rates, with this loan taken from them, next give something back; 0 for none (<see cref="RetryAfter"/>).</param>
    public void Lend(long slots, long calls, long tokens, long expiresAt, LoanCaps capped, bool withinLimit = true, long tickExpiresAt = long.MinValue,
                     long nextRefillUtcTicks = 0)
    {
        Debug.Assert(Volatile.Read(ref _packed) is Shut or Closed, "The gatekeeper lends only a loan it reclaimed.");
        Debug.Assert(slots is >= 0 and <= MaxSlots && calls is >= 0 and <= MaxCalls && tokens is >= 0 and <= MaxTokens, "Each field fits its bits.");
        Volatile.Write(ref _expiresAt, expiresAt);
        Volatile.Write(ref _tickExpiresAt, tickExpiresAt);
        Volatile.Write(ref _lentSlots, slots);
        Volatile.Write(ref _nextRefillUtcTicks, nextRefillUtcTicks);
        _capped = capped;
        Volatile.Write(ref _renewAsked, 0);
        // Not a plain store: the limiter may close the loan from any thread when it is disposed, and closed is for good.
        Interlocked.CompareExchange(ref _packed, (withinLimit ? ReturnsInto : 0) | (slots << SlotShift) | (calls << CallShift) | tokens, Shut);
    }

    /// <summary>The limiter, once its first loan is lent (<see cref="RateLender.LendFirst"/>): what it took from the fresh pool and rates.</summary>
    public void KeepFirst(FirstLoan first) => Volatile.Write(ref _first, first);

    /// <summary>The gatekeeper's first instance: what the limiter's first loan took, which its fresh pool and rates count as taken; <c>null</c> after that.</summary>
    public FirstLoan? TakeFirst() => Interlocked.Exchange(ref _first, null);

    /// <summary>Gatekeeper, before it reads the clock a loan's deadline is computed from: the cheap tick now; <c>null</c> when there is none.</summary>
    public long? ReadTick() => _tick?.Now;

    /// <summary>Gatekeeper: shuts the loan and takes back what nobody claimed.</summary>
    /// <returns>
    /// Whether a loan was open, and its unclaimed slots (returned ones included), requests and tokens; once closed, the
    /// loan that was open when it closed, once.
    /// </returns>
    public (bool WasOpen, long Slots, long Calls, long Tokens) Reclaim()
    {
        var packed = Volatile.Read(ref _packed);
        while (packed != Closed)
        {
            var was = Interlocked.CompareExchange(ref _packed, Shut, packed);
            if (was == packed)
            {
                break;
            }

            packed = was;
        }

        if (packed == Closed)
        {
            packed = Interlocked.Exchange(ref _closedWith, Shut);
        }

        return packed < 0 ? default : (true, SlotsOf(packed), (packed >> CallShift) & MaxCalls, packed & MaxTokens);
    }

    /// <summary>The limiter, disposed, or the gatekeeper, stopping: fails every later claim and return for ever.</summary>
    /// <remarks>An open loan's unclaimed part is kept for the gatekeeper's last reclaim, so the claims made from it are counted.</remarks>
    public void Close()
    {
        var was = Interlocked.Exchange(ref _packed, Closed);
        if (was >= 0)
        {
            Volatile.Write(ref _closedWith, was);
        }
    }

    /// <summary>What the limiter's first loan took from a fresh pool and rates (slots, requests, tokens), and the clock stamp their time counts from.</summary>
    /// <param name="StartedAt">The clock stamp of the lend: the rates' gate time 0.</param>
    /// <param name="Slots">Slots taken.</param>
    /// <param name="Calls">Requests taken.</param>
    /// <param name="Tokens">Tokens taken.</param>
    public sealed record FirstLoan(long StartedAt, long Slots, long Calls, long Tokens);
}
