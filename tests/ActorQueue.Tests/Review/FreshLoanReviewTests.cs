using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using ConcurrencyLimiter = ActorQueue.Actors.ConcurrencyLimiter;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A limiter is ready to lend from its construction: a free, just-made limiter grants the adapter's
/// <c>AttemptAcquire</c> and the facade's <c>AcquireAsync</c> at once, without waiting for its gatekeeper actor to
/// start (as RateLimiting's own limiters grant). Before, the loan opened only at the actor's start, a few milliseconds
/// after construction, and an attempt made before that was refused although nothing was held. Each test keeps the
/// gatekeeper from starting: the coordinator dispatcher has one thread, held busy (<see cref="HeldCoordinator"/>).
/// </summary>
public sealed class FreshLoanReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A fresh limiter of 2, its gatekeeper not yet started: an AttemptAcquire and an AcquireAsync are both granted at
    /// once and counted, a third attempt is refused, and the released leases come back to the pool: once the gatekeeper
    /// runs, it counts what is still held and grants a 2-permit call when the last lease is gone.
    /// Failed before: the attempt was refused ("granted before the gatekeeper started").
    /// </summary>
    [Fact]
    public async Task A_fresh_limiter_grants_before_its_gatekeeper_started_and_the_released_permits_come_back()
    {
        using var held = new HeldCoordinator();
        using var limiter = new ConcurrencyLimiter(2, name: "review-fresh-loan", system: held.System);
        var adapter = limiter.AsRateLimiter();

        var attempt = adapter.AttemptAcquire(1);
        Assert.True(attempt.IsAcquired, "granted before the gatekeeper started");
        var acquire = limiter.AcquireAsync("fresh");
        Assert.True(acquire.IsCompletedSuccessfully, "the facade's acquire is granted at once too");
        using var facadeLease = await acquire;
        Assert.Equal((2, 0), (limiter.RunningCount, limiter.AvailableCount));
        using (var third = adapter.AttemptAcquire(1))
        {
            Assert.False(third.IsAcquired, "never past the limit");
        }

        attempt.Dispose();
        Assert.Equal(1, limiter.RunningCount);
        Assert.False(held.Started, "the gatekeeper had not started yet");

        held.LetGo();
        var status = await limiter.Gatekeeper.Ask<Status>(GetStatus.Instance, TimeSpan.FromSeconds(20));
        Assert.Equal(1, status.Running);
        Assert.Equal(1, limiter.RunningCount);
        facadeLease.Dispose();
        using var both = await Within(limiter.AcquireAsync(permits: 2, waitTimeout: TimeSpan.FromSeconds(10)).AsTask());
        Assert.Equal(2, limiter.RunningCount);
        both.Dispose();
        Assert.Equal(0, (await limiter.Gatekeeper.Ask<Status>(GetStatus.Instance, TimeSpan.FromSeconds(20))).Running);
    }

    /// <summary>
    /// Eight threads race AttemptAcquire and AcquireAsync on a fresh limiter of 3 whose gatekeeper has not started:
    /// exactly 3 are granted at once; the others' acquires go to the gatekeeper and are served, in turn, as the three
    /// leases come back, never more than 3 at a time. Failed before: none was granted at once.
    /// </summary>
    [Fact]
    public async Task Racing_claimers_at_construction_get_exactly_the_limit_and_the_rest_are_served_in_turn()
    {
        using var held = new HeldCoordinator();
        using var limiter = new ConcurrencyLimiter(3, name: "review-fresh-race", system: held.System);
        var adapter = limiter.AsRateLimiter();
        using var start = new Barrier(8);
        // Dedicated threads: eight pool threads blocked at a barrier wait for the pool to grow, which a busy suite can
        // delay past the test's patience (CI timed out here once).
        var claims = Enumerable.Range(0, 8).Select(i => Task.Factory.StartNew<(IDisposable? Sync, Task<ConcurrencyLease>? Async)>(() =>
        {
            start.SignalAndWait();
            if (i % 2 == 0)
            {
                var lease = adapter.AttemptAcquire(1);
                return (lease.IsAcquired ? lease : null, null);
            }

            var acquire = limiter.AcquireAsync($"racer {i}");
            return acquire.IsCompletedSuccessfully ? (acquire.Result, null) : (null, acquire.AsTask());
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        var results = await Within(Task.WhenAll(claims));
        var granted = results.Where(result => result.Sync is not null).Select(result => result.Sync!).ToList();
        var waiting = results.Where(result => result.Async is not null).Select(result => result.Async!).ToList();

        Assert.Equal(3, granted.Count);
        Assert.Equal(3, limiter.RunningCount);
        Assert.False(held.Started, "the gatekeeper had not started yet");

        held.LetGo();
        foreach (var lease in granted)
        {
            lease.Dispose();
            Assert.True(limiter.RunningCount <= 3);
        }

        foreach (var wait in waiting)
        {
            (await Within(wait)).Dispose();
        }

        Assert.Equal(0, (await limiter.Gatekeeper.Ask<Status>(GetStatus.Instance, TimeSpan.FromSeconds(20))).Running);
    }

    /// <summary>
    /// A fresh limiter of 4 shrunk to 1 before its gatekeeper started, with one permit claimed: no claim is served on
    /// the old limit once Resize returned, and once the gatekeeper applied the shrink and the lease came back, one
    /// permit is lent, not four. Failed before: the first claim was refused.
    /// </summary>
    [Fact]
    public async Task A_shrink_racing_the_start_serves_no_claim_on_the_old_limit()
    {
        using var held = new HeldCoordinator();
        using var limiter = new ConcurrencyLimiter(4, name: "review-fresh-resize", system: held.System);
        var adapter = limiter.AsRateLimiter();
        var first = adapter.AttemptAcquire(1);
        Assert.True(first.IsAcquired, "granted before the gatekeeper started");

        limiter.Resize(maxRunning: 1);
        using (var after = adapter.AttemptAcquire(1))
        {
            Assert.False(after.IsAcquired, "no claim on the old limit once Resize returned");
        }

        held.LetGo();
        await Eventually(() => !limiter.Loan.HasAnnounced, "the shrink is applied");
        Assert.Equal(1, (await limiter.Gatekeeper.Ask<Status>(GetStatus.Instance, TimeSpan.FromSeconds(20))).MaxRunning);
        first.Dispose();
        await Eventually(() => limiter.Loan.Unclaimed == 1, "one permit lent once the lease came back");
        using var again = adapter.AttemptAcquire(1);
        Assert.True(again.IsAcquired);
        using var over = adapter.AttemptAcquire(1);
        Assert.False(over.IsAcquired);
    }

    /// <summary>
    /// A fresh limiter disposed before its gatekeeper started, with a permit claimed and a caller waiting: the waiter
    /// fails as disposed, later calls throw, and the claimed lease's release is harmless. Failed before: the claim was refused.
    /// </summary>
    [Fact]
    public async Task A_limiter_disposed_before_its_gatekeeper_started_fails_its_waiter_and_drops_the_claimed_lease()
    {
        using var held = new HeldCoordinator();
        var limiter = new ConcurrencyLimiter(1, name: "review-fresh-dispose", system: held.System);
        var adapter = limiter.AsRateLimiter();
        var claimed = adapter.AttemptAcquire(1);
        Assert.True(claimed.IsAcquired, "granted before the gatekeeper started");
        var waiter = limiter.AcquireAsync("waits").AsTask();

        var disposed = limiter.DisposeAsync().AsTask();
        held.LetGo();
        await Within(disposed);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(waiter));
        Assert.Throws<ObjectDisposedException>(() => { adapter.AttemptAcquire(1); });
        claimed.Dispose();
        Assert.Equal(0, limiter.RunningCount);
    }

    /// <summary>
    /// An actor's Acquire sent to a fresh limiter's gatekeeper before it started, then a facade claim: the claim is
    /// granted at once (an actor cannot announce; a facade claim made while its Acquire is in the mailbox may pass it,
    /// as docs/ARCHITECTURE.md says), the actor waits in the gatekeeper's queue and is granted when the claimed lease
    /// comes back. Failed before: the facade claim was refused.
    /// </summary>
    [Fact]
    public async Task An_actors_acquire_in_the_mailbox_at_construction_is_served_when_the_claimed_permit_comes_back()
    {
        using var held = new HeldCoordinator();
        using var limiter = new ConcurrencyLimiter(1, name: "review-fresh-actor", system: held.System);
        var actor = CreateTestProbe(held.System);
        limiter.Gatekeeper.Tell(new Acquire("actor", 7), actor.Ref);
        var claimed = limiter.AsRateLimiter().AttemptAcquire(1);
        Assert.True(claimed.IsAcquired, "granted before the gatekeeper started");

        held.LetGo();
        Assert.Equal(7, (await actor.ExpectMsgAsync<Queued>(TimeSpan.FromSeconds(20))).RequestId); // it waits behind the claimed permit
        claimed.Dispose();
        var granted = await actor.ExpectMsgAsync<Granted>(TimeSpan.FromSeconds(20));
        Assert.Equal(7, granted.RequestId);
        Assert.Equal(1, limiter.RunningCount);
        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), actor.Ref);
        await Eventually(() => limiter.RunningCount == 0, "the actor's lease comes back");
    }

    /// <summary>
    /// A fresh model-API limiter (8 slots, 500 requests, 1000 tokens a minute) whose gatekeeper has not started: an
    /// AttemptAcquire of 600 tokens and a facade acquire of 300 are granted at once; 200 more are refused (100 left); once
    /// the gatekeeper runs, its rates counted them: a zero-timeout call of 200 is refused, one of 100 granted, and the
    /// released slots are back. Failed before: the attempt was refused.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task A_fresh_model_api_limiter_grants_before_its_gatekeeper_started_and_its_rates_count_the_claims(int? segments)
    {
        var clock = new FakeTimeProvider();
        using var held = new HeldCoordinator();
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = clock, SlidingWindowSegments = segments },
                                                      "review-fresh-model", system: held.System);
        var adapter = limiter.AsRateLimiter();

        var attempt = adapter.AttemptAcquire(600);
        Assert.True(attempt.IsAcquired, "granted before the gatekeeper started");
        var acquire = limiter.AcquireAsync(300);
        Assert.True(acquire.IsCompletedSuccessfully, "the facade's acquire is granted at once too");
        using var lease = await acquire;
        Assert.Equal(2, limiter.RunningCount);
        using (var over = adapter.AttemptAcquire(200))
        {
            Assert.False(over.IsAcquired, "only 100 tokens are left");
        }

        attempt.Dispose();
        Assert.False(held.Started, "the gatekeeper had not started yet");

        held.LetGo();
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(200, waitTimeout: TimeSpan.Zero).AsTask()));
        using var last = await Within(limiter.AcquireAsync(100, waitTimeout: TimeSpan.Zero).AsTask());
        lease.Dispose();
        last.Dispose();
        await Eventually(() => limiter.RunningCount == 0, "the slots are back");
        var status = await limiter.Gatekeeper.Ask<Status>(GetStatus.Instance, TimeSpan.FromSeconds(20));
        Assert.Equal(0, status.Running);
    }

    /// <summary>
    /// A model-API adapter (a 1000-token bucket a minute) whose loan was spent down to 100 tokens, with a call of 800
    /// waiting in the queue: at 0:10 an AttemptAcquire of 400 is refused, and its lease says when to retry counting the
    /// demand queued ahead, as RateLimiting's TokenBucketRateLimiter does and as the gatekeeper's own refusal of a
    /// zero-timeout call of 400 says: 800 + 400 − 100 = 1100 tokens take two refills, 2:00, 110 s away (without the
    /// queue, one: 50 s). An attempt of 100 needs one refill (800 + 100 − 100 = 800): 50 s. The same with sliding
    /// windows of six 10 s segments (the 0:00 segment that took the minute's tokens slides out at 1:00, the next minute's
    /// grants at 2:00). Failed before: the refusal carried no RetryAfter ("the refusal says when to retry").
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task An_attempt_refused_while_someone_waits_says_when_to_retry_counting_the_queue(int? segments)
    {
        var clock = new FakeTimeProvider();
        var options = new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = clock, SlidingWindowSegments = segments, WaitTimeout = TimeSpan.Zero };
        using var limiter = new ModelApiLimiter(options, "review-queued-retry", system: Sys);
        var adapter = limiter.AsRateLimiter();
        using var spent = await Within(limiter.AcquireAsync(900).AsTask());
        var queued = limiter.AcquireAsync(800, waitTimeout: Timeout.InfiniteTimeSpan).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the call of 800 waits");
        await limiter.Gatekeeper.Ask<Status>(GetStatus.Instance, TimeSpan.FromSeconds(20)); // the message that queued it has ended
        clock.Advance(TimeSpan.FromSeconds(10));

        using var refused = adapter.AttemptAcquire(400);
        using var small = adapter.AttemptAcquire(100);
        using var gatekeepers = await Within(adapter.AcquireAsync(400).AsTask()); // a zero wait timeout: the gatekeeper refuses it

        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter), "the refusal says when to retry");
        Assert.Equal(TimeSpan.FromSeconds(110), retryAfter);
        Assert.True(gatekeepers.TryGetMetadata(MetadataName.RetryAfter, out var gatekeepersRetryAfter), "the gatekeeper's refusal says when to retry");
        Assert.Equal(gatekeepersRetryAfter, retryAfter);
        Assert.True(small.TryGetMetadata(MetadataName.RetryAfter, out var smallRetryAfter), "the small refusal says when to retry");
        Assert.Equal(TimeSpan.FromSeconds(50), smallRetryAfter);
        Assert.False(queued.IsCompleted);
    }
}

