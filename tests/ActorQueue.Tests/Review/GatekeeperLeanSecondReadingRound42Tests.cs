using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;
using static ActorQueue.Actors.GatekeeperProtocol;
using FaultyClock = ActorQueue.Tests.Review.RestartActorCallersReviewTests.FaultyClock;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Second reading of the gatekeeper's lean FIFO (b36d69b, <c>GatekeeperActor.Lean.cs</c>): the paths the first tests did
/// not reach — a facade resize run in the turn (not through the actor's dispatch), a shrink, a restart carrying callers
/// that wait lean, the queued-permit counts the RateLimiter adapter reports, a zero-permit probe, a cancellation in the
/// middle of the lean queue. Each asserts what a lean path that skipped the gate, or counted past it, breaks.
/// </summary>
public sealed class GatekeeperLeanSecondReadingRound42Tests : RestartCarryRound2ReviewBase
{
    private ConcurrencyLimiter NewLimiter(int maxRunning, TimeProvider? time = null) =>
        new(new ConcurrencyLimit(maxRunning) { TimeProvider = time ?? TimeProvider.System }, $"lean2-{Guid.NewGuid():N}", system: Sys);

    /// <summary>
    /// A shrink below a lean waiter's demand fails it (it could never be granted), as it fails a gate waiter: a facade
    /// resize may run in the turn on the caller's thread, past the actor's dispatch, so it must move the lean waiters
    /// into the gate itself. Left lean, the waiter waited for ever for 3 permits of a limit of 2.
    /// </summary>
    [Fact]
    public async Task A_shrink_below_a_lean_waiters_demand_fails_it()
    {
        using var limiter = NewLimiter(3);
        var held = await Within(limiter.AcquireAsync(permits: 3).AsTask());
        var large = limiter.AcquireAsync(permits: 3).AsTask();
        var small = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "both callers wait");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));

        limiter.Resize(maxRunning: 2);
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Within(large));
        Assert.Contains("exceed max_running (2)", error.Message);
        Assert.False(small.IsCompleted, "the one-permit caller still waits: 3 are held of 2");
        held.Dispose();
        (await Within(small)).Dispose();
        await Eventually(() => limiter is { RunningCount: 0, WaitingCount: 0, QueuedPermits: 0 }, "everything came back");
    }

    /// <summary>
    /// After a shrink (2 held of a new limit of 1) a caller that waits lean is granted only once the pool is within the
    /// new limit: the first release leaves 1 held of 1, and only the second lets it go.
    /// </summary>
    [Fact]
    public async Task After_a_shrink_a_lean_waiter_waits_until_the_pool_is_within_the_limit()
    {
        using var limiter = NewLimiter(2);
        var first = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var second = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        limiter.Resize(maxRunning: 1);
        await Eventually(() => limiter.MaxRunning == 1, "the shrink applied");
        var waiter = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the caller waits");
        Assert.Equal(1, await this.LeanWaitersOf(limiter));

        first.Dispose();
        await Eventually(() => limiter.RunningCount == 1, "the first release came back");
        Assert.Equal(1, await this.LeanWaitersOf(limiter)); // still lean: the release was handled and granted nobody
        Assert.False(waiter.IsCompleted, "1 is held of a limit of 1");
        second.Dispose();
        (await Within(waiter)).Dispose();
        await Eventually(() => limiter is { RunningCount: 0, WaitingCount: 0 }, "everything came back");
    }

    /// <summary>
    /// Lease numbers count on across a lean grant and a restart, unique within the limiter (<see cref="ConcurrencyLease.LeaseId"/>),
    /// and a restart keeps a lean caller before the actor caller queued behind it: a facade release grants the lean caller
    /// lease n (the limiter's lease count moves with it); after the restart the next lean caller gets n + 1, then the actor
    /// n + 2. A lean grant numbered apart from the gate's count (mutant) did not move the lease count.
    /// Failed before (h198's fix): the next instance's gate numbered facade leases from 1 again (only actors' leases were
    /// numbered past the carried base), so the facade lease after the restart was n again — Expected 2, Actual 1.
    /// </summary>
    [Fact]
    public async Task Lease_numbers_count_on_across_a_lean_grant_and_a_restart()
    {
        var clock = new FaultyClock();
        using var limiter = NewLimiter(1, clock);
        var actor = CreateTestProbe();
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var first = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the first facade caller waits");
        Assert.Equal(1, await this.LeanWaitersOf(limiter));
        var leasesBefore = limiter.LeasesGranted;
        held.Dispose(); // a facade release, in the turn: the lean front is granted without the gate
        var firstLease = await Within(first);
        Assert.Equal(leasesBefore + 1, limiter.LeasesGranted);

        var second = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second facade caller waits");
        Assert.Equal(1, await this.LeanWaitersOf(limiter));
        limiter.Gatekeeper.Tell(new Acquire("actor", 2) { WaitTimeout = Minute }, actor.Ref); // a deadline: the restart's wake reads the clock
        await actor.ExpectMsgAsync<Queued>();
        Assert.Equal(0, await this.LeanWaitersOf(limiter)); // moved into the gate before the actor's request

        await Restart(limiter.Gatekeeper, clock);

        // Asked of the new instance, so read after its start offered the carried callers: the restart is seen done once the
        // new instance exists, before its start, while the old one's close published nobody waiting (a read of
        // WaitingCount here failed once in a filtered run).
        Assert.Equal(2, (await StatusOf(limiter.Gatekeeper)).Waiting);
        firstLease.Dispose();
        var secondLease = await Within(second);
        await actor.ExpectNoMsgAsync(TimeSpan.Zero);
        Assert.Equal(firstLease.LeaseId + 1, secondLease.LeaseId);
        secondLease.Dispose();
        var granted = await actor.ExpectMsgAsync<Granted>();
        Assert.Equal(firstLease.LeaseId + 2, granted.LeaseId);
        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), actor.Ref);
        await Eventually(() => limiter is { RunningCount: 0, WaitingCount: 0 }, "everything came back");
    }

    /// <summary>
    /// The permits the lean waiters ask for are what the RateLimiter adapter reports queued, and the move into the gate
    /// (a status asked) changes neither that nor the waiting count.
    /// </summary>
    [Fact]
    public async Task Queued_permits_count_the_lean_waiters_and_survive_the_move_into_the_gate()
    {
        using var limiter = NewLimiter(2);
        var adapter = limiter.AsRateLimiter();
        var held = await Within(limiter.AcquireAsync(permits: 2).AsTask());
        var one = limiter.AcquireAsync(permits: 1).AsTask();
        var two = limiter.AcquireAsync(permits: 2).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "both callers wait");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));
        Assert.Equal(3, limiter.QueuedPermits);
        Assert.Equal(3, adapter.GetStatistics()!.CurrentQueuedCount);

        var status = await StatusOf(limiter.Gatekeeper);
        Assert.Equal((2, 2), (status.Running, status.Waiting));
        Assert.Equal(0, await this.LeanWaitersOf(limiter));
        Assert.Equal((2, 3L), (limiter.WaitingCount, limiter.QueuedPermits));

        held.Dispose();
        (await Within(one)).Dispose();
        (await Within(two)).Dispose();
        await Eventually(() => limiter is { RunningCount: 0, WaitingCount: 0, QueuedPermits: 0 }, "everything came back");
    }

    /// <summary>
    /// A zero-permit probe through the RateLimiter adapter waits lean for a permit it hands straight back, and passes
    /// nobody: the caller behind it is granted that permit.
    /// </summary>
    [Fact]
    public async Task A_zero_permit_probe_waits_lean_and_hands_its_permit_on()
    {
        using var limiter = NewLimiter(1);
        var adapter = limiter.AsRateLimiter();
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var probe = adapter.AcquireAsync(0).AsTask();
        var behind = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "the probe and a caller wait");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));

        held.Dispose();
        using (var probed = await Within(probe))
        {
            Assert.True(probed.IsAcquired);
        }

        var lease = await Within(behind);
        Assert.Equal((1, 0), (limiter.RunningCount, limiter.WaitingCount));
        lease.Dispose();
        await Eventually(() => limiter is { RunningCount: 0, WaitingCount: 0 }, "everything came back");
    }

    /// <summary>
    /// A lean waiter cancelled in the middle of the queue leaves it, uncounted, and takes no permit: the release goes
    /// to the caller before it, the next to the caller after it.
    /// </summary>
    [Fact]
    public async Task A_lean_waiter_cancelled_in_the_middle_leaves_without_a_permit()
    {
        using var limiter = NewLimiter(1);
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        using var cancel = new CancellationTokenSource();
        var first = limiter.AcquireAsync(permits: 1).AsTask();
        var middle = limiter.AcquireAsync(permits: 1, cancellationToken: cancel.Token).AsTask();
        var last = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 3, "three callers wait");
        Assert.Equal(3, await this.LeanWaitersOf(limiter));

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(middle));
        await Eventually(() => limiter.WaitingCount == 2, "the cancelled caller left the count");
        Assert.Equal((2, 2L), (await this.LeanWaitersOf(limiter), limiter.QueuedPermits));

        held.Dispose();
        var firstLease = await Within(first);
        Assert.False(last.IsCompleted, "the first caller holds the one permit");
        firstLease.Dispose();
        (await Within(last)).Dispose();
        await Eventually(() => limiter is { RunningCount: 0, WaitingCount: 0 }, "everything came back");
    }
}
