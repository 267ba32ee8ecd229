using ActorQueue.Actors;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A limiter whose contended facade calls run in its gatekeeper's turn, with actor callers beside them: an actor's
/// messages that find the turn taken (a test holds it, as a contended caller's thread would) are answered once it is
/// given back, in order; a waiting actor granted on a facade caller's thread hears it from the gatekeeper; a request
/// left in the turn when a handler throws (and Akka restarts the actor) is served by the restarted gatekeeper.
/// </summary>
public sealed class LimiterTurnTests : ActorQueueTestKit
{
    [Fact]
    public async Task An_actors_messages_that_find_the_turn_taken_are_answered_in_order_once_it_is_given_back()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        await this.StatusOf(limiter);
        var probe = CreateTestProbe();
        // The status is answered inside its turn, which the actor gives back just after: take the turn once it is free.
        await Eventually(() => limiter.Turn.TryTake(), "the test stands in for a contended caller inside the turn");

        limiter.Gatekeeper.Tell(new Acquire("actor", 1) { ReplyQueued = false }, probe.Ref);
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        // Both, not only the first: a facade call pushed between them would be answered before the status.
        await Eventually(() => LimiterTestSupport.PushedOps(limiter.Turn) == 2, "the actor left both messages in the turn");
        var facade = limiter.AcquireAsync("facade, after them").AsTask();
        limiter.Turn.GiveBack();

        var granted = await probe.ExpectMsgAsync<Granted>();
        Assert.Equal(1, granted.RequestId);
        Assert.Equal(limiter.Gatekeeper, probe.LastSender);
        var status = await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();
        Assert.Equal((1, 0), (status.Running, status.Waiting));
        await Eventually(() => limiter.WaitingCount == 1, "the facade's request, left after them, waits behind the actor");

        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), probe.Ref);
        (await Within(facade)).Dispose();
    }

    [Fact]
    public async Task A_waiting_actor_granted_by_a_facade_release_on_the_releasing_thread_hears_it_from_the_gatekeeper()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var lease = await limiter.AcquireAsync("facade");
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("actor", 7) { ReplyQueued = false }, probe.Ref);
        await Eventually(() => limiter.WaitingCount == 1, "the actor waits");

        lease.Dispose(); // the loan is shut (someone waits): the release runs in the turn, here

        Assert.Equal(7, (await probe.ExpectMsgAsync<Granted>()).RequestId);
        Assert.Equal(limiter.Gatekeeper, probe.LastSender);
    }

    /// <summary>
    /// A holder has the one permit and a caller waits (with a deadline) when the test takes the turn; a wake whose clock
    /// read throws reaches the actor (left in the turn) and a facade request comes after it (left in the turn as well);
    /// once given back, the wake's handler throws on the actor's thread, which holds the turn, and Akka restarts it. The
    /// next instance offers the waiter it carried over, then resumes the turn and queues the request left in it behind:
    /// the holder's permit goes to the waiter, the waiter's to the request. Until 53a9822 a request whose demand threw
    /// stood in for the throwing handler; the gatekeeper now fails such a request alone (no restart), so the test ran
    /// without one. Mutant killed: the next instance drops what was left in the turn it took over (<c>GateTurn.Start</c>)
    /// → the request is never served.
    /// </summary>
    [Fact]
    public async Task A_request_left_in_the_turn_while_a_handler_throws_is_served_by_the_restarted_gatekeeper()
    {
        var clock = new Review.RestartActorCallersReviewTests.FaultyClock();
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1) { TimeProvider = clock }, system: Sys);
        var holder = await Within(limiter.AcquireAsync("holder").AsTask());
        // A deadline, never reached (the clock stands still): a plain gatekeeper's wake reads its clock only then.
        var waiter = limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.FromMinutes(1), source: "waits").AsTask();
        Assert.Equal(1, (await this.StatusOf(limiter)).Waiting);
        var before = Review.RestartActorCallersReviewTests.FaultyClock.InstanceOf(limiter.Gatekeeper);
        clock.FailNextWakeRead();
        await Eventually(() => limiter.Turn.TryTake(), "the test holds the turn once the status's turn was given back");
        limiter.Gatekeeper.Tell(GateWake.Instance, ActorRefs.NoSender);
        await Eventually(() => limiter.Turn.HasPushed, "the wake is left in the turn");
        var left = limiter.AcquireAsync("left after it").AsTask();
        await Eventually(() => LimiterTestSupport.PushedOps(limiter.Turn) == 2, "the request is left in the turn after the wake");

        await EventFilter.Exception<Review.LocalSuspectsReviewTests.ClockFault>().ExpectOneAsync(() =>
        {
            limiter.Turn.GiveBack(); // the wake goes to the actor with the turn; its handler throws there
            return clock.AssertRestarted(limiter.Gatekeeper, before, Dilated(TimeSpan.FromSeconds(10)));
        });

        var status = await this.StatusOf(limiter);
        Assert.True((status.Running, status.Waiting) == (1, 2), $"after the restart: running {status.Running}, waiting {status.Waiting}");
        holder.Dispose();
        var served = await Within(waiter);
        Assert.False(left.IsCompleted, "the request left in the turn passed the caller carried over, queued before it");
        served.Dispose();
        (await Within(left)).Dispose();
        status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
        Assert.Equal(1, limiter.AvailableCount);
    }
}
