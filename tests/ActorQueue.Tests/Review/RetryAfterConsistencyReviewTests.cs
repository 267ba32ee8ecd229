using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// What the failed leases of the two model-API adapters (<see cref="ModelApiLimiter.AsRateLimiter"/>,
/// <see cref="PartitionedModelApiLimiter{TKey}.AsPartitionedRateLimiter{TResource}"/>) carry: a reason phrase, and
/// <see cref="MetadataName.RetryAfter"/> whenever a rate decides, the same from both, as RateLimiting's own
/// TokenBucketRateLimiter puts RetryAfter on a failed AttemptAcquire and on a queue-full rejection.
/// </summary>
public sealed class RetryAfterConsistencyReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiterOptions Options(int? maxQueued = null, TimeSpan? waitTimeout = null, FakeTimeProvider? clock = null, int? segments = null) =>
        new(8, 500, 1000, Minute) { TimeProvider = clock ?? _clock, MaxQueued = maxQueued, WaitTimeout = waitTimeout, SlidingWindowSegments = segments };

    /// <summary>What a failed lease says, for comparing the adapters.</summary>
    private static string Describe(RateLimitLease lease) =>
        $"acquired={lease.IsAcquired}, reason={lease.TryGetMetadata(MetadataName.ReasonPhrase, out _)}, "
        + $"retryAfter={(lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter.ToString() : "none")}";

    /// <summary>
    /// A fresh limiter's gatekeeper lends its full bucket; an AttemptAcquire that spends it and one more right after
    /// (no message to the gatekeeper in between) is refused because the rates are spent, yet its lease said nothing of
    /// when to retry: the next refill the refusal reads was published before the loan took the bucket, when a full
    /// bucket had no refill to come. Expected: the refill at 1:00, 15 s later, 45 s; the same for sliding windows of six
    /// 10 s segments (0:00's segment, which granted the minute's tokens, slides out at 1:00; the segment's end at 0:10
    /// gives nothing back).
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task An_attempt_right_after_a_fresh_bucket_was_spent_says_when_the_refill_comes(int? segments)
    {
        using var limiter = new ModelApiLimiter(Options(segments: segments), "retry-after", system: Sys);
        var adapter = limiter.AsRateLimiter();

        // The limiter lends from its construction, so the loan covers the minute at once; the gatekeeper's first message
        // then reclaims it and lends anew, and a refusal read while that message has the loan shut says nothing of a
        // refill (failed once in CI so). A status round trip comes after that first message: wait for its lend.
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();
        await Eventually(() => limiter.Loan.Covers(1000), "the gatekeeper lends the fresh minute's tokens");
        using var spent = adapter.AttemptAcquire(1000);
        Assert.True(spent.IsAcquired);
        _clock.Advance(TimeSpan.FromSeconds(15));

        using var refused = adapter.AttemptAcquire(300);

        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.ReasonPhrase, out _));
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter), $"the refusal for a spent bucket says when to retry ({Describe(refused)})");
        Assert.Equal(TimeSpan.FromSeconds(45), retryAfter);
    }

    /// <summary>
    /// A loan holds at most 65,535 requests; an AttemptAcquire refused because they are all claimed, while the gatekeeper
    /// has more requests than that, was told to retry after the next refill (a minute here), though the gatekeeper's
    /// next loan grants it at once: a refusal for a field the loan could not hold all of is not the rates' (no
    /// RetryAfter; the refusal asks the gatekeeper to lend again). A message (a status query) makes the gatekeeper lend
    /// after a few requests were used, so the published refill is the minute's.
    /// </summary>
    [Fact]
    public async Task An_attempt_refused_for_a_loans_cap_while_the_gatekeeper_has_more_does_not_say_retry_after_the_refill()
    {
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 100_000, 1_000_000, Minute) { TimeProvider = _clock }, "retry-after", system: Sys);
        var adapter = limiter.AsRateLimiter();
        await Eventually(() => limiter.Loan.Covers(1), "the gatekeeper lends");
        for (var i = 0; i < 10; i++)
        {
            adapter.AttemptAcquire(1).Dispose();
        }

        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();
        await Eventually(() => limiter.Loan.IsOpen, "the gatekeeper lends again after the message");
        for (var i = 0; i < 65_535; i++)
        {
            using var lease = adapter.AttemptAcquire(1);
            Assert.True(lease.IsAcquired, $"claim {i} of the loan's 65,535 requests");
        }

        using var refused = adapter.AttemptAcquire(1);

        Assert.False(refused.IsAcquired);
        Assert.False(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter),
            $"the gatekeeper has 34,455 more requests this minute, yet the refusal says retry after {retryAfter}");
        await Eventually(
            () =>
            {
                using var next = adapter.AttemptAcquire(1);
                return next.IsAcquired;
            },
            "the refusal asked the gatekeeper to lend again, and its next loan grants it at once");
    }

    /// <summary>
    /// A partitioned adapter's waiter that times out gets a failed lease with a reason phrase and the RetryAfter of
    /// its key's rates, as the unpartitioned adapter's waiter does (ModelApiRateLimiterTests: 35 s in the same case).
    /// Not reproduced: it passed on the reviewed code (the partition's gate sets the request's RetryAfter as the
    /// gatekeeper's does); kept as the guard of the closing note's claim.
    /// </summary>
    [Fact]
    public async Task A_timed_out_partitioned_waiter_says_why_and_when_the_refill_serves_it()
    {
        await using var limiter = new PartitionedModelApiLimiter<string>(Options(waitTimeout: TimeSpan.FromSeconds(5)), TimeSpan.FromMinutes(5), "retry-after", system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(resource => resource);
        using var first = await Within(adapter.AcquireAsync("a", 800).AsTask());
        _clock.Advance(TimeSpan.FromSeconds(20));
        var waiting = adapter.AcquireAsync("a", 300).AsTask();
        await Eventually(() => limiter.GetStatistics().TryGetValue("a", out var a) && a.Waiting == 1, "the call waits for the refill");

        _clock.Advance(TimeSpan.FromSeconds(5));
        using var timedOut = await Within(waiting);

        Assert.True(first.IsAcquired);
        Assert.False(timedOut.IsAcquired);
        Assert.True(timedOut.TryGetMetadata(MetadataName.ReasonPhrase, out var reason), Describe(timedOut));
        Assert.Contains("retry-after", reason, StringComparison.Ordinal);
        Assert.True(timedOut.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter), $"a timed-out wait says when to retry ({Describe(timedOut)})");
        Assert.Equal(TimeSpan.FromSeconds(35), retryAfter);
    }

    /// <summary>
    /// The same full queue, through each adapter, gives the same failed lease: a reason phrase and the RetryAfter of
    /// the refill that serves the retry after the call already queued (RateLimiting's TokenBucketRateLimiter also puts
    /// RetryAfter on a queue-limit rejection). 800 tokens taken, 300 queued, 300 more rejected at 0:20: both fit the
    /// refill at 1:00, 40 s later. Not reproduced: it passed on the reviewed code (both reach the same gate rejection);
    /// kept as the guard of the closing note's claim.
    /// </summary>
    [Fact]
    public async Task A_full_queue_rejection_is_the_same_from_both_adapters()
    {
        var plainClock = new FakeTimeProvider();
        using var plain = new ModelApiLimiter(Options(maxQueued: 1, clock: plainClock), "retry-after", system: Sys);
        var plainAdapter = plain.AsRateLimiter();
        await using var partitioned = new PartitionedModelApiLimiter<string>(Options(maxQueued: 1), TimeSpan.FromMinutes(5), "retry-after", system: Sys);
        var keyedAdapter = partitioned.AsPartitionedRateLimiter<string>(resource => resource);

        using var plainFirst = await Within(plainAdapter.AcquireAsync(800).AsTask());
        using var keyedFirst = await Within(keyedAdapter.AcquireAsync("a", 800).AsTask());
        plainClock.Advance(TimeSpan.FromSeconds(20));
        _clock.Advance(TimeSpan.FromSeconds(20));
        var plainQueued = plainAdapter.AcquireAsync(300).AsTask();
        var keyedQueued = keyedAdapter.AcquireAsync("a", 300).AsTask();
        await Eventually(() => plain.WaitingCount == 1, "the plain limiter's second call waits");
        await Eventually(() => partitioned.GetStatistics().TryGetValue("a", out var a) && a.Waiting == 1, "the key's second call waits");

        using var plainRejected = await Within(plainAdapter.AcquireAsync(300).AsTask());
        using var keyedRejected = await Within(keyedAdapter.AcquireAsync("a", 300).AsTask());

        Assert.Equal("acquired=False, reason=True, retryAfter=00:00:40", Describe(plainRejected));
        Assert.Equal(Describe(plainRejected), Describe(keyedRejected));
        plainClock.Advance(Minute);
        _clock.Advance(Minute);
        (await Within(plainQueued)).Dispose();
        (await Within(keyedQueued)).Dispose();
    }

    /// <summary>
    /// Bad permit counts are refused alike by every adapter, before anything else: a negative count by RateLimiting's
    /// own check (<c>ArgumentOutOfRangeException("permitCount")</c>, before the adapter runs), a count above the limit
    /// naming the parameter and the value — also once the limiter is disposed, as the plain adapters (and RateLimiting's
    /// own limiters) check the count first. The partitioned adapter threw ObjectDisposedException for a count above the
    /// limit of a disposed limiter: it checked the disposal first.
    /// </summary>
    [Fact]
    public async Task Bad_permit_counts_are_refused_alike_by_both_adapters_also_once_the_limiter_is_disposed()
    {
        var plain = new ModelApiLimiter(Options(), "retry-after", system: Sys);
        var partitioned = new PartitionedModelApiLimiter<string>(Options(), TimeSpan.FromMinutes(5), "retry-after", system: Sys);
        var plainAdapter = plain.AsRateLimiter();
        var keyedAdapter = partitioned.AsPartitionedRateLimiter<string>(resource => resource);

        string Refusals()
        {
            static string Of(Action call) => Record.Exception(call) switch
            {
                ArgumentOutOfRangeException error => $"{error.ParamName}={error.ActualValue}",
                null => "none",
                var error => error.GetType().Name,
            };

            return string.Join("; ",
                $"plain: {Of(() => plainAdapter.AttemptAcquire(-1))}, {Of(() => plainAdapter.AttemptAcquire(1001))}, {Of(() => plainAdapter.AcquireAsync(-1))}, {Of(() => plainAdapter.AcquireAsync(1001))}",
                $"keyed: {Of(() => keyedAdapter.AttemptAcquire("a", -1))}, {Of(() => keyedAdapter.AttemptAcquire("a", 1001))}, {Of(() => keyedAdapter.AcquireAsync("a", -1))}, {Of(() => keyedAdapter.AcquireAsync("a", 1001))}");
        }

        const string Expected = "plain: permitCount=, permitCount=1001, permitCount=, permitCount=1001; keyed: permitCount=, permitCount=1001, permitCount=, permitCount=1001";
        Assert.Equal(Expected, Refusals());
        plain.Dispose();
        await partitioned.DisposeAsync();
        Assert.Equal(Expected, Refusals());
        Assert.Throws<ObjectDisposedException>(() => keyedAdapter.AttemptAcquire("a", 1));
        Assert.Throws<ObjectDisposedException>(() => keyedAdapter.AttemptAcquire("a", 0));
        Assert.Throws<ObjectDisposedException>(() => plainAdapter.AttemptAcquire(0));
    }
}
