using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of 8f61555: a released <see cref="ConcurrencyLease"/> is pushed into a busy turn as its own release op (it
/// implements the internal <see cref="ITurnOp"/>) instead of a <c>ReleaseOp</c> made for it. A lease is a user's object
/// that outlives its release, so: it is linked into a turn at most once, however its disposals race (every permit back
/// once, a waiter behind granted, nothing held at rest); once run, or refused, it links to no other op (a kept lease
/// must not keep waiters alive); the turn's hand-over, restart and stop paths run it as they ran the op it replaced; and
/// the public type shows nothing of the internal interface. Also the model-API lease's errors, which named the caller's
/// source where they should name the limiter.
/// </summary>
public sealed class LeaseAsReleaseOpReviewTests : ActorQueueTestKit
{
    private const int Racers = 4;

    [Fact]
    public async Task Disposals_racing_on_dedicated_threads_push_each_lease_into_the_busy_turn_once_and_the_waiter_behind_is_granted()
    {
        using var limiter = new ConcurrencyLimiter(2, name: "review-lease-op-race", system: Sys);
        var first = await Within(limiter.AcquireAsync(1, cancellationToken: CancellationToken.None).AsTask());
        var second = await Within(limiter.AcquireAsync(1, cancellationToken: CancellationToken.None).AsTask());
        var waiter = limiter.AcquireAsync(2, cancellationToken: CancellationToken.None).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the weighted caller waits behind both leases (the loan is shut)");
        await Eventually(() => limiter.Turn.TryTake(), "the test holds the gatekeeper's turn, as a contended caller would");

        RaceDisposals(first, second);

        // Both released while the turn was held: each lease sits in the turn, once (a second link would be a cycle).
        Assert.Equal(1, Occurrences(limiter.Turn, first));
        Assert.Equal(1, Occurrences(limiter.Turn, second));
        Assert.True(first.IsReleased && second.IsReleased);
        limiter.Turn.GiveBack();

        using var granted = await Within(waiter);
        Assert.Equal(2, granted.Permits);
        Assert.Equal(2, limiter.RunningCount);
        granted.Dispose();
        await Eventually(() => limiter.RunningCount == 0, "every permit is back, once");
        await AssertWholeLimitAndNoMoreAsync(limiter, 2);
    }

    [Fact]
    public async Task Disposals_racing_into_a_partitions_busy_turn_push_each_lease_once_and_the_waiter_behind_is_granted()
    {
        var settings = new GatekeeperSettings(2, null, null, QueueFullMode.RejectNewcomer, "review-lease-op-keys", "review-lease-op-keys", new LimiterCounts(), TimeProvider.System);
        var partition = new Partition("a", new PartitionShared(TestActor, settings, Sys.Log, new OnTheWay(), route: _ => { }));
        Assert.True(partition.TryTake(), "the test holds the partition's turn, as its owner would");
        var first = await Within(Granted(partition, "first", 1));
        var second = await Within(Granted(partition, "second", 1));
        var behind = new PartitionAcquireRequest("a", "behind", TestActor, signalQueued: false, permits: 2, priority: 0, timeout: null);
        var waiter = behind.WaitAsync(CancellationToken.None).AsTask();
        partition.Offer(behind);
        Assert.Equal(1, partition.Waiting);

        RaceDisposals(first, second);

        Assert.Equal(1, Occurrences(partition, first));
        Assert.Equal(1, Occurrences(partition, second));
        partition.GiveBack();

        var granted = await Within(waiter);
        Assert.Equal(2, partition.Running);
        Assert.Null(((ITurnOp)first).NextOp);
        Assert.Null(((ITurnOp)second).NextOp);
        granted.Dispose();

        // Every permit back once: the whole limit is granted at once, and not one permit more (Running cannot go below 0).
        Assert.True(partition.TryTake());
        var whole = Granted(partition, "whole", 2);
        var more = new PartitionAcquireRequest("a", "more", TestActor, signalQueued: false, permits: 1, priority: 0, timeout: null);
        var moreGrant = more.WaitAsync(CancellationToken.None).AsTask();
        partition.Offer(more);
        partition.GiveBack();
        Assert.Equal(2, (await Within(whole)).Permits);
        Assert.False(moreGrant.IsCompleted, "a permit came back more than once: the partition granted past its limit");
        Assert.Equal(1, partition.Waiting);
    }

    [Fact]
    public async Task Disposals_racing_with_contended_callers_give_every_permit_back_once()
    {
        // No turn held by the test: the racers' releases meet each other and the callers they wake (into the loan, a
        // free turn, a busy one). Any permit back twice shows at rest as more than the limit granted at once.
        using var limiter = new ConcurrencyLimiter(3, name: "review-lease-op-contended", system: Sys);
        for (var round = 0; round < 200; round++)
        {
            var leases = new List<ConcurrencyLease>();
            for (var i = 0; i < 3; i++)
            {
                leases.Add(await Within(limiter.AcquireAsync(1, cancellationToken: CancellationToken.None).AsTask()));
            }

            var waiters = Enumerable.Range(0, 2).Select(_ => limiter.AcquireAsync(1, cancellationToken: CancellationToken.None).AsTask()).ToList();
            RaceDisposals([.. leases]);
            foreach (var waiter in waiters)
            {
                (await Within(waiter)).Dispose();
            }
        }

        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "nothing is held or waiting at rest");
        await AssertWholeLimitAndNoMoreAsync(limiter, 3);
    }

    [Fact]
    public void A_released_lease_links_to_no_other_op_once_its_turn_ran_it()
    {
        var (turn, owner, _) = NewTurn();
        Assert.True(turn.TryTake(), "a facade caller holds the turn");
        var first = Lease(1, "first");
        var second = Lease(2, "second");
        Assert.True(turn.TryRelease(first));
        Assert.True(turn.Submit(new AcquireRequest("between", ActorRefs.Nobody, signalQueued: false)));
        Assert.True(turn.TryRelease(second));
        Assert.NotNull(((ITurnOp)second).NextOp); // linked while it waits in the turn

        turn.GiveBack();

        Assert.Equal(["Taken", "Release 1", "Offer between", "Release 2", "Resting"], owner.Events);
        Assert.Null(((ITurnOp)first).NextOp); // a user keeping the lease keeps no request (nor its caller) alive
        Assert.Null(((ITurnOp)second).NextOp);
    }

    [Fact]
    public void A_release_the_turn_refuses_leaves_the_lease_linking_nothing()
    {
        // A push that lost its compare-and-swap to a seal wrote its link (TurnInbox.Submit links before it swaps) and then
        // finds the turn sealed: the release goes by message, and the lease, kept by its user, must not keep the op it
        // was linked to. Stood in for by a lease linked as that push leaves it, released into a turn not open yet.
        var (turn, _, _) = NewTurn(start: false);
        var lease = Lease(1, "late");
        ((ITurnOp)lease).NextOp = new AcquireRequest("kept alive", ActorRefs.Nobody, signalQueued: false);

        Assert.False(turn.TryRelease(lease), "not open: the caller sends the permits");
        Assert.Null(((ITurnOp)lease).NextOp);
    }

    [Fact]
    public async Task A_lease_pushed_behind_an_actors_message_is_released_when_the_actor_resumes_the_turn()
    {
        var (turn, owner, actor) = NewTurn();
        Assert.True(turn.TryTake(), "a facade caller holds the turn");
        turn.LeaveForActor("message", CreateTestProbe().Ref);
        var lease = Lease(2, "behind the message");
        Assert.True(turn.TryRelease(lease));

        turn.GiveBack();
        await actor.ExpectMsgAsync<ResumeTurn>();
        Assert.DoesNotContain("Release 2", owner.Events);

        turn.ResumeForActor();
        Assert.Equal(["Taken", "Release 2", "Resting"], owner.Events);
        Assert.Null(((ITurnOp)lease).NextOp);
    }

    [Fact]
    public async Task A_lease_pushed_behind_an_actors_message_is_released_by_the_next_instance_after_a_restart()
    {
        var (turn, first, actor) = NewTurn();
        Assert.True(turn.TryTake());
        turn.LeaveForActor("message whose handler throws", CreateTestProbe().Ref);
        Assert.True(turn.TryRelease(Lease(2, "behind the message")));
        turn.GiveBack();
        await actor.ExpectMsgAsync<ResumeTurn>();

        var next = new GateTurnTests.RecordingOwner();
        turn.Start(next, actor.Ref); // the handler threw: the next instance resumes the turn its predecessor kept

        Assert.Equal(["Release 2", "Resting"], next.Events);
        Assert.DoesNotContain("Release 2", first.Events);
    }

    [Fact]
    public async Task A_lease_pushed_behind_a_message_the_stop_answers_is_run_after_the_close_and_a_sealed_turn_refuses_the_next()
    {
        var (turn, owner, actor) = NewTurn();
        Assert.True(turn.TryTake());
        turn.LeaveForActor("never handled", CreateTestProbe().Ref);
        var lease = Lease(2, "behind the message");
        Assert.True(turn.TryRelease(lease));
        turn.GiveBack();
        await actor.ExpectMsgAsync<ResumeTurn>();
        var closed = false;

        turn.Stop(() => closed = true); // the hand-over never reached the actor: the stop closes at once

        Assert.True(closed);
        Assert.True(turn.IsSealed);
        Assert.Equal(["Taken", "Close", "Answer never handled"], owner.Events); // the pushed lease ran after the close: dropped, not faulted
        Assert.Null(((ITurnOp)lease).NextOp);
        Assert.False(turn.TryRelease(Lease(1, "after the stop")), "sealed: the caller sends the permits");
    }

    [Fact]
    public void The_public_lease_shows_nothing_of_the_internal_turn_op()
    {
        var type = typeof(ConcurrencyLease);

        Assert.Equal(
            new[] { typeof(IAsyncDisposable), typeof(IDisposable) }.Select(t => t.FullName).Order(),
            type.GetInterfaces().Where(t => t.IsVisible).Select(t => t.FullName).Order());
        Assert.False(typeof(ITurnOp).IsVisible);
        Assert.DoesNotContain(type.GetMembers(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance), member => member.Name.Contains("NextOp"));
    }

    [Theory]
    [InlineData("review-model-api", "review-model-api")]
    [InlineData(null, "the limiter")]
    public async Task A_second_settle_names_the_limiter_as_well_as_the_source(string? name, string named)
    {
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(2, 100, 1_000_000, TimeSpan.FromMinutes(1)), name, system: Sys);
        using var lease = await Within(limiter.AcquireAsync(10, source: "caller-a").AsTask());
        lease.Settle(8);

        var error = Assert.Throws<InvalidOperationException>(() => lease.Settle(9));

        Assert.Contains($"of {named}", error.Message);
        Assert.Contains("'caller-a'", error.Message);
        Assert.DoesNotContain("of caller-a", error.Message);
    }

    [Fact]
    public async Task A_settle_after_the_release_names_the_limiter()
    {
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(2, 100, 1_000_000, TimeSpan.FromMinutes(1)), "review-model-api-released", system: Sys);
        var lease = await Within(limiter.AcquireAsync(10, source: "caller-b").AsTask());
        lease.Dispose();

        var error = Assert.Throws<InvalidOperationException>(() => lease.Settle(5));

        Assert.Contains("of review-model-api-released", error.Message);
        Assert.Contains("released", error.Message);
        Assert.Contains("'caller-b'", error.Message);
    }

    [Fact]
    public async Task A_negative_settle_names_the_parameter_its_value_and_the_limiter()
    {
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(2, 100, 1_000_000, TimeSpan.FromMinutes(1)), "review-model-api-negative", system: Sys);
        using var lease = await Within(limiter.AcquireAsync(10, source: "caller-c").AsTask());

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => lease.Settle(-5));

        Assert.Equal("actualTokens", error.ParamName);
        Assert.Equal(-5L, error.ActualValue);
        Assert.Contains("actualTokens must be >= 0, got -5", error.Message);
        Assert.Contains("review-model-api-negative", error.Message);
        Assert.Null(lease.SettledTokens); // refused: the lease may still settle
        lease.Settle(7);
    }

    [Fact]
    public async Task A_partitioned_limiters_lease_names_the_limiter_too()
    {
        using var limiter = new PartitionedModelApiLimiter<string>(new ModelApiLimiterOptions(2, 100, 1_000_000, TimeSpan.FromMinutes(1)),
                                                                         TimeSpan.FromMinutes(5), "review-model-api-keys", system: Sys);
        using var lease = await Within(limiter.AcquireAsync("k", 10, source: "caller-d").AsTask());
        lease.Settle(3);

        var error = Assert.Throws<InvalidOperationException>(() => lease.Settle(4));

        Assert.Contains("of review-model-api-keys", error.Message);
        Assert.Contains("'caller-d'", error.Message);
    }

    /// <summary>Disposes every lease from <see cref="Racers"/> dedicated threads at once, each in another way (the lease's own <c>Dispose</c>, the base class's, each <c>DisposeAsync</c>).</summary>
    private static void RaceDisposals(params ConcurrencyLease[] leases)
    {
        using var start = new Barrier(Racers);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = Enumerable.Range(0, Racers).Select(racer => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                foreach (var lease in leases)
                {
                    switch (racer % 4)
                    {
                        case 0:
                            lease.Dispose();
                            break;
                        case 1:
                            ((System.Threading.RateLimiting.RateLimitLease)lease).Dispose();
                            break;
                        case 2:
                            lease.DisposeAsync().GetAwaiter().GetResult(); // completes synchronously: nothing blocks
                            break;
                        default:
                            ((IAsyncDisposable)lease).DisposeAsync().GetAwaiter().GetResult();
                            break;
                    }
                }
            }
            catch (Exception error)
            {
                failures.Enqueue(error);
            }
        }) { IsBackground = true, Name = $"lease-op-racer-{racer}" }).ToList();
        threads.ForEach(thread => thread.Start());
        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromMinutes(1)), "a disposal never returned");
        }

        Assert.Empty(failures);
    }

    /// <summary>How often <paramref name="lease"/> sits in the ops pushed to <paramref name="turn"/> (capped: a lease linked twice makes a cycle).</summary>
    private static int Occurrences(TurnInbox turn, ConcurrencyLease lease)
    {
        const System.Reflection.BindingFlags Private = System.Reflection.BindingFlags.NonPublic;
        var owned = typeof(TurnInbox).GetField("Owned", Private | System.Reflection.BindingFlags.Static)!.GetValue(null);
        var op = (ITurnOp?)typeof(TurnInbox).GetField("_head", Private | System.Reflection.BindingFlags.Instance)!.GetValue(turn);
        var count = 0;
        for (var steps = 0; op is not null && !ReferenceEquals(op, owned) && steps < 1000; op = op.NextOp, steps++)
        {
            count += ReferenceEquals(op, lease) ? 1 : 0;
        }

        return count;
    }

    /// <summary>At rest the whole limit is granted at once, and not one permit more: a permit given back twice would grant one.</summary>
    private async Task AssertWholeLimitAndNoMoreAsync(ConcurrencyLimiter limiter, int limit)
    {
        using var whole = await Within(limiter.AcquireAsync(limit, cancellationToken: CancellationToken.None).AsTask());
        Assert.Equal(limit, limiter.RunningCount);
        using var more = limiter.AsRateLimiter().AttemptAcquire(1);
        Assert.False(more.IsAcquired, "a permit came back more than once: the limiter granted past its limit");
    }

    /// <summary>In the partition's turn (held by the test): a request of <paramref name="permits"/>, granted at once.</summary>
    private Task<ConcurrencyLease> Granted(Partition partition, string source, int permits)
    {
        var request = new PartitionAcquireRequest("a", source, TestActor, signalQueued: false, permits: permits, priority: 0, timeout: null);
        var grant = request.WaitAsync(CancellationToken.None).AsTask();
        partition.Offer(request);
        return grant;
    }

    private static ConcurrencyLease Lease(int permits, string source) => new(new GateTurnTests.UnusedReleaser(), 1, source, permits);

    /// <summary>A gatekeeper's turn with a recording owner (<see cref="GateTurnTests"/>'s), started unless <paramref name="start"/> is <c>false</c>, and a probe for its actor.</summary>
    private (GateTurn Turn, GateTurnTests.RecordingOwner Owner, Akka.TestKit.TestProbe Actor) NewTurn(bool start = true)
    {
        var parts = (Turn: new GateTurn(new PermitLoan()), Owner: new GateTurnTests.RecordingOwner(), Actor: CreateTestProbe());
        if (start)
        {
            parts.Turn.Start(parts.Owner, parts.Actor.Ref);
            parts.Owner.Events.Clear();
        }

        return parts;
    }
}
