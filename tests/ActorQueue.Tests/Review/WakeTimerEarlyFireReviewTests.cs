using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>Review of the wake timer: wakes that fire early or interleave are set again, and on the system clock every limiter kind times out and refills its waiters (kept as coverage).</summary>
public sealed class WakeTimerEarlyFireReviewTests : WakeTimerReviewBase, IDisposable
{
    // ---------------------------------------------------------------- held up (kept as coverage)

    /// <summary>The partitioned limiter's actor: a wake that came before the deadline is set again, and the waiter times out.</summary>
    [Fact]
    public async Task Partitioned_limiter_wake_before_the_deadline_is_set_again_and_the_waiter_times_out()
    {
        var clock = new EarlyTimersClock(Ms);
        using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1) { TimeProvider = clock }, TimeSpan.FromMinutes(10),
                                                                      "review-partitioned-early", system: Sys);
        using var held = await Within(limiter.AcquireAsync("k").AsTask());
        var waiting = limiter.AcquireAsync("k", waitTimeout: TimeSpan.FromMilliseconds(10)).AsTask();
        await Eventually(() => clock.OneShotSets >= 1, "the actor set its wake for the waiter");

        var sets = clock.OneShotSets;
        clock.Fake.Advance(TimeSpan.FromMilliseconds(9.5)); // its wake, set for 10 ms, comes at 9
        await Eventually(() => clock.OneShotSets > sets, "the actor handled the early wake and set it again");
        Assert.False(waiting.IsCompleted, "not yet due");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(0.5));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting));
    }

    /// <summary>The durable router's delayed item: a due tick that came early is set again, and the item runs at its time.</summary>
    [Fact]
    public async Task Durable_delayed_item_early_due_tick_is_set_again_and_the_item_runs_at_its_time()
    {
        _store = new DurableStore(Sys);
        var clock = new EarlyTimersClock(Ms);
        await using var queue = new BoundedQueue<int>(100, _store.Durability(clock), DurableStore.UniqueName("review-early-due"), system: Sys);
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(item =>
        {
            ran.TrySetResult(item);
            return Task.CompletedTask;
        }, numWorkers: 1);
        Assert.True(await Within(queue.PutAsync(1, priority: 0, notBefore: clock.GetUtcNow().AddMinutes(1))));
        await QueueStatusOf(queue);

        clock.Fake.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromMilliseconds(0.5)); // its tick, set for a minute, comes 1 ms early
        var status = await QueueStatusOf(queue); // the router handled that tick: nothing was due
        Assert.Equal((1, 0L), (status.Size, status.Metrics.InFlight));
        Assert.False(ran.Task.IsCompleted, "not yet due");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(0.5));
        Assert.Equal(1, await Within(ran.Task));
    }

    /// <summary>
    /// A model-API gatekeeper (rates: no turn, straight from the mailbox): GateWakes told by someone else (as the
    /// adapter's <c>Refused</c> asks for a loan renewal) interleave with an early timer fire; the waiter still times out
    /// exactly at its deadline.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task Model_api_foreign_wakes_and_an_early_fire_interleave_and_the_waiter_times_out(int? segments)
    {
        var clock = new EarlyTimersClock(Ms);
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(1, 1000, 1_000_000, TimeSpan.FromMinutes(1))
        {
            TimeProvider = clock, SlidingWindowSegments = segments,
        }, "review-foreign-wakes", system: Sys);
        using var held = await Within(limiter.AcquireAsync(1).AsTask());
        var waiting = limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(10)).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second call waits");
        await StatusOf(limiter.Gatekeeper);

        clock.Fake.Advance(TimeSpan.FromMilliseconds(5));
        limiter.Gatekeeper.Tell(GateWake.Instance, ActorRefs.NoSender);
        await StatusOf(limiter.Gatekeeper);
        clock.Fake.Advance(TimeSpan.FromMilliseconds(4.5)); // the timer (set for 10 ms) fires at 9
        limiter.Gatekeeper.Tell(GateWake.Instance, ActorRefs.NoSender);
        await StatusOf(limiter.Gatekeeper);
        Assert.False(waiting.IsCompleted, "not yet due");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(0.5));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting));
    }

    /// <summary>A rate wake (the head fits the rate again) that fires early is set again; the waiter is granted at the refill.</summary>
    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task Model_api_rate_wake_that_fires_early_is_set_again_and_the_waiter_is_granted_at_the_refill(int? segments)
    {
        var clock = new EarlyTimersClock(Ms);
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 1, 1_000_000, TimeSpan.FromMinutes(1))
        {
            TimeProvider = clock, SlidingWindowSegments = segments,
        }, "review-rate-early", system: Sys);
        using (await Within(limiter.AcquireAsync(1).AsTask()))
        {
            // the minute's one request, spent
        }

        var waiting = limiter.AcquireAsync(1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second call waits for the refill");
        await StatusOf(limiter.Gatekeeper);
        var step = TimeSpan.FromMinutes(1); // a bucket refills a minute on; a window frees the spent segment a minute on

        clock.Fake.Advance(step - TimeSpan.FromMilliseconds(0.5)); // the wake, set for the refill, fires 1 ms early
        await StatusOf(limiter.Gatekeeper);
        Assert.False(waiting.IsCompleted, "the rate has not refilled yet");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(0.5));
        using var granted = await Within(waiting);
    }

    /// <summary>The same for a partitioned model-API limiter: its partition's rate wake goes through the shared actor's timer.</summary>
    [Fact]
    public async Task Partitioned_model_api_rate_wake_that_fires_early_is_set_again_and_the_waiter_is_granted_at_the_refill()
    {
        var clock = new EarlyTimersClock(Ms);
        using var limiter = new PartitionedModelApiLimiter<string>(new ModelApiLimiterOptions(8, 1, 1_000_000, TimeSpan.FromMinutes(1)) { TimeProvider = clock },
                                                                   TimeSpan.FromMinutes(10), "review-partitioned-rate-early", system: Sys);
        using (await Within(limiter.AcquireAsync("k", 1).AsTask()))
        {
            // the minute's one request, spent
        }

        var sets = clock.OneShotSets;
        var waiting = limiter.AcquireAsync("k", 1).AsTask();
        await Eventually(() => clock.OneShotSets > sets, "the actor set its wake for the refill");

        sets = clock.OneShotSets;
        clock.Fake.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromMilliseconds(0.5)); // fires 1 ms early
        await Eventually(() => clock.OneShotSets > sets, "the actor handled the early wake and set it again");
        Assert.False(waiting.IsCompleted, "the rate has not refilled yet");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(0.5));
        using var granted = await Within(waiting);
    }

    /// <summary>A withdrawn waiter moves the next deadline later while an early timer is in play: the other waiter still times out.</summary>
    [Fact]
    public async Task A_withdrawal_moves_the_deadline_and_the_remaining_waiter_still_times_out_with_early_timers()
    {
        var clock = new EarlyTimersClock(Ms);
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1) { TimeProvider = clock }, "review-withdraw-early", system: Sys);
        using var held = await Within(limiter.AcquireAsync(1).AsTask());
        using var cancel = new CancellationTokenSource();
        var first = limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(10), cancellationToken: cancel.Token).AsTask();
        var second = limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(20)).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "both wait");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(5));
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(first));
        await Eventually(() => limiter.WaitingCount == 1, "the first withdrew");
        await StatusOf(limiter.Gatekeeper);

        clock.Fake.Advance(TimeSpan.FromMilliseconds(14.5)); // a stale 10 ms wake, then the 20 ms one early at 19
        await StatusOf(limiter.Gatekeeper);
        Assert.False(second.IsCompleted, "not yet due");

        clock.Fake.Advance(TimeSpan.FromMilliseconds(0.5));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(second));
    }

    /// <summary>On the system clock, with nothing else happening: each limiter kind times out one waiter after another (odd timeouts).</summary>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("model-api-bucket")]
    [InlineData("model-api-window")]
    [InlineData("partitioned-model-api")]
    public async Task On_the_system_clock_each_limiter_kind_times_out_one_waiter_after_another(string kind)
    {
        await using var subject = await Subject.Create(kind, Sys, Within);
        for (var i = 0; i < 12; i++)
        {
            var timeout = TimeSpan.FromTicks(20_500 + (i * 1_170));
            await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(subject.Acquire(timeout)));
        }
    }

    /// <summary>On the system clock: 24 concurrent waiters with distinct odd timeouts all time out, for each limiter kind.</summary>
    [Theory]
    [InlineData("local")]
    [InlineData("partitioned")]
    [InlineData("model-api-bucket")]
    [InlineData("model-api-window")]
    [InlineData("partitioned-model-api")]
    public async Task On_the_system_clock_concurrent_waiters_with_odd_timeouts_all_time_out(string kind)
    {
        await using var subject = await Subject.Create(kind, Sys, Within);
        var waits = Enumerable.Range(0, 24).Select(i => subject.Acquire(TimeSpan.FromTicks(30_300 + (i * 7_130)))).ToList();
        foreach (var wait in waits)
        {
            await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(wait));
        }
    }

    /// <summary>On the system clock, rate wakes: a spent rate is waited for, one refill after another, for a bucket and a window.</summary>
    [Theory]
    [InlineData(null)]
    [InlineData(3)]
    public async Task On_the_system_clock_a_spent_rate_wakes_its_waiter_one_refill_after_another(int? segments)
    {
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 1, 1_000_000, TimeSpan.FromTicks(213_369)) { SlidingWindowSegments = segments },
                                                "review-rate-wakes", system: Sys);
        for (var i = 0; i < 10; i++)
        {
            using var lease = await Within(limiter.AcquireAsync(1).AsTask());
        }
    }

    /// <summary>One limiter of a kind with its only permit held: <see cref="Acquire"/> then waits until its timeout.</summary>
    private sealed class Subject : IAsyncDisposable
    {
        private readonly List<IDisposable> _owned = [];

        public required Func<TimeSpan, Task> Acquire { get; init; }

        public static async Task<Subject> Create(string kind, ActorSystem system, Func<Task<IDisposable>, Task<IDisposable>> within)
        {
            var name = "review-" + kind;
            var rates = new ModelApiLimiterOptions(1, 100_000, 100_000_000, TimeSpan.FromMinutes(1));
            switch (kind)
            {
                case "local":
                {
                    var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1), name, system: system);
                    var held = await within(Lease(limiter.AcquireAsync(1).AsTask()));
                    return new Subject { Acquire = timeout => limiter.AcquireAsync(1, waitTimeout: timeout).AsTask() }.Own(held, limiter);
                }
                case "partitioned":
                {
                    var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.FromMinutes(10), name, system: system);
                    var held = await within(Lease(limiter.AcquireAsync("k").AsTask()));
                    return new Subject { Acquire = timeout => limiter.AcquireAsync("k", waitTimeout: timeout).AsTask() }.Own(held, limiter);
                }
                case "model-api-bucket":
                case "model-api-window":
                {
                    var options = kind == "model-api-window" ? rates with { SlidingWindowSegments = 6 } : rates;
                    var limiter = new ModelApiLimiter(options, name, system: system);
                    var held = await within(Lease(limiter.AcquireAsync(1).AsTask()));
                    return new Subject { Acquire = timeout => limiter.AcquireAsync(1, waitTimeout: timeout).AsTask() }.Own(held, limiter);
                }
                default:
                {
                    var limiter = new PartitionedModelApiLimiter<string>(rates, TimeSpan.FromMinutes(10), name, system: system);
                    var held = await within(Lease(limiter.AcquireAsync("k", 1).AsTask()));
                    return new Subject { Acquire = timeout => limiter.AcquireAsync("k", 1, waitTimeout: timeout).AsTask() }.Own(held, limiter);
                }
            }
        }

        private static async Task<IDisposable> Lease<T>(Task<T> acquire) where T : IDisposable => await acquire;

        private Subject Own(params IDisposable[] owned)
        {
            _owned.AddRange(owned);
            return this;
        }

        public ValueTask DisposeAsync()
        {
            foreach (var owned in _owned)
            {
                owned.Dispose();
            }

            return ValueTask.CompletedTask;
        }
    }
}
