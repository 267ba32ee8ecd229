using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// One timer on a gate's clock that tells its actor <see cref="GateWake"/> at the gate's next deadline (a wait timeout,
/// or a rate that fits the head again). On the gate's <see cref="TimeProvider"/>, so a fake clock moves it in tests.
/// </summary>
/// <remarks>
/// Two ways a wake went missing, both closed here (docs/ARCHITECTURE.md, "Wakes"):
/// <list type="bullet">
/// <item>A system timer counts whole milliseconds (its due is truncated) from a coarse tick read as it is set, so it may
/// fire a few milliseconds before the deadline on the gate's clock. The gate then finds nobody due and asks for the same
/// deadline again, which an "already set for it" check dropped: the waiter waited until some other message came. A
/// timer that fired is set for nothing (<see cref="Fired"/>, as the actor handles the wake), and on the system clock a
/// due is rounded up to a whole millisecond, so an early wake is followed by few more.</item>
/// <item>A due counts from when the timer is set, not from when the clock was read: a clock that moved in between (a
/// fake clock advanced by a test's thread) set the wake late by the whole move. On any clock but the system's the
/// clock is read again after the set, and the timer set again from the new reading until a reading holds.</item>
/// </list>
/// </remarks>
/// <param name="time">The gate's clock.</param>
/// <param name="actor">The actor to wake.</param>
/// <param name="now">The gate's time now, on <paramref name="time"/>.</param>
internal sealed class GateWakeTimer(TimeProvider time, IActorRef actor, Func<TimeSpan> now) : IDisposable
{
    /// <summary>How many times one <see cref="Arm"/> sets the timer at most while the clock keeps moving under it.</summary>
    private const int MaxSets = 4;

    /// <summary>Made on the first deadline.</summary>
    private ITimer? _timer;

    /// <summary>The gate time the timer is set for; <see cref="TimeSpan.MaxValue"/> when it is off or has fired.</summary>
    private TimeSpan _armedAt = TimeSpan.MaxValue;

    /// <summary>Sets the timer for gate time <paramref name="next"/> unless it is set for it already (<see cref="TimeSpan.MaxValue"/>: off).</summary>
    /// <param name="next">The gate's next deadline.</param>
    public void Arm(TimeSpan next)
    {
        if (next == _armedAt)
        {
            return;
        }

        _armedAt = next;
        if (next == TimeSpan.MaxValue)
        {
            _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        _timer ??= time.CreateTimer(static self => ((IActorRef)self!).Tell(GateWake.Instance, ActorRefs.NoSender), actor,
                                    Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        var read = now();
        for (var sets = 1; ; sets++)
        {
            _timer.Change(DueIn(next - read), Timeout.InfiniteTimeSpan);
            if (next <= read || sets == MaxSets || ReferenceEquals(time, TimeProvider.System))
            {
                return; // due at once, or the clock's move while setting is only this thread's delay
            }

            var after = now();
            if (after == read)
            {
                return;
            }

            read = after;
        }
    }

    /// <summary>The actor is handling a wake: the timer set for <see cref="_armedAt"/> may have fired early, so the next <see cref="Arm"/> sets it even for the same deadline.</summary>
    public void Fired() => _armedAt = TimeSpan.MaxValue;

    /// <inheritdoc />
    public void Dispose() => _timer?.Dispose();

    /// <summary>The timer's due for a deadline <paramref name="left"/> away: at once when passed; on the system clock, whole milliseconds rounded up.</summary>
    private TimeSpan DueIn(TimeSpan left) =>
        left <= TimeSpan.Zero ? TimeSpan.Zero
        : ReferenceEquals(time, TimeProvider.System) ? TimeSpan.FromMilliseconds(Math.Ceiling(left.TotalMilliseconds))
        : left;
}
