using ActorQueue.Actors;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of a model-API (rates) gatekeeper's restart (<c>fix/rate-restart-waiters</c>): a gatekeeper without rates carried
/// the facade callers its gate had queued over to its next instance, each with what was left of its wait; one with rates,
/// whose messages go straight from the mailbox (no turn), failed them as disposed "as before", although its limiter went on
/// running. (Both kinds now carry them alike: the restarting instance hands them on in <c>LimiterCounts.CarriedOver</c>,
/// and the next one offers them in its <c>PreStart</c>.)
/// <list type="bullet">
/// <item><see cref="A_rate_gatekeeper_restarted_by_a_fault_keeps_its_queued_facade_callers_in_order_with_what_was_left_of_their_wait"/>:
/// FAILED before (buckets and windows alike): "the restarted gatekeeper has 0 of the 3 waiters; the first got:
/// ObjectDisposedException".</item>
/// <item><see cref="A_partitioned_model_api_limiters_waiter_outlives_a_clock_fault_in_its_partitions_settle"/>: the
/// partitioned model-API limiter does not have the defect (passed before too).</item>
/// </list>
/// </summary>
public sealed class RateRestartWaitersReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Three facade callers wait behind the one slot of a model-API limiter (two requests a minute), the second with a 20 s
    /// wait of which 15 s have passed, when a clock read inside a settle throws and Akka restarts the gatekeeper. The next
    /// instance has all three waiting, in their order; the second times out 5 s later (what was left of its wait, not
    /// 20 s more); the slot coming back goes to the first; a second restart carries the third over again, alone; the
    /// third, the period's third request, waits for the period's end although the slot is free (the rates go on as
    /// spent: nothing is over-granted), and is then granted. Mutants killed: no time left carried (the second never
    /// timed out), the carried callers offered in reverse (the third was granted first), rates made anew on a restart
    /// (the third was granted within the period).
    /// DEFECT (fixed): the restart failed every queued facade caller with <see cref="ObjectDisposedException"/>, the
    /// limiter still running.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(4)]
    public async Task A_rate_gatekeeper_restarted_by_a_fault_keeps_its_queued_facade_callers_in_order_with_what_was_left_of_their_wait(int? segments)
    {
        var clock = new LocalSuspectsReviewTests.OnceFailingClock();
        var options = new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 2, tokensPerPeriod: 1_000, Minute)
        {
            TimeProvider = clock,
            SlidingWindowSegments = segments,
        };
        using var limiter = new ModelApiLimiter(options, "review-rate-restart-waiters", system: Sys);
        var holder = await Within(limiter.AcquireAsync(1, source: "holder").AsTask());
        var first = limiter.AcquireAsync(1, waitTimeout: Timeout.InfiniteTimeSpan, source: "first").AsTask();
        var second = limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromSeconds(20), source: "second").AsTask();
        var third = limiter.AcquireAsync(1, waitTimeout: Timeout.InfiniteTimeSpan, source: "third").AsTask();
        Assert.Equal(3, (await StatusOf(limiter)).Waiting); // queued, and the wake for the second's deadline armed
        clock.Advance(TimeSpan.FromSeconds(15));

        clock.FailNextSettleRead();
        await EventFilter.Exception<LocalSuspectsReviewTests.ClockFault>().ExpectOneAsync(() =>
        {
            holder.Settle(1); // its handler reads the clock outside any catch: the actor is restarted
            return Task.CompletedTask;
        });

        var restarted = await StatusOf(limiter); // handled by the next instance, after its start
        if (restarted.Waiting != 3)
        {
            var outcome = await Record.ExceptionAsync(() => Within(first));
            Assert.Fail($"the restarted gatekeeper has {restarted.Waiting} of the 3 waiters; the first got: {outcome?.GetType().Name ?? "a lease"}");
        }

        Assert.False(first.IsCompleted || second.IsCompleted || third.IsCompleted, "a waiter was answered by the restart");

        clock.Advance(TimeSpan.FromSeconds(5));
        var timedOut = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(second)); // not 20 s more
        Assert.Equal(TimeSpan.FromSeconds(20), timedOut.WaitTimeout);

        holder.Dispose();
        Assert.Same(first, await Within(Task.WhenAny(first, third))); // in their order
        var firstLease = await first;

        // A second restart, the third alone waiting: it is carried over again, and nothing else is.
        clock.FailNextSettleRead();
        await EventFilter.Exception<LocalSuspectsReviewTests.ClockFault>().ExpectOneAsync(() =>
        {
            firstLease.Settle(1);
            return Task.CompletedTask;
        });
        firstLease.Dispose();

        // The slot is free, but the period's two requests are spent (the holder's and the first's): the third waits.
        var spent = await StatusOf(limiter);
        Assert.Equal((0, 1), (spent.Running, spent.Waiting));
        Assert.False(third.IsCompleted, "the restarted gatekeeper granted a third request within the period");

        clock.Advance(TimeSpan.FromSeconds(40)); // the period ends on the gate time the rates were spent in
        (await Within(third)).Dispose();
    }

    /// <summary>
    /// The partitioned model-API limiter, checked for the same defect: its settle runs in the key's partition turn, where a
    /// fault fails nothing but the settle (and its actor catches what its handlers throw: it is never restarted), so a
    /// caller waiting in the partition is still served. Passed before the fix too: a guard, not a reproduction.
    /// </summary>
    [Fact]
    public async Task A_partitioned_model_api_limiters_waiter_outlives_a_clock_fault_in_its_partitions_settle()
    {
        var clock = new LocalSuspectsReviewTests.OnceFailingClock();
        var options = new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 2, tokensPerPeriod: 1_000, Minute) { TimeProvider = clock };
        using var limiter = new PartitionedModelApiLimiter<string>(options, TimeSpan.FromMinutes(10), "review-rate-restart-partitioned", system: Sys);
        var holder = await Within(limiter.AcquireAsync("k", 1, source: "holder").AsTask());
        var waiter = limiter.AcquireAsync("k", 1, waitTimeout: Timeout.InfiniteTimeSpan, source: "waiter").AsTask();
        await Eventually(() => limiter.GetStatistics().TryGetValue("k", out var k) && k.Waiting == 1, "the waiter is queued");

        clock.FailNextSettleRead();
        await EventFilter.Exception<LocalSuspectsReviewTests.ClockFault>().ExpectOneAsync(() =>
        {
            holder.Settle(1);
            return Task.CompletedTask;
        });
        holder.Dispose();

        (await Within(waiter)).Dispose();
    }

    /// <summary>The gatekeeper's status, asked after this thread's earlier tells (so it has handled them).</summary>
    private async Task<Status> StatusOf(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }
}
