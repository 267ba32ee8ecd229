using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Limiting;

/// <summary>pydantic-ai's limiter behaviours, and the FIFO, cancellation and disposal guarantees around them.</summary>
public class ConcurrencyLimiterTests : ActorQueueTestKit
{
    private ConcurrencyLimiter NewLimiter(int maxRunning, int? maxQueued = null, string? name = null) =>
        new(maxRunning, maxQueued, name, system: Sys);

    /// <summary>Starts an acquire and waits until the gatekeeper has queued it, so arrival order is known.</summary>
    private async Task<Task<ConcurrencyLease>> QueueWaiterAsync(ConcurrencyLimiter limiter, string source, CancellationToken cancellationToken = default)
    {
        var before = limiter.WaitingCount;
        var pending = limiter.AcquireAsync(source, cancellationToken).AsTask();
        await Eventually(() => limiter.WaitingCount == before + 1, $"{source} should be waiting");
        return pending;
    }

    [Fact]
    public async Task Waiting_count_tracks_callers_queued_behind_a_holder()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("test");
        Assert.Equal(0, limiter.WaitingCount);

        var waiters = new List<Task<ConcurrencyLease>>();
        for (var i = 0; i < 3; i++)
        {
            waiters.Add(await QueueWaiterAsync(limiter, "test"));
        }

        Assert.Equal(3, limiter.WaitingCount);
        Assert.All(waiters, w => Assert.False(w.IsCompleted));

        holder.Dispose();
        foreach (var waiter in waiters)
        {
            (await Within(waiter)).Dispose();
        }

