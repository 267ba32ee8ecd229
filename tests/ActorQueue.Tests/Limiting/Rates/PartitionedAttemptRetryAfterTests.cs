using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// The partitioned model-API adapter's synchronous attempts (a partition with rates lends nothing, so they are refused)
/// say when the key's rates next give something back once the key's tokens are spent, as the unpartitioned adapter's
/// refusal does: they said nothing, so a caller could not tell a spent key from a busy one.
/// </summary>
public sealed class PartitionedAttemptRetryAfterTests : ActorQueueTestKit
{
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task An_attempt_and_a_probe_on_a_spent_key_say_when_its_refill_comes_and_an_unspent_key_says_nothing()
    {
        await using var limiter = new PartitionedModelApiLimiter<string>(
            new ModelApiLimiterOptions(8, 500, 1000, TimeSpan.FromMinutes(1)) { TimeProvider = _clock }, TimeSpan.FromMinutes(5), "spent-key", system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(resource => resource);
        using var spent = await Within(adapter.AcquireAsync("a", 1000).AsTask());
        using var some = await Within(adapter.AcquireAsync("b", 10).AsTask());
        _clock.Advance(TimeSpan.FromSeconds(15));

        using var attempt = adapter.AttemptAcquire("a", 300);
        using var probe = adapter.AttemptAcquire("a", 0);
        using var unspent = adapter.AttemptAcquire("b", 10);

        Assert.True(spent.IsAcquired && some.IsAcquired);
        Assert.False(attempt.IsAcquired);
        Assert.True(attempt.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter), "a refusal on a spent key says when to retry");
        Assert.Equal(TimeSpan.FromSeconds(45), retryAfter);
        Assert.False(probe.IsAcquired);
        Assert.True(probe.TryGetMetadata(MetadataName.RetryAfter, out var probeRetryAfter), "a refused probe on a spent key says when to retry");
        Assert.Equal(TimeSpan.FromSeconds(45), probeRetryAfter);
        Assert.False(unspent.IsAcquired); // a partition with rates lends nothing to a caller that will not wait
        Assert.False(unspent.TryGetMetadata(MetadataName.RetryAfter, out _), "a key with tokens left is not told to wait for a refill");
    }
}
