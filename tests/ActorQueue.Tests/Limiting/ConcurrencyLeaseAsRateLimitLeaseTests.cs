using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Tests.Limiting;

/// <summary>A <see cref="ConcurrencyLease"/> is a <see cref="RateLimitLease"/>: the adapters hand it out as it is, and either dispose gives its permits back once.</summary>
public class ConcurrencyLeaseAsRateLimitLeaseTests : ActorQueueTestKit
{
    [Fact]
    public async Task The_adapters_grant_the_limiters_own_lease_acquired_and_without_metadata()
    {
        await using var limiter = new ConcurrencyLimiter(1, system: Sys);
        await using var partitioned = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.FromMinutes(1), system: Sys);

        using var lease = await limiter.AsRateLimiter().AcquireAsync(1);
        using var keyed = await partitioned.AsPartitionedRateLimiter<string>(key => key).AcquireAsync("a", 1);

        foreach (var granted in new[] { lease, keyed })
        {
            var own = Assert.IsType<ConcurrencyLease>(granted);
            Assert.True(granted.IsAcquired);
            Assert.Empty(granted.MetadataNames);
            Assert.False(granted.TryGetMetadata(MetadataName.ReasonPhrase, out _));
            Assert.False(own.IsReleased);
        }
    }

    [Fact]
    public async Task Disposing_through_either_type_gives_the_permits_back_once()
    {
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(2), TimeSpan.FromMinutes(1), system: Sys);
        var first = await limiter.AcquireAsync("a");
        var second = await limiter.AcquireAsync("a");

        ((RateLimitLease)first).Dispose(); // RateLimitLease.Dispose() → Dispose(true)
        first.Dispose();                    // ConcurrencyLease.Dispose(): released already, nothing more
        ((RateLimitLease)first).Dispose();

        Assert.True(first.IsReleased);
        await Eventually(() => limiter.StatisticsOf("a") is { Running: 1 }, "one permit came back, once");
        var third = await limiter.AcquireAsync("a");
        var fourth = limiter.AcquireAsync("a");
        Assert.False(fourth.IsCompleted, "two permits are held (the second lease and the third): a double release would have freed a third");
        second.Dispose();
        (await Within(fourth.AsTask())).Dispose();
        third.Dispose();
    }
}
