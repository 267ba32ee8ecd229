using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A partition's lean FIFO (round 41, <c>FifoWaiters</c>): callers of priority 0 without a wait timeout wait in the
/// partition's own fields, not in a <c>PermitGate</c>; the first request that needs the gate (a priority, a timeout, a
/// full queue) makes it and the lean waiters go over in order. Each test checks an ordering or a count a wrong lean
/// path breaks (mutants named in BENCHMARKS round 41).
/// </summary>
public sealed class PartitionLeanFifoRound41Tests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private readonly FakeTimeProvider _clock = new();

    private PartitionedConcurrencyLimiter<string> NewLimiter(int maxRunning, int? maxQueued = null) =>
        new(new ConcurrencyLimit(maxRunning) { MaxQueued = maxQueued, TimeProvider = _clock }, IdleTimeout, $"lean-{Guid.NewGuid():N}", system: Sys);

    private static Partition PartitionOf(PartitionedConcurrencyLimiter<string> limiter, string key) =>
        ((IPartitionedLimiter<string>)limiter).Partitions.PartitionOf(key)!;

    /// <summary>Common callers wait without a gate, counted (waiting, queued permits) as a gate counts them.</summary>
    [Fact]
    public async Task Common_callers_wait_in_the_partition_without_a_gate_and_are_counted()
    {
        await using var limiter = NewLimiter(2);
        var held = await Within(limiter.AcquireAsync("k", permits: 2).AsTask());
        var two = limiter.AcquireAsync("k", permits: 2).AsTask();
        var one = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "both callers wait");

        var partition = PartitionOf(limiter, "k");
        Assert.False(partition.HasGate, "callers of priority 0 without a timeout wait in the lean FIFO");
        Assert.Equal(3, partition.Queued);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        Assert.Equal(3, adapter.GetStatistics("k")!.CurrentQueuedCount);

        held.Dispose();
        var twoLease = await Within(two);
        Assert.False(one.IsCompleted, "the one-permit caller came second and the first holds both permits");
        Assert.Equal(1, partition.Queued);
        twoLease.Dispose();
        (await Within(one)).Dispose();
        await Eventually(() => partition.Queued == 0 && limiter.StatisticsOf("k") is { Running: 0, Waiting: 0 }, "everything came back");
    }

    /// <summary>One release that frees room for several lean waiters grants all of them, in order, at once.</summary>
    [Fact]
    public async Task One_release_grants_every_lean_waiter_it_makes_room_for()
    {
        await using var limiter = NewLimiter(3);
        var held = await Within(limiter.AcquireAsync("k", permits: 3).AsTask());
        var a = limiter.AcquireAsync("k").AsTask();
        var b = limiter.AcquireAsync("k").AsTask();
        var c = limiter.AcquireAsync("k", permits: 2).AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 3 }, "three callers wait");

        held.Dispose();
        var (aLease, bLease) = (await Within(a), await Within(b));
        Assert.False(c.IsCompleted, "one permit is left for the two-permit caller");
        Assert.Equal((2, 1), (limiter.StatisticsOf("k")!.Running, limiter.StatisticsOf("k")!.Waiting));
        aLease.Dispose();
        (await Within(c)).Dispose();
        bLease.Dispose();
    }

    /// <summary>A cancelled front that blocked the ones behind it lets them go at once: its withdrawal hands the free permits on.</summary>
    [Fact]
    public async Task A_cancelled_front_lets_the_caller_behind_it_go()
    {
        await using var limiter = NewLimiter(2);
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        using var cancel = new CancellationTokenSource();
        var large = limiter.AcquireAsync("k", permits: 2, cancellationToken: cancel.Token).AsTask();
        var small = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "the small caller waits behind the large front though a permit is free");
        Assert.False(small.IsCompleted);

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(large));
        var smallLease = await Within(small); // granted by the withdrawal, while the first permit is still held
        Assert.Equal(2, limiter.StatisticsOf("k")!.Running);
        smallLease.Dispose();
        held.Dispose();
    }

    /// <summary>A caller with a priority makes the gate: the lean waiters go over in arrival order, behind it by priority.</summary>
    [Fact]
    public async Task A_priority_caller_makes_the_gate_and_the_lean_waiters_keep_their_order()
    {
        await using var limiter = NewLimiter(1);
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var order = new List<string>();
        var first = Served(limiter.AcquireAsync("k").AsTask(), "first", order);
        var second = Served(limiter.AcquireAsync("k").AsTask(), "second", order);
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "two common callers wait");
        Assert.False(PartitionOf(limiter, "k").HasGate);

        var urgent = Served(limiter.AcquireAsync("k", priority: 5).AsTask(), "urgent", order);
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 3 }, "the priority caller waits too");
        Assert.True(PartitionOf(limiter, "k").HasGate, "a priority needs the gate");
        var third = Served(limiter.AcquireAsync("k").AsTask(), "third", order);
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 4 }, "a later common caller waits in the gate");

        held.Dispose();
        await Within(Task.WhenAll(first, second, urgent, third));
        Assert.Equal(["urgent", "first", "second", "third"], order);
    }

    /// <summary>A caller with a wait timeout makes the gate and times out there; the lean waiters moved over are served after.</summary>
    [Fact]
    public async Task A_timed_caller_makes_the_gate_and_times_out_while_the_lean_waiters_stay()
    {
        await using var limiter = NewLimiter(1);
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var common = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 1 }, "the common caller waits");
        var timed = limiter.AcquireAsync("k", waitTimeout: TimeSpan.FromSeconds(5)).AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "the timed caller waits behind it");
        Assert.True(PartitionOf(limiter, "k").HasGate, "a deadline needs the gate");

        _clock.Advance(TimeSpan.FromSeconds(6));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(timed));
        Assert.False(common.IsCompleted);
        Assert.Equal(1, limiter.StatisticsOf("k")!.Waiting);
        held.Dispose();
        (await Within(common)).Dispose();
    }

    /// <summary>A full lean queue turns the newcomer away as a gate would (and the waiter already queued is served).</summary>
    [Fact]
    public async Task A_full_lean_queue_turns_the_newcomer_away()
    {
        await using var limiter = NewLimiter(1, maxQueued: 1);
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var queued = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 1 }, "one caller waits");

        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(limiter.AcquireAsync("k").AsTask()));
        Assert.Equal(1, limiter.StatisticsOf("k")!.Waiting);
        held.Dispose();
        (await Within(queued)).Dispose();
    }

    /// <summary>A caller that will not wait is refused while a lean waiter waits, though a permit is free (nobody is passed).</summary>
    [Fact]
    public async Task An_attempt_never_passes_a_lean_waiter()
    {
        await using var limiter = NewLimiter(2);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var large = limiter.AcquireAsync("k", permits: 2).AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 1 }, "the two-permit caller waits");

        using (var attempt = adapter.AttemptAcquire("k"))
        {
            Assert.False(attempt.IsAcquired, "one permit is free, but the waiter ahead asks two");
        }

        // The adapter asks a live concurrency partition's loan only (shut while someone waits); the partition's own
        // attempt in its turn, which a fresh key's and a model-API key's callers reach, must refuse it too, unjudged.
        var partition = PartitionOf(limiter, "k");
        var request = new PartitionAcquireRequest("k", "attempt", Akka.Actor.ActorRefs.Nobody, signalQueued: false, permits: 1, priority: 0, timeout: TimeSpan.Zero);
        Assert.False(partition.TryAttempt(request, out var judged), "the turn is free and a permit is free, but a waiter is ahead");
        Assert.False(judged, "refused because someone waits, not by the slots");

        held.Dispose();
        (await Within(large)).Dispose();
    }

    /// <summary>Disposing the limiter fails every lean waiter as disposed, and none of them is granted.</summary>
    [Fact]
    public async Task Disposal_fails_the_lean_waiters()
    {
        var limiter = NewLimiter(1);
        var held = await Within(limiter.AcquireAsync("k").AsTask());
        var first = limiter.AcquireAsync("k").AsTask();
        var second = limiter.AcquireAsync("k").AsTask();
        await Eventually(() => limiter.StatisticsOf("k") is { Waiting: 2 }, "two callers wait");

        await limiter.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(first));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(second));
        held.Dispose();
    }

    private static async Task Served(Task<ConcurrencyLease> acquire, string who, List<string> order)
    {
        var lease = await acquire;
        lock (order)
        {
            order.Add(who);
        }

        lease.Dispose();
    }
}
