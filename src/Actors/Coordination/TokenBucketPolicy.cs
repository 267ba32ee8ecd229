using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>
/// A rate as a token bucket: it holds at most <see cref="Limit"/> (the burst), gains <c>refill</c> at the end of every
/// <c>period</c> counted from the gate's start, and a grant takes its cost out. A settle gives back what a holder did
/// not use (never beyond the burst) or takes the excess out too, so the bucket may go below zero: that debt is paid
/// from the next refills before anyone is granted again.
/// </summary>
/// <remarks>
/// Refills are counted in whole periods from a fixed origin (<see cref="_refilledAt"/> advances by whole periods, it is
/// never reset to "now"), so however often or rarely the gate asks, a period refills once and never twice.
/// Every change of <see cref="_tokens"/> is summed wide and kept between <see cref="Floor"/> and the burst: a settle may
/// report any count (the API takes any at or above zero, a member announces debts), and a sum that wrapped turned a
/// huge debt into a full bucket.
/// </remarks>
[DebuggerDisplay("{_tokens}/{_capacity}, +{_refill} every {_period}")]
internal sealed class TokenBucketPolicy : ISteppedRate
{
    /// <summary>How much one refill adds.</summary>
    private readonly long _refill;

    /// <summary>How often it refills.</summary>
    private readonly TimeSpan _period;

    /// <summary>The most it holds (the burst).</summary>
    private long _capacity;

    /// <summary>What it holds now; below zero while a settle's excess is owed, never below <see cref="Floor"/>.</summary>
    private long _tokens;

    /// <summary>The gate time of the last refill counted; always a whole number of periods from zero.</summary>
    private TimeSpan _refilledAt;

    /// <param name="capacity">The most it holds, and holds at the start: the burst; at least 1.</param>
    /// <param name="refill">How much each period adds; at least 1.</param>
    /// <param name="period">How often it refills; above zero.</param>
    /// <param name="measure">What a demand costs it: calls (requests per period) or tokens.</param>
    public TokenBucketPolicy(long capacity, long refill, TimeSpan period, PermitMeasure measure)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(refill, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        _capacity = capacity;
        _tokens = capacity;
        _refill = refill;
        _period = period;
        Measure = measure;
    }

    /// <inheritdoc />
    public PermitMeasure Measure { get; }

    /// <inheritdoc />
    public bool IsTimed => true;

    /// <inheritdoc />
    public long Limit => _capacity;

    /// <inheritdoc />
    public long InUse => _capacity - _tokens;

    /// <summary>
    /// The deepest debt it keeps: what is in use (<see cref="InUse"/>, the burst less the tokens) is then
    /// <see cref="long.MaxValue"/>. A larger excess is owed as this much — about 9.2e18, beyond any real call.
    /// </summary>
    private long Floor => _capacity - long.MaxValue;

    /// <summary>How much is owed (a settle's excess not yet refilled); 0 when none.</summary>
    public long Debt => Math.Max(0, -_tokens);

    /// <inheritdoc />
    public long Available(TimeSpan now)
    {
        CatchUp(now);
        return Math.Max(0, _tokens);
    }

    /// <inheritdoc />
    public bool CanTake(long cost, TimeSpan now)
    {
        CatchUp(now);
        return cost <= _tokens;
    }

    /// <inheritdoc />
    public void Take(long cost, TimeSpan now)
    {
        CatchUp(now);
        Hold((Int128)_tokens - cost);
    }

    /// <inheritdoc />
    public void Refund(long cost, TimeSpan now)
    {
        Hold((Int128)_tokens + cost);
    }

    /// <inheritdoc />
    public void Release(long cost, TimeSpan now)
    {
        // A rate is spent when granted: ending the hold gives nothing back.
    }

    /// <inheritdoc />
    public void Settle(long charged, long actual, TimeSpan now)
    {
        CatchUp(now);

        // Unused tokens come back, but a bucket never holds more than its burst; an excess is owed to the next refills.
        Hold((Int128)_tokens + charged - actual);
    }

    /// <inheritdoc />
    public TimeSpan NextAvailableAt(long cost, TimeSpan now)
    {
        CatchUp(now);
        if (cost <= _tokens)
        {
            return now;
        }

        // A cost beyond the burst is the demand of a whole queue (a retry-after): it fits as it is taken, refill by refill.
        var refills = ((Int128)cost - _tokens + _refill - 1) / _refill;
        return refills > (TimeSpan.MaxValue - _refilledAt).Ticks / _period.Ticks ? TimeSpan.MaxValue : _refilledAt + TimeSpan.FromTicks(_period.Ticks * (long)refills);
    }

    /// <inheritdoc />
    public TimeSpan RestsAt(TimeSpan now) => NextAvailableAt(_capacity, now);

    /// <inheritdoc />
    public TimeSpan NextGainAt(TimeSpan now)
    {
        CatchUp(now);
        return _tokens < _capacity ? _refilledAt + _period : TimeSpan.MaxValue;
    }

    /// <inheritdoc />
    public TimeSpan StepEndsAt(TimeSpan now)
    {
        CatchUp(now);
        return _refilledAt + _period;
    }

    /// <inheritdoc />
    public void Resize(long limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        _capacity = limit;
        Hold(_tokens);
    }

    /// <summary>Adds the refills of every whole period since the last one counted.</summary>
    private void CatchUp(TimeSpan now)
    {
        if (now - _refilledAt < _period)
        {
            return;
        }

        var periods = (now - _refilledAt).Ticks / _period.Ticks;
        _refilledAt += TimeSpan.FromTicks(_period.Ticks * periods);
        Hold((Int128)_tokens + (Int128)periods * _refill);
    }

    /// <summary>Keeps <paramref name="tokens"/>, summed wide, between <see cref="Floor"/> and the burst.</summary>
    private void Hold(Int128 tokens)
    {
        _tokens = (long)Int128.Clamp(tokens, Floor, _capacity);
        Debug.Assert(_tokens <= _capacity && _capacity - _tokens >= 0, "A bucket never holds more than its burst, nor owes past what a long counts in use.");
    }
}
