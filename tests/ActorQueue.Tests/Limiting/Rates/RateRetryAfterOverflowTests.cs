using ActorQueue.Coordination;
using ActorQueue.Tests.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// A retry-after sums the costs of the waiters queued ahead (PermitPolicies.FitsAt). Each cost is within the rate's
/// limit, but two near <see cref="long.MaxValue"/> wrapped below zero: the sum "fit now", and a caller that can not be
/// served before the waiter ahead was told to retry at once.
/// </summary>
public sealed class RateRetryAfterOverflowTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly RecordingListener _listener = new();
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public void Retry_after_behind_a_waiter_with_a_cost_near_the_largest_long_is_no_sooner_than_that_waiter_is_served()
    {
        var tokens = new TokenBucketPolicy(long.MaxValue, long.MaxValue / 4, Minute, PermitMeasure.Tokens);
        var gate = new PermitGate(_listener, [new PermitPool(8), tokens], time: _clock);
        gate.Offer(new TestWaiter("big", tokens: long.MaxValue));
        var queued = new TestWaiter("queued", tokens: long.MaxValue); // the bucket is full again after 5 refills
        gate.Offer(queued);

        gate.Offer(new TestWaiter("would-wait", timeout: TimeSpan.Zero, tokens: long.MaxValue));

        Assert.False(queued.IsGranted);
        var rejection = _listener.Rejections.Single().Rejection;
        Assert.Equal(PermitRejectionKind.WouldWait, rejection.Kind);
        Assert.True(rejection.RetryAfter is null || rejection.RetryAfter >= 5 * Minute, $"retry after {rejection.RetryAfter}");
    }
}
