using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting;

/// <summary>The partitioned limiter through its actors: a limit per key, statistics, idle partitions stopped and made again.</summary>
public class PartitionedLimiterTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);
    private readonly FakeTimeProvider _clock = new();

    private PartitionedConcurrencyLimiter<string> NewLimiter(int maxRunning, int? maxQueued = null) =>
        new(new ConcurrencyLimit(maxRunning) { MaxQueued = maxQueued, TimeProvider = _clock }, IdleTimeout, "per-key", system: Sys);

    [Fact]
    public async Task Each_key_has_a_limit_of_its_own()
    {
        await using var limiter = NewLimiter(1);
        var a = await Within(limiter.AcquireAsync("a").AsTask());
        var b = await Within(limiter.AcquireAsync("b").AsTask());
        var secondA = limiter.AcquireAsync("a").AsTask();

        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 }, "the second caller of a waits");
        Assert.False(secondA.IsCompleted);
        Assert.Equal(2, limiter.PartitionCount);

        a.Dispose();
        (await Within(secondA)).Dispose();
        b.Dispose();
    }

    [Fact]
    public async Task Statistics_cover_every_live_partition_in_one_call()
    {
        await using var limiter = NewLimiter(2, maxQueued: 4);
        var a = await limiter.AcquireAsync("a", permits: 2);
        var waiting = limiter.AcquireAsync("a").AsTask();
        var b = await limiter.AcquireAsync("b");
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 }, "a's second caller waits");

        var statistics = await limiter.GetStatisticsAsync();

        Assert.Equal(new PartitionStatistics(2, 1, 2, 4), statistics["a"]);
        Assert.Equal(new PartitionStatistics(1, 0, 2, 4), statistics["b"]);
        Assert.Equal(2, statistics.Count);
        a.Dispose();
        (await Within(waiting)).Dispose();
        b.Dispose();
    }

    [Fact]
    public async Task A_newcomer_never_passes_a_partitions_waiter()
    {
        await using var limiter = NewLimiter(2);
        var held = await Within(limiter.AcquireAsync("a").AsTask());
        var large = limiter.AcquireAsync("a", permits: 2).AsTask();
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 }, "the two-permit caller waits");

        // One permit is free, but the head of the queue wants two: the newcomer queues behind it.
        var small = limiter.AcquireAsync("a").AsTask();
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 2 }, "the newcomer waits behind the head");
        Assert.False(small.IsCompleted);

        held.Dispose();
        var largeLease = await Within(large);
        Assert.False(small.IsCompleted);
        largeLease.Dispose();
        (await Within(small)).Dispose();
    }

    [Fact]
    public async Task A_partition_that_stopped_queueing_grants_exactly_its_limit()
    {
        // Queue once (the partition gets a gate), let a sweep drop the gate, then fill it again: never more than the limit.
        await using var limiter = NewLimiter(2);
        var first = await Within(limiter.AcquireAsync("a", permits: 2).AsTask());
        var waiting = limiter.AcquireAsync("a").AsTask();
        first.Dispose();
        var second = await Within(waiting);
        _clock.Advance(IdleTimeout);
        await Eventually(() => limiter.StatisticsOf("a") is { Running: 1, Waiting: 0 }, "one permit held, nobody waits");

        var third = await Within(limiter.AcquireAsync("a").AsTask());
        var fourth = limiter.AcquireAsync("a").AsTask();
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 }, "the third caller waits: two are held");
        Assert.Equal(2, limiter.StatisticsOf("a")!.Running);

        second.Dispose();
        (await Within(fourth)).Dispose();
        third.Dispose();
    }

    [Fact]
    public async Task Waiters_of_several_partitions_time_out_on_the_limiters_one_wake_timer_each_at_its_own_deadline()
    {
        await using var limiter = NewLimiter(1);
        var a = await Within(limiter.AcquireAsync("a").AsTask());
        var b = await Within(limiter.AcquireAsync("b").AsTask());
        var late = limiter.AcquireAsync("b", waitTimeout: TimeSpan.FromSeconds(20)).AsTask();
        var early = limiter.AcquireAsync("a", waitTimeout: TimeSpan.FromSeconds(10)).AsTask();
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 } && limiter.StatisticsOf("b") is { Waiting: 1 }, "both wait");
        (await Within(limiter.AcquireAsync("sync").AsTask())).Dispose(); // a round trip: the actor has armed its wake timer

        _clock.Advance(TimeSpan.FromSeconds(10));
        var error = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(early));
        Assert.Equal(TimeSpan.FromSeconds(10), error.WaitTimeout);
        Assert.False(late.IsCompleted);

        _clock.Advance(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(late));
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 0 } && limiter.StatisticsOf("b") is { Waiting: 0 }, "neither waits");
        a.Dispose();
        b.Dispose();
    }

    [Fact]
    public void A_null_key_is_rejected_naming_the_parameter()
    {
        using var limiter = NewLimiter(1);

        var error = Assert.Throws<ArgumentNullException>(() => { _ = limiter.AcquireAsync(null!); });

        Assert.Equal("key", error.ParamName);
        Assert.Equal(0, limiter.PartitionCount);
    }

    [Fact]
    public void A_non_positive_idle_timeout_is_rejected_naming_the_parameter_and_value()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1), TimeSpan.Zero, system: Sys));

        Assert.Equal(("idleTimeout", (object?)TimeSpan.Zero), (error.ParamName, error.ActualValue));
    }

    [Fact]
    public async Task An_idle_partition_is_stopped_and_its_key_gets_a_new_one_on_next_use()
    {
        await using var limiter = NewLimiter(1);
        (await limiter.AcquireAsync("a")).Dispose();
        Assert.Equal(1, limiter.PartitionsMade);

        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 0; }, TimeSpan.FromSeconds(10), "the idle partition was stopped");

        (await Within(limiter.AcquireAsync("a").AsTask())).Dispose();
        Assert.Equal(2, limiter.PartitionsMade);
    }

    [Fact]
    public async Task A_partition_holding_a_permit_or_with_a_waiter_is_never_stopped()
    {
        await using var limiter = NewLimiter(1);
        var held = await limiter.AcquireAsync("held");
        (await limiter.AcquireAsync("idle")).Dispose();

        // Once the idle one is gone, sweeps have run with the held one past its timeout too.
        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 1; }, TimeSpan.FromSeconds(10), "the idle partition was stopped");
        _clock.Advance(IdleTimeout * 3);

        var waiting = limiter.AcquireAsync("held").AsTask();
        held.Dispose();
        (await Within(waiting)).Dispose();
        Assert.Equal(2, limiter.PartitionsMade);
    }

    [Fact]
    public async Task Requests_racing_with_idle_stops_are_never_lost()
    {
        await using var limiter = NewLimiter(1);
        using var stop = new CancellationTokenSource();
        var sweeper = Task.Run(async () =>
        {
            // Paced, so the actor's mailbox is not buried under sweeps: each one may drop a partition a request is racing to.
            while (!stop.IsCancellationRequested)
            {
                _clock.Advance(IdleTimeout);
                await Task.Delay(1);
            }
        });

        // Each caller moves between two keys of its own and two shared ones (where callers queue, so the partitions
        // get gates) every few hundred requests: a key left idle is dropped while the callers are on the other one,
        // and made again when they come back. A request or waiter lost with a dropped partition hangs its caller.
        // Holders per key: a partition dropped while busy would let its key's next one grant past the limit.
        var holders = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var overLimit = 0;
        var callers = Enumerable.Range(0, 4).Select(caller => InAnotherFlow(async () =>
        {
            for (var i = 0; limiter.PartitionsMade < 40; i++)
            {
                var side = (i / 300) % 2;
                var key = i % 3 == 0 ? $"shared-{side}" : $"key-{caller}-{side}";
                using var lease = await limiter.AcquireAsync(key);
                if (holders.AddOrUpdate(key, 1, (_, held) => held + 1) > 1)
                {
                    Interlocked.Increment(ref overLimit);
                }

                holders.AddOrUpdate(key, 0, (_, held) => held - 1);
            }
        }));
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await sweeper;

        Assert.True(limiter.PartitionsMade >= 40, $"partitions were dropped and made again amid the requests ({limiter.PartitionsMade} made)");
        Assert.Equal(0, overLimit);
        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 0; }, TimeSpan.FromSeconds(10), "every partition went idle and was dropped");
    }

    [Fact]
    public async Task A_cancelled_waiter_of_a_partition_leaves_it_and_the_partition_can_go_idle()
    {
        await using var limiter = NewLimiter(1);
        var held = await limiter.AcquireAsync("a");
        using var cancel = new CancellationTokenSource();
        var waiting = limiter.AcquireAsync("a", cancellationToken: cancel.Token).AsTask();
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 }, "it waits");

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(waiting));
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 0, Running: 1 }, "the withdrawal reached the partition");
        held.Dispose();
        await Poll.UntilAsync(() => { _clock.Advance(IdleTimeout); return limiter.PartitionCount == 0; }, TimeSpan.FromSeconds(10), "the partition went idle and was stopped");
    }

    [Fact]
    public async Task Disposing_fails_the_waiters_of_every_partition()
    {
        var limiter = NewLimiter(1);
        var held = await limiter.AcquireAsync("a");
        var waiting = limiter.AcquireAsync("a").AsTask();
        await Eventually(() => limiter.StatisticsOf("a") is { Waiting: 1 }, "it waits");

        await limiter.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(waiting));
        Assert.Throws<ObjectDisposedException>(() => { _ = limiter.AcquireAsync("a"); });
        held.Dispose();
    }
}
