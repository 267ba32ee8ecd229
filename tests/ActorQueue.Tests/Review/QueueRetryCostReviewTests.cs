using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Akka.Actor;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Review;

/// <summary>
/// What the model-API adapter's <c>RetryAfter</c> while callers wait costs the gatekeeper: the step table its refusals
/// read (<c>RateLoan.QueueRetryAfter</c>) was rebuilt at the end of every message in which the queue or the grants
/// moved — every grant, since the last lease number is in its key — with 40 to 300 rate look-ups each, though only a
/// refused synchronous attempt ever reads it. It is now built when a queue forms and when a refusal asked for a fresh
/// one; a grant only marks it stale.
/// </summary>
public sealed class QueueRetryCostReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A limiter of 1000 tokens a minute with an adapter, spent at 0:00, five calls of 1000 waiting: three minutes grant
    /// three of them, one a minute, in three messages; nobody attempts meanwhile, so no step table is built.
    /// Failed before: one table per grant (Expected 0, Actual 3).
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task Grants_while_callers_wait_build_no_step_table_that_no_refusal_asked_for(int? segments)
    {
        var clock = new FakeTimeProvider();
        var options = new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = clock, SlidingWindowSegments = segments };
        using var limiter = new ModelApiLimiter(options, "review-queue-retry-cost", system: Sys);
        _ = limiter.AsRateLimiter(); // an adapter exists: its refusals would read the table
        using var spent = await Within(limiter.AcquireAsync(1000).AsTask());
        var waiters = Enumerable.Range(0, 5).Select(_ => limiter.AcquireAsync(1000, waitTimeout: Timeout.InfiniteTimeSpan).AsTask()).ToArray();
        await Eventually(() => limiter.WaitingCount == 5, "five calls of 1000 wait");
        await Settled(limiter);
        var built = limiter.Loan.QueueRetryBuilds;

        for (var grant = 0; grant < 3; grant++)
        {
            clock.Advance(Minute);
            using var lease = await Within(waiters[grant]);
            await Settled(limiter); // the grant's message has ended (and the wake for the next minute is armed)
        }

        Assert.Equal(2, limiter.WaitingCount);
        Assert.Equal(0, limiter.Loan.QueueRetryBuilds - built);
    }

    /// <summary>
    /// A limiter of 1000 tokens a minute with an adapter, spent at 0:00, three calls of 600 waiting. At 0:00 a refusal of
    /// 500 finds the table out of date (built when the first call queued): it still says when to retry, not before the
    /// next grant (1:00), and asks for a fresh table, after which a refusal says what the gatekeeper's own refusal says
    /// (1800 + 500 tokens: 3:00, 180 s). At 1:00 the first call is granted and no table is built; at 1:10 a refusal
    /// reads the table of 0:00, which only that grant moved since: 110 s, the gatekeeper's figure, and not before the
    /// next grant, which comes at 2:00. Bucket and sliding window.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task A_refusal_while_callers_wait_says_when_to_retry_not_before_the_next_grant(int? segments)
    {
        var clock = new FakeTimeProvider();
        var options = new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = clock, SlidingWindowSegments = segments, WaitTimeout = TimeSpan.Zero };
        using var limiter = new ModelApiLimiter(options, "review-queue-retry-after", system: Sys);
        var adapter = limiter.AsRateLimiter();
        using var spent = await Within(limiter.AcquireAsync(1000).AsTask());
        var waiters = Enumerable.Range(0, 3).Select(_ => limiter.AcquireAsync(600, waitTimeout: Timeout.InfiniteTimeSpan).AsTask()).ToArray();
        await Eventually(() => limiter.WaitingCount == 3, "three calls of 600 wait");
        await Settled(limiter);
        var built = limiter.Loan.QueueRetryBuilds;

        using (var outOfDate = adapter.AttemptAcquire(500))
        {
            Assert.False(outOfDate.IsAcquired);
            Assert.True(outOfDate.TryGetMetadata(MetadataName.RetryAfter, out var first), "a refusal while callers wait says when to retry");
            Assert.True(first >= Minute, $"not before the first waiter's grant at 1:00: {first}");
        }

        await Eventually(() => limiter.Loan.QueueRetryBuilds > built, "the refusal asked for a fresh table");
        await Settled(limiter);
        Assert.Equal(TimeSpan.FromMinutes(3), RetryAfter(adapter));
        Assert.Equal(TimeSpan.FromMinutes(3), await GatekeepersRetryAfter(adapter));

        clock.Advance(Minute);
        using var firstGrant = await Within(waiters[0]);
        await Settled(limiter);
        built = limiter.Loan.QueueRetryBuilds;
        clock.Advance(TimeSpan.FromSeconds(10));
        await Settled(limiter);
        Assert.Equal(built, limiter.Loan.QueueRetryBuilds); // the grant built nothing

        var retryAfter = RetryAfter(adapter);
        Assert.Equal(TimeSpan.FromSeconds(110), retryAfter);
        Assert.Equal(retryAfter, await GatekeepersRetryAfter(adapter));
        var retryAt = clock.GetUtcNow() + retryAfter;
        Assert.False(waiters[1].IsCompleted, "the next grant has not come");
        clock.Advance(TimeSpan.FromSeconds(50));
        using var nextGrant = await Within(waiters[1]);
        Assert.True(retryAt >= clock.GetUtcNow(), $"retry at {retryAt}, not before the next grant at {clock.GetUtcNow()}");
    }

    /// <summary>The <c>RetryAfter</c> of a refused <c>AttemptAcquire</c> of 500.</summary>
    private static TimeSpan RetryAfter(RateLimiter adapter)
    {
        using var refused = adapter.AttemptAcquire(500);
        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter), "the refusal says when to retry");
        return retryAfter;
    }

    /// <summary>The <c>RetryAfter</c> of the gatekeeper's own refusal of a call of 500 (a zero wait timeout).</summary>
    private async Task<TimeSpan> GatekeepersRetryAfter(RateLimiter adapter)
    {
        using var refused = await Within(adapter.AcquireAsync(500).AsTask());
        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter), "the gatekeeper's refusal says when to retry");
        return retryAfter;
    }

    /// <summary>Every message sent to the gatekeeper so far has ended.</summary>
    private static Task<Status> Settled(ModelApiLimiter limiter) => limiter.Gatekeeper.Ask<Status>(GetStatus.Instance, TimeSpan.FromSeconds(20));
}
