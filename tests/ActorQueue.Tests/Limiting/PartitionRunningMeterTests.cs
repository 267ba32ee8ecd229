using ActorQueue.Actors;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Limiting;

/// <summary>A partitioned limiter's running instrument follows the leases claimed from and returned into its partitions' loans at once, as the plain limiter's does.</summary>
public sealed class PartitionRunningMeterTests : ActorQueueTestKit
{
    /// <summary>
    /// Permits claimed from a partition's loan and returned into it were metered only at the partition's next turn (its
    /// next request, or the idle sweep after the idle timeout), so the running counter stayed up after every lease was
    /// released (failed before: it stayed at 1 for the test's 30 s); the plain limiter meters them on the claimer's and
    /// the returner's thread, and so do partitions now.
    /// </summary>
    [Fact]
    public async Task A_partitioned_limiters_running_counter_is_back_to_0_once_its_leases_are_released()
    {
        var name = $"review-partition-running-{Guid.NewGuid():N}";
        using var metrics = new LimiterMetrics(name);
        using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(3), TimeSpan.FromHours(1), name, system: Sys);
        var first = await Within(limiter.AcquireAsync("k", permits: 2).AsTask()); // makes the partition (by message)

        // The first call's grant completes in the partition's first turn, before that turn lends its free permit and is
        // given back, and before the actor counts the call off (claims are refused until then): wait for all of it.
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
        await Eventually(() => !partitions.IsRouting && partitions.PartitionOf("k") is { IsTaken: false } partition && partition.Loan.Covers(1),
                         "the partition lends its free permit, its turn is free and nothing is on its way to the actor");
        var second = await Within(limiter.AcquireAsync("k").AsTask());            // claimed from its loan
        first.Dispose();
        second.Dispose();
        Assert.Equal(0, (await limiter.GetStatisticsAsync())["k"].Running);

        await Eventually(() => metrics.Value(ActorQueueTelemetry.LimiterRunning) == 0,
            $"the running counter is back to 0, as the statistics are (it is {metrics.Value(ActorQueueTelemetry.LimiterRunning)})");
    }
}
