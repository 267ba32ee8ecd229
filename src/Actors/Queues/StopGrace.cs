using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// A queue router's stop under way, the in-memory router's and the durable one's: its grace period, which the earliest
/// deadline of the stops ends (<see cref="StopTimedOut"/>: the router cancels its work in hand), and after it a
/// disposal's own timeout for that cancelled work (<see cref="AbandonWorkers"/>: the router stops without a worker that
/// ignores its token, rather than hold the disposal for ever; a durable router then stops waiting for its journal too).
/// So a disposal completes at most twice its timeout after it came, the documented bound; the reports of an in-memory
/// queue's discarded items are held to it by <see cref="LifecycleWaiters.DisposalDeadline"/>. The router's only; its
/// timers are passed in, since an actor's timers exist only once it is made.
/// <para>The deadline is read on the clock those timers run on, the actor system's <c>scheduler</c>
/// (<see cref="Now"/>): read on <see cref="Environment.TickCount64"/>, it parted from them on a virtual clock (Akka's
/// TestScheduler), and a disposal while stopping, or a durable router's restart, ended the grace period at the wrong
/// time (review h159).</para>
/// </summary>
internal sealed class StopGrace(LifecycleWaiters waiters, IScheduler scheduler)
{
    private const string StopTimerKey = "stop-timeout";
    private const string AbandonTimerKey = "abandon-workers";

    /// <summary>When the grace period ends (on <see cref="Now"/>'s clock); <c>null</c> while no stop under way has a finite timeout.</summary>
    public TimeSpan? EndsAt { get; private set; }

    /// <summary>Whether the grace period is over: the work in hand was cancelled.</summary>
    public bool IsOver { get; private set; }

    /// <summary>A stop begins: its grace period ends within <paramref name="timeout"/>.</summary>
    public void Begin(TimeSpan timeout, ITimerScheduler timers)
    {
        (EndsAt, IsOver) = (null, false);
        EndWithin(timeout, timers);
    }

    /// <summary>
    /// Another stop while stopping (a disposal, say): its timeout ends the grace period sooner if it is shorter (the
    /// earliest deadline of the stops wins); a disposal that comes after the grace period waits for the cancelled work
    /// at most its own timeout (<see cref="AbandonAfter"/>).
    /// </summary>
    public void Join(StopQueue stop, ITimerScheduler timers)
    {
        waiters.AddStopper(stop);
        if (IsOver)
        {
            AbandonAfter(timers);
        }
        else
        {
            EndWithin(stop.Timeout, timers);
        }
    }

    /// <summary>
    /// A restarted router goes on with the deadline its failed instance had (<paramref name="endsAt"/>; the timer died
    /// with it). <c>true</c> when it has passed already: the router ends the grace period now (<see cref="Ended"/>).
    /// </summary>
    public bool Resume(TimeSpan? endsAt, ITimerScheduler timers)
    {
        EndsAt = endsAt;
        if (endsAt is not { } end)
        {
            return false;
        }

        var left = end - Now;
        if (left <= TimeSpan.Zero)
        {
            return true;
        }

        timers.StartSingleTimer(StopTimerKey, StopTimedOut.Instance, left);
        return false;
    }

    /// <summary>The grace period is over (its timer fired, or a stop's token did), the router having cancelled its work.</summary>
    public void Ended(ITimerScheduler timers)
    {
        IsOver = true;
        AbandonAfter(timers);
    }

    /// <summary>
    /// The grace period is over, or the queue stopped with work still running: a disposal waits for that work at most its
    /// own timeout, then the router is told to stop without it (<see cref="AbandonWorkers"/>).
    /// </summary>
    public void AbandonAfter(ITimerScheduler timers)
    {
        if (waiters.DisposeTimeout is { } timeout && timeout != Timeout.InfiniteTimeSpan && !timers.IsTimerActive(AbandonTimerKey))
        {
            timers.StartSingleTimer(AbandonTimerKey, AbandonWorkers.Instance, timeout);
        }
    }

    /// <summary>The queue stopped: the grace period's timer is not needed.</summary>
    public void Stopped(ITimerScheduler timers) => timers.Cancel(StopTimerKey);

    /// <summary>The stops are answered: no disposal waits for work any more.</summary>
    public void Settled(ITimerScheduler timers) => timers.Cancel(AbandonTimerKey);

    private void EndWithin(TimeSpan timeout, ITimerScheduler timers)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return;
        }

        var ends = Now + timeout; // at most Timeouts.LongestFinite (a longer one is infinite): no overflow
        if (EndsAt is null || ends < EndsAt)
        {
            EndsAt = ends;
            timers.StartSingleTimer(StopTimerKey, StopTimedOut.Instance, timeout);
        }
    }

    /// <summary>
    /// Now, on the clock the router's timers run on: the scheduler's monotonic clock when its <see cref="ITimeProvider.Now"/>
    /// is the system's wall clock (Akka's schedulers, ActorQueue's <c>TimerScheduler</c>, whose monotonic clock is its
    /// <see cref="TimeProvider"/>'s, a fake one's too); otherwise its <see cref="ITimeProvider.Now"/>, which is then its
    /// own time (Akka's TestScheduler: its monotonic clock is the process's, which its <c>Advance</c> does not move).
    /// </summary>
    private TimeSpan Now => scheduler is IDateTimeOffsetNowTimeProvider ? scheduler.MonotonicClock : TimeSpan.FromTicks(scheduler.Now.UtcTicks);
}
