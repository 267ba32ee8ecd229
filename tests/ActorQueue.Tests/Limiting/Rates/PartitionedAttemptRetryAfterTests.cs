using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// The partitioned model-API adapter's synchronous attempts, refused by a key's spent tokens, say when the key's rates
/// would allow them, as the unpartitioned adapter's refusal does: they said nothing, so a caller could not tell a spent
/// key from a busy one. (An attempt the key's slots and tokens allow is granted: PartitionAttemptReviewTests, which
/// also checks that a refusal by a slot says nothing of a refill.)
/// </summary>
public sealed class PartitionedAttemptRetryAfterTests : ActorQueueTestKit
{
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task An_attempt_and_a_probe_on_a_spent_key_say_when_its_refill_comes_and_an_unspent_key_is_granted()
    {
        await using var limiter = new PartitionedModelApiLimiter<string>(
            new ModelApiLimiterOptions(8, 500, 1000, TimeSpan.FromMinutes(1)) { TimeProvider = _clock }, TimeSpan.FromMinutes(5), "spent-key", system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(resource => resource);
        using var spent = await Within(adapter.AcquireAsync("a", 1000).AsTask());
        using var some = await Within(adapter.AcquireAsync("b", 10).AsTask());
        _clock.Advance(TimeSpan.FromSeconds(15));

        // An attempt is refused, saying nothing of a refill, while a key's turn is taken or a request is on its way to the
        // actor: the calls above were granted before their turns ended and the actor counted them off, and an attempt made
        // that instant was refused as busy (seen once under load). Wait until both are over: what is asserted is the rates.
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
        await Poll.UntilAsync(() => !partitions.IsRouting && new[] { "a", "b" }.All(key => partitions.PartitionOf(key) is { IsTaken: false }),
                              TimeSpan.FromSeconds(30), "both keys' turns are free and nothing is on its way to the actor");

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
        Assert.True(unspent.IsAcquired, "a key with tokens and slots left grants a caller that will not wait");
    }
}
