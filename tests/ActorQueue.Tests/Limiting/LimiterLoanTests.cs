using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A free limiter's acquire and release without messages (the gatekeeper's loan), through the facade: counts exact at
/// once, nobody passes a waiter, a release while someone waits reaches the gatekeeper, nothing is lost in a reclaim.
/// </summary>
public class LimiterLoanTests : ActorQueueTestKit
{
    private ConcurrencyLimiter NewLimiter(int maxRunning, int? maxQueued = null) => new(maxRunning, maxQueued, system: Sys);

    /// <summary>A limiter whose gatekeeper has lent its free permits (it does at the end of its first message).</summary>
    private async Task<ConcurrencyLimiter> LendingLimiterAsync(int maxRunning)
    {
        var limiter = NewLimiter(maxRunning);
        await this.StatusOf(limiter);
        var adapter = limiter.AsRateLimiter();
        await Eventually(() => adapter.AttemptAcquire(0).IsAcquired, "the gatekeeper lends");
        return limiter;
    }

    [Fact]
    public async Task A_free_limiter_grants_and_takes_back_without_its_gatekeeper_and_counts_at_once()
    {
        var limiter = await LendingLimiterAsync(2);

        var claimFirst = limiter.AcquireAsync("a");
        var claimSecond = limiter.AcquireAsync(permits: 1, source: "b");
        Assert.True(claimFirst.IsCompletedSuccessfully, "a free permit is claimed synchronously");
        Assert.True(claimSecond.IsCompletedSuccessfully);
        var (first, second) = (await claimFirst, await claimSecond);
        Assert.Equal(2, limiter.RunningCount);
        Assert.True(first.LeaseId < 0 && second.LeaseId < 0 && first.LeaseId != second.LeaseId, "claimed leases have ids of their own");

        first.Dispose();
        Assert.Equal(1, limiter.RunningCount);
        second.Dispose();
        Assert.Equal(0, limiter.RunningCount);

        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
    }

    [Fact]
    public async Task A_release_while_someone_waits_goes_to_the_waiter_and_no_newcomer_takes_it()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var waiter = limiter.AcquireAsync("waiter").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the waiter queues");

        holder.Dispose();
        var newcomer = limiter.AcquireAsync("newcomer").AsTask();
        var granted = await Within(waiter);
        Assert.False(newcomer.IsCompleted, "the newcomer does not pass the waiter");
        Assert.Equal(1, limiter.RunningCount);

