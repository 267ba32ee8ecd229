using ActorQueue.Actors;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// Wait timeouts fire whatever the timer does: a wake that comes before its deadline (a system timer counts whole
/// milliseconds from a coarse tick) is set again for what is left, so the waiter times out; on the system clock, one
/// waiter after another times out with nothing else happening (before the fix, the second such waiter waited for ever).
/// </summary>
public sealed class WaitTimeoutWakeTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_wake_before_the_deadline_is_set_again_and_the_waiter_times_out()
    {
        var clock = new EarlyTimersClock(TimeSpan.FromMilliseconds(1));
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1) { TimeProvider = clock }, "early-timers", system: Sys);
        using var held = await Within(limiter.AcquireAsync(1).AsTask());
        var waiting = limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(10)).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second call waits");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(9.5)); // its wake, set for 10 ms, comes at 9
        await StatusOf(limiter); // the gatekeeper handled that wake: nobody was due
        Assert.False(waiting.IsCompleted, "not yet due");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(0.5));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting));
    }

    [Fact]
    public async Task On_the_system_clock_one_waiter_after_another_times_out()
    {
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1), "system-clock-timeouts", system: Sys);
        using var held = await Within(limiter.AcquireAsync(1).AsTask());

        // Timeouts that are not whole milliseconds, so the timer's rounding and coarse tick may fire it early.
        for (var i = 0; i < 20; i++)
        {
            var timeout = TimeSpan.FromTicks(50_500 + (i * 1_170));
            await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(1, waitTimeout: timeout).AsTask()));
        }

        Assert.Equal(0, limiter.WaitingCount);
    }

    private async Task StatusOf(ConcurrencyLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<Status>();
    }
}