        await Eventually(() => limiter.WaitingCount == 0 && limiter.RunningCount == 0, "every waiter ran and released");
    }

    [Fact]
    public async Task A_free_slot_is_granted_at_once_and_counted()
    {
        var limiter = NewLimiter(2);
        var lease = await limiter.AcquireAsync("test");

        // The gatekeeper publishes its counts before it answers, so they include the slot as soon as the call returns.
        Assert.Equal(1, limiter.RunningCount);
        Assert.Equal(1, limiter.AvailableCount);
        Assert.Equal(0, limiter.WaitingCount);
        Assert.Equal("test", lease.Source);
        lease.Dispose();
        await Eventually(() => limiter.RunningCount == 0 && limiter.AvailableCount == 2, "slot returned");
    }

    [Fact]
    public async Task Exceeding_max_queued_throws_with_the_pydantic_message_and_changes_no_count()
    {
        var limiter = NewLimiter(1, maxQueued: 2);
        using var holder = await limiter.AcquireAsync("test");
        await QueueWaiterAsync(limiter, "test");
        await QueueWaiterAsync(limiter, "test");

        var ex = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => limiter.AcquireAsync("test").AsTask());

        Assert.Equal("Concurrency queue depth (3) exceeds max_queued (2) for test", ex.Message);
        Assert.Equal(2, limiter.WaitingCount);
        Assert.Equal(1, limiter.RunningCount);
    }

    [Fact]
    public async Task Rejection_message_names_the_limiter_when_it_has_a_name()
    {
        var limiter = NewLimiter(1, maxQueued: 0, name: "gpu-pool");
        using var holder = await limiter.AcquireAsync("job-1");

        var ex = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => limiter.AcquireAsync("job-2").AsTask());

        Assert.Equal("Concurrency queue depth (1) exceeds max_queued (0) for gpu-pool", ex.Message);
        Assert.Equal(0, ex.MaxQueued);
        Assert.Equal("gpu-pool", ex.Target);
    }

    [Fact]
    public async Task Max_queued_zero_still_grants_a_free_slot_immediately()
    {
        var limiter = NewLimiter(2, maxQueued: 0);
        using var first = await limiter.AcquireAsync("a");
        using var second = await limiter.AcquireAsync("b");
        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => limiter.AcquireAsync("c").AsTask());
    }

    [Fact]
    public async Task Max_queued_is_enforced_atomically_when_many_callers_arrive_together()
    {
        var limiter = NewLimiter(1, maxQueued: 1);
        var holder = await limiter.AcquireAsync("holder");
        const int concurrent = 5;
        using var barrier = new Barrier(concurrent);

        // Dedicated threads until the barrier opens (pool threads blocked there wait for the pool to grow).
        var attempts = Enumerable.Range(0, concurrent).Select(i => Task.Factory.StartNew(async () =>
        {
            barrier.SignalAndWait();
            try
            {
                using var lease = await limiter.AcquireAsync($"task-{i}");
                return "acquired";
            }
            catch (ConcurrencyLimitExceededException)
            {
                return "rejected";
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap()).ToArray();

        await Eventually(() => attempts.Count(a => a.IsCompleted) == concurrent - 1, "all but one answered");
        holder.Dispose();
        var results = await Task.WhenAll(attempts);

        Assert.Equal(1, results.Count(r => r == "acquired"));
        Assert.Equal(concurrent - 1, results.Count(r => r == "rejected"));
    }

    [Fact]
    public async Task Waiters_are_granted_in_arrival_order()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var order = new List<int>();
        var waiters = new List<Task>();
        for (var i = 0; i < 10; i++)
        {
            var index = i;
            var pending = await QueueWaiterAsync(limiter, $"w{i}");
            waiters.Add(pending.ContinueWith(t =>
            {
                lock (order)
                {
                    order.Add(index);
                }

                t.Result.Dispose();
            }, TaskScheduler.Default));
        }

        holder.Dispose();
        await Within(Task.WhenAll(waiters));

        Assert.Equal(Enumerable.Range(0, 10), order);
    }

    [Fact]
    public async Task A_newcomer_does_not_barge_ahead_of_a_waiter_when_a_slot_frees()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var waiter = await QueueWaiterAsync(limiter, "waiter");

        holder.Dispose();
        var newcomer = limiter.AcquireAsync("newcomer").AsTask();

        var waiterLease = await Within(waiter);
        await Eventually(() => limiter.WaitingCount == 1, "the newcomer waits behind the waiter");
        Assert.False(newcomer.IsCompleted);
        waiterLease.Dispose();
        (await Within(newcomer)).Dispose();
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_no_slot_behind_and_the_next_waiter_gets_the_slot()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        using var cts = new CancellationTokenSource();
        var cancelled = await QueueWaiterAsync(limiter, "cancelled", cts.Token);
        var next = await QueueWaiterAsync(limiter, "next");

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(cancelled));
        await Eventually(() => limiter.WaitingCount == 1, "the cancelled waiter left the queue");
        holder.Dispose();
        var lease = await Within(next);
        Assert.Equal("next", lease.Source);
        lease.Dispose();
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "nothing leaked");
    }

    [Fact]
    public async Task A_pre_cancelled_token_takes_nothing()
    {
        var limiter = NewLimiter(1);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => limiter.AcquireAsync("x", cts.Token).AsTask());

        using var lease = await limiter.AcquireAsync("y");
        Assert.Equal("y", lease.Source);
        await Eventually(() => limiter.RunningCount == 1, "only the second caller holds a slot");
    }

    [Fact]
    public async Task A_cancellation_storm_ends_with_nothing_running_and_nothing_waiting()
    {
        var limiter = NewLimiter(3);
        var random = new Random(1234);
        var acquiredCount = 0;
        var cancelledCount = 0;
        var running = 0;
        var maxRunning = 0;

        var plans = Enumerable.Range(0, 400).Select(_ => (Cancel: random.Next(2) == 0, AfterMs: random.Next(0, 20))).ToArray();

        async Task Caller(int i)
        {
            using var cts = new CancellationTokenSource();
            if (plans[i].Cancel)
            {
                cts.CancelAfter(TimeSpan.FromMilliseconds(plans[i].AfterMs));
            }

            try
            {
                using var lease = await limiter.AcquireAsync($"caller-{i}", cts.Token);
                var now = Interlocked.Increment(ref running);
                Poll.InterlockedMax(ref maxRunning, now);
                Interlocked.Increment(ref acquiredCount);
                await Task.Yield();
                Interlocked.Decrement(ref running);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref cancelledCount);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, plans.Length).Select(i => Task.Run(() => Caller(i))));

        Assert.Equal(400, acquiredCount + cancelledCount);
        Assert.True(maxRunning <= 3, $"at most 3 ran at once, saw {maxRunning}");
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "the storm leaves nothing behind");
        var status = await limiter.Gatekeeper.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
    }

    [Fact]
    public async Task An_exception_inside_the_guarded_block_releases_the_slot_and_propagates_unchanged()
    {
        var limiter = NewLimiter(1);
        var boom = new InvalidOperationException("boom");

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            limiter.RunAsync<int>(_ => throw boom, "failing"));

        Assert.Same(boom, thrown);
        await Eventually(() => limiter.RunningCount == 0, "the slot came back");
        Assert.Equal(7, await limiter.RunAsync(_ => Task.FromResult(7), "after"));
    }

    [Fact]
    public async Task Disposing_a_lease_twice_releases_one_slot_only()
    {
        var limiter = NewLimiter(2);
        var first = await limiter.AcquireAsync("first");
        using var second = await limiter.AcquireAsync("second");
        await Eventually(() => limiter.RunningCount == 2, "two held");

        first.Dispose();
        await first.DisposeAsync();
        first.Dispose();

        Assert.True(first.IsReleased);
        await Eventually(() => limiter.RunningCount == 1, "one came back");
        var status = await limiter.Gatekeeper.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance);
        Assert.Equal(1, status.Running);
    }

    [Fact]
    public async Task After_dispose_waiters_and_new_callers_get_ObjectDisposedException()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var waiter = await QueueWaiterAsync(limiter, "waiter");

        await limiter.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiter);
        Assert.Throws<ObjectDisposedException>(() => limiter.AcquireAsync("late"));
        holder.Dispose(); // releasing after dispose is harmless
        Assert.Equal(0, limiter.WaitingCount);
        await limiter.DisposeAsync();
        limiter.Dispose();
    }

    [Fact]
    public async Task A_call_that_reaches_a_stopped_gatekeeper_fails_instead_of_hanging()
    {
        var limiter = NewLimiter(1);
        Watch(limiter.Gatekeeper);
        Sys.Stop(limiter.Gatekeeper);
        await ExpectTerminatedAsync(limiter.Gatekeeper);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => limiter.AcquireAsync("late").AsTask());
    }

    [Fact]
    public async Task Facade_callers_and_actor_callers_share_one_fifo()
    {
        var limiter = NewLimiter(1);
        var holder = await limiter.AcquireAsync("holder");
        var probe = CreateTestProbe();
        var facadeFirst = await QueueWaiterAsync(limiter, "facade");
        limiter.Gatekeeper.Tell(new GatekeeperProtocol.Acquire("actor", 1), probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Queued>(q => Assert.Equal(2, q.WaitingCount));

        holder.Dispose();
        var lease = await Within(facadeFirst);
        var status = await limiter.Gatekeeper.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance);
        Assert.Equal((1, 1), (status.Running, status.Waiting));
        Assert.False(probe.HasMessages, "the actor, second in line, must not be granted yet");
        lease.Dispose();
        await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(g => Assert.Equal(1, g.RequestId));
    }
}
