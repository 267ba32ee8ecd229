using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Runtime;

/// <summary>
/// The scheduler on a fake clock: its timers fire inside <see cref="FakeTimeProvider.Advance"/>, on the test's thread,
/// so what ran and what did not is known the moment the clock stops.
/// </summary>
public class TimerSchedulerTests : ActorQueueTestKit
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));

    /// <summary>A scheduler of its own on the fake clock, as Akka's interface (its scheduling methods are explicit implementations).</summary>
    private IScheduler NewScheduler() => new TimerScheduler(ConfigurationFactory.Empty, Sys.Log, _clock);

    [Fact]
    public void ActorQueues_configuration_runs_Akkas_timers_on_the_timer_scheduler()
    {
        Assert.IsType<TimerScheduler>(Sys.Scheduler);
    }

    [Fact]
    public void A_scheduled_action_runs_once_when_the_clock_reaches_its_delay()
    {
        var scheduler = NewScheduler();
        using var disposal = (IDisposable)scheduler;
        var runs = 0;

        scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(50), () => runs++);
        _clock.Advance(TimeSpan.FromMilliseconds(49));
        Assert.Equal(0, runs);
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, runs);
        _clock.Advance(TimeSpan.FromHours(1));

        Assert.Equal(1, runs);
    }

    [Fact]
    public void A_scheduled_message_is_told_when_the_clock_reaches_its_delay()
    {
        var scheduler = NewScheduler();
        using var disposal = (IDisposable)scheduler;

        scheduler.ScheduleTellOnce(TimeSpan.FromSeconds(1), TestActor, "tick", ActorRefs.NoSender);
        _clock.Advance(TimeSpan.FromSeconds(1));

        ExpectMsg("tick");
    }

    [Fact]
    public void A_repeated_action_runs_every_interval_until_cancelled_and_a_cancelled_one_never_runs()
    {
        var scheduler = NewScheduler();
        using var disposal = (IDisposable)scheduler;
        var once = new Cancelable(scheduler);
        var repeated = new Cancelable(scheduler);
        var cancelledRuns = 0;
        var repeatedRuns = 0;

        scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(100), () => cancelledRuns++, once);
        once.Cancel();
        scheduler.Advanced.ScheduleRepeatedly(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(20), () => repeatedRuns++, repeated);
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(1, repeatedRuns);
        _clock.Advance(TimeSpan.FromMilliseconds(20));
        _clock.Advance(TimeSpan.FromMilliseconds(20));
        Assert.Equal(3, repeatedRuns);
        repeated.Cancel();
        _clock.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(3, repeatedRuns);
        Assert.Equal(0, cancelledRuns);
    }

    [Fact]
    public void A_disposed_scheduler_runs_nothing_pending_and_refuses_new_work()
    {
        var scheduler = NewScheduler();
        var runs = 0;
        scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(100), () => runs++);

        ((IDisposable)scheduler).Dispose();
        _clock.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(0, runs);
        Assert.Throws<SchedulerException>(() => scheduler.ScheduleTellOnce(TimeSpan.Zero, TestActor, "late", ActorRefs.NoSender));
    }

    [Fact]
    public void The_schedulers_clocks_are_its_time_providers()
    {
        var scheduler = NewScheduler();
        using var disposal = (IDisposable)scheduler;

        _clock.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(TimeSpan.FromSeconds(5), scheduler.MonotonicClock);
        Assert.Equal(TimeSpan.FromSeconds(5), scheduler.HighResMonotonicClock);
        Assert.Equal(_clock.GetLocalNow(), scheduler.Now);
    }

    [Fact]
    public void An_action_that_throws_is_logged_and_the_scheduler_goes_on()
    {
        var scheduler = NewScheduler();
        using var disposal = (IDisposable)scheduler;
        var runs = 0;
        scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(1), () => throw new InvalidOperationException("boom"));
        scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(2), () => runs++);

        EventFilter.Exception<InvalidOperationException>().ExpectOne(() => _clock.Advance(TimeSpan.FromMilliseconds(2)));

        Assert.Equal(1, runs);
    }
}
