using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A fake clock whose timers fire up to <paramref name="early"/> before they are due, as a system timer may: it counts
/// whole milliseconds (its due is truncated) from a coarse tick read when it is set (up to a few milliseconds old). A
/// timer due within <paramref name="early"/> fires on time, so a wake set again for the remainder comes.
/// </summary>
internal sealed class EarlyTimersClock(TimeSpan early) : TimeProvider
{
    /// <summary>A move to make right after the next <see cref="GetUtcNow"/>, in ticks; 0 when none.</summary>
    private long _moveAfterUtcRead;

    /// <summary>How many times a one-shot timer was set (made or changed with a due and no period).</summary>
    private int _oneShotSets;

    /// <summary>How many times a one-shot timer was set: a wake set again shows here.</summary>
    public int OneShotSets => Volatile.Read(ref _oneShotSets);

    /// <summary>The clock underneath; advance it to move time.</summary>
    public FakeTimeProvider Fake { get; } = new();

    /// <summary>Moves the clock by <paramref name="by"/> right after the next read of the time of day, once.</summary>
    public void MoveAfterNextUtcRead(TimeSpan by) => Volatile.Write(ref _moveAfterUtcRead, by.Ticks);

    /// <inheritdoc />
    public override long GetTimestamp() => Fake.GetTimestamp();

    /// <inheritdoc />
    public override long TimestampFrequency => Fake.TimestampFrequency;

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow()
    {
        var now = Fake.GetUtcNow();
        if (Interlocked.Exchange(ref _moveAfterUtcRead, 0) is var move and not 0)
        {
            Fake.Advance(TimeSpan.FromTicks(move));
        }

        return now;
    }

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new EarlyTimer(this, Fake.CreateTimer(callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan), early);
        timer.Change(dueTime, period);
        return timer;
    }

    private sealed class EarlyTimer(EarlyTimersClock clock, ITimer inner, TimeSpan early) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime != Timeout.InfiniteTimeSpan && period == Timeout.InfiniteTimeSpan)
            {
                Interlocked.Increment(ref clock._oneShotSets);
            }

            return inner.Change(dueTime > early && dueTime != Timeout.InfiniteTimeSpan ? dueTime - early : dueTime, period);
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}

/// <summary>
/// A fake clock that another thread advances by a set move right after the next read of its time, once: what a
/// test's thread may do between a gatekeeper's reading the clock and its setting a timer from that reading.
/// </summary>
internal sealed class MovedAfterReadClock : FakeTimeProvider
{
    /// <summary>The move still to make, in ticks; 0 when none.</summary>
    private long _move;

    /// <summary>Moves the clock by <paramref name="by"/> right after its next read.</summary>
    public void MoveAfterNextRead(TimeSpan by) => Volatile.Write(ref _move, by.Ticks);

    /// <inheritdoc />
    public override long GetTimestamp()
    {
        var now = base.GetTimestamp();
        if (Interlocked.Exchange(ref _move, 0) is var move and not 0)
        {
            Advance(TimeSpan.FromTicks(move));
        }

        return now;
    }
}
