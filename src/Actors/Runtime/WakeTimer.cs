using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Runtime;

/// <summary>
/// One timer on an actor's clock that tells it a message at its next deadline: a gatekeeper <see cref="GateWake"/> (a
/// wait timeout, or a rate that fits the head again), a durable router its next delayed item's turn. On the actor's
/// <see cref="TimeProvider"/>, so a fake clock moves it in tests.
/// </summary>
/// <remarks>
/// Two ways a wake went missing, both closed here (docs/ARCHITECTURE.md, "Wakes"):
/// <list type="bullet">
/// <item>A system timer counts whole milliseconds (its due is truncated) from a coarse tick read as it is set, so it may
/// fire a few milliseconds before the deadline on the actor's clock. The actor then finds nothing due and asks for the
/// same deadline again, which an "already set for it" check dropped: a gate's waiter waited until some other message
/// came. A timer that fired is set for nothing (<see cref="Fired"/>, as the actor handles the wake), and on the system
/// clock a due is rounded up to a whole millisecond, so an early wake is followed by few more.</item>
/// <item>A due counts from when the timer is set, not from when the clock was read: a clock that moved in between (a
/// fake clock advanced by a test's thread) set the wake late by the whole move. On any clock but the system's the
/// clock is read again after the set, and the timer set again from the new reading until a reading holds (at most
/// <see cref="MaxSets"/> sets: another real-time clock moves under every set).</item>
/// </list>
/// Also: a due beyond what a system timer takes (about 49.7 days; a wait timeout or a rate's period may be longer) is
/// cut to that, so the timer fires early and is set again for the rest; and the timer is made without the caller's
/// <see cref="ExecutionContext"/> (the first <see cref="Arm"/> may run on a facade caller's thread, and a timer keeps
/// the context it was made in for its life: an ASP.NET request's scope, say, until the limiter is disposed).
/// </remarks>
/// <param name="time">The actor's clock.</param>
/// <param name="actor">The actor to wake.</param>
/// <param name="now">The actor's time now, on <paramref name="time"/>, in the deadlines' terms.</param>
/// <param name="wake">What the actor is told; <see cref="GateWake"/> when none is given.</param>
internal sealed class WakeTimer(TimeProvider time, IActorRef actor, Func<TimeSpan> now, object? wake = null) : IDisposable
{
    /// <summary>What the actor is told.</summary>
    private readonly object _wake = wake ?? GateWake.Instance;

    /// <summary>How many times one <see cref="Arm"/> sets the timer at most while the clock keeps moving under it.</summary>
    private const int MaxSets = 4;

    /// <summary>The longest due a system timer takes (<c>0xFFFFFFFE</c> ms); a longer one is cut to it and set again when it fires.</summary>
    private static readonly TimeSpan LongestDue = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>Made on the first deadline.</summary>
    private ITimer? _timer;

    /// <summary>The time the timer is set for; <see cref="TimeSpan.MaxValue"/> when it is off or has fired.</summary>
    private TimeSpan _armedAt = TimeSpan.MaxValue;

    /// <summary>Sets the timer for time <paramref name="next"/> unless it is set for it already (<see cref="TimeSpan.MaxValue"/>: off).</summary>
    /// <param name="next">The actor's next deadline.</param>
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

        _timer ??= CreateTimer();
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

    /// <summary>The timer, made without the calling thread's <see cref="ExecutionContext"/>.</summary>
    private ITimer CreateTimer()
    {
        if (ExecutionContext.IsFlowSuppressed())
        {
            return time.CreateTimer(static self => ((WakeTimer)self!).Ring(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        using (ExecutionContext.SuppressFlow())
        {
            return time.CreateTimer(static self => ((WakeTimer)self!).Ring(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The timer's callback, on a timer thread: reads only what never changes.</summary>
    private void Ring() => actor.Tell(_wake, ActorRefs.NoSender);

    /// <summary>The timer's due for a deadline <paramref name="left"/> away: at once when passed; on the system clock, whole milliseconds rounded up; never past <see cref="LongestDue"/>.</summary>
    private TimeSpan DueIn(TimeSpan left) =>
        left <= TimeSpan.Zero ? TimeSpan.Zero
        : left >= LongestDue ? LongestDue
        : ReferenceEquals(time, TimeProvider.System) ? TimeSpan.FromMilliseconds(Math.Ceiling(left.TotalMilliseconds))
        : left;
}
