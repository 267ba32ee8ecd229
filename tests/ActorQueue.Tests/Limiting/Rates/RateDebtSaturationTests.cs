using ActorQueue.Actors;
using ActorQueue.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// A debt as large as a <see langword="long"/> holds stays a debt. The API lets a call settle any count of tokens at or
/// above zero (and a member announces debts on the wire), and a rate's sums wrapped: a second settle of
/// <see cref="long.MaxValue"/> tokens turned the bucket's tokens positive (full again, the debt forgotten), one refill
/// after a huge debt filled the bucket, the time it fits again went into the past, and a sliding window's count went
/// below zero (open). Now a bucket owes at most what keeps its count in use within a <see langword="long"/>
/// (<c>long.MaxValue</c> in use), and a window counts at most <c>long.MaxValue</c>.
/// </summary>
public sealed class RateDebtSaturationTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private static TimeSpan At(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void A_second_huge_settle_leaves_a_bucket_owing_the_most_it_can_not_full()
    {
        var bucket = new TokenBucketPolicy(capacity: 1000, refill: 1000, Minute, PermitMeasure.Tokens);
        bucket.Take(10, At(0));
        bucket.Take(10, At(0));

        bucket.Settle(charged: 10, actual: long.MaxValue, At(1));
        bucket.Settle(charged: 10, actual: long.MaxValue, At(1));

        Assert.False(bucket.CanTake(1, At(2)));
        Assert.Equal(0, bucket.Available(At(2)));
        Assert.Equal(long.MaxValue - 1000, bucket.Debt);
        Assert.Equal(long.MaxValue, bucket.InUse);
    }

    [Fact]
    public void After_a_huge_debt_a_refill_pays_part_of_it_and_the_cost_fits_at_no_time_in_the_past()
    {
        var bucket = new TokenBucketPolicy(capacity: 1000, refill: 1000, Minute, PermitMeasure.Tokens);
        bucket.Take(10, At(0));
        bucket.Settle(charged: 10, actual: long.MaxValue, At(1));
        var owed = bucket.Debt;

        Assert.Equal(TimeSpan.MaxValue, bucket.NextAvailableAt(1, At(2))); // ~9.2e15 refills away: beyond any TimeSpan
        Assert.Equal(0, bucket.Available(At(61)));
        Assert.Equal(owed - 1000, bucket.Debt);
        Assert.Equal(TimeSpan.MaxValue, bucket.RestsAt(At(61)));
    }

    [Fact]
    public void A_take_beyond_what_a_long_holds_past_the_burst_leaves_the_bucket_owing_not_full()
    {
        var bucket = new TokenBucketPolicy(capacity: 1000, refill: 1000, Minute, PermitMeasure.Tokens);
        bucket.Take(long.MaxValue, At(0));
        bucket.Take(long.MaxValue, At(0));

        Assert.Equal(long.MaxValue - 1000, bucket.Debt);
        Assert.False(bucket.CanTake(1, At(0)));
    }

    [Fact]
    public void Two_huge_settles_keep_a_sliding_window_closed_until_they_slide_out()
    {
        var window = new SlidingWindowPolicy(limit: 10, Minute, segments: 4, PermitMeasure.Tokens);
        window.Take(1, At(0));
        window.Take(1, At(0));

        window.Settle(charged: 1, actual: long.MaxValue, At(1));
        window.Settle(charged: 1, actual: long.MaxValue, At(1));

        Assert.False(window.CanTake(1, At(2)));
        Assert.Equal(0, window.Available(At(2)));
        Assert.Equal(long.MaxValue, window.InUse);
        Assert.Equal(At(60), window.NextAvailableAt(1, At(2))); // the first segment slides out a window after it began
        Assert.Equal(10, window.Available(At(60)));
    }

    [Fact]
    public async Task A_model_api_limiter_whose_calls_settled_huge_counts_grants_nothing_more()
    {
        var clock = new FakeTimeProvider();
        await using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 100, 1000, Minute) { TimeProvider = clock }, "huge-settles", system: Sys);
        var first = await Within(limiter.AcquireAsync(10).AsTask());
        var second = await Within(limiter.AcquireAsync(10).AsTask());

        first.Settle(long.MaxValue);
        second.Settle(long.MaxValue);
        first.Dispose();
        second.Dispose();

        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(1, waitTimeout: TimeSpan.Zero).AsTask()));
    }
}
