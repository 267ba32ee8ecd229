using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// One timer on a gate's clock that tells its actor <see cref="GateWake"/> at the gate's next deadline (a wait timeout,
/// or a rate that fits the head again). On the gate's <see cref="TimeProvider"/>, so a fake clock moves it in tests.
/// </summary>
internal sealed class GateWakeTimer(TimeProvider time, IActorRef actor) : IDisposable
{
    /// <summary>Made on the first deadline.</summary>
    private ITimer? _timer;

    /// <summary>The gate time the timer is set for; <see cref="TimeSpan.MaxValue"/> when it is off.</summary>
    private TimeSpan _armedAt = TimeSpan.MaxValue;

    /// <summary>Sets the timer for gate time <paramref name="next"/> if it moved (<see cref="TimeSpan.MaxValue"/>: off).</summary>
    /// <param name="next">The gate's next deadline.</param>
    /// <param name="gate">The gate, whose clock is read only when the timer moves.</param>
    public void Arm(TimeSpan next, PermitGate gate)
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

        var due = next - gate.Now;
        _timer ??= time.CreateTimer(static self => ((IActorRef)self!).Tell(GateWake.Instance, ActorRefs.NoSender), actor,
                                    Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _timer.Change(due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    /// <inheritdoc />
    public void Dispose() => _timer?.Dispose();
}
