using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// The gatekeeper's side of a <see cref="RateLoan"/>: a message its sender could have served from the open loan it
/// serves from it (<see cref="TryServe"/>); at the start of every other message it takes back what callers did not
/// claim, so inside a message its pool and rates are exact and the gate's rule is untouched; at the end of every
/// message, while nobody waits and the gate is open, it lends what the pool and rates could grant now until their
/// current step ends. Time stays the gatekeeper's: the rates catch up only inside its messages, and the loan is renewed
/// by the next message (a refill is seen when someone asks; a claimer that finds the step over asks once).
/// </summary>
internal sealed class RateLender
{
    private readonly RateLoan _loan;

    /// <summary>The slots in flight.</summary>
    private readonly PermitPool _slots;

    /// <summary>The rates that count requests.</summary>
    private readonly ISteppedRate[] _calls;

    /// <summary>The rates that count tokens.</summary>
    private readonly ISteppedRate[] _tokens;

    private readonly TimeProvider _time;

    private readonly RateTelemetry? _telemetry;

    /// <summary>Whether a caller that claims has appeared (an adapter or a facade asked to start lending).</summary>
    private bool _started;

    /// <summary>What the open loan took from the rates (requests, tokens), given back unclaimed at the next reclaim.</summary>
    private long _lentCalls, _lentTokens;

    /// <summary>The gate time of the last loan: the rates stay at its step until the next reclaim has given back into it.</summary>
    private TimeSpan _lentAt;

    /// <summary>The waiters, their tokens and the gate's last lease when <see cref="PublishQueueRetry"/> last built a table; default while nobody waits.</summary>
    private (int Waiting, long Queued, long LastLeaseId) _queueRetryOf;

    /// <summary>The most steps a <see cref="RateLoan.QueueRetry"/> keeps: a bucket has at most two within a call's token range, a window one per segment and two more.</summary>
    private const int MaxQueueRetrySteps = 64;

    private RateLender(RateLoan loan, PermitPool slots, ISteppedRate[] calls, ISteppedRate[] tokens, TimeProvider time, RateTelemetry? telemetry)
    {
        _loan = loan;
        _slots = slots;
        _calls = calls;
        _tokens = tokens;
        _time = time;
        _telemetry = telemetry;
    }

    /// <summary>A lender for <paramref name="rates"/>, or <c>null</c> when there is no loan or a rate cannot be lent (it is not stepped, or counts something else).</summary>
    public static RateLender? For(RateLoan? loan, PermitPool slots, IRestingPolicy[] rates, TimeProvider time, RateTelemetry? telemetry)
    {
        if (loan is null || rates.Length == 0 || !Array.TrueForAll(rates, rate => rate is ISteppedRate && rate.Measure is PermitMeasure.Calls or PermitMeasure.Tokens))
        {
            return null;
        }

        var calls = rates.Where(rate => rate.Measure == PermitMeasure.Calls).Cast<ISteppedRate>().ToArray();
        var tokens = rates.Where(rate => rate.Measure == PermitMeasure.Tokens).Cast<ISteppedRate>().ToArray();
        return new RateLender(loan, slots, calls, tokens, time, telemetry);
    }

    /// <summary>Lends from the end of this message on.</summary>
    public void Start() => _started = true;

    /// <summary>
    /// The limiter, as it is made and before its gatekeeper exists: lends what <paramref name="rates"/> and a pool of
    /// <paramref name="maxConcurrent"/> slots, fresh, grant at their start (as a gatekeeper's first lend would), until
    /// their first step ends on the clock from now, and keeps what it took for the gatekeeper's first instance
    /// (<see cref="TakeFirst"/>), whose fresh rates and pool are these, made again from the same options.
    /// </summary>
    /// <remarks>
    /// The gatekeeper's first instance counts its rates' periods from this lend's clock stamp (<see cref="RateLoan.FirstLoan.StartedAt"/>),
    /// so the loan's step is the rates' first step, whenever the actor starts.
    /// </remarks>
    public static void LendFirst(RateLoan loan, int maxConcurrent, IRestingPolicy[] rates, TimeProvider time)
    {
        if (For(loan, new PermitPool(maxConcurrent), rates, time, telemetry: null) is not { } lender)
        {
            return;
        }

        var tick = loan.ReadTick();
        var startedAt = time.GetTimestamp();
        lender.LendAt(tick, startedAt, TimeSpan.Zero);
        loan.KeepFirst(new RateLoan.FirstLoan(startedAt, lender._slots.InUse, lender._lentCalls, lender._lentTokens));
    }

