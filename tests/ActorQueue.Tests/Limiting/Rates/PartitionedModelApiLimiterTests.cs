using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The model-API limit per key: partitions of their own, kept while their rates are not at rest, settle per partition, the adapter.</summary>
public sealed class PartitionedModelApiLimiterTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(1);

    private readonly FakeTimeProvider _clock = new();

    private PartitionedModelApiLimiter<string> Limiter(int requestsPerMinute = 500, int? maxQueued = null) =>
        new(new ModelApiLimiterOptions(2, requestsPerMinute, 1000, Minute) { TimeProvider = _clock, MaxQueued = maxQueued }, IdleTimeout, "keys", system: Sys);

    [Fact]
    public async Task Each_key_has_its_own_requests_and_tokens()
    {
        await using var limiter = Limiter(requestsPerMinute: 1);
        using var a = await Within(limiter.AcquireAsync("a", 1000).AsTask());
        using var b = await Within(limiter.AcquireAsync("b", 1000).AsTask());
        var secondA = limiter.AcquireAsync("a", 1).AsTask();

        await Eventually(() => limiter.GetStatistics().TryGetValue("a", out var s) && s.Waiting == 1, "a's second call waits for a's next minute");
        Assert.Equal(new PartitionStatistics(1, 0, 2, null), limiter.GetStatistics()["b"]);
        Assert.False(secondA.IsCompleted);
    }

    [Fact]
    public async Task A_partition_whose_rates_are_not_at_rest_outlives_its_idle_timeout_so_its_key_gets_no_fresh_minute()
    {
        await using var limiter = Limiter(requestsPerMinute: 1);
        (await Within(limiter.AcquireAsync("a", 10).AsTask())).Dispose();
        await Eventually(() => limiter.GetStatistics().TryGetValue("a", out var s) && s.Running == 0, "the call ended");

        for (var i = 0; i < 10; i++)
        {
            _clock.Advance(IdleTimeout); // many sweeps within the minute: the partition holds nothing, but its bucket is spent
        }

        Assert.Equal(1, limiter.PartitionCount);
        Assert.Equal(1, limiter.PartitionsMade);
        var again = limiter.AcquireAsync("a", 10).AsTask();
        await Eventually(() => limiter.GetStatistics()["a"].Waiting == 1, "the key's minute is still spent");

        _clock.Advance(Minute - (IdleTimeout * 10));
        (await Within(again)).Dispose();

        // At rest only at two minutes (the second call spent the second minute's request); then it is stopped.
        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 0; }, TimeSpan.FromSeconds(10), "the partition at rest was stopped");
        Assert.True(_clock.GetUtcNow() - _clock.Start >= 2 * Minute, $"stopped at {_clock.GetUtcNow() - _clock.Start}");
    }

    [Fact]
    public async Task Settling_a_partitions_lease_gives_its_tokens_back_to_that_partition()
    {
        await using var limiter = Limiter();
        using var first = await Within(limiter.AcquireAsync("a", 900).AsTask());
        var second = limiter.AcquireAsync("a", 600).AsTask();
        await Eventually(() => limiter.GetStatistics()["a"].Waiting == 1, "it waits for tokens");

        first.Settle(100);

        (await Within(second)).Dispose();
    }

    [Fact]
    public async Task The_partitioned_adapter_rejects_with_the_retry_after_of_the_keys_rate()
    {
        await using var limiter = Limiter(requestsPerMinute: 1, maxQueued: 0);
        var rateLimiter = limiter.AsPartitionedRateLimiter<string>(resource => resource);
        using var a = await Within(rateLimiter.AcquireAsync("a", 10).AsTask());
        _clock.Advance(TimeSpan.FromSeconds(12));

        using var rejected = await Within(rateLimiter.AcquireAsync("a", 10).AsTask());
        using var b = await Within(rateLimiter.AcquireAsync("b", 10).AsTask());

        Assert.True(a.IsAcquired);
        Assert.True(b.IsAcquired);
        Assert.False(rejected.IsAcquired);
        Assert.True(rejected.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(48), retryAfter);
        Assert.False(rateLimiter.AttemptAcquire("a", 1).IsAcquired);
    }
}
