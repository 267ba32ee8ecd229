using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>
/// A rate as a sliding window: at most <see cref="Limit"/> within any <c>window</c>, the window split into equal
/// segments. What was granted in a segment comes back exactly when that segment slides out of the window, one
/// window after the segment began, not a tick earlier.
/// </summary>
/// <remarks>
/// A settle carries an excess into the current segment, so it counts for one more window. It gives nothing back:
/// the policy does not know which segment the charge went into, and giving it back from another segment could let
/// more than the limit through within a window. A limit that should return unused tokens is a
/// <see cref="TokenBucketPolicy"/>.
/// </remarks>
[DebuggerDisplay("{_used}/{_limit} in the window")]
internal sealed class SlidingWindowPolicy : ISteppedRate
{
    /// <summary>What was granted in each segment still in the window; <see cref="_current"/> is the newest.</summary>
    private readonly long[] _segments;

    /// <summary>How long one segment lasts.</summary>
    private readonly TimeSpan _segment;

    /// <summary>The most the window may hold.</summary>
    private long _limit;

    /// <summary>The sum of <see cref="_segments"/>.</summary>
    private long _used;

    /// <summary>The index of the current (newest) segment.</summary>
    private int _current;

    /// <summary>The gate time the current segment began; a whole number of segments from zero.</summary>
    private TimeSpan _currentStart;

    /// <param name="limit">The most any window may hold; at least 1.</param>
    /// <param name="window">How long a window lasts; above zero.</param>
    /// <param name="segments">How many segments it slides by; at least 1, and the window must split into whole ticks.</param>
    /// <param name="measure">What a demand costs it: calls or tokens.</param>
    public SlidingWindowPolicy(long limit, TimeSpan window, int segments, PermitMeasure measure)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(segments, 1);
        if (window.Ticks % segments != 0)
        {
            throw new ArgumentException($"window {window} does not split into {segments} equal segments", nameof(segments));
        }

