using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>
/// A pool of interchangeable permits: a limiter's slots, a lock's one holder, a capacity limiter's tokens. A holder
/// keeps what it took until it releases; a shrunk pool revokes nothing, so <see cref="InUse"/> may exceed
/// <see cref="Limit"/> until enough come back.
/// </summary>
[DebuggerDisplay("{InUse}/{Limit} in use")]
internal sealed class PermitPool : IPermitPolicy
{
    /// <summary>How many permits there are; <see cref="long.MaxValue"/> for no limit.</summary>
    private long _capacity;

    /// <param name="capacity">How many permits there are; <see cref="long.MaxValue"/> for no limit.</param>
    public PermitPool(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _capacity = capacity;
    }

    /// <inheritdoc />
    public PermitMeasure Measure => PermitMeasure.Permits;

    /// <inheritdoc />
    public bool IsTimed => false;

    /// <inheritdoc />
    public long Limit => _capacity;

    /// <inheritdoc />
    public long InUse { get; private set; }

    /// <inheritdoc />
    public long Available(TimeSpan now) => Math.Max(0, _capacity - InUse);

    /// <inheritdoc />
    public bool CanTake(long cost, TimeSpan now) => cost <= _capacity - InUse;

    /// <inheritdoc />
    public void Take(long cost, TimeSpan now) => InUse += cost;

    /// <inheritdoc />
    public void Refund(long cost, TimeSpan now) => Release(cost, now);

    /// <inheritdoc />
    public void Release(long cost, TimeSpan now)
    {
        InUse -= cost;
        Debug.Assert(InUse >= 0, "A pool released more permits than it had given out.");
    }

    /// <inheritdoc />
    public void Settle(long charged, long actual, TimeSpan now)
    {
        // A pool's permits are held, not consumed: what a holder used changes nothing.
    }

    /// <inheritdoc />
    public TimeSpan NextAvailableAt(long cost, TimeSpan now) => CanTake(cost, now) ? now : TimeSpan.MaxValue;

    /// <inheritdoc />
    public void Resize(long limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        _capacity = limit;
    }
}
