using ActorQueue.Actors;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The gatekeeper's lean FIFO (round 42, <c>GatekeeperActor.Lean.cs</c>): facade callers of priority 0 without a wait
/// timeout who must wait stand in the actor's own FIFO, not in its <c>PermitGate</c>; whatever needs the gate (an actor
/// caller, a priority, a deadline, a full queue, a resize, a status, the stop) first moves them into it in their order.
/// Each test checks an ordering or a count a wrong lean path breaks (mutants named in BENCHMARKS round 42).
/// </summary>
public sealed class GatekeeperLeanFifoRound42Tests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private ConcurrencyLimiter NewLimiter(int maxRunning, int? maxQueued = null, QueueFullMode whenFull = QueueFullMode.RejectNewcomer) =>
        new(new ConcurrencyLimit(maxRunning) { MaxQueued = maxQueued, WhenFull = whenFull }, $"lean-{Guid.NewGuid():N}", system: Sys);

    /// <summary>Facade callers that must wait stand in the lean FIFO, counted as waiting, and are served in arrival order.</summary>
    [Fact]
    public async Task Common_callers_wait_lean_counted_and_in_order()
    {
        using var limiter = NewLimiter(2);
        var held = await Within(limiter.AcquireAsync(permits: 2).AsTask());
        var two = limiter.AcquireAsync(permits: 2).AsTask();
        var one = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "both callers wait");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));

        held.Dispose();
        var twoLease = await Within(two);
        Assert.False(one.IsCompleted, "the one-permit caller came second and the first holds both permits");
        twoLease.Dispose();
        (await Within(one)).Dispose();
        await Eventually(() => limiter is { RunningCount: 0, WaitingCount: 0 }, "everything came back");
    }

    /// <summary>
    /// An actor caller that fits the free permit does not pass a lean waiter that does not: limit 2, one permit held, a
    /// facade caller waits for 2; the actor's request for 1 is queued, and served after it.
    /// </summary>
    [Fact]
    public async Task An_actor_caller_never_passes_a_lean_waiter()
    {
        using var limiter = NewLimiter(2);
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var large = limiter.AcquireAsync(permits: 2).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the two-permit caller waits");
        Assert.Equal(1, await this.LeanWaitersOf(limiter));

        var actor = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("actor", 7) { Permits = 1 }, actor.Ref);
        Assert.IsType<Queued>(await actor.ExpectMsgAsync<object>());

        held.Dispose();
        var largeLease = await Within(large);
        await actor.ExpectNoMsgAsync(TimeSpan.Zero);
        largeLease.Dispose();
        var granted = await actor.ExpectMsgAsync<Granted>();
        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), actor.Ref);
    }

    /// <summary>
    /// A facade newcomer that fits the free permit does not pass a lean waiter that does not (the free permit is not lent
    /// while someone waits lean): limit 2, one held, a caller waits for 2; the newcomer for 1 waits behind it.
    /// </summary>
    [Fact]
    public async Task A_facade_newcomer_never_passes_a_lean_waiter()
    {
        using var limiter = NewLimiter(2);
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var large = limiter.AcquireAsync(permits: 2).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the two-permit caller waits");
        var small = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "the newcomer waits too");
        Assert.False(small.IsCompleted, "the newcomer passed the lean waiter");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));

        held.Dispose();
        var largeLease = await Within(large);
        Assert.False(small.IsCompleted, "the two-permit caller holds both");
        largeLease.Dispose();
        (await Within(small)).Dispose();
    }

    /// <summary>
    /// A caller with a priority goes before the lean waiters, and one with a wait timeout after them: the move into the
    /// gate keeps their order among themselves and ahead of later callers of their priority.
    /// </summary>
    [Fact]
    public async Task A_priority_caller_goes_first_and_a_timed_one_after_the_lean_waiters()
    {
        using var limiter = NewLimiter(1);
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var first = limiter.AcquireAsync(permits: 1, source: "first").AsTask();
        var second = limiter.AcquireAsync(permits: 1, source: "second").AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two lean callers wait");
        var urgent = limiter.AcquireAsync(permits: 1, priority: 1, source: "urgent").AsTask();
        var timed = limiter.AcquireAsync(permits: 1, waitTimeout: Minute, source: "timed").AsTask();
        await Eventually(() => limiter.WaitingCount == 4, "four wait");
        Assert.Equal(0, await this.LeanWaitersOf(limiter)); // moved into the gate by the first request that needed it

        var order = new List<string>();
        var lease = held;
        foreach (var (name, task) in new[] { ("urgent", urgent), ("first", first), ("second", second), ("timed", timed) })
        {
            lease.Dispose();
            lease = await Within(task);
            order.Add(name);
            Assert.Equal(name, lease.Source);
        }

        lease.Dispose();
        Assert.Equal(["urgent", "first", "second", "timed"], order);
    }

    /// <summary>A cancelled lean front that blocked a smaller caller behind it lets that caller go at once.</summary>
    [Fact]
    public async Task A_cancelled_lean_front_lets_the_caller_behind_it_go()
    {
        using var limiter = NewLimiter(2);
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        using var cancel = new CancellationTokenSource();
        var large = limiter.AcquireAsync(permits: 2, cancellationToken: cancel.Token).AsTask();
        var small = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "the small caller waits behind the large front though a permit is free");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));
        Assert.False(small.IsCompleted);

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(large));
        (await Within(small)).Dispose();
        held.Dispose();
    }

    /// <summary>One release that frees room for several lean waiters grants all of them, in order, at once.</summary>
    [Fact]
    public async Task One_release_grants_every_lean_waiter_it_makes_room_for()
    {
        using var limiter = NewLimiter(3);
        var held = await Within(limiter.AcquireAsync(permits: 3).AsTask());
        var a = limiter.AcquireAsync(permits: 1).AsTask();
        var b = limiter.AcquireAsync(permits: 1).AsTask();
        var c = limiter.AcquireAsync(permits: 2).AsTask();
        await Eventually(() => limiter.WaitingCount == 3, "three callers wait");

        held.Dispose();
        var (aLease, bLease) = (await Within(a), await Within(b));
        Assert.False(c.IsCompleted, "one permit is left for the two-permit caller");
        Assert.Equal(1, await this.LeanWaitersOf(limiter));
        aLease.Dispose();
        (await Within(c)).Dispose();
        bLease.Dispose();
    }

    /// <summary>Disposing the limiter fails its lean waiters as disposed (none is left waiting for ever).</summary>
    [Fact]
    public async Task Disposal_fails_the_lean_waiters()
    {
        var limiter = NewLimiter(1);
        _ = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var a = limiter.AcquireAsync(permits: 1).AsTask();
        var b = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two callers wait");

        await limiter.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(a));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(b));
    }

    /// <summary>
    /// A gatekeeper stopped from outside (its parent, a system's shutdown: no message of its own is handled first) fails
    /// its lean waiters as disposed, as it fails the gate's.
    /// </summary>
    [Fact]
    public async Task A_gatekeeper_stopped_from_outside_fails_the_lean_waiters()
    {
        using var limiter = NewLimiter(1);
        _ = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var a = limiter.AcquireAsync(permits: 1).AsTask();
        var b = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two callers wait");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));

        Sys.Stop(limiter.Gatekeeper);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(a));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(b));
    }

    /// <summary>Growing the limit grants the lean waiters it makes room for, in order.</summary>
    [Fact]
    public async Task Growing_the_limit_grants_the_lean_waiters()
    {
        using var limiter = NewLimiter(2);
        var held = await Within(limiter.AcquireAsync(permits: 2).AsTask());
        var a = limiter.AcquireAsync(permits: 1).AsTask();
        var b = limiter.AcquireAsync(permits: 2).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two callers wait");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));

        limiter.Resize(maxRunning: 5);
        var (aLease, bLease) = (await Within(a), await Within(b));
        Assert.Equal((5, 0), (limiter.RunningCount, limiter.WaitingCount));
        aLease.Dispose();
        bLease.Dispose();
        held.Dispose();
    }

    /// <summary>The gatekeeper's status counts the lean waiters (and its running count their holder).</summary>
    [Fact]
    public async Task The_status_counts_the_lean_waiters()
    {
        using var limiter = NewLimiter(1);
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var a = limiter.AcquireAsync(permits: 1).AsTask();
        var b = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two callers wait");
        Assert.Equal(2, await this.LeanWaitersOf(limiter));

        var status = await this.StatusOf(limiter);
        Assert.Equal((1, 2), (status.Running, status.Waiting));
        held.Dispose();
        (await Within(a)).Dispose();
        (await Within(b)).Dispose();
    }

    /// <summary><c>max_queued</c> counts the lean waiters: with 2 waiting and a bound of 2, a newcomer is refused.</summary>
    [Fact]
    public async Task A_full_lean_queue_refuses_the_newcomer()
    {
        using var limiter = NewLimiter(1, maxQueued: 2);
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var a = limiter.AcquireAsync(permits: 1).AsTask();
        var b = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two callers wait");

        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(limiter.AcquireAsync(permits: 1).AsTask()));
        Assert.Equal(2, limiter.WaitingCount);
        held.Dispose();
        (await Within(a)).Dispose();
        (await Within(b)).Dispose();
    }

    /// <summary>
    /// A full queue that evicts the lowest-priority, newest waiter evicts the newest lean waiter for a newcomer of a
    /// higher priority, which is then served first.
    /// </summary>
    [Fact]
    public async Task A_full_queue_evicts_the_newest_lean_waiter_for_a_higher_priority()
    {
        using var limiter = NewLimiter(1, maxQueued: 2, QueueFullMode.EvictLowestPriorityNewest);
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        var older = limiter.AcquireAsync(permits: 1).AsTask();
        var newer = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "two callers wait");

        var urgent = limiter.AcquireAsync(permits: 1, priority: 1).AsTask();
        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(newer));
        held.Dispose();
        var urgentLease = await Within(urgent);
        Assert.False(older.IsCompleted, "the priority newcomer is served before the older lean waiter");
        urgentLease.Dispose();
        (await Within(older)).Dispose();
    }

    /// <summary>Lease numbers of grants made by the lean FIFO and by the gate count up as one sequence, never repeating.</summary>
    [Fact]
    public async Task Lease_numbers_count_up_across_lean_and_gate_grants()
    {
        using var limiter = NewLimiter(1);
        var numbers = new List<long>();
        var held = await Within(limiter.AcquireAsync(permits: 1).AsTask());
        for (var round = 0; round < 3; round++)
        {
            var lean = limiter.AcquireAsync(permits: 1).AsTask();
            await Eventually(() => limiter.WaitingCount == 1, "a lean caller waits");
            held.Dispose();
            held = await Within(lean); // granted by the lean FIFO
            numbers.Add(held.LeaseId);

            var gated = limiter.AcquireAsync(permits: 1, waitTimeout: Minute).AsTask();
            await Eventually(() => limiter.WaitingCount == 1, "a timed caller waits in the gate");
            held.Dispose();
            held = await Within(gated); // granted by the gate
            numbers.Add(held.LeaseId);
        }

        held.Dispose();
        Assert.All(numbers.Zip(numbers.Skip(1)), pair => Assert.True(pair.Item2 > pair.Item1, $"lease {pair.Item2} after {pair.Item1}: [{string.Join(", ", numbers)}]"));
    }
}