        _limit = limit;
        _segments = new long[segments];
        _segment = TimeSpan.FromTicks(window.Ticks / segments);
        Measure = measure;
    }

    /// <inheritdoc />
    public PermitMeasure Measure { get; }

    /// <inheritdoc />
    public bool IsTimed => true;

    /// <inheritdoc />
    public long Limit => _limit;

    /// <inheritdoc />
    public long InUse => _used;

    /// <inheritdoc />
    public long Available(TimeSpan now)
    {
        CatchUp(now);
        return Math.Max(0, _limit - _used);
    }

    /// <inheritdoc />
    public bool CanTake(long cost, TimeSpan now)
    {
        CatchUp(now);
        return cost <= _limit - _used;
    }

    /// <inheritdoc />
    public void Take(long cost, TimeSpan now)
    {
        CatchUp(now);

        // Counted up to long.MaxValue in the window (a settle may report any count): a sum that wrapped went below zero, open.
        var counted = Math.Min(cost, long.MaxValue - _used);
        _segments[_current] += counted;
        _used += counted;
        Debug.Assert(_used >= 0 && _segments[_current] >= 0, "A window counts what it granted, within a long.");
    }

    /// <inheritdoc />
    public void Refund(long cost, TimeSpan now)
    {
        // Called at the instant of the Take it undoes, so the cost is still in the current segment.
        _segments[_current] -= cost;
        _used -= cost;
        Debug.Assert(_segments[_current] >= 0, "A refund undoes a take of the same segment.");
    }

    /// <inheritdoc />
    public void Release(long cost, TimeSpan now)
    {
        // A rate is spent when granted: ending the hold gives nothing back.
    }

    /// <inheritdoc />
    public void Settle(long charged, long actual, TimeSpan now)
    {
        if (actual > charged)
        {
            Take(actual - charged, now);
        }
    }

    /// <inheritdoc />
    public TimeSpan NextAvailableAt(long cost, TimeSpan now)
    {
        CatchUp(now);
        if (cost <= _limit - _used)
        {
            return now;
        }

        if (cost > _limit)
        {
            return QueueServedAt(cost);
        }

        // The oldest segment slides out when the current one ends, the next one a segment later, and so on.
        var free = _limit - _used;
        for (var k = 1; k <= _segments.Length; k++)
        {
            free += _segments[(_current + k) % _segments.Length];
            if (cost <= free)
            {
                return _currentStart + TimeSpan.FromTicks(_segment.Ticks * k);
            }
        }

        return TimeSpan.MaxValue;
    }

    /// <summary>
    /// When a demand above the limit, the sum of a queue (a retry-after: the gate refuses a single one at once), has
    /// been served, each part granted as soon as the window has room: the segment boundary at which the last of it fits.
    /// Already caught up to now; O(segments), no allocation.
    /// </summary>
    /// <remarks>
    /// Granted as soon as there is room, the queue takes what is free now (into the current segment) and, at each
    /// boundary k, what the segment sliding out leaves free. Once the old segments have slid out (k ≥ segments), the
    /// window holds only the queue's grants and is full again at every boundary, so each later window serves exactly
    /// the limit: served(k + segments) = served(k) + limit. Within the first window, served(r) = max(0, limit − what
    /// is still counted after r segments slid out). So the demand fits after m whole windows plus r segments, m the
    /// fewest windows for which served(segments − 1) + m·limit reaches it, r the fewest segments for which served(r)
    /// reaches the rest. The queue is counted as one sum, so for tokens it is the earliest it could be served (a
    /// waiter's cost that does not fit the room left waits for more, as with the token bucket's refills).
    /// </remarks>
    private TimeSpan QueueServedAt(long cost)
    {
        var count = _segments.Length;

        // Before the current segment slides out (r = count − 1) all but it have: what is free then is the limit less it.
        var lastOfFirst = Int128.Max(0, (Int128)_limit - _segments[_current]);
        var windows = ((Int128)cost - lastOfFirst + _limit - 1) / _limit;
        var rest = (Int128)cost - windows * _limit;
        var free = (Int128)_limit - _used;
        var r = 0;
        while (Int128.Max(0, free) < rest)
        {
            r++;
            free += _segments[(_current + r) % count];
        }

        var steps = windows * count + r;
        return steps > (TimeSpan.MaxValue - _currentStart).Ticks / _segment.Ticks ? TimeSpan.MaxValue : _currentStart + TimeSpan.FromTicks(_segment.Ticks * (long)steps);
    }

    /// <inheritdoc />
    public TimeSpan RestsAt(TimeSpan now) => NextAvailableAt(_limit, now);

    /// <inheritdoc />
    public TimeSpan NextGainAt(TimeSpan now)
    {
        CatchUp(now);
        for (var k = 1; k <= _segments.Length; k++)
        {
            if (_segments[(_current + k) % _segments.Length] != 0)
            {
                return _currentStart + TimeSpan.FromTicks(_segment.Ticks * k);
            }
        }

        return TimeSpan.MaxValue;
    }

    /// <inheritdoc />
    public TimeSpan StepEndsAt(TimeSpan now)
    {
        CatchUp(now);
        return _currentStart + _segment;
    }

    /// <inheritdoc />
    public void Resize(long limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        _limit = limit;
    }

    /// <summary>Slides the window to <paramref name="now"/>: each segment that ended gives back what the oldest one held.</summary>
    private void CatchUp(TimeSpan now)
    {
        var ended = (now - _currentStart).Ticks / _segment.Ticks;
        if (ended <= 0)
        {
            return;
        }

        if (ended >= _segments.Length)
        {
            Array.Clear(_segments);
            _used = 0;
            _current = 0;
        }
        else
        {
            for (var i = 0; i < ended; i++)
            {
                _current = (_current + 1) % _segments.Length;
                _used -= _segments[_current];
                _segments[_current] = 0;
            }
        }

        _currentStart += TimeSpan.FromTicks(_segment.Ticks * ended);
        Debug.Assert(_used >= 0, "A window never holds less than nothing.");
    }
}