/// <summary>
/// An actor system whose coordinator dispatcher (where gatekeepers run) has one thread, kept busy until
/// <see cref="LetGo"/>: a limiter made on it cannot have started its gatekeeper (shared by the review tests that need one).
/// </summary>
internal sealed class HeldCoordinator : IDisposable
{
    private readonly ManualResetEventSlim _busy = new(false);
    private readonly SemaphoreSlim _entered = new(0);

    public HeldCoordinator()
    {
        var config = ConfigurationFactory.ParseString("""
            actorqueue.coordinator-dispatcher {
              type = Dispatcher
              executor = fork-join-executor
              fork-join-executor { parallelism-min = 1, parallelism-factor = 1.0, parallelism-max = 1 }
            }
            akka.loglevel = WARNING
            """).WithFallback(ActorQueueRuntime.DefaultConfig);
        System = ActorSystem.Create("review-fresh-loan", config);
        System.ActorOf(Props.Create(() => new Blocker(_busy, _entered)).WithDispatcher("actorqueue.coordinator-dispatcher")).Tell("block");
        Assert.True(_entered.Wait(TimeSpan.FromSeconds(20)), "the dispatcher's one thread is busy");
    }

    public ActorSystem System { get; }

    /// <summary>Whether the thread was let go (until then no gatekeeper on it can have started).</summary>
    public bool Started => _busy.IsSet;

    public void LetGo() => _busy.Set();

    public void Dispose()
    {
        _busy.Set();
        System.Dispose();
        _busy.Dispose();
        _entered.Dispose();
    }
}

/// <summary>Keeps its dispatcher's thread until let go.</summary>
internal sealed class Blocker : ReceiveActor
{
    public Blocker(ManualResetEventSlim busy, SemaphoreSlim entered) =>
        Receive<string>(_ =>
        {
            entered.Release();
            busy.Wait(TimeSpan.FromSeconds(30));
        });
}