    /// <summary>
    /// The gatekeeper's first instance, as it is made: its fresh pool and rates count as taken what the limiter lent at
    /// construction (<see cref="LendFirst"/>), so its first reclaim gives back what nobody claimed, as after any lend;
    /// it lends from then on. Nothing for a later instance (a restart goes on with these rates and a shut loan).
    /// </summary>
    /// <param name="first">What the limiter's first loan took (<see cref="RateLoan.TakeFirst"/>).</param>
    public void TakeFirst(RateLoan.FirstLoan first)
    {
        _slots.Take(first.Slots, TimeSpan.Zero);
        TakeAll(_calls, first.Calls, TimeSpan.Zero);
        TakeAll(_tokens, first.Tokens, TimeSpan.Zero);
        _lentCalls = first.Calls;
        _lentTokens = first.Tokens;
        _lentAt = TimeSpan.Zero;
        _started = true;
    }

    /// <summary>Whether <see cref="Start"/> was called.</summary>
    public bool IsStarted => _started;

    /// <summary>
    /// The gate time the open loan was lent at. While it is open, the rates are asked at no later time: a rate asked moves
    /// on to the time it is asked at, and the reclaim gives what nobody claimed back into the step it is in then, which
    /// must be the step the loan took from (else the new window would grant it again).
    /// </summary>
    public TimeSpan LentAt => _lentAt;

    /// <summary>
    /// Before the start of a message: serves it from the open loan, as its sender could have, if it is a request the loan
    /// covers or a slot coming back. The loan then stays open: shutting it for such a message, as every other message
    /// does (<see cref="Reclaim"/>), turned every claim made meanwhile into one more request, and under 64 callers the
    /// mailbox never emptied again (BENCHMARKS round 11: a third of the rounds ran at a third of the speed).
    /// </summary>
    /// <remarks>
    /// It passes nobody: an open loan means nobody waited at the end of the last message, and a waiter could only have
    /// come in a message since. A request served here is one the gate would grant at once; it is granted a claimed lease
    /// (a lease number from the loan, no wait span: a traced request, which expects to hear whether it queued, goes to the gate).
    /// </remarks>
    /// <param name="message">The message about to be handled.</param>
    /// <param name="releaser">Where the granted lease's slot goes back.</param>
    /// <param name="granted">Whether a request was granted (the gatekeeper meters it); <c>false</c> for a slot back or a grant the caller withdrew.</param>
    /// <returns>Whether the message was handled: the gatekeeper skips it.</returns>
    public bool TryServe(object message, ILeaseReleaser releaser, out bool granted)
    {
        granted = false;
        switch (message)
        {
            case AcquireRequest { Announced: false, QueuedSignal: null, IsWithdrawn: false } request
                when request.Demand.Permits == 1 && _loan.TryClaim(request.Demand.Tokens):
                request.Releaser = releaser;
                granted = request.TryGrant(new PermitGrant(_loan.NextLeaseId(), request.Demand, default, Waited: false));
                if (!granted && !_loan.Unclaim(request.Demand.Tokens))
                {
                    // Withdrawn meanwhile, and the loan cannot take the slot back: the pool takes it (it counted the slot lent).
                    _slots.Release(1, TimeSpan.Zero);
                }

                return true;
            case ReleaseSlot { Permits: 1 }:
                return _loan.TryReturnSlot();
            default:
                return false;
        }
    }

    /// <summary>
    /// Start of every message: shuts the loan and gives back what nobody claimed, before anything asks the rates at a
    /// later time. Unclaimed requests and tokens are the exact inverse of the loan's take (the rates have not moved on
    /// since); slots returned to the loan come back to the pool with the unclaimed ones.
    /// </summary>
    /// <returns>Whether a loan was open: the pool now also holds the slots callers claimed from it or returned into it.</returns>
    public bool Reclaim()
    {
        var (wasOpen, slots, calls, tokens) = _loan.Reclaim();
        if (!wasOpen)
        {
            return false;
        }

        if (slots > 0)
        {
            _slots.Release(slots, TimeSpan.Zero);
        }

        RefundAll(_calls, calls);
        RefundAll(_tokens, tokens);
        _telemetry?.GrantedTokens(_lentTokens - tokens - _loan.TakeSettledOut());
        _lentCalls = _lentTokens = 0;
        return true;
    }

