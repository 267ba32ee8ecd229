using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;
using FaultyClock = ActorQueue.Tests.Review.RestartActorCallersReviewTests.FaultyClock;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of 0d14ee8 (restarts of the unpartitioned gatekeeper: "a handler that throws leaves the turn held by the actor
/// across the restart; the new instance's PreStart resumes it"): the requests still pushed in the turn survive the
/// restart, but a facade caller already queued in the gate is failed by the restart's <c>CloseState</c> with
/// <see cref="ObjectDisposedException"/> ("The concurrency limiter has been disposed") although nobody disposed the
/// limiter, which goes on serving. One actor caller's bad message thus fails every unrelated waiter with an error that
/// tells it the limiter is gone; a request that came a moment later (still pushed) is served.
/// <list type="bullet">
/// <item><see cref="A_queued_facade_caller_is_not_told_the_limiter_was_disposed_when_the_gatekeeper_restarts"/> FAILS on
/// main 0d14ee8, every run (the waiter throws ObjectDisposedException). It fails on 0d14ee8's parent too (checked): the
/// rejection on restart is older than the turn, which keeps it.</item>
/// </list>
/// The restart was a request whose handler threw until 53a9822, which fails such a request alone (no restart): from then
/// the test ran without one. It is a clock fault in a wake now (<see cref="FaultyClock.RestartGatekeeper"/>), which
/// asserts the restart (and needs the waiter to have a deadline); and since a restart carries its queued callers over (<c>LimiterCounts.CarriedOver</c>), the
/// waiter is still queued after it and is granted the holder's permit. Mutant killed: the facade callers not carried
/// over (<c>HandOver</c> keeps only actors' tickets) → the waiter fails with ObjectDisposedException.
/// </summary>
public sealed class RestartFailsFacadeWaitersReviewTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_queued_facade_caller_is_not_told_the_limiter_was_disposed_when_the_gatekeeper_restarts()
    {
        var clock = new FaultyClock();
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1) { TimeProvider = clock }, "review-restart-waiter", system: Sys);
        var held = await Within(limiter.AcquireAsync("holder").AsTask());
        // A deadline, never reached (the clock stands still): a plain gatekeeper's wake reads its clock only then.
        var waiter = limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.FromMinutes(1), source: "queued before the restart").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the waiter is queued");

        await EventFilter.Exception<LocalSuspectsReviewTests.ClockFault>().ExpectOneAsync(
            () => clock.RestartGatekeeper(limiter.Gatekeeper, Dilated(TimeSpan.FromSeconds(10))));
        var status = await this.StatusOf(limiter);
        Assert.True((status.Running, status.Waiting) == (1, 1), $"after the restart: running {status.Running}, waiting {status.Waiting}; the waiter: {waiter.Exception?.InnerException}");
        held.Dispose();

        var outcome = await Record.ExceptionAsync(async () => (await Within(waiter)).Dispose());
        Assert.True(outcome is null, $"the limiter was not disposed, and its permit came back, yet its waiter got: {outcome}");
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "nothing leaked");
    }
}
