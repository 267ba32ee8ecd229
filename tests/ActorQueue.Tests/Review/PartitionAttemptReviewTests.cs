using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The partitioned adapters' <c>AttemptAcquire</c> (<see cref="PartitionedLimiterAdapter{TResource, TKey}"/>):
/// <list type="bullet">
/// <item>DEFECT 1 (fixed). A key with no live partition (never seen, or dropped for idleness) was refused for ever by an
/// <c>AttemptAcquire</c>: nothing made its partition live, so a caller that only ever attempts (load shedding) was
/// turned away on every key, while RateLimiting's own partitioned limiter grants a fresh key and the adapter's own
/// zero-permit probe said "acquired". Now the caller makes the partition itself (in the table, its first turn taken,
/// its attempt run in that turn), when nothing of the key is held, awaited or on its way to the actor.</item>
/// <item>DEFECT 2 (fixed). A partitioned model-API limiter's <c>AttemptAcquire</c> of permits never granted, even with
/// slots and tokens free. Now it takes the partition's turn if it is free and grants when nobody waits and the slots
/// and rates allow the call now (the lease an <c>AcquireAsync</c> served at once gets); refused with a reason (and
/// <c>RetryAfter</c> when the rates decide) otherwise.</item>
/// </list>
/// </summary>
public sealed class PartitionAttemptReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private readonly FakeTimeProvider _clock = new();

    private PartitionedConcurrencyLimiter<string> Concurrency(int maxRunning, int? maxQueued = null) =>
        new(new ConcurrencyLimit(maxRunning) { MaxQueued = maxQueued, TimeProvider = _clock }, IdleTimeout, "attempt-keys", system: Sys);

    private PartitionedModelApiLimiter<string> ModelApi(int concurrent = 2, int requests = 500, long tokens = 1000, int? maxQueued = null) =>
        new(new ModelApiLimiterOptions(concurrent, requests, tokens, Minute) { TimeProvider = _clock, MaxQueued = maxQueued }, IdleTimeout, "attempt-rates", system: Sys);

    private static string ReasonOf(RateLimitLease lease) => lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) ? reason! : "(no reason)";

    private static (long Successful, long Failed) Totals(RateLimiterStatistics statistics) => (statistics.TotalSuccessfulLeases, statistics.TotalFailedLeases);

    /// <summary>
    /// Waits until <paramref name="key"/>'s partition (if live) is not in anyone's turn and nothing is on its way to the
    /// actor. An attempt is refused as busy, saying nothing of slots or rates, in either case: a call the actor granted
    /// completes before its turn ends and before the actor counts it off, and a sweep counts a drop as on its way until
    /// it has given the dropped partition back.
    /// </summary>
    private Task Settled(IPartitionedLimiter<string> limiter, string key)
    {
        var partitions = limiter.Partitions;
        return Eventually(() => !partitions.IsRouting && partitions.PartitionOf(key) is not { IsTaken: true },
                          $"{key}'s partition is in nobody's turn and nothing is on its way to the actor");
    }

    /// <summary>
    /// Defect 1, concurrency. Before the fix: "the first attempt on a fresh key is granted, as RateLimiting's partitioned
    /// limiter grants it: Nothing of partition fresh of attempt-keys is lent for a caller that will not wait ...".
    /// </summary>
    [Fact]
    public async Task AttemptAcquire_grants_a_concurrency_key_with_no_live_partition_as_RateLimitings_partitioned_limiter_does()
    {
        await using var limiter = Concurrency(2);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        using var bcl = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetConcurrencyLimiter(key, _ => new ConcurrencyLimiterOptions { PermitLimit = 2 }));
        using (var expected = bcl.AttemptAcquire("fresh", 2))
        {
            Assert.True(expected.IsAcquired);
        }

        var first = adapter.AttemptAcquire("fresh", 2);

        Assert.True(first.IsAcquired, $"the first attempt on a fresh key is granted, as RateLimiting's partitioned limiter grants it: {ReasonOf(first)}");
        Assert.Equal(1, limiter.PartitionCount);
        Assert.Equal(2, limiter.StatisticsOf("fresh")!.Running);
        Assert.Equal(0, adapter.GetStatistics("fresh")!.CurrentAvailablePermits);
        using (var over = adapter.AttemptAcquire("fresh", 1))
        {
            Assert.False(over.IsAcquired, "both permits are held");
        }

        Assert.Equal((1L, 1L), Totals(adapter.GetStatistics("fresh")!));
        var waiter = limiter.AcquireAsync("fresh").AsTask();
        Assert.False(waiter.IsCompleted);
        first.Dispose();
        (await Within(waiter)).Dispose();
        await Eventually(() => limiter.StatisticsOf("fresh")!.Running == 0, "every permit came back");

        // Dropped for idleness: the next attempt makes the key's partition again.
        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 0; }, TimeSpan.FromSeconds(10), "the idle partition was dropped");
        await Settled(limiter, "fresh");
        using var again = adapter.AttemptAcquire("fresh", 1);
        Assert.True(again.IsAcquired, $"a key dropped for idleness is granted again: {ReasonOf(again)}");
        Assert.Equal(1, limiter.StatisticsOf("fresh")!.Running);
        Assert.Equal((1L, 0L), Totals(adapter.GetStatistics("fresh")!));
    }

    /// <summary>
    /// Defect 2, a live partition. Before the fix: "slots and tokens are free: ... Nothing of partition a of attempt-rates
    /// is lent for a caller that will not wait".
    /// </summary>
    [Fact]
    public async Task AttemptAcquire_of_a_model_api_key_grants_while_nobody_waits_and_its_slots_and_rates_allow_it()
    {
        await using var limiter = ModelApi(concurrent: 2, requests: 500, tokens: 1000, maxQueued: 4);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var held = await Within(adapter.AcquireAsync("a", 100).AsTask());
        Assert.True(held.IsAcquired);
        await Settled(limiter, "a");

        var attempt = adapter.AttemptAcquire("a", 300);

        Assert.True(attempt.IsAcquired, $"slots and tokens are free: {ReasonOf(attempt)}");
        Assert.Equal(2, limiter.GetStatistics()["a"].Running);
        using (var noSlot = adapter.AttemptAcquire("a", 1))
        {
            Assert.False(noSlot.IsAcquired, "both slots are held");
            Assert.False(noSlot.TryGetMetadata(MetadataName.RetryAfter, out _), "a refill would not free a slot");
        }

        // Released as an AcquireAsync lease is: its slot back, its tokens settled at the estimate.
        attempt.Dispose();
        await Eventually(() => limiter.GetStatistics()["a"].Running == 1, "the attempt's slot came back");
        await Settled(limiter, "a");
        Assert.Equal(600, adapter.GetStatistics("a")!.CurrentAvailablePermits);
        using (var spent = adapter.AttemptAcquire("a", 700))
        {
            Assert.False(spent.IsAcquired, "600 tokens are left");
            Assert.True(spent.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter), "the rates decide: they say when to retry");
            Assert.Equal(Minute, retryAfter);
        }

        // Nobody passes a waiter: one waits for 700 tokens, and an attempt that the tokens would cover is refused.
        var waiting = adapter.AcquireAsync("a", 700).AsTask();
        await Eventually(() => limiter.GetStatistics()["a"].Waiting == 1, "a caller waits for tokens");
        using (var behind = adapter.AttemptAcquire("a", 10))
        {
            Assert.False(behind.IsAcquired, "an attempt never passes a waiter");
        }

        held.Dispose();
        _clock.Advance(Minute);
        using var served = await Within(waiting);
        Assert.True(served.IsAcquired);
        Assert.Equal((3L, 3L), Totals(adapter.GetStatistics("a")!));
    }

    /// <summary>Defect 2 with defect 1: a model-API key with no live partition. Before the fix: refused, no partition made.</summary>
    [Fact]
    public async Task AttemptAcquire_grants_a_model_api_key_with_no_live_partition()
    {
        await using var limiter = ModelApi(concurrent: 1, requests: 500, tokens: 1000);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);

        var first = adapter.AttemptAcquire("fresh", 1000);

        Assert.True(first.IsAcquired, $"a fresh key's buckets are full and its slot free: {ReasonOf(first)}");
        Assert.Equal(1, limiter.PartitionCount);
        Assert.Equal(1, limiter.GetStatistics()["fresh"].Running);
        Assert.Equal(0, adapter.GetStatistics("fresh")!.CurrentAvailablePermits);
        first.Dispose();
        await Eventually(() => limiter.GetStatistics()["fresh"].Running == 0, "its slot came back");
        using var spent = adapter.AttemptAcquire("fresh", 1);
        Assert.False(spent.IsAcquired, "the attempt took the key's 1000 tokens");
        Assert.True(spent.TryGetMetadata(MetadataName.RetryAfter, out _));
    }

    /// <summary>
    /// Racing threads on keys of a concurrency limiter: AttemptAcquire, the adapter's and the limiter's AcquireAsync and
    /// releases, on keys that move on every few rounds (so the attempts that make a key's partition race the actor
    /// making it for a waiting caller), and sweeps dropping idle partitions all the while. No key ever has more than its
    /// limit held (counted by the callers), every waiter is served, the counts go back to 0 and the idle sweep empties
    /// the table; attempts on keys with no live partition were granted along the way.
    /// </summary>
    [Fact]
    public async Task Racing_attempts_on_fresh_keys_with_acquires_releases_and_sweeps_never_exceed_a_keys_limit()
    {
        const int Limit = 2;
        await using var limiter = Concurrency(Limit);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var outcome = await Race(Limit, adapter, ((IPartitionedLimiter<string>)limiter).Partitions, modelApi: false,
            (key, permits) => adapter.AcquireAsync(key, permits).AsTask(),
            async (key, permits) => await limiter.AcquireAsync(key, permits).ConfigureAwait(false));

        Assert.True(outcome.Over is null, outcome.Over);
        Assert.True(outcome.FreshGrants > 0, "some attempt was granted on a key with no live partition");
        foreach (var key in outcome.Keys)
        {
            await Eventually(() => limiter.StatisticsOf(key) is not { Running: not 0 } and not { Waiting: not 0 }, $"{key}'s permits all came back");
        }

        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 0; }, TimeSpan.FromSeconds(10), "the idle sweep empties the table");
    }

    /// <summary>As <see cref="Racing_attempts_on_fresh_keys_with_acquires_releases_and_sweeps_never_exceed_a_keys_limit"/>, on a model-API limiter's slots (its rates too large to bind).</summary>
    [Fact]
    public async Task Racing_model_api_attempts_with_acquires_releases_and_sweeps_never_exceed_a_keys_slots()
    {
        const int Slots = 2;
        await using var limiter = ModelApi(concurrent: Slots, requests: 1_000_000, tokens: 1_000_000);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var outcome = await Race(Slots, adapter, ((IPartitionedLimiter<string>)limiter).Partitions, modelApi: true,
            (key, tokens) => adapter.AcquireAsync(key, tokens).AsTask(),
            async (key, tokens) => await limiter.AcquireAsync(key, tokens).ConfigureAwait(false));

        Assert.True(outcome.Over is null, outcome.Over);
        Assert.True(outcome.FreshGrants > 0, "some attempt was granted on a key with no live partition");
        foreach (var key in outcome.Keys)
        {
            await Eventually(() => !limiter.GetStatistics().TryGetValue(key, out var counts) || counts is { Running: 0, Waiting: 0 }, $"{key}'s slots all came back");
        }

        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 0; }, TimeSpan.FromSeconds(10), "the idle sweep empties the table");
    }

    /// <summary>
    /// No barging: an AttemptAcquire on a key with no live partition, made while an earlier AcquireAsync of the key waits
    /// in the actor's mailbox (its call returned), is refused rather than making the partition and taking its only
    /// permit first. The actor is held in the middle of another key's first request (ActorHold), so the earlier request
    /// stays in its mailbox while the attempt is made.
    /// </summary>
    [Fact]
    public async Task An_attempt_on_a_fresh_key_never_passes_an_earlier_request_of_the_key_on_its_way_to_the_actor()
    {
        var name = $"attempt-mailbox-{Guid.NewGuid():N}";
        using var hold = new ActorHold(name);
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1) { TimeProvider = _clock }, IdleTimeout, name, system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);

        // On a thread of its own: the coordinator dispatcher could run the actor inline on a pool thread's Tell.
        var barged = await Task.Factory.StartNew(() =>
        {
            hold.Arm();
            var other = limiter.AcquireAsync("x").AsTask();
            hold.WaitHeld("the actor granting x's first request");
            var earlier = limiter.AcquireAsync("a").AsTask();
            bool acquired;
            using (var attempt = adapter.AttemptAcquire("a"))
            {
                acquired = attempt.IsAcquired;
            }

            hold.Release();
            Assert.True(other.Wait(TimeSpan.FromSeconds(20)) && earlier.Wait(TimeSpan.FromSeconds(20)), "both requests are served");
            other.Result.Dispose();
            earlier.Result.Dispose();
            return acquired;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        Assert.False(barged, "an attempt made after an earlier request of the key had gone to the actor took the key's only permit first (barging)");
    }

    /// <summary>
    /// A sweep counts a drop as a request on its way (OnTheWay) from before the partition leaves the table until its
    /// give-back has rerouted what was pushed to it: a caller that finds the key without a partition then makes none,
    /// so it cannot pass a request pushed to the dropped partition (whose call returned) that the actor is about to
    /// reroute. Found by reading once callers could make partitions; the table driven alone.
    /// </summary>
    [Fact]
    public void A_sweep_counts_a_drop_as_on_its_way_until_the_dropped_partition_was_given_back()
    {
        var routing = new OnTheWay();
        var table = new PartitionTable<DroppedSlot>(IdleTimeout, routing);
        var slot = new DroppedSlot("a", routing, table);
        Assert.True(table.TryAdd("a", slot));

        for (var sweep = 0; sweep < PartitionTable<DroppedSlot>.SweepsToDrop; sweep++)
        {
            table.Sweep(table.SweepPeriod * (sweep + 1));
        }

        Assert.Equal((true, true), slot.AsDropped);
        Assert.False(routing.Any, "the drop is handled once its give-back ran");
        Assert.Equal(0, table.Count);
    }

    /// <summary>A partition for <see cref="A_sweep_counts_a_drop_as_on_its_way_until_the_dropped_partition_was_given_back"/>: always idle; records, as it is dropped, whether a drop is on its way and its key gone from the table.</summary>
    private sealed class DroppedSlot(object key, OnTheWay routing, PartitionTable<DroppedSlot> table) : ISweptPartition
    {
        public (bool OnItsWay, bool Gone)? AsDropped { get; private set; }

        public int IdleSweeps { get; set; }

        public bool SweepIsIdle() => true;

        public void Swept(bool dropped)
        {
            if (dropped)
            {
                AsDropped = (routing.Any, !table.TryGet(key, out _));
            }
        }
    }

    /// <summary>
    /// Attempts on fresh keys racing the limiter's disposal: each is granted, refused or throws
    /// ObjectDisposedException; the disposal completes, and no partition a caller made is left in the table of the
    /// stopped limiter (a caller that publishes one and then finds the limiter disposed withdraws and closes it).
    /// </summary>
    [Fact]
    public async Task Attempts_on_fresh_keys_racing_the_disposal_leave_no_partition_behind()
    {
        for (var round = 0; round < 20; round++)
        {
            var limiter = Concurrency(1);
            var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            // Dedicated threads: two pool threads looping until the dispose would keep the pool from the actor that disposes.
            var attempts = Enumerable.Range(0, 2).Select(caller => Task.Factory.StartNew(() =>
            {
                for (var i = 0; ; i++)
                {
                    try
                    {
                        using var lease = adapter.AttemptAcquire($"r{round}-c{caller}-k{i}", 1);
                        started.TrySetResult();
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToList();
            await Within(started.Task);

            await Within(limiter.DisposeAsync().AsTask());
            await Within(Task.WhenAll(attempts));

            Assert.Equal(0, limiter.PartitionCount);
        }
    }

    /// <summary>What <see cref="Race"/> saw: the first time a key was over its limit, if ever; attempts granted on a key with no live partition; every key used.</summary>
    private sealed record RaceOutcome(string? Over, int FreshGrants, ICollection<string> Keys);

    /// <summary>
    /// Four callers per group (two attempting, one waiting through the adapter, one through the limiter), three groups,
    /// each group on a key of its own that moves on every <c>Generation</c> rounds; the attempting callers move the clock
    /// a whole idle timeout every fourth round, so sweeps drop idle partitions all the while; a bounded number of rounds. A concurrency call holds its weight (1 or 2) of the
    /// key's <paramref name="limit"/>; a model-API call (1 to 50 tokens) holds one slot.
    /// </summary>
    private async Task<RaceOutcome> Race(int limit, PartitionedRateLimiter<string> adapter, PartitionedGatekeeper partitions, bool modelApi,
                                         Func<string, int, Task<RateLimitLease>> adapterWait, Func<string, int, Task<IDisposable>> limiterWait)
    {
        // Whether an attempt reaches a key before its waiting callers do is the scheduler's luck: on a busy test host a
        // whole race once went without a fresh grant. Raced again (new keys) while none came, a bounded number of times:
        // a fresh key's attempt that is never granted still fails the test.
        var outcome = await RacePass(0, limit, adapter, partitions, modelApi, adapterWait, limiterWait);
        for (var pass = 1; pass < 5 && outcome is { Over: null, FreshGrants: 0 }; pass++)
        {
            var next = await RacePass(pass, limit, adapter, partitions, modelApi, adapterWait, limiterWait);
            outcome = next with { Keys = [.. outcome.Keys, .. next.Keys] };
        }

        return outcome;
    }

    /// <summary>One race of <see cref="Race"/>, on keys named for <paramref name="pass"/>.</summary>
    private async Task<RaceOutcome> RacePass(int pass, int limit, PartitionedRateLimiter<string> adapter, PartitionedGatekeeper partitions, bool modelApi,
                                             Func<string, int, Task<RateLimitLease>> adapterWait, Func<string, int, Task<IDisposable>> limiterWait)
    {
        const int Rounds = 400, Generation = 8, Groups = 3;
        var held = new System.Collections.Concurrent.ConcurrentDictionary<string, int[]>();
        string? over = null;
        var freshGrants = 0;

        int Weight(int round) => modelApi ? 1 : 1 + (round % limit);
        int Demand(int round) => modelApi ? 1 + (round % 50) : Weight(round);

        int[] Hold(string key, int weight)
        {
            var count = held.GetOrAdd(key, _ => new int[1]);
            var now = Interlocked.Add(ref count[0], weight);
            if (now > limit)
            {
                Interlocked.CompareExchange(ref over, $"{key} had {now} held, above its limit of {limit}", null);
            }

            return count;
        }

        var at = new string[Groups * 4];

        async Task Caller(int group, int kind, int id)
        {
            for (var round = 0; round < Rounds; round++)
            {
                var key = $"p{pass}/g{group}/{round / Generation}";
                at[id] = $"{key} kind {kind} round {round}";
                var (weight, demand) = (Weight(round + kind), Demand(round + kind));
                if (kind == 0)
                {
                    if (round % 4 == 0)
                    {
                        // The sweeps' clock, paced by the callers: a clock moved in a loop of its own flooded the actor's
                        // mailbox with sweeps faster than it could run them, and the callers' requests waited behind them.
                        _clock.Advance(IdleTimeout);
                    }

                    var fresh = partitions.PartitionOf(key) is null;
                    using var lease = adapter.AttemptAcquire(key, demand);
                    if (lease.IsAcquired)
                    {
                        var count = Hold(key, weight);
                        if (fresh)
                        {
                            Interlocked.Increment(ref freshGrants);
                        }

                        await Task.Yield();
                        Interlocked.Add(ref count[0], -weight);
                    }
                    else
                    {
                        held.GetOrAdd(key, _ => new int[1]);
                    }
                }
                else if (kind == 1)
                {
                    using var lease = await adapterWait(key, demand).ConfigureAwait(false);
                    Assert.True(lease.IsAcquired, ReasonOf(lease));
                    var count = Hold(key, weight);
                    await Task.Yield();
                    Interlocked.Add(ref count[0], -weight);
                }
                else
                {
                    using var lease = await limiterWait(key, demand).ConfigureAwait(false);
                    var count = Hold(key, weight);
                    await Task.Yield();
                    Interlocked.Add(ref count[0], -weight);
                }
            }
        }

        var callers = new List<Task>();
        for (var group = 0; group < Groups; group++)
        {
            for (var kind = 0; kind < 4; kind++)
            {
                var (which, what, id) = (group, kind % 3, (group * 4) + kind);
                callers.Add(Task.Run(() => Caller(which, what, id)));
            }
        }

        try
        {
            await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            var stuck = Enumerable.Range(0, callers.Count).Where(id => !callers[id].IsCompleted).Select(id => at[id]);
            var states = held.Keys.Order().Select(key => partitions.PartitionOf(key) is { } p
                ? $"{key}: running {p.Running} waiting {p.Waiting} gate {p.HasGate} taken {p.IsTaken} pushed {p.HasPushed} sealed {p.IsSealed} loan covers 1 {p.Loan.Covers(1)}"
                : $"{key}: none");
            var routing = (OnTheWay)typeof(PartitionedGatekeeper).GetField("_routing", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(partitions)!;
            var probe = adapter.AcquireAsync("probe-after-timeout", 1).AsTask();
            var answered = await Task.WhenAny(probe, Task.Delay(TimeSpan.FromSeconds(5))) == probe;
            var terminated = partitions.Actor is Akka.Actor.ActorRefWithCell withCell && withCell.IsTerminated;
            Assert.Fail($"callers stuck: {string.Join("; ", stuck)}; on their way: {routing.Pending}; a new key's request answered: {answered}; "
                        + $"actor terminated: {terminated}; asserts: {string.Join(" | ", DebugAssertions.TakeFailures(Sys))}; "
                        + $"partitions: {string.Join("; ", states.Where(state => !state.EndsWith(": none", StringComparison.Ordinal)))}");
        }

        return new RaceOutcome(over, freshGrants, held.Keys);
    }
}