    /// <summary>
    /// End of every message: lends what the pool and rates could grant now, only while nobody waits and the gate is
    /// open. The counts are published without the loan first, so lent but unclaimed slots do not show as running.
    /// </summary>
    public void Lend(PermitGate gate, LimiterCounts counts)
    {
        if (!_started || gate.Waiting != 0 || !gate.IsOpen || _loan.IsClosed)
        {
            return;
        }

        // The tick before the stamp, the stamp before gate time: the step's end mapped onto each falls early if anything, never late.
        var tick = _loan.ReadTick();
        var stamp = _time.GetTimestamp();
        var now = gate.Now;
        counts.Publish((int)_slots.InUse, 0);
        LendAt(tick, stamp, now);
    }

    /// <summary>Takes what the pool and rates could grant at gate time <paramref name="now"/> and lends it until their step ends (tick and clock stamp read before <paramref name="now"/>).</summary>
    private void LendAt(long? tick, long stamp, TimeSpan now)
    {
        var freeSlots = _slots.Available(now);
        var freeCalls = Least(_calls, now);
        var freeTokens = Least(_tokens, now);
        var slots = Math.Min(freeSlots, RateLoan.MaxSlots);
        var calls = Math.Min(freeCalls, RateLoan.MaxCalls);
        var tokens = Math.Min(freeTokens, RateLoan.MaxTokens);
        var stepEnd = TimeSpan.MaxValue;
        foreach (var rate in _calls.Concat(_tokens))
        {
            var end = rate.StepEndsAt(now);
            stepEnd = end < stepEnd ? end : stepEnd;
        }

        _slots.Take(slots, now);
        TakeAll(_calls, calls, now);
        TakeAll(_tokens, tokens, now);
        _lentCalls = calls;
        _lentTokens = tokens;
        _lentAt = now;

        // Asked with the loan taken: a refusal of a spent loan retries when the rates next give back (a fresh bucket
        // the loan took whole refills at the step's end; asked before the take, it had no refill to come).
        var gain = RateGains.Earliest(_tokens, now, RateGains.Earliest(_calls, now, TimeSpan.MaxValue));

        var capped = (freeSlots > slots ? LoanCaps.Slots : LoanCaps.None) | (freeCalls > calls ? LoanCaps.Calls : LoanCaps.None)
                   | (freeTokens > tokens ? LoanCaps.Tokens : LoanCaps.None);

        // After a shrink the pool holds more than its limit: a slot coming back must reach the pool, not the loan.
        _loan.Lend(slots, calls, tokens, StampAt(stamp, stepEnd - now), capped, withinLimit: _slots.InUse <= _slots.Limit,
                   tickExpiresAt: tick is { } before ? CheapTick.DeadlineAfter(before, stepEnd - now) : long.MinValue,
                   nextRefillUtcTicks: RateGains.UtcTicks(gain, now, _time));
    }