        granted.Dispose();
        (await Within(newcomer)).Dispose();
        await Eventually(() => limiter.RunningCount == 0, "every permit is back");
    }

    [Fact]
    public async Task A_caller_that_could_not_claim_is_not_passed_by_a_later_caller_before_the_gatekeeper_queues_it()
    {
        var limiter = await LendingLimiterAsync(2);
        var one = await limiter.AcquireAsync("one");

        var big = limiter.AcquireAsync(permits: 2, source: "big").AsTask();
        var small = limiter.AcquireAsync("small").AsTask();
        Assert.False(small.IsCompleted, "one permit is lent, but a caller before it goes to the gatekeeper for two");

        var status = await this.StatusOf(limiter);
        Assert.Equal((1, 2), (status.Running, status.Waiting));
        one.Dispose();
        (await Within(big)).Dispose();
        (await Within(small)).Dispose();
    }

    [Fact]
    public async Task Permits_returned_into_the_loan_are_all_back_in_the_pool_when_the_gatekeeper_next_looks()
    {
        var limiter = NewLimiter(3);
        await this.StatusOf(limiter);
        for (var i = 0; i < 50; i++)
        {
            var leases = new[] { await Within(limiter.AcquireAsync("a").AsTask()), await Within(limiter.AcquireAsync(permits: 2, source: "b").AsTask()) };
            foreach (var lease in leases)
            {
                lease.Dispose();
            }
        }

        var status = await this.StatusOf(limiter);
        Assert.Equal(0, status.Running);

        // The whole limit at once, by message from an actor: the pool must hold every permit.
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(new GatekeeperProtocol.Acquire("actor", 1) { Permits = 3 }, probe.Ref);
        probe.ExpectMsg<GatekeeperProtocol.Granted>();
        Assert.Equal(3, limiter.RunningCount);
    }

    [Fact]
    public async Task No_claim_is_served_on_the_old_limit_once_a_shrink_returned()
    {
        var limiter = NewLimiter(4);
        await this.StatusOf(limiter);
        limiter.Resize(maxRunning: 1);

        var first = limiter.AcquireAsync("first").AsTask();
        var second = limiter.AcquireAsync("second").AsTask();
        var held = await Within(first);
        await Eventually(() => limiter.WaitingCount == 1, "the second waits for the new limit");
        Assert.False(second.IsCompleted);
        Assert.Equal(1, limiter.RunningCount);

        held.Dispose();
        (await Within(second)).Dispose();
    }

    [Fact]
    public async Task A_lease_claimed_before_dispose_releases_harmlessly_and_nothing_is_claimed_after()
    {
        var limiter = NewLimiter(2);
        await this.StatusOf(limiter);
        var lease = await limiter.AcquireAsync("before");
        await limiter.DisposeAsync();

        lease.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await limiter.AcquireAsync("after"));
    }

    [Fact]
    public async Task Racing_callers_with_weights_cancels_and_timeouts_never_hold_more_than_the_limit_and_leave_nothing_behind()
    {
        const int limit = 4;
        var limiter = NewLimiter(limit);
        var inside = 0;
        var most = 0;
        var granted = 0;

        var callers = Enumerable.Range(0, 16).Select(caller => Task.Run(async () =>
        {
            for (var i = 0; i < 300; i++)
            {
                var permits = 1 + ((caller + i) % 3);
                using var cancel = (caller + i) % 5 == 0 ? new CancellationTokenSource(TimeSpan.FromTicks(1 + i % 50)) : null;
                ConcurrencyLease lease;
                try
                {
                    lease = (caller + i) % 7 == 0
                        ? await limiter.AcquireAsync(permits, priority: i % 2, waitTimeout: TimeSpan.FromMilliseconds(1), source: "timed")
                        : await limiter.AcquireAsync(permits, source: "caller", cancellationToken: cancel?.Token ?? default);
                }
                catch (Exception error) when (error is OperationCanceledException or ConcurrencyWaitTimeoutException)
                {
                    continue;
                }

                Interlocked.Increment(ref granted);
                Poll.InterlockedMax(ref most, Interlocked.Add(ref inside, permits));
                if (i % 2 == 0)
                {
                    await Task.Yield();
                }

                Interlocked.Add(ref inside, -permits);
                lease.Dispose();
            }
        })).ToArray();
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(120));

        Assert.True(granted > 0);
        Assert.InRange(most, 1, limit);
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "everything given back");
        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
    }

    [Fact]
    public async Task A_release_pushed_to_a_busy_turn_is_lent_again_once_its_owner_ran_it_and_rests()
    {
        // The partitions' defect (PartitionLoanTests), here in the gatekeeper's turn: a lease released while the turn was
        // taken pushed its release and suspended the loan; the owner took the release with the rest of its turn, not
        // after a failed give-back, so no reclaim answered the suspension, its rest lent nothing, and the limiter, free
        // and idle, refused every synchronous claim (the adapter's AttemptAcquire) until some later call. Now its rest
        // asks the actor for one more turn (LendAgain), whose take answers the suspend. The test is the owner.
        var limiter = await LendingLimiterAsync(1);
        var adapter = limiter.AsRateLimiter();
        var lease = await limiter.AcquireAsync("claimed");
        // The turn that lent may not have been given back yet (it lends just before): take it once it is free.
        await Eventually(() => limiter.Turn.TryTake(), "the test holds the gatekeeper's turn, as its owner would");

        lease.Dispose(); // the loan is shut while the turn is taken: the release is pushed
        Assert.True(limiter.Turn.HasPushed, "the release waits for the turn's owner");
        limiter.Turn.GiveBack(); // its rest asks the actor for LendAgain, which takes the turn again at once: not asserted

        Assert.Equal(0, limiter.RunningCount);
        await Eventually(() => limiter.Loan.Unclaimed == 1, "the limiter, free and idle, lends its permit again");
        using var attempt = adapter.AttemptAcquire(1);
        Assert.True(attempt.IsAcquired, "a synchronous claim is served");
    }
    [Fact]
    public async Task A_pushers_suspend_landing_after_the_lend_again_turn_lent_is_answered_too()
    {
        // Review of 015da4c: a pusher suspends (Pushing), pushes, and only then suspends an open loan (Pushed). A pusher
        // preempted between its push and its Pushed: the owner runs its release, its rest finds the loan suspended and
        // asks for LendAgain, whose take reclaims and whose rest lends; then the pusher's Pushed suspends that open loan.
        // Its op ran long ago, nothing is pushed, nobody waits, no LendAgain is on its way: the limiter, free and idle,
        // refuses every synchronous claim until some later call. Driven by hand: the test is the owner, and calls the
        // pusher's Pushed late.
        var limiter = await LendingLimiterAsync(1);
        var adapter = limiter.AsRateLimiter();
        var lease = await limiter.AcquireAsync("claimed");
        // The turn that lent may not have been given back yet (it lends just before): take it once it is free.
        await Eventually(() => limiter.Turn.TryTake(), "the test holds the gatekeeper's turn, as its owner would");
        lease.Dispose(); // pushed: the pusher's Pushing suspended the loan, its push landed ...
        limiter.Turn.GiveBack(); // ... the owner ran the release; its rest asked for LendAgain
        await Eventually(() => limiter.Loan.Unclaimed == 1, "the LendAgain turn lent the free permit");

        typeof(TurnInbox).GetMethod("Pushed", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.Invoke(limiter.Turn, null); // ... and only now the pusher's Pushed runs

        // Its suspend of the open loan asks the actor for LendAgain, which takes the turn at once: the turn's state right
        // now is not asserted, only that it ends free with the permit lent again.
        Assert.Equal(0, limiter.RunningCount);
        await Eventually(() => !limiter.Turn.IsTaken && limiter.Loan.Unclaimed == 1, "the limiter, free and idle, lends its permit again");
        using var attempt = adapter.AttemptAcquire(1);
        Assert.True(attempt.IsAcquired, "a synchronous claim is served");
    }
    [Fact]
    public async Task A_release_pushed_to_a_busy_turn_is_lent_again_every_time_not_only_the_first()
    {
        // Review of 015da4c: each rest that finds the loan suspended asks for one LendAgain; the flag that keeps it to one
        // at a time must be reset by each, or only the instance's first pushed release is ever lent again.
        var limiter = await LendingLimiterAsync(1);
        var adapter = limiter.AsRateLimiter();
        for (var round = 0; round < 3; round++)
        {
            var lease = await limiter.AcquireAsync($"claimed {round}");
            // The last LendAgain turn may lend just before its give-back: the test takes the turn once it is free.
            await Eventually(() => limiter.Turn.TryTake(), "the test holds the gatekeeper's turn, as its owner would");
            lease.Dispose(); // the loan is shut while the turn is taken: the release is pushed
            Assert.True(limiter.Turn.HasPushed, "the release waits for the turn's owner");
            limiter.Turn.GiveBack();
            await Eventually(() => limiter.Loan.Unclaimed == 1, $"round {round}: the limiter, free and idle, lends its permit again");
        }

        using var attempt = adapter.AttemptAcquire(1);
        Assert.True(attempt.IsAcquired, "a synchronous claim is served");
    }
}
