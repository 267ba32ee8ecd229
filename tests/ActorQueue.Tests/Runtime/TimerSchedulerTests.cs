using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;

namespace ActorQueue.Tests.Runtime;

public class TimerSchedulerTests : ActorQueueTestKit
{
    /// <summary>A scheduler of its own, as Akka's interface (its scheduling methods are explicit implementations).</summary>
    private IScheduler NewScheduler() => new TimerScheduler(ConfigurationFactory.Empty, Sys.Log);

    [Fact]
    public void ActorQueues_configuration_runs_Akkas_timers_on_the_timer_scheduler()
    {
        Assert.IsType<TimerScheduler>(Sys.Scheduler);
    }

    [Fact]
    public void A_scheduled_message_arrives_after_its_delay_and_once()
    {
        var scheduler = NewScheduler();
        using var disposal = (IDisposable)scheduler;

        scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(50), TestActor, "tick", ActorRefs.NoSender);

        ExpectMsg("tick");
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void A_cancelled_message_never_arrives_and_a_repeated_one_stops_when_cancelled()
    {
        var scheduler = NewScheduler();
        using var disposal = (IDisposable)scheduler;
        var once = new Cancelable(scheduler);
        var repeated = new Cancelable(scheduler);

        scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(100), TestActor, "cancelled", ActorRefs.NoSender, once);
        once.Cancel();
        scheduler.ScheduleTellRepeatedly(TimeSpan.Zero, TimeSpan.FromMilliseconds(20), TestActor, "again", ActorRefs.NoSender, repeated);
        ExpectMsg("again");
        ExpectMsg("again");
        repeated.Cancel();
        ReceiveWhile(TimeSpan.FromMilliseconds(100), message => message as string); // at most one already in flight

        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void A_disposed_scheduler_runs_nothing_pending_and_refuses_new_work()
    {
        var scheduler = NewScheduler();
        scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(100), TestActor, "pending", ActorRefs.NoSender);

        ((IDisposable)scheduler).Dispose();

        Assert.Throws<SchedulerException>(() => scheduler.ScheduleTellOnce(TimeSpan.Zero, TestActor, "late", ActorRefs.NoSender));
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void An_action_that_throws_is_logged_and_the_scheduler_goes_on()
    {
        var scheduler = NewScheduler();
        using var disposal = (IDisposable)scheduler;
        EventFilter.Exception<InvalidOperationException>().ExpectOne(() =>
            scheduler.Advanced.ScheduleOnce(TimeSpan.Zero, () => throw new InvalidOperationException("boom")));

        scheduler.ScheduleTellOnce(TimeSpan.Zero, TestActor, "still running", ActorRefs.NoSender);
        ExpectMsg("still running");
    }
}
