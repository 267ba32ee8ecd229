using ActorQueue.Coordination;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The token bucket alone, on gate time: refill by whole periods up to the burst, settle, when a cost fits.</summary>
public class TokenBucketPolicyTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private static TimeSpan At(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void A_new_bucket_is_full_and_a_burst_takes_all_of_it_at_once()
    {
        var bucket = new TokenBucketPolicy(capacity: 10, refill: 4, Minute, PermitMeasure.Tokens);

        Assert.True(bucket.CanTake(10, At(0)));
        bucket.Take(10, At(0));

        Assert.False(bucket.CanTake(1, At(59.999)));
        Assert.Equal(0, bucket.Available(At(59.999)));
    }

    [Fact]
    public void It_refills_at_each_period_end_by_the_refill_and_never_beyond_the_burst()
    {
        var bucket = new TokenBucketPolicy(capacity: 10, refill: 4, Minute, PermitMeasure.Tokens);
        bucket.Take(10, At(0));

        Assert.Equal(0, bucket.Available(At(60) - TimeSpan.FromTicks(1)));
        Assert.Equal(4, bucket.Available(At(60)));
        Assert.Equal(8, bucket.Available(At(120)));
        Assert.Equal(10, bucket.Available(At(600)));
    }

    [Fact]
    public void A_period_refills_once_however_often_the_gate_asks()
    {
        var bucket = new TokenBucketPolicy(capacity: 10, refill: 4, Minute, PermitMeasure.Tokens);
        bucket.Take(10, At(0));

        // Asked many times within one period and once at an odd instant: still one refill per whole period.
        for (var second = 1; second < 90; second += 7)
        {
            bucket.Available(At(second));
        }

        Assert.Equal(4, bucket.Available(At(90)));
        bucket.Take(4, At(90));
        Assert.Equal(0, bucket.Available(At(119.9))); // the next refill is at 120, counted from 0, not from 90
        Assert.Equal(4, bucket.Available(At(120)));
    }

    [Fact]
    public void Settling_below_the_charge_gives_the_rest_back_at_once_but_not_beyond_the_burst()
    {
        var bucket = new TokenBucketPolicy(capacity: 100, refill: 100, Minute, PermitMeasure.Tokens);
        bucket.Take(80, At(1));

        bucket.Settle(charged: 80, actual: 30, At(2));
        Assert.Equal(70, bucket.Available(At(2)));

        bucket.Take(70, At(3));
        bucket.Settle(charged: 70, actual: 0, At(61)); // refilled to 100 at 60; the give-back does not overfill
        Assert.Equal(100, bucket.Available(At(61)));
    }

    [Fact]
    public void Settling_above_the_charge_is_debt_the_next_refill_pays_first()
    {
        var bucket = new TokenBucketPolicy(capacity: 100, refill: 100, Minute, PermitMeasure.Tokens);
        bucket.Take(100, At(0));
        bucket.Settle(charged: 100, actual: 250, At(10));

        Assert.Equal(150, bucket.Debt);
        Assert.Equal(0, bucket.Available(At(60))); // the first refill pays 100 of the 150 owed
        Assert.Equal(50, bucket.Available(At(120)));
        Assert.Equal(TimeSpan.FromMinutes(3), bucket.NextAvailableAt(100, At(120)));
    }

    [Fact]
    public void Next_available_is_the_refill_that_makes_the_cost_fit_counting_a_queue_beyond_the_burst_refill_by_refill()
    {
        var bucket = new TokenBucketPolicy(capacity: 10, refill: 4, Minute, PermitMeasure.Tokens);
        bucket.Take(9, At(5));

        Assert.Equal(At(5), bucket.NextAvailableAt(1, At(5)));
        Assert.Equal(At(60), bucket.NextAvailableAt(5, At(5)));
        Assert.Equal(At(120), bucket.NextAvailableAt(6, At(5)));
        Assert.Equal(At(180), bucket.NextAvailableAt(11, At(5)));
    }

    [Fact]
    public void A_refund_is_the_exact_inverse_of_a_take()
    {
        var bucket = new TokenBucketPolicy(capacity: 10, refill: 10, Minute, PermitMeasure.Calls);
        bucket.Take(3, At(1));
        bucket.Refund(3, At(1));

        Assert.Equal(10, bucket.Available(At(1)));
        Assert.Equal(0, bucket.InUse);
    }
}
