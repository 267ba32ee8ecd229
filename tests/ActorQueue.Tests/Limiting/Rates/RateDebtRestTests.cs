using ActorQueue.Coordination;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// At the deepest debt a bucket keeps (<c>long.MaxValue</c> in use), the cost still missing for a full burst is
/// <c>long.MaxValue</c>, and adding a refill less one to round up went past what a <see langword="long"/> holds: the
/// refills came out negative and the bucket "rested" in the past. RateDebtSaturationTests asks only after a refill has
/// paid part of the debt, where the sum just fits, so it passes with that sum in a <see langword="long"/> too.
/// </summary>
public sealed class RateDebtRestTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private static TimeSpan At(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void At_the_deepest_debt_a_bucket_rests_and_a_burst_fits_at_no_time_in_the_past()
    {
        var bucket = new TokenBucketPolicy(capacity: 1000, refill: 1000, Minute, PermitMeasure.Tokens);
        bucket.Take(10, At(0));
        bucket.Settle(charged: 10, actual: long.MaxValue, At(1));

        Assert.Equal(long.MaxValue, bucket.InUse);
        Assert.Equal(TimeSpan.MaxValue, bucket.RestsAt(At(2)));
        Assert.Equal(TimeSpan.MaxValue, bucket.NextAvailableAt(1000, At(2)));
    }
}
