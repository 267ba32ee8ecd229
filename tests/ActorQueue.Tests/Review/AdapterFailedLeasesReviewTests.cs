using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;
using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the RateLimiting adapters' failed leases (<see cref="AdapterStatisticsReviewTests"/> reviews their
/// statistics): the metadata and argument errors a RateLimiting, Polly or ASP.NET Core caller reads, and the failures
/// the statistics count. RateLimiting's own limiters are the reference where they have the same notion.
/// </summary>
public sealed class AdapterFailedLeasesReviewTests : ActorQueueTestKit
{
    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiterOptions Options(int? maxQueued = null, TimeSpan? waitTimeout = null, FakeTimeProvider? clock = null) =>
        AdapterStatisticsReviewTests.ModelApiOptions(clock ?? _clock, maxQueued, waitTimeout);

    private static string Describe(RateLimiterStatistics? s) => AdapterStatisticsReviewTests.Describe(s);

    /// <summary>What a lease says: acquired or not, and its metadata's names, in order.</summary>
    private static string Metadata(RateLimitLease lease) =>
        $"{(lease.IsAcquired ? "acquired" : "failed")} [{string.Join(",", lease.MetadataNames)}]";

    /// <summary>
    /// One adapter of a limiter with 1 permit, 1 place in the queue, a 5-second wait timeout on the fake clock and
    /// eviction of the newest lowest-priority waiter: its acquires, and a higher-priority caller of the limiter itself.
    /// </summary>
    private sealed record ConcurrencyUnderTest(Func<RateLimitLease> Attempt, Func<ValueTask<RateLimitLease>> Acquire,
                                               Func<Task> Evictor, Action Dispose, Func<RateLimiterStatistics?> Statistics);

    /// <summary>Every way an acquire of <paramref name="under"/> fails, each with its lease's metadata, and the statistics after them.</summary>
    private async Task<List<string>> FailEveryWay(ConcurrencyUnderTest under)
    {
        var said = new List<string>();
        void Note(string path, RateLimitLease lease)
        {
            said.Add($"{path}: {Metadata(lease)}");
            if (!lease.IsAcquired)
            {
                Assert.True(lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) && !string.IsNullOrWhiteSpace(reason), $"{path}: no reason phrase");
            }
        }

        using var held = await Within(under.Acquire().AsTask());
        Note("attempt", under.Attempt());
        var timingOut = under.Acquire().AsTask();
        await Eventually(() => under.Statistics()!.CurrentQueuedCount == 1, "a caller waits");
        _clock.Advance(TimeSpan.FromSeconds(5));
        Note("timeout", await Within(timingOut));

        var evicted = under.Acquire().AsTask();
        await Eventually(() => under.Statistics()!.CurrentQueuedCount == 1, "a caller waits");
        Note("full", await Within(under.Acquire().AsTask()));
        var evictor = under.Evictor();
        Note("evicted", await Within(evicted));
        said.Add("after: " + Describe(under.Statistics()));

