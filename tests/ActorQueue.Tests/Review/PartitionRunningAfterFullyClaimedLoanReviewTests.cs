using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review: a partition's running count (ARCHITECTURE, PartitionLoan: the reclaim "gives the unclaimed permits back
/// through the gate if it has one … publishing the exact count"; <c>PartitionStatistics.Running</c>: permits held now).
/// A partition that still has its gate (someone waited since the last sweep) lends its free permits once the queue is
/// empty; when callers claimed all of them, the next reclaim gets nothing back. Failed on 677d34f, before the fix:
/// <c>Partition.Reclaim</c> publishes only through <c>_gate.Release</c>, i.e. only when something came back, so the
/// permits claimed from that loan drop out of the count (the published count is the one from before the loan, and the
/// reclaimed loan no longer adds its claims); a sweep then turns the partition back into a bare count without
/// publishing either, and <c>Running</c> stays short until the partition's next change.
/// </summary>
public sealed class PartitionRunningAfterFullyClaimedLoanReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task A_permit_claimed_from_a_gated_partitions_loan_stays_counted_after_the_next_reclaim()
    {
        await using var limiter = new PartitionedConcurrencyLimiter<string>(
            new ConcurrencyLimit(2) { TimeProvider = _clock }, IdleTimeout, "review-partition-running", system: Sys);
        const string key = "k";
        var first = await Within(limiter.AcquireAsync(key, source: "first").AsTask());
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
        var partition = partitions.PartitionOf(key)!;
        // The first call went by the actor, which counts it off only after the partition's turn granted it and lent: a
        // claim before that is refused (nobody passes a request on its way), so wait for both.
        await Eventually(() => !partitions.IsRouting && partition.Loan.Covers(1), "the partition lends its free permit and the actor counted the first call off");
        var second = limiter.AcquireAsync(key, source: "second");
        Assert.True(second.IsCompletedSuccessfully, "the lent permit is claimed without a message");

        // A third caller must wait, with a priority (a caller of priority 0 would wait in the partition's lean FIFO): the
        // partition gets its gate, and keeps it until a sweep finds nobody waiting.
        var third = limiter.AcquireAsync(key, priority: 1, source: "third").AsTask();
        await Eventually(() => limiter.StatisticsOf(key)?.Waiting == 1, "the third caller waits");
        Assert.True(partition.HasGate);
        first.Dispose();
        var held = await Within(third);
        (await second).Dispose();

        // Nobody waits any more: the gated partition lends its one free permit, and a caller claims it.
        await Eventually(() => partition.Loan.Covers(1), "the gated partition lends its free permit");
        var claimed = limiter.AcquireAsync(key, source: "claimed");
        Assert.True(claimed.IsCompletedSuccessfully, "the lent permit is claimed without a message");
        Assert.Equal(2, limiter.StatisticsOf(key)!.Running);

        // The sweep reclaims the loan (all of it claimed: nothing comes back) and drops the empty gate.
        _clock.Advance(IdleTimeout / 2);
        await Eventually(() => !partition.HasGate, "the sweep drops the partition's empty gate");

        var running = limiter.StatisticsOf(key)!.Running;
        Assert.True(running == 2, $"partition running {running} while two leases of it are held (one granted, one claimed from its loan)");
        held.Dispose();
        (await claimed).Dispose();
    }
}
