using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A concurrency partition lends its free permits while nobody waits in it (<see cref="PartitionLoan"/>): callers claim
/// and give back without a message, never past a waiter, never from a dropped partition, and a sweep never drops a
/// partition whose permits were claimed.
/// </summary>
public sealed class PartitionLoanTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);
    private readonly FakeTimeProvider _clock = new();

    private PartitionedConcurrencyLimiter<string> NewLimiter(int maxRunning, int? maxQueued = null) =>
        new(new ConcurrencyLimit(maxRunning) { MaxQueued = maxQueued, TimeProvider = _clock }, IdleTimeout, "lent-keys", system: Sys);

    private static Partition PartitionOf(PartitionedConcurrencyLimiter<string> limiter, string key) =>
        ((IPartitionedLimiter<string>)limiter).Partitions.PartitionOf(key) ?? throw new InvalidOperationException($"{key} has no live partition");

    /// <summary>
    /// Makes <paramref name="key"/>'s partition by a first call through the actor, and waits until it lends all its
    /// permits, its turn is free and the actor has counted the call off. The call's grant completes in the partition's
    /// first turn, before that turn's rest lends and gives the turn back, and before the actor counts the request off
    /// (until then every claim is refused, so that nobody passes it): a claim or a take of the turn right after the
    /// lend alone could still find either.
    /// </summary>
    private async Task<Partition> Lending(PartitionedConcurrencyLimiter<string> limiter, string key)
    {
        (await Within(limiter.AcquireAsync(key).AsTask())).Dispose();
        var partition = PartitionOf(limiter, key);
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
        await Eventually(() => !partitions.IsRouting && !partition.IsTaken && partition.Loan.Covers(limiter.Limit.MaxRunning),
                         $"{key}'s partition lends its free permits, its turn is free and nothing is on its way to the actor");
        return partition;
    }

    /// <summary>A pusher's step after its push (<see cref="TurnInbox"/>'s <c>Pushed</c>), run late, as by a pusher the scheduler preempted between its push and it.</summary>
    private static void PushedLate(TurnInbox turn) =>
        typeof(TurnInbox).GetMethod("Pushed", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.Invoke(turn, null);

    /// <summary>Sweeps until <paramref name="key"/>'s partition is dropped (the clock moves a whole idle timeout each time).</summary>
    private Task SweptAway(PartitionedConcurrencyLimiter<string> limiter, string key) =>
        Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.StatisticsOf(key) is null; }, TimeSpan.FromSeconds(10), $"{key}'s partition was dropped");

    /// <summary>
    /// The RateLimiting view counts every lease in its key's partition: claimed from the loan (by AcquireAsync and by
    /// AttemptAcquire), probed, refused by an empty loan, refused by a full queue, granted by the actor; another key's totals stay 0, and a dropped partition's
    /// totals go with it.
    /// </summary>
    [Fact]
    public async Task The_views_lease_totals_of_a_key_are_its_partitions()
    {
        await using var limiter = NewLimiter(1, maxQueued: 0);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        await Lending(limiter, "a");
        await Lending(limiter, "b");

        using (var probe = adapter.AttemptAcquire("a", 0))
        {
            Assert.True(probe.IsAcquired, "the free permit is lent");
        }

        var claimed = adapter.AcquireAsync("a");
        Assert.True(claimed.IsCompletedSuccessfully, "claimed from the loan");
        using (var lease = await claimed)
        {
            Assert.True(lease.IsAcquired);
            using var refused = adapter.AttemptAcquire("a");
            using var refusedProbe = adapter.AttemptAcquire("a", 0);
            using var full = await Within(adapter.AcquireAsync("a").AsTask());
            Assert.False(refused.IsAcquired || refusedProbe.IsAcquired || full.IsAcquired, "the only permit is held and nobody may wait");
        }

        await Eventually(() => PartitionOf(limiter, "a").Loan.Covers(1), "a's partition lends its permit again");
        using (var attempt = adapter.AttemptAcquire("a"))
        {
            Assert.True(attempt.IsAcquired, "AttemptAcquire claims the lent permit");
        }

        Assert.Equal((3L, 3L), Totals(adapter.GetStatistics("a")!));
        Assert.Equal((0L, 0L), Totals(adapter.GetStatistics("b")!));

        await SweptAway(limiter, "a");
        Assert.Equal((0L, 0L), Totals(adapter.GetStatistics("a")!));
        using var again = await Within(adapter.AcquireAsync("a").AsTask());
        Assert.True(again.IsAcquired, "granted by the actor, which made the partition again");
        Assert.Equal((1L, 0L), Totals(adapter.GetStatistics("a")!));
    }

    private static (long Successful, long Failed) Totals(RateLimiterStatistics statistics) => (statistics.TotalSuccessfulLeases, statistics.TotalFailedLeases);

    [Fact]
    public async Task An_uncontended_partition_grants_and_takes_back_without_a_message()
    {
        await using var limiter = NewLimiter(2);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        await Lending(limiter, "a");

        var pending = limiter.AcquireAsync("a");
        using var attempt = adapter.AttemptAcquire("a");
        using var refused = adapter.AttemptAcquire("a");

        Assert.True(pending.IsCompletedSuccessfully, "claimed from the loan: no round trip");
        var claimed = await pending;
        Assert.True(claimed.LeaseId < 0, "a claimed lease is numbered apart from the partition's");
        Assert.True(attempt.IsAcquired, "AttemptAcquire claims the second permit");
        Assert.False(refused.IsAcquired, "both permits are claimed");
        Assert.True(refused.TryGetMetadata(MetadataName.ReasonPhrase, out var reason));
        Assert.Contains("lent-keys", reason, StringComparison.Ordinal);
        Assert.Equal(2, limiter.StatisticsOf("a")!.Running);

        claimed.Dispose();
        Assert.Equal(1, limiter.StatisticsOf("a")!.Running);
        using var again = adapter.AttemptAcquire("a");
        Assert.True(again.IsAcquired, "the permit went back into the loan");
    }

    [Fact]
    public void After_a_push_an_open_partition_loan_is_shut_with_its_unclaimed_set_aside_and_a_shut_one_is_left_as_it_is()
    {
        var open = new PartitionLoan();
        Assert.True(open.Lend(3)); // a later owner lent between the pusher's announce and its push
        Assert.True(open.TryClaim(1));
        open.ShutIfOpen();
        Assert.False(open.TryClaim(1), "nobody claims past the pushed op");
        Assert.True(open.Reclaim(out var unclaimed));
        Assert.Equal(2, unclaimed);

        var shut = new PartitionLoan();
        shut.ShutIfOpen();
        Assert.True(shut.Lend(1), "a shut loan is left plainly shut: the owner's next lend opens it");
    }

    [Fact]
    public async Task Permits_a_reclaim_takes_back_while_a_caller_waits_go_to_that_caller()
    {
        // The interleaving, driven by hand: the partition lent both permits; a caller that could not claim shut the loan
        // (its unclaimed permits set aside); a message whose reclaim came before the set-aside was visible queued a caller
        // behind permits that were only lent; the next reclaim takes them back and must hand them on, not just count them.
        var settings = new GatekeeperSettings(2, null, null, QueueFullMode.RejectNewcomer, "lent-keys", "lent-keys", new LimiterCounts(), _clock);
        var partition = new Partition("a", new PartitionShared(TestActor, settings, Sys.Log, new OnTheWay(), route: _ => { }));
        Assert.True(partition.TryTake(), "the test holds the partition's turn, as its owner would");
        partition.Lend();
        partition.Loan.Announce();
        var waiter = new PartitionAcquireRequest("a", "test", TestActor, signalQueued: false, permits: 2, priority: 0, timeout: null);
        var grant = waiter.WaitAsync(CancellationToken.None).AsTask();
        partition.Offer(waiter);
        Assert.Equal(1, partition.Waiting);

        partition.Reclaim();

        // Were they only counted free, the caller would wait for ever: nothing holds a permit to release into the partition.
        Assert.Equal(0, partition.Waiting);
        Assert.Equal(2, partition.Running);
        (await Within(grant)).Dispose(); // pushed to the test's turn: it runs as the turn is given back
        partition.GiveBack();
        Assert.Equal(0, partition.Running);
    }

    [Fact]
    public async Task An_owner_lending_as_a_request_is_pushed_never_opens_the_loan_past_it()
    {
        // The window the review found by reading: the owner read its turn idle and went to lend; a caller pushed its
        // request meanwhile (its call returns); the lend then opened the loan, and a later caller could claim the permit
        // before the owner's failed give-back ran the pushed request. The pusher now announces before it pushes, which
        // keeps a shut loan from opening. Driven by hand: the test is the owner.
        var settings = new GatekeeperSettings(1, null, null, QueueFullMode.RejectNewcomer, "lent-keys", "lent-keys", new LimiterCounts(), _clock);
        var partition = new Partition("a", new PartitionShared(TestActor, settings, Sys.Log, new OnTheWay(), route: _ => { }));
        Assert.True(partition.TryTake(), "the test holds the partition's turn, as its owner would");
        var pushed = new PartitionAcquireRequest("a", "pushed", TestActor, signalQueued: false, permits: 1, priority: 0, timeout: null);
        var grant = pushed.WaitAsync(CancellationToken.None).AsTask();

        Assert.True(partition.Submit(pushed), "pushed to the owner's turn");
        partition.Lend(); // the owner's rest, its lend landing just after the push

        Assert.False(partition.Loan.TryClaim(1), "a caller after the push claimed the permit the pushed request is owed");
        partition.GiveBack();
        (await Within(grant)).Dispose();
        Assert.Equal(0, partition.Running);
    }

    [Fact]
    public async Task A_release_pushed_to_a_busy_turn_is_lent_once_its_owner_ran_it_and_rests()
    {
        // PartitionLoanBargingReviewTests' flake (a key's partition never lent its free permit): a lease released while
        // the turn was still taken (the actor granting the key's first request) pushed its release and announced it; the
        // owner took the release with the rest of its turn, not after a failed give-back, so no reclaim answered the
        // announce, its rest lent nothing, and the partition stayed free and idle with its loan shut — every claim (the
        // adapter's AttemptAcquire) refused until some later turn. Driven by hand: the test is the owner.
        var settings = new GatekeeperSettings(1, null, null, QueueFullMode.RejectNewcomer, "lent-keys", "lent-keys", new LimiterCounts(), _clock);
        var partition = new Partition("a", new PartitionShared(TestActor, settings, Sys.Log, new OnTheWay(), route: _ => { }));
        Assert.True(partition.TryTake(), "the test holds the partition's turn, as its owner would");
        var first = new PartitionAcquireRequest("a", "first", TestActor, signalQueued: false, permits: 1, priority: 0, timeout: null);
        var grant = first.WaitAsync(CancellationToken.None).AsTask();
        partition.Offer(first);
        var lease = await Within(grant);

        lease.Dispose(); // the turn is taken: the release is pushed
        Assert.True(partition.HasPushed, "the release waits for the turn's owner");
        partition.GiveBack();

        Assert.False(partition.IsTaken, "the turn was given back");
        Assert.Equal(0, partition.Running);
        Assert.True(partition.Loan.Covers(1), "the partition, free and idle, lends its permit once it rests");
    }

    [Fact]
    public async Task A_pushers_shut_landing_after_its_op_ran_and_the_owner_lent_is_answered_too()
    {
        // Review of 221f230: a pusher announces (Pushing), pushes, and only then shuts an open loan (Pushed). A pusher
        // preempted between its push and its Pushed: the owner takes its release (TookPushed reclaims, answering the
        // announce), runs it and rests, lending the free permit; then the pusher's Pushed shuts that loan, setting the
        // permit aside. Its op ran, nothing is pushed, nobody waits: the partition, free and idle, refuses every claim
        // until some later turn (a sweep). Driven by hand: the test is the owner, and calls the
        // pusher's Pushed late.
        await using var limiter = NewLimiter(1);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var partition = await Lending(limiter, "a");
        var lease = limiter.AcquireAsync("a");
        Assert.True(lease.IsCompletedSuccessfully, "claimed from the loan");
        Assert.True(partition.TryTake(), "the test holds the partition's turn, as its owner would");
        (await lease).Dispose(); // pushed: announced, and the push landed ...
        Assert.True(partition.HasPushed, "the release waits for the turn's owner");
        partition.GiveBack(); // ... the owner took it (its announce answered), ran it, and lent as it rested
        Assert.True(partition.Loan.Covers(1), "the owner lent the free permit");

        PushedLate(partition); // ... and only now the pusher's Pushed runs

        Assert.False(partition.IsTaken);
        Assert.Equal(0, partition.Running);
        await Eventually(() => partition.Loan.Covers(1), "the partition, free and idle, lends its permit again");
        using var attempt = adapter.AttemptAcquire("a");
        Assert.True(attempt.IsAcquired, "a synchronous claim is served");
    }

    [Fact]
    public async Task A_reclaim_after_an_announce_shut_the_loan_takes_back_its_unclaimed_permits()
    {
        // The actor may reclaim on another core the instant an announce shuts the loan: the permits set aside must be
        // there by then (a reclaim that finds nothing counts lent permits as held, and queues callers behind them).
        var missed = 0;
        using var round = new Barrier(2);
        var loan = new PartitionLoan();
        var announcer = Task.Factory.StartNew(() =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                round.SignalAndWait();
                loan.Announce();
                round.SignalAndWait();
            }
        }, TaskCreationOptions.LongRunning);
        for (var i = 0; i < 10_000; i++)
        {
            loan = new PartitionLoan();
            loan.Lend(2);
            round.SignalAndWait();
            var spins = 0; // a hot spin (the race) that yields now and then: on a loaded machine the announcer may not run
            while (loan.Covers(1))
            {
                Poll.SpinStep(ref spins);
            }

            if (!loan.Reclaim(out var back) || back != 2)
            {
                missed++;
            }

            round.SignalAndWait();
        }

        await Within(announcer);
        Assert.Equal(0, missed);
    }

    [Fact]
    public async Task A_claim_never_passes_a_partitions_waiter()
    {
        await using var limiter = NewLimiter(2);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        await Lending(limiter, "a");
        var held = await limiter.AcquireAsync("a");
        var large = limiter.AcquireAsync("a", permits: 2).AsTask();
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 }, "the two-permit caller waits");

        // One permit is free, but the head of the queue wants two: nothing is lent, the newcomers queue or fail.
        using var attempt = adapter.AttemptAcquire("a");
        var small = limiter.AcquireAsync("a");

        Assert.False(attempt.IsAcquired, "AttemptAcquire passed the waiter");
        Assert.False(small.IsCompleted, "AcquireAsync passed the waiter");
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 2 }, "the newcomer waits behind the head");
        held.Dispose();
        var largeLease = await Within(large);
        Assert.False(small.IsCompleted);
        largeLease.Dispose();
        (await Within(small.AsTask())).Dispose();
    }

    [Fact]
    public async Task A_sweep_never_drops_a_partition_whose_permit_was_claimed()
    {
        await using var limiter = NewLimiter(1);
        await Lending(limiter, "a");
        var claimed = limiter.AcquireAsync("a");
        Assert.True(claimed.IsCompletedSuccessfully, "claimed from the loan");

        // No message reaches a's partition now: only the sweeps' reclaim can see the claim. A key made later and
        // dropped shows that enough sweeps ran to drop a too, were it idle.
        (await Within(limiter.AcquireAsync("idle").AsTask())).Dispose();
        await SweptAway(limiter, "idle");

        Assert.Equal(1, limiter.StatisticsOf("a")?.Running);
        var second = limiter.AcquireAsync("a").AsTask();
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 }, "the key's limit still holds: the second caller waits");
        (await claimed).Dispose();
        (await Within(second)).Dispose();
        Assert.Equal(2, limiter.PartitionsMade); // a and idle: a was never made again
    }

    [Fact]
    public async Task A_caller_that_found_a_partition_before_its_drop_cannot_claim_from_it()
    {
        await using var limiter = NewLimiter(2);
        var stale = await Lending(limiter, "a");

        await SweptAway(limiter, "a");

        Assert.False(stale.Loan.TryClaim(1), "claimed from a dropped partition: nobody counts it");
        Assert.False(stale.Loan.TryReturn(1));
        var fresh = await Within(limiter.AcquireAsync("a", permits: 2).AsTask());
        Assert.Equal(2, limiter.PartitionsMade);
        Assert.Equal(2, limiter.StatisticsOf("a")!.Running);
        fresh.Dispose();
    }

    [Fact]
    public async Task Claims_racing_with_queued_callers_and_sweeps_never_exceed_a_keys_limit_and_lose_nothing()
    {
        await using var limiter = NewLimiter(2);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        using var stop = new CancellationTokenSource();
        var sweeper = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                _clock.Advance(IdleTimeout);
                await Task.Delay(1);
            }
        });

        // Weighted claims, attempts and queued callers on keys that go idle (and are dropped) and come back.
        var held = new ConcurrentDictionary<string, int>();
        var overLimit = 0;
        using var enough = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var callers = Enumerable.Range(0, 6).Select(caller => InAnotherFlow(async () =>
        {
            // At least 600 rounds each, and on until 30 partitions were made (whether a key is idle when a sweep looks is up to
            // the scheduler: fast claims can run thousands of rounds between two sweeps), but not forever.
            for (var i = 0; (limiter.PartitionsMade < 30 && !enough.IsCancellationRequested) || i < 600; i++)
            {
                var key = $"key-{(caller + (i / 200)) % 4}";
                var permits = 1 + (i % 2);
                using var lease = caller % 3 == 0 ? adapter.AttemptAcquire(key, permits) : await limiter.AcquireAsync(key, permits);
                if (!lease.IsAcquired)
                {
                    await Task.Yield();
                    continue;
                }

                if (held.AddOrUpdate(key, permits, (_, now) => now + permits) > 2)
                {
                    Interlocked.Increment(ref overLimit);
                }

                await Task.Yield();
                held.AddOrUpdate(key, 0, (_, now) => now - permits);
            }
        }));
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await sweeper;

        Assert.Equal(0, overLimit);
        Assert.True(limiter.PartitionsMade > 4, $"partitions were dropped and made again amid the claims ({limiter.PartitionsMade} made)");
        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 0; }, TimeSpan.FromSeconds(10), "every partition went idle and was dropped");
    }
}
