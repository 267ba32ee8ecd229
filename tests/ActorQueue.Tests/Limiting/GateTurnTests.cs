using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Limiting;

/// <summary>
/// The actor's side of a gatekeeper's turn (<see cref="GateTurn"/>) on its own, with a recording owner and a probe for
/// the actor: a message left in a taken turn is handed to the actor with its sender, and what was left after it waits
/// for the actor; a stop closes in the turn whoever holds it, even one handed to an actor that never resumes it; a
/// restart's new instance takes over the turn its predecessor kept.
/// </summary>
public sealed class GateTurnTests : ActorQueueTestKit
{
    [Fact]
    public void A_turn_is_refused_until_its_actor_starts_it_so_the_facade_goes_by_message()
    {
        var (turn, owner, _) = NewTurn(start: false);

        Assert.False(turn.Submit(Request("early")), "not open before the actor's start");
        Assert.False(turn.TryRelease(new ConcurrencyLease(new UnusedReleaser(), 1, "early")));

        turn.Start(owner, CreateTestProbe().Ref);

        Assert.True(turn.Submit(Request("after")));
        Assert.Equal(["Taken", "Resting", "Taken", "Offer after", "Resting"], owner.Events);
    }

    [Fact]
    public async Task A_message_left_in_a_taken_turn_is_handed_to_the_actor_with_its_sender_and_what_came_after_waits_for_it()
    {
        var (turn, owner, actor) = NewTurn();
        var sender = CreateTestProbe();
        Assert.True(turn.TryTake(), "a facade caller holds the turn");

        turn.LeaveForActor("first message", sender.Ref);
        Assert.True(turn.Submit(Request("r1")));
        turn.LeaveForActor("second message", sender.Ref);
        Assert.True(turn.Submit(Request("r2")));
        turn.GiveBack();

        var handed = await actor.ExpectMsgAsync<ResumeTurn>();
        Assert.Equal("first message", handed.Message);
        Assert.Equal(sender.Ref, actor.LastSender);
        Assert.DoesNotContain("Offer r1", owner.Events);
        Assert.True(turn.IsTaken, "the turn went with the message: the actor holds it");

        turn.ResumeForActor(); // as the actor, once it handled the first message
        Assert.Equal("second message", (await actor.ExpectMsgAsync<ResumeTurn>()).Message);
        Assert.Contains("Offer r1", owner.Events);
        Assert.DoesNotContain("Offer r2", owner.Events);

        turn.ResumeForActor();
        Assert.Equal("Offer r2", owner.Events[^2]);
        Assert.Equal("Resting", owner.Events[^1]);
        Assert.False(turn.IsTaken);
    }

    [Fact]
    public async Task A_stop_while_a_facade_caller_holds_the_turn_closes_when_that_caller_gives_it_back_and_seals_it()
    {
        var (turn, owner, _) = NewTurn();
        Assert.True(turn.TryTake());
        var left = Request("left before the stop");
        Assert.True(turn.Submit(left));
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        turn.Stop(closed.SetResult);
        Assert.False(closed.Task.IsCompleted, "the close waits for the turn's holder");
        turn.GiveBack();

        await Within(closed.Task);
        Assert.Equal(["Offer left before the stop", "Close"], owner.Events.Where(e => e is not ("Taken" or "Resting")));
        Assert.True(turn.IsSealed);
        Assert.False(turn.Submit(Request("after")), "a sealed turn takes nothing: the facade sends it, and dead letters answer");
    }

    [Fact]
    public async Task A_stop_that_finds_the_turn_handed_to_its_actor_closes_at_once_and_fails_the_requests_handed_with_it()
    {
        var (turn, owner, actor) = NewTurn();
        Assert.True(turn.TryTake());
        turn.LeaveForActor("never handled", CreateTestProbe().Ref);
        var handedWith = Request("handed with it");
        Assert.True(turn.Submit(handedWith));
        turn.GiveBack();
        await actor.ExpectMsgAsync<ResumeTurn>(); // on its way; the actor stops before it handles it

        var closed = false;
        turn.Stop(() => closed = true);

        Assert.True(closed, "the actor held the turn: it closed at once");
        Assert.Equal(["Close", "Answer never handled"], owner.Events.Where(e => e is not ("Taken" or "Resting")));
        Assert.DoesNotContain("Offer handed with it", owner.Events);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await handedWith.Completion);
        Assert.True(turn.IsSealed);
    }

    [Fact]
    public async Task A_message_that_finds_its_actor_stopped_is_answered_as_a_stopped_gatekeeper_would_not_handed_over()
    {
        var (turn, owner, actor) = NewTurn();
        Assert.True(turn.TryTake());
        turn.LeaveForActor("too late", CreateTestProbe().Ref);
        turn.Stop(() => { });

        turn.GiveBack();

        Assert.Equal(["Answer too late", "Close"], owner.Events.Where(e => e is not ("Taken" or "Resting")));
        await actor.ExpectNoMsgAsync(TimeSpan.Zero);
        Assert.True(turn.IsSealed);
    }

    [Fact]
    public void A_restarted_instance_takes_over_the_turn_its_predecessor_held_and_runs_what_was_left_in_it()
    {
        var (turn, first, actor) = NewTurn();
        Assert.True(turn.TryTakeForActor(), "the actor handles a message");
        Assert.True(turn.Submit(Request("left while the handler ran")));

        // The handler threw: the turn is never given back; the supervisor makes a new instance, whose start resumes it.
        var next = new RecordingOwner();
        turn.Start(next, actor.Ref);

        Assert.Equal(["Offer left while the handler ran", "Resting"], next.Events);
        Assert.DoesNotContain("Offer left while the handler ran", first.Events);
        Assert.False(turn.IsTaken);
    }

    private static AcquireRequest Request(string source) => new(source, ActorRefs.Nobody, signalQueued: false);

    private (GateTurn Turn, RecordingOwner Owner, Akka.TestKit.TestProbe Actor) NewTurn(bool start = true)
    {
        var turn = new GateTurn(new PermitLoan());
        var owner = new RecordingOwner();
        var actor = CreateTestProbe();
        if (start)
        {
            turn.Start(owner, actor.Ref);
            owner.Events.Clear();
        }

        return (turn, owner, actor);
    }

    /// <summary>An actor instance that records what its turn asks of it; a request offered to it is left waiting.</summary>
    internal sealed class RecordingOwner : IGateTurnOwner
    {
        public List<string> Events { get; } = [];

        public void Taken() => Events.Add("Taken");

        public void Resting() => Events.Add("Resting");

        public void Offer(AcquireRequest request) => Events.Add($"Offer {request.Source}");

        public void Release(int permits) => Events.Add($"Release {permits}");

        public void Resize(FacadeResize resize) => Events.Add("Resize");

        public void Close() => Events.Add("Close");

        public void AnswerStopped(object message, IActorRef sender) => Events.Add($"Answer {message}");

        public void Faulted(ITurnOp? op, Exception error) => Events.Add($"Faulted {error.Message}");
    }

    /// <summary>A lease's releaser for a lease only handed to the turn: never released.</summary>
    internal sealed class UnusedReleaser : ILeaseReleaser
    {
        public void Release(ConcurrencyLease lease) => throw new InvalidOperationException("never released");
    }
}
