using System.Diagnostics;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;
using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of what the RateLimiting adapters report about themselves: the statistics of the model-API adapters (whose
/// permits are tokens), the concurrency adapter's <see cref="RateLimiter.IdleDuration"/> against every way its limiter
/// is used, and a zero-permit attempt; the failed leases' metadata and argument errors are in
/// <see cref="AdapterFailedLeasesReviewTests"/>. RateLimiting's own limiters are the reference where they have the same notion.
/// </summary>
public sealed class AdapterStatisticsReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiterOptions Options(int? maxQueued = null, TimeSpan? waitTimeout = null, FakeTimeProvider? clock = null) =>
        ModelApiOptions(clock ?? _clock, maxQueued, waitTimeout);

    /// <summary>The model-API limit these reviews use: 2 at a time, 500 requests and 1000 tokens a minute, on <paramref name="clock"/>.</summary>
    internal static ModelApiLimiterOptions ModelApiOptions(FakeTimeProvider clock, int? maxQueued, TimeSpan? waitTimeout) =>
        new(2, 500, 1000, Minute) { TimeProvider = clock, MaxQueued = maxQueued, WaitTimeout = waitTimeout };

    /// <summary>A statistics reading, as the reviews compare it.</summary>
    internal static string Describe(RateLimiterStatistics? s) =>
        s is null ? "null" : $"avail={s.CurrentAvailablePermits} q={s.CurrentQueuedCount} ok={s.TotalSuccessfulLeases} failed={s.TotalFailedLeases}";

    /// <summary>Waits until <paramref name="describe"/> reads <paramref name="expected"/> (counts are published as a turn or message ends), saying what it read last.</summary>
    private Task Reads(string expected, Func<string> describe, string when) =>
        Poll.UntilAsync(() => describe() == expected, Dilated(TimeSpan.FromSeconds(10)), () => $"{when}: {expected} (read {describe()})");

    /// <summary>
    /// DEFECT (fixed). The partitioned model-API adapter's <c>GetStatistics(resource).CurrentAvailablePermits</c> was the
    /// key's free concurrency slots, while its permits are tokens (failed before: "a fresh key: avail=1000 q=0 ok=0
    /// failed=0 (read avail=2 q=0 ok=0 failed=0)"). It now reads as the unpartitioned adapter's: the tokens a call could
    /// take now in the key's partition — 0 while no slot is free or someone waits — and a fresh key's full bucket, as
    /// RateLimiting's partitioned token bucket reads it. The same calls run on both adapters; the queued count (tokens),
    /// the successful leases and a full queue's failed lease read the same on both too.
    /// </summary>
    [Fact]
    public async Task The_partitioned_model_api_adapter_reports_a_keys_tokens_as_the_unpartitioned_adapter_does()
    {
        using var single = new ModelApiLimiter(Options(maxQueued: 1), "stats-single", system: Sys);
        await using var partitioned = new PartitionedModelApiLimiter<string>(Options(maxQueued: 1), TimeSpan.FromMinutes(5), "stats-keys", system: Sys);
        using var bcl = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = 1000, TokensPerPeriod = 1000, ReplenishmentPeriod = Minute, AutoReplenishment = false, QueueLimit = 1,
        }));
        var one = single.AsRateLimiter();
        var keyed = partitioned.AsPartitionedRateLimiter<string>(key => key);
        async Task Both(string expected, string when)
        {
            await Reads(expected, () => Describe(one.GetStatistics()), "unpartitioned, " + when);
            await Reads(expected, () => Describe(keyed.GetStatistics("a")), "partitioned, " + when);
        }

        await Both("avail=1000 q=0 ok=0 failed=0", "a fresh key");
        Assert.Equal("avail=1000 q=0 ok=0 failed=0", Describe(bcl.GetStatistics("a")));

        using var bigOne = await Within(one.AcquireAsync(800).AsTask());
        using var bigKeyed = await Within(keyed.AcquireAsync("a", 800).AsTask());
        using var bigBcl = await Within(bcl.AcquireAsync("a", 800).AsTask());
        Assert.True(bigOne.IsAcquired && bigKeyed.IsAcquired && bigBcl.IsAcquired);
        await Both("avail=200 q=0 ok=1 failed=0", "800 of 1000 tokens taken");
        Assert.Equal("avail=200 q=0 ok=1 failed=0", Describe(bcl.GetStatistics("a")));
        Assert.Equal("avail=1000 q=0 ok=0 failed=0", Describe(keyed.GetStatistics("b"))); // another key's tokens are its own

        var smallOne = await Within(one.AcquireAsync(100).AsTask());
        var smallKeyed = await Within(keyed.AcquireAsync("a", 100).AsTask());
        await Both("avail=0 q=0 ok=2 failed=0", "both slots held, 100 tokens left that no call can take");

        var waitOne = one.AcquireAsync(300).AsTask();
        var waitKeyed = keyed.AcquireAsync("a", 300).AsTask();
        await Both("avail=0 q=300 ok=2 failed=0", "a call waits for 300 tokens");
        using var fullOne = await Within(one.AcquireAsync(50).AsTask());
        using var fullKeyed = await Within(keyed.AcquireAsync("a", 50).AsTask());
        Assert.False(fullOne.IsAcquired || fullKeyed.IsAcquired);
        await Both("avail=0 q=300 ok=2 failed=1", "a call turned away by the full queue");

        smallOne.Dispose();
        smallKeyed.Dispose();
        bigOne.Dispose();
        bigKeyed.Dispose();
        await Both("avail=0 q=300 ok=2 failed=1", "the slots are free, but the waiter's 300 tokens are not there: nothing for a newcomer");

        _clock.Advance(Minute);
        using var grantedOne = await Within(waitOne);
        using var grantedKeyed = await Within(waitKeyed);
        Assert.True(grantedOne.IsAcquired && grantedKeyed.IsAcquired);
        await Both("avail=700 q=0 ok=3 failed=1", "the refill served the waiter's 300 of 1000 tokens");
    }

    /// <summary>
    /// DEFECT (fixed). Both model-API adapters read 0 available tokens for good once a bucket had been spent and refilled
    /// with no call since: the unpartitioned one read its rate loan, out of date after the refill until some call made the
    /// gatekeeper lend again (failed before: "unpartitioned, after the refill: avail=1000 q=0 ok=1 failed=0 (read avail=0
    /// q=0 ok=1 failed=0)"); the partitioned one its partition's count as of its last turn. A caller polling the statistics
    /// for tokens to come back (as it may with RateLimiting's token bucket, which counts its refills) waited for ever.
    /// Now a read that finds the count out of date has it brought up to date: the unpartitioned adapter asks the
    /// gatekeeper once to lend again, the partitioned one takes the partition's turn when it is free.
    /// </summary>
    [Fact]
    public async Task Statistics_see_a_refill_that_came_while_nobody_called()
    {
        using var single = new ModelApiLimiter(Options(), "refill-single", system: Sys);
        await using var partitioned = new PartitionedModelApiLimiter<string>(Options(), TimeSpan.FromMinutes(5), "refill-keys", system: Sys);
        var one = single.AsRateLimiter();
        var keyed = partitioned.AsPartitionedRateLimiter<string>(key => key);

        (await Within(one.AcquireAsync(1000).AsTask())).Dispose();
        (await Within(keyed.AcquireAsync("a", 1000).AsTask())).Dispose();
        await Reads("avail=0 q=0 ok=1 failed=0", () => Describe(one.GetStatistics()), "unpartitioned, the bucket spent");
        await Reads("avail=0 q=0 ok=1 failed=0", () => Describe(keyed.GetStatistics("a")), "partitioned, the bucket spent");

        _clock.Advance(Minute);
        await Reads("avail=1000 q=0 ok=1 failed=0", () => Describe(one.GetStatistics()), "unpartitioned, after the refill");
        await Reads("avail=1000 q=0 ok=1 failed=0", () => Describe(keyed.GetStatistics("a")), "partitioned, after the refill");
    }

    /// <summary>
    /// DEFECT (fixed). The concurrency adapter's IdleDuration restarted only for leases the adapter itself granted: a
    /// lease taken straight from the limiter (its own AcquireAsync) and given back between two reads left it running
    /// from the first read, as if the limiter had been idle all along (failed before: "idle for 00:00:00.0544715 by
    /// IdleDuration, but a permit was held 00:00:00.0000114 ago"). ASP.NET Core's partitioned limiter takes a limiter idle
    /// past its timeout for unused and evicts it. Now every lease the limiter grants restarts it (the gatekeeper's and
    /// the loan's lease numbers), as RateLimiting's ConcurrencyLimiter is idle only from its last release.
    /// </summary>
    [Fact]
    public async Task IdleDuration_restarts_after_a_lease_taken_from_the_limiter_itself_between_two_reads()
    {
        using var limiter = new ConcurrencyLimiter(1, name: "idle-direct", system: Sys);
        var adapter = limiter.AsRateLimiter();
        await Eventually(() => adapter.IdleDuration > TimeSpan.FromMilliseconds(50), "the limiter has been idle a while");

        var lease = await Within(limiter.AcquireAsync("direct").AsTask());
        await IdleOnlySince(limiter, adapter, lease.Dispose);
    }

    /// <summary>Runs <paramref name="release"/> of the only permit held, then checks that IdleDuration counts from no earlier than it.</summary>
    private async Task IdleOnlySince(ConcurrencyLimiter limiter, RateLimiter adapter, Action release)
    {
        var beforeRelease = Stopwatch.GetTimestamp();
        release();
        await Eventually(() => limiter.RunningCount == 0, "the permit is back");
        var idleFor = adapter.IdleDuration;
        var sinceRelease = Stopwatch.GetElapsedTime(beforeRelease);
        Assert.NotNull(idleFor);
        Assert.True(idleFor <= sinceRelease, $"idle for {idleFor} by IdleDuration, but a permit was held {sinceRelease} ago");
    }

    /// <summary>
    /// DEFECT (fixed), as above for an actor caller (<see cref="GatekeeperProtocol"/>): its lease and its wait make the
    /// limiter busy (IdleDuration null: that part was correct), and its lease granted and released between two reads
    /// restarts the idle time (failed before: "idle for 00:00:00.0633745 by IdleDuration, but a permit was held
    /// 00:00:00.0038464 ago").
    /// </summary>
    [Fact]
    public async Task IdleDuration_sees_an_actor_callers_lease_and_wait()
    {
        using var limiter = new ConcurrencyLimiter(1, name: "idle-actor", system: Sys);
        var adapter = limiter.AsRateLimiter();
        var actor = CreateTestProbe();
        await Eventually(() => adapter.IdleDuration > TimeSpan.FromMilliseconds(50), "the limiter has been idle a while");

        var direct = await Within(limiter.AcquireAsync("direct").AsTask());
        limiter.Gatekeeper.Tell(new GatekeeperProtocol.Acquire("actor", 1), actor.Ref);
        actor.ExpectMsg<GatekeeperProtocol.Queued>();
        Assert.Null(adapter.IdleDuration); // in use: RateLimiting's contract
        direct.Dispose();
        var granted = actor.ExpectMsg<GatekeeperProtocol.Granted>();
        Assert.Null(adapter.IdleDuration); // the actor holds the permit
        limiter.Gatekeeper.Tell(new GatekeeperProtocol.Release(granted.LeaseId), actor.Ref);
        await Eventually(() => adapter.IdleDuration > TimeSpan.FromMilliseconds(50), "the limiter has been idle a while again");

        // Granted and given back between two reads of IdleDuration, as ASP.NET Core's eviction timer may read it.
        limiter.Gatekeeper.Tell(new GatekeeperProtocol.Acquire("actor", 2), actor.Ref);
        var again = actor.ExpectMsg<GatekeeperProtocol.Granted>();
        await IdleOnlySince(limiter, adapter, () => limiter.Gatekeeper.Tell(new GatekeeperProtocol.Release(again.LeaseId), actor.Ref));
    }

    /// <summary>
    /// Checked, correct: disposing an adapter leaves it and its limiter working — ASP.NET Core's partitioned limiter
    /// disposes a limiter it evicts and asks its factory again, which hands back the same adapter — and disposing the
    /// limiter makes every later call of its adapter throw ObjectDisposedException, as a disposed RateLimiting limiter's.
    /// </summary>
    [Fact]
    public async Task Disposing_an_adapter_leaves_it_working_and_disposing_its_limiter_stops_it()
    {
        var limiter = new ConcurrencyLimiter(1, system: Sys);
        var adapter = limiter.AsRateLimiter();
        adapter.Dispose();
        await adapter.DisposeAsync();
        Assert.Same(adapter, limiter.AsRateLimiter());
        using (var lease = await Within(adapter.AcquireAsync(1).AsTask()))
        {
            Assert.True(lease.IsAcquired);
        }

        limiter.Dispose();
        Assert.Throws<ObjectDisposedException>(() => adapter.AttemptAcquire(1));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await adapter.AcquireAsync(1));

        var rates = new PartitionedModelApiLimiter<string>(Options(), TimeSpan.FromMinutes(5), system: Sys);
        var keyed = rates.AsPartitionedRateLimiter<string>(k => k);
        keyed.Dispose();
        using (var lease = await Within(keyed.AcquireAsync("a", 10).AsTask()))
        {
            Assert.True(lease.IsAcquired);
        }

        await rates.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => keyed.AttemptAcquire("a", 1));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await keyed.AcquireAsync("a", 1));
    }

    /// <summary>
    /// DEFECT (fixed). The partitioned model-API adapter's zero-permit AttemptAcquire, RateLimiting's probe of whether a
    /// call would be granted now, always failed, even for a fresh key whose whole bucket is there and while its statistics
    /// said 1000 tokens were available (failed before: "a fresh key's probe", expected True, was False). RateLimiting's
    /// partitioned token bucket answers it acquired while it has a token. It now answers from the tokens its statistics
    /// report: acquired while a call could take one now, failed once they are spent, acquired again after the refill.
    /// </summary>
    [Fact]
    public async Task A_zero_permit_attempt_of_the_partitioned_model_api_adapter_says_whether_a_call_would_be_granted()
    {
        await using var partitioned = new PartitionedModelApiLimiter<string>(Options(), TimeSpan.FromMinutes(5), "probe-keys", system: Sys);
        var keyed = partitioned.AsPartitionedRateLimiter<string>(key => key);
        using var bcl = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = 1000, TokensPerPeriod = 1000, ReplenishmentPeriod = Minute, AutoReplenishment = false,
        }));
        Assert.True(bcl.AttemptAcquire("a", 0).IsAcquired);
        Assert.True(keyed.AttemptAcquire("a", 0).IsAcquired, "a fresh key's probe");

        using var bclSpent = bcl.AttemptAcquire("a", 1000);
        using var spent = await Within(keyed.AcquireAsync("a", 1000).AsTask());
        await Eventually(() => keyed.GetStatistics("a")!.CurrentAvailablePermits == 0, "the key's tokens are spent");
        Assert.False(bcl.AttemptAcquire("a", 0).IsAcquired);
        using var refused = keyed.AttemptAcquire("a", 0);
        Assert.False(refused.IsAcquired, "a spent key's probe");
        Assert.True(refused.TryGetMetadata(MetadataName.ReasonPhrase, out _));

        _clock.Advance(Minute);
        await Eventually(() => keyed.GetStatistics("a")!.CurrentAvailablePermits == 1000, "the refill is there");
        Assert.True(keyed.AttemptAcquire("a", 0).IsAcquired, "a refilled key's probe");
        // The 1000-token call and the refilled key's probe; the spent key's probe failed; the fresh key's was counted nowhere (no partition yet).
        Assert.Equal("avail=1000 q=0 ok=2 failed=1", Describe(keyed.GetStatistics("a")));
    }
}