    /// <summary>
    /// End of a message, for the adapter's refusals while someone waits (<see cref="RateLoan.QueueRetryAfter"/>): when a
    /// call of each token count, queued behind every waiter, could be served — as the gate's own refusal of that call
    /// computes it (<see cref="PermitPolicies.FitsAt"/>: the demand queued ahead plus the call, slots, requests and tokens,
    /// however many refills or segments that takes), from the sums the gate keeps (the waiters' tokens, one slot and one
    /// request each). Only once an adapter was made and only while someone waits; built when the queue forms, and after
    /// that only when the queue or the grants moved since the last build and a refusal asked for a fresh table
    /// (<see cref="RateLoan.ShouldAskQueueRetry"/>): otherwise the message only marks the table stale, so a grant pays
    /// for no table nobody reads. Nothing is lent while anyone waits, so asking the rates here moves nothing a loan took.
    /// </summary>
    /// <remarks>
    /// Every waiter counts as ahead, a lower priority's too (the adapter's calls have priority 0): the figure is then late
    /// if anything. A slot short for the queue and the call gives none (a release frees it, not a time), as the gate's does.
    /// </remarks>
    public void PublishQueueRetry(PermitGate gate)
    {
        if (!_loan.RefusalsRead)
        {
            return;
        }

        var waiting = gate.Waiting;
        if (waiting == 0)
        {
            if (_queueRetryOf.Waiting != 0)
            {
                _queueRetryOf = default;
                _loan.ClearQueueRetry();
            }

            return;
        }

        var key = (waiting, gate.Queued, gate.LastLeaseId);
        if (key == _queueRetryOf)
        {
            return;
        }

        // A queue that just formed gets its table at once (its first refusal finds it fresh); a moved one when asked.
        if (!_loan.TakeQueueRetryWanted() && _queueRetryOf.Waiting != 0)
        {
            _loan.MarkQueueRetryStale();
            return;
        }

        _queueRetryOf = key;
        _loan.PublishQueueRetry(QueueRetryNow(waiting, key.Queued, gate.Now));
    }

    /// <summary>The steps of <see cref="PublishQueueRetry"/>: each found by a binary search over the token count, as the rates answer for the queue plus a call.</summary>
    private RateLoan.QueueRetry QueueRetryNow(int waiting, long queued, TimeSpan now)
    {
        // The queue's slots and requests and the call's one of each: the same whatever its tokens.
        var fixedAt = _slots.NextAvailableAt(waiting + 1L, now);
        foreach (var rate in _calls)
        {
            var at = rate.NextAvailableAt(waiting + 1L, now);
            fixedAt = at > fixedAt ? at : fixedAt;
        }

        if (fixedAt == TimeSpan.MaxValue)
        {
            return new RateLoan.QueueRetry([], []);
        }

        var most = _tokens.Length == 0 ? 1 : _tokens.Min(rate => rate.Limit); // a call asks at most a rate's limit
        var upTo = new List<long>();
        var atUtc = new List<long>();
        for (var tokens = 1L; tokens <= most && upTo.Count < MaxQueueRetrySteps; tokens++)
        {
            var at = ServedAt(tokens);
            var (low, high) = (tokens, most);
            while (low < high)
            {
                var mid = low + ((high - low + 1) / 2);
                (low, high) = ServedAt(mid) == at ? (mid, high) : (low, mid - 1);
            }

            upTo.Add(low);
            atUtc.Add(RateGains.UtcTicks(at, now, _time));
            tokens = low;
        }

        return new RateLoan.QueueRetry([.. upTo], [.. atUtc]);

        TimeSpan ServedAt(long tokens)
        {
            var latest = fixedAt;
            foreach (var rate in _tokens)
            {
                var at = rate.NextAvailableAt(queued + tokens, now);
                latest = at > latest ? at : latest;
            }

            return latest;
        }
    }

    /// <summary>The least any of <paramref name="rates"/> could grant now; unbounded when there are none.</summary>
    private static long Least(ISteppedRate[] rates, TimeSpan now)
    {
        var least = long.MaxValue;
        foreach (var rate in rates)
        {
            least = Math.Min(least, rate.Available(now));
        }

        return least;
    }

    private static void TakeAll(ISteppedRate[] rates, long cost, TimeSpan now)
    {
        if (cost > 0)
        {
            foreach (var rate in rates)
            {
                rate.Take(cost, now);
            }
        }
    }

    private static void RefundAll(ISteppedRate[] rates, long cost)
    {
        if (cost > 0)
        {
            foreach (var rate in rates)
            {
                // Refund never catches up: the rate is still at the step the loan was taken in.
                rate.Refund(cost, TimeSpan.Zero);
            }
        }
    }

    /// <summary>The clock stamp <paramref name="after"/> past <paramref name="stamp"/>, rounded down, saturating.</summary>
    private long StampAt(long stamp, TimeSpan after)
    {
        var delta = Math.Floor((double)after.Ticks * _time.TimestampFrequency / TimeSpan.TicksPerSecond);
        return delta >= long.MaxValue - (double)stamp ? long.MaxValue : stamp + (long)delta;
    }
}
