using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;
using FaultyClock = ActorQueue.Tests.Review.RestartActorCallersReviewTests.FaultyClock;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of 0d14ee8 (restarts of the unpartitioned gatekeeper, whose next instance takes over the turn its
/// predecessor kept): the next instance is built from the limiter's construction-time settings, so a handler that
/// throws silently undoes every <c>Resize</c> made before it: the pool goes back to the first <c>maxRunning</c> and
/// the published <see cref="ConcurrencyLimiter.MaxRunning"/> with it, although the caller was told nothing and the
/// limiter keeps running. (Its constructor also re-publishes the construction-time limits, <c>PublishApplied</c>.)
/// <list type="bullet">
/// <item><see cref="A_resize_outlives_a_restart"/> FAILS on main 0d14ee8, every run: <c>MaxRunning</c> is 1 again after
/// the restart and the second caller waits. It fails on 0d14ee8's parent too (checked): older than the turn, which
/// keeps it (the restart the turn hands over to the next instance builds it from the settings).</item>
/// </list>
/// The restart was a request whose handler threw until 53a9822, which fails such a request alone (no restart): from then
/// the test ran without one. It is a clock fault in a wake now (<see cref="FaultyClock.RestartGatekeeper"/>), which
/// asserts the restart (and needs a waiter with a deadline: the wake reads the clock only then). Mutant killed: the next
/// instance made from the settings' limits, not the applied ones (<c>LimiterCounts.Applied</c> ignored in the constructor).
/// </summary>
public sealed class RestartForgetsResizeReviewTests : ActorQueueTestKit
{
    /// <summary>
    /// A limiter of 1 resized to 2, both permits held and a caller waiting (with a deadline) when the gatekeeper restarts:
    /// the next instance's limit is 2, the facade's too, and a permit coming back goes to the waiter (under a limit of 1
    /// again it would still wait: 1 held); a further caller that will not wait is refused (2 held of 2).
    /// </summary>
    [Fact]
    public async Task A_resize_outlives_a_restart()
    {
        var clock = new FaultyClock();
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1) { TimeProvider = clock }, "review-restart-resize", system: Sys);
        limiter.Resize(maxRunning: 2);
        var status = await this.StatusOf(limiter);
        Assert.Equal(2, status.MaxRunning);
        var first = await Within(limiter.AcquireAsync("first").AsTask());
        using var second = await Within(limiter.AcquireAsync("second, within the resized limit").AsTask());
        var waiter = limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.FromMinutes(1), source: "waits, with a deadline").AsTask();
        Assert.Equal(1, (await this.StatusOf(limiter)).Waiting);

        var watcher = CreateTestProbe();
        watcher.Watch(limiter.Gatekeeper);
        await EventFilter.Exception<LocalSuspectsReviewTests.ClockFault>().ExpectOneAsync(
            () => clock.RestartGatekeeper(limiter.Gatekeeper, Dilated(TimeSpan.FromSeconds(10))));
        status = await this.StatusOf(limiter);
        watcher.ExpectNoMsg(TimeSpan.Zero); // restarted, not stopped

        Assert.Equal(2, status.MaxRunning);
        Assert.Equal(2, limiter.MaxRunning);
        Assert.True((status.Running, status.Waiting) == (2, 1), $"after the restart: running {status.Running}, waiting {status.Waiting}");
        first.Dispose();
        using var granted = await Within(waiter); // 1 held of the resized 2
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.Zero).AsTask()));
    }
}