        held.Dispose();
        await Within(evictor);
        var disposed = under.Acquire().AsTask();
        await Eventually(() => under.Statistics()!.CurrentQueuedCount == 1, "a caller waits");
        under.Dispose();
        Note("disposed", await Within(disposed));
        return said;
    }

    /// <summary>
    /// Checked, correct: every way an acquire of the concurrency adapters fails (an attempt while the permit is held, a
    /// wait timeout, a full queue, an eviction, the limiter disposed while it waits) gives a failed lease whose only
    /// metadata is its reason phrase, as RateLimiting's ConcurrencyLimiter's failed leases carry (a concurrency limit has
    /// no RetryAfter), and counts it as a failed lease; the waiters gone, nothing is queued.
    /// </summary>
    [Fact]
    public async Task Every_failed_lease_of_the_concurrency_adapters_says_why_as_the_BCLs_does()
    {
        using var bcl = new System.Threading.RateLimiting.ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = 1, QueueLimit = 0 });
        using var bclHeld = bcl.AttemptAcquire(1);
        Assert.Equal("failed [REASON_PHRASE]", Metadata(bcl.AttemptAcquire(1)));

        var limit = new ConcurrencyLimit(1) { MaxQueued = 1, WaitTimeout = TimeSpan.FromSeconds(5), WhenFull = QueueFullMode.EvictLowestPriorityNewest, TimeProvider = _clock };
        var single = new ConcurrencyLimiter(limit, "failures-single", system: Sys);
        var adapter = single.AsRateLimiter();
        await Eventually(() => single.Loan.IsOpen, "the gatekeeper lends");
        var partitioned = new PartitionedConcurrencyLimiter<string>(limit, TimeSpan.FromMinutes(5), "failures-keys", system: Sys);
        var keyed = partitioned.AsPartitionedRateLimiter<string>(key => key);
        var expected = new List<string>
        {
            "attempt: failed [REASON_PHRASE]", "timeout: failed [REASON_PHRASE]", "full: failed [REASON_PHRASE]", "evicted: failed [REASON_PHRASE]",
            "after: avail=0 q=1 ok=1 failed=4", "disposed: failed [REASON_PHRASE]",
        };

        Assert.Equal(expected, await FailEveryWay(new ConcurrencyUnderTest(
            () => adapter.AttemptAcquire(1), () => adapter.AcquireAsync(1), () => single.AcquireAsync(1, priority: 1).AsTask(), single.Dispose, adapter.GetStatistics)));
        Assert.Equal(expected, await FailEveryWay(new ConcurrencyUnderTest(
            () => keyed.AttemptAcquire("a", 1), () => keyed.AcquireAsync("a", 1), () => partitioned.AcquireAsync("a", priority: 1).AsTask(),
            partitioned.Dispose, () => keyed.GetStatistics("a"))));
    }

    /// <summary>What a failed lease says: whether it gives a reason phrase (its RetryAfter is left out: see the report's notes).</summary>
    private static string Reason(RateLimitLease lease) =>
        lease.IsAcquired ? "acquired" : lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) && !string.IsNullOrWhiteSpace(reason) ? "failed, says why" : "failed silently";

    /// <summary>
    /// Checked, correct: with their rates spent, every way an acquire of the model-API adapters fails (an attempt, a wait
    /// timeout, a full queue, the limiter disposed while a call waits) gives a failed lease with a reason phrase, and the
    /// statistics count each failure once and keep only the waiting call's tokens queued — the same on both adapters
    /// (it failed before only on the partitioned adapter's available permits, the defect above).
    /// </summary>
    [Fact]
    public async Task Every_failed_lease_of_the_model_api_adapters_says_why_and_is_counted()
    {
        var singleClock = new FakeTimeProvider();
        using var single = new ModelApiLimiter(Options(maxQueued: 1, waitTimeout: TimeSpan.FromSeconds(5), singleClock), "failures-rates", system: Sys);
        var partitioned = new PartitionedModelApiLimiter<string>(Options(maxQueued: 1, waitTimeout: TimeSpan.FromSeconds(5)), TimeSpan.FromMinutes(5), "failures-rate-keys", system: Sys);
        var one = single.AsRateLimiter();
        var keyed = partitioned.AsPartitionedRateLimiter<string>(key => key);

        async Task<List<string>> Run(FakeTimeProvider clock, Func<int, RateLimitLease> attempt, Func<int, ValueTask<RateLimitLease>> acquire, Action dispose, Func<RateLimiterStatistics?> statistics)
        {
            var said = new List<string>();
            using var spent = await Within(acquire(1000).AsTask());
            said.Add("attempt: " + Reason(attempt(100)));
            var timingOut = acquire(100).AsTask();
            await Eventually(() => statistics()!.CurrentQueuedCount == 100, "a call waits for the refill");
            clock.Advance(TimeSpan.FromSeconds(5));
            said.Add("timeout: " + Reason(await Within(timingOut)));
            var waiting = acquire(100).AsTask();
            await Eventually(() => statistics()!.CurrentQueuedCount == 100, "a call waits for the refill");
            using var full = await Within(acquire(100).AsTask());
            said.Add("full: " + Reason(full));
            said.Add("after: " + Describe(statistics()));
            dispose();
            said.Add("disposed: " + Reason(await Within(waiting)));
            return said;
        }

        List<string> expected =
            ["attempt: failed, says why", "timeout: failed, says why", "full: failed, says why", "after: avail=0 q=100 ok=1 failed=3", "disposed: failed, says why"];
        Assert.Equal(expected, await Run(singleClock, n => one.AttemptAcquire(n), n => one.AcquireAsync(n), single.Dispose, one.GetStatistics));
        Assert.Equal(expected, await Run(_clock, n => keyed.AttemptAcquire("a", n), n => keyed.AcquireAsync("a", n), partitioned.Dispose, () => keyed.GetStatistics("a")));
    }

    /// <summary>
    /// Checked, correct: every adapter checks its permit count before anything else and names <c>permitCount</c>: below
    /// zero (RateLimiting's own check) and above what one call can ever take (the limit's permits; a model-API limit's
    /// tokens per period), from AttemptAcquire and from the AcquireAsync call itself, not its task.
    /// </summary>
    [Fact]
    public async Task Every_adapter_names_permitCount_in_its_argument_errors()
    {
        using var concurrency = new ConcurrencyLimiter(2, system: Sys);
        await using var keys = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(2), TimeSpan.FromMinutes(5), system: Sys);
        using var rates = new ModelApiLimiter(Options(), system: Sys);
        await using var rateKeys = new PartitionedModelApiLimiter<string>(Options(), TimeSpan.FromMinutes(5), system: Sys);
        var single = new (RateLimiter Adapter, int TooMany)[] { (concurrency.AsRateLimiter(), 3), (rates.AsRateLimiter(), 1001) };
        var keyed = new (PartitionedRateLimiter<string> Adapter, int TooMany)[]
        {
            (keys.AsPartitionedRateLimiter<string>(k => k), 3), (rateKeys.AsPartitionedRateLimiter<string>(k => k), 1001),
        };

        foreach (var (adapter, tooMany) in single)
        {
            foreach (var count in new[] { -1, tooMany })
            {
                Assert.Equal("permitCount", Assert.Throws<ArgumentOutOfRangeException>(() => adapter.AttemptAcquire(count)).ParamName);
                Assert.Equal("permitCount", Assert.Throws<ArgumentOutOfRangeException>(() => adapter.AcquireAsync(count)).ParamName);
            }
        }

        foreach (var (adapter, tooMany) in keyed)
        {
            foreach (var count in new[] { -1, tooMany })
            {
                Assert.Equal("permitCount", Assert.Throws<ArgumentOutOfRangeException>(() => adapter.AttemptAcquire("a", count)).ParamName);
                Assert.Equal("permitCount", Assert.Throws<ArgumentOutOfRangeException>(() => adapter.AcquireAsync("a", count)).ParamName);
            }
        }
    }
}
