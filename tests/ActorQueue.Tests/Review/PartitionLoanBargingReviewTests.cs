using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review: a partition's loan against its FIFO (PartitionedConcurrencyLimiter.AcquireAsync: "FIFO within one priority";
/// README "no barging"). A caller whose claim failed is on its way to the partition; a lease released meanwhile must not
/// go into the loan where a later caller claims it past the earlier one.
/// </summary>
public sealed class PartitionLoanBargingReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task A_later_partition_caller_never_claims_the_permit_an_earlier_waiter_is_on_its_way_for()
    {
        await using var limiter = new PartitionedConcurrencyLimiter<string>(
            new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, "review-barging", system: Sys);
        for (var i = 0; i < 50; i++)
        {
            var key = $"k{i}";
            (await Within(limiter.AcquireAsync(key).AsTask())).Dispose();
            var partition = ((IPartitionedLimiter<string>)limiter).Partitions.PartitionOf(key)!;
            await Eventually(() => partition.Loan.Covers(1), $"{key}'s partition lends its permit");

            var holder = await limiter.AcquireAsync(key, source: "holder");
            var earlier = limiter.AcquireAsync(key, source: "earlier").AsTask();
            holder.Dispose();
            var later = limiter.AcquireAsync(key, source: "later").AsTask();

            Assert.False(later.IsCompleted, $"iteration {i}: the later caller got the permit while the earlier one had not (barging)");
            var first = await Within(earlier);
            Assert.False(later.IsCompleted, $"iteration {i}: the later caller holds a permit beside the earlier one (limit 1)");
            first.Dispose();
            (await Within(later)).Dispose();
        }
    }
}
