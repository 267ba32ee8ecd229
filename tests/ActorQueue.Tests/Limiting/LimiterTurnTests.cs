using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// A limiter whose contended facade calls run in its gatekeeper's turn, with actor callers beside them: an actor's
/// messages that find the turn taken (a test holds it, as a contended caller's thread would) are answered once it is
/// given back, in order; a waiting actor granted on a facade caller's thread hears it from the gatekeeper; a request
/// left in the turn when a handler throws is served by the restarted gatekeeper.
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

    [Fact]
    public async Task A_request_left_in_the_turn_while_a_handler_throws_is_served_by_the_restarted_gatekeeper()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        await this.StatusOf(limiter);
        await Eventually(() => limiter.Turn.TryTake(), "the test holds the turn once the status's turn was given back");
        limiter.Gatekeeper.Tell(new FailingRequest(limiter.Gatekeeper));
        await Eventually(() => limiter.Turn.HasPushed, "the failing message is left in the turn");
        var left = limiter.AcquireAsync("left after it").AsTask();

        limiter.Turn.GiveBack(); // the failing message goes to the actor with the turn; its handler throws there

        (await Within(left)).Dispose();
        var status = await this.StatusOf(limiter);
        Assert.Equal((0, 0), (status.Running, status.Waiting));
        Assert.Equal(1, limiter.AvailableCount);
    }

    /// <summary>A request whose demand cannot be read: the gatekeeper's handler throws, and its supervisor restarts it.</summary>
    private sealed class FailingRequest(IActorRef gatekeeper) : AcquireRequest("restart", gatekeeper, signalQueued: false)
    {
        public override PermitDemand Demand => throw new InvalidOperationException("the gatekeeper fails inside a message (test)");
    }
}
