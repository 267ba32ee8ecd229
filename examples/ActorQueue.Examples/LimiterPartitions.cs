// snippet: limiter-partitions
using ActorQueue.Actors;
// end snippet

namespace ActorQueue.Examples;

public static class LimiterPartitions
{
    public static async Task RunAsync(string apiKey)
    {
        // snippet: limiter-partitions
        await using var perTenant = new PartitionedConcurrencyLimiter<string>(
            new ConcurrencyLimit(8, MaxQueued: 50) { WaitTimeout = TimeSpan.FromSeconds(10) },
            idleTimeout: TimeSpan.FromMinutes(5), name: "per-api-key");

        using var lease = await perTenant.AcquireAsync(apiKey, permits: 1, priority: 0);
        var stats = await perTenant.GetStatisticsAsync();   // every live partition: Running, Waiting, MaxRunning, MaxQueued
        // end snippet
        GC.KeepAlive(stats);
    }
}
