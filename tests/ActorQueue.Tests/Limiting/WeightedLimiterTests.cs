using ActorQueue.Actors;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting;

/// <summary>Weighted permits, priorities and the full-queue modes, from async callers and from actors.</summary>
public class WeightedLimiterTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_weighted_head_is_not_overtaken_by_a_smaller_request_that_fits()
    {
        using var limiter = new ConcurrencyLimiter(3, system: Sys);
        var two = await limiter.AcquireAsync(permits: 2);
        var big = limiter.AcquireAsync(permits: 3).AsTask();
        var small = limiter.AcquireAsync(permits: 1).AsTask();

        Assert.Equal(new Status(2, 2, 3, null, null), await this.StatusOf(limiter));
        Assert.False(small.IsCompleted, "one permit is free, but the head asks three and came first");

        two.Dispose();
        var bigLease = await Within(big);
        Assert.Equal(3, bigLease.Permits);
        Assert.Equal(new Status(3, 1, 3, null, null), await this.StatusOf(limiter));
        bigLease.Dispose();
        (await Within(small)).Dispose();
        await Eventually(() => limiter.RunningCount == 0, "every permit came back");
    }

    [Fact]
    public async Task A_lease_gives_back_all_of_its_permits_at_once()
    {
        using var limiter = new ConcurrencyLimiter(4, system: Sys);
        var lease = await limiter.AcquireAsync(permits: 3);
        Assert.Equal(3, limiter.RunningCount);
        Assert.Equal(1, limiter.AvailableCount);

        lease.Dispose();
        lease.Dispose();

        await Eventually(() => limiter.RunningCount == 0, "three permits came back");
        Assert.Equal(0, (await this.StatusOf(limiter)).Running);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    [InlineData(4)]
    public void A_permit_count_out_of_range_is_rejected_at_once_naming_permits_and_the_value(int permits)
    {
        using var limiter = new ConcurrencyLimiter(3, name: "weights", system: Sys);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = limiter.AcquireAsync(permits); });

        Assert.Equal("permits", error.ParamName);
        Assert.Equal(permits, error.ActualValue);
        Assert.Contains(permits.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
        Assert.Equal(0, limiter.WaitingCount);
    }

    [Fact]
    public async Task An_actor_asking_more_permits_than_there_are_is_rejected_with_its_kind()
    {
        using var limiter = new ConcurrencyLimiter(3, name: "weights", system: Sys);
        var probe = CreateTestProbe();

        limiter.Gatekeeper.Tell(new Acquire("probe", 1) { Permits = 4 }, probe.Ref);
        limiter.Gatekeeper.Tell(new Acquire("probe", 2) { Permits = 0 }, probe.Ref);

        var tooMany = await probe.ExpectMsgAsync<Rejected>();
        Assert.Equal((1L, RejectionReason.ExceedsLimit), (tooMany.RequestId, tooMany.Kind));
        Assert.Contains("permits (4) exceed max_running (3) of weights", tooMany.Reason, StringComparison.Ordinal);
        var none = await probe.ExpectMsgAsync<Rejected>();
        Assert.Equal((2L, RejectionReason.InvalidRequest), (none.RequestId, none.Kind));
        Assert.Equal(new Status(0, 0, 3, null, "weights"), await this.StatusOf(limiter));
    }

    [Fact]
    public async Task An_actor_is_granted_its_weight_and_releases_it_all()
    {
        using var limiter = new ConcurrencyLimiter(3, system: Sys);
        var probe = CreateTestProbe();

        limiter.Gatekeeper.Tell(new Acquire("probe", 1) { Permits = 2 }, probe.Ref);
        var granted = await probe.ExpectMsgAsync<Granted>();
        Assert.Equal(2, granted.Permits);
        Assert.Equal(2, (await this.StatusOf(limiter)).Running);

        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), probe.Ref);
        Assert.Equal(0, (await this.StatusOf(limiter)).Running);
    }

    [Fact]
    public async Task Higher_priority_is_served_first_and_fifo_holds_within_a_priority()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var holder = await limiter.AcquireAsync();
        var order = new List<string>();
        var waits = new List<Task>();
        foreach (var (name, priority) in new[] { ("a0", 0), ("b1", 1), ("c1", 1), ("d0", 0), ("e5", 5) })
        {
            var acquire = limiter.AcquireAsync(permits: 1, priority: priority, source: name).AsTask();
            waits.Add(RecordAndRelease(acquire));
        }

        Assert.Equal(5, (await this.StatusOf(limiter)).Waiting);
        holder.Dispose();
        await Within(Task.WhenAll(waits));

        Assert.Equal(["e5", "b1", "c1", "a0", "d0"], order);

        async Task RecordAndRelease(Task<ConcurrencyLease> acquire)
        {
            var lease = await acquire;
            lock (order)
            {
                order.Add(lease.Source);
            }

            lease.Dispose();
        }
    }

    [Fact]
    public async Task A_full_queue_in_evict_mode_fails_the_newest_waiter_of_the_lowest_priority()
    {
        using var limiter = new ConcurrencyLimiter(1, maxQueued: 2, name: "evicting", system: Sys, whenFull: QueueFullMode.EvictLowestPriorityNewest);
        var holder = await limiter.AcquireAsync();
        var older = limiter.AcquireAsync(permits: 1, priority: 0, source: "older").AsTask();
        var newer = limiter.AcquireAsync(permits: 1, priority: 0, source: "newer").AsTask();

        var urgent = limiter.AcquireAsync(permits: 1, priority: 5, source: "urgent").AsTask();

        var evicted = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(newer));
        Assert.Contains("evicting", evicted.Message, StringComparison.Ordinal);
        Assert.False(older.IsCompleted);
        Assert.Equal(2, (await this.StatusOf(limiter)).Waiting);

        // Nobody queued ranks below an equal newcomer: it is turned away, not the older waiter.
        var equal = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(limiter.AcquireAsync(permits: 1, priority: 0, source: "equal").AsTask()));
        Assert.Equal("Concurrency queue depth (3) exceeds max_queued (2) for evicting", equal.Message);

        holder.Dispose();
        (await Within(urgent)).Dispose();
        (await Within(older)).Dispose();
    }

    [Fact]
    public async Task An_evicted_actor_waiter_is_told_evicted_and_leaves_nothing_behind()
    {
        using var limiter = new ConcurrencyLimiter(1, maxQueued: 1, system: Sys, whenFull: QueueFullMode.EvictLowestPriorityNewest);
        var holder = await limiter.AcquireAsync();
        var low = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("low", 1), low.Ref);
        await low.ExpectMsgAsync<Queued>();

        var high = limiter.AcquireAsync(permits: 1, priority: 1).AsTask();

        var rejected = await low.ExpectMsgAsync<Rejected>();
        Assert.Equal(RejectionReason.Evicted, rejected.Kind);
        holder.Dispose();
        (await Within(high)).Dispose();

        // The request id is free again: its waiter left the actor's books.
        limiter.Gatekeeper.Tell(new Acquire("low", 1), low.Ref);
        await low.ExpectMsgAsync<Granted>();
    }

    [Fact]
    public async Task Max_queued_counts_waiters_not_permits()
    {
        using var limiter = new ConcurrencyLimiter(3, maxQueued: 2, system: Sys);
        var all = await limiter.AcquireAsync(permits: 3);
        var heavy = limiter.AcquireAsync(permits: 3).AsTask();
        var light = limiter.AcquireAsync(permits: 1).AsTask();

        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(limiter.AcquireAsync(permits: 1).AsTask()));

        Assert.Equal(2, (await this.StatusOf(limiter)).Waiting);
        all.Dispose();
        (await Within(heavy)).Dispose();
        (await Within(light)).Dispose();
    }
}
