using ActorQueue.Actors;
using ActorQueue.Tests.Limiting;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of 0d14ee8: what the actor used to do alone and a facade thread holding the gatekeeper's turn now does, checked
/// (these pass on main 0d14ee8): a dispose while a facade thread holds the turn completes once it is given back and fails
/// every waiter, facade or actor; an actor waiter evicted by a facade newcomer on the newcomer's thread hears it from the
/// gatekeeper and leaves the books; a wait timeout armed on a facade thread fires on the fake clock; an actor holder's
/// death noticed while a facade thread holds the turn frees its permit for the next waiter.
/// </summary>
public sealed class GateTurnLifecycleChecksReviewTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_dispose_while_a_facade_thread_holds_the_turn_completes_once_given_back_and_fails_every_waiter()
    {
        var limiter = new ConcurrencyLimiter(1, name: "review-dispose-held-turn", system: Sys);
        using var held = await Within(limiter.AcquireAsync("holder").AsTask());
        var queued = limiter.AcquireAsync("queued").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "queued");
        var actor = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("actor", 1) { ReplyQueued = false }, actor.Ref);
        await this.StatusOf(limiter); // the actor's acquire is queued too
        // The status is answered inside its turn, which the actor gives back just after: take the turn once it is free.
        await Eventually(() => limiter.Turn.TryTake(), "the test holds the turn once the status's turn was given back");
        var pushed = limiter.AcquireAsync("pushed while the turn was held").AsTask();
        Assert.True(limiter.Turn.HasPushed);

        var disposed = limiter.DisposeAsync().AsTask();
        await Eventually(() => LimiterTestSupport.PushedOps(limiter.Turn) == 2, "the dispose was left in the turn, after the pushed call");
        Assert.False(disposed.IsCompleted, "the close waits for the turn's holder");
        limiter.Turn.GiveBack();

        await Within(disposed);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(queued));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(pushed));
        Assert.Equal(RejectionReason.Disposed, (await actor.ExpectMsgAsync<Rejected>()).Kind);
        Assert.True(limiter.Turn.IsSealed);
    }

    [Fact]
    public async Task An_actor_waiter_evicted_by_a_facade_newcomer_hears_it_from_the_gatekeeper_and_leaves_the_books()
    {
        using var limiter = new ConcurrencyLimiter(1, maxQueued: 1, name: "review-evict", system: Sys, whenFull: QueueFullMode.EvictLowestPriorityNewest);
        using var held = await Within(limiter.AcquireAsync("holder").AsTask());
        var actor = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("actor", 1) { ReplyQueued = false }, actor.Ref);
        await Eventually(() => limiter.WaitingCount == 1, "the actor waits");

        var newcomer = limiter.AcquireAsync(1, priority: 5, source: "facade newcomer").AsTask(); // runs in the turn, here

        var rejected = await actor.ExpectMsgAsync<Rejected>();
        Assert.Equal(RejectionReason.Evicted, rejected.Kind);
        Assert.Equal(limiter.Gatekeeper, actor.LastSender);
        held.Dispose();
        (await Within(newcomer)).Dispose();
        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
    }

    [Fact]
    public async Task A_wait_timeout_armed_on_a_facade_thread_fires_on_the_limiters_clock()
    {
        var clock = new FakeTimeProvider();
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1) { WaitTimeout = TimeSpan.FromSeconds(5), TimeProvider = clock }, "review-timeout", system: Sys);
        using var held = await Within(limiter.AcquireAsync("holder").AsTask());
        var waiting = limiter.AcquireAsync("times out").AsTask(); // queued in the turn on this thread, which arms the wake
        await Eventually(() => limiter.WaitingCount == 1, "queued");

        clock.Advance(TimeSpan.FromSeconds(6));

        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting));
        await Eventually(() => limiter.WaitingCount == 0, "the timed-out waiter left");
    }

    [Fact]
    public async Task A_holder_that_stops_while_a_facade_thread_holds_the_turn_gives_its_permit_to_the_next_waiter()
    {
        using var limiter = new ConcurrencyLimiter(1, name: "review-holder-stops", system: Sys);
        var holder = CreateTestProbe();
        await limiter.AcquireGranted(holder, 1);
        var waiting = limiter.AcquireAsync("waits for the holder's permit").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "queued");
        // The waiting count is published inside the turn that queued the caller: take the turn once it is given back.
        await Eventually(() => limiter.Turn.TryTake(), "the test holds the turn once the queueing turn was given back");

        Sys.Stop(holder.Ref);
        await Eventually(() => limiter.Turn.HasPushed, "the holder's death was left in the turn");
        Assert.False(waiting.IsCompleted);
        limiter.Turn.GiveBack();

        (await Within(waiting)).Dispose();
        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
    }
}
