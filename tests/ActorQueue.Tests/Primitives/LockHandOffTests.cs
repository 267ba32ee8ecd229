using ActorQueue.Primitives;
using Akka.Actor;
using static ActorQueue.Tests.Primitives.LockHandOffCallers;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// A release while flows wait hands the lock straight to the head the coordinator published, without a message:
/// driven on the shared state with a stand-in for the coordinator (<see cref="LockCoordinatorStandIn"/>), from one
/// thread step by step and from racing threads.
/// </summary>
public class LockHandOffTests
{
    [Fact]
    public void Releases_hand_the_lock_down_the_line_of_flows_without_the_coordinator()
    {
        var (state, coordinator, holder) = Held();
        var first = Waiting(coordinator); // its message ends with every waiter, a flow's, moved into the line
        Assert.Equal(0, coordinator.Gate.Waiting);
        var second = Joined(state); // no message
        var third = Joined(state);
        Assert.Equal(3, state.InLine);

        Assert.True(state.TryPassOn(holder)); // no message to the coordinator
        Assert.True(Granted(first));
        Assert.True(state.IsHeld);
        Assert.True(state.IsHeldBy(first.Flow)); // the holder is written before the continuation runs
        Assert.Equal(2, state.Announced); // the releaser counted the first out

        Release(state, first.Flow); // the coordinator has not run since: the line still serves
        Assert.True(Granted(second));
        Assert.False(third.Waiter.IsCompleted);
        Release(state, second.Flow);
        Assert.True(Granted(third));
        Assert.Equal(0, coordinator.GateGrants);
        Assert.Equal(0, state.Announced);

        Release(state, third.Flow); // nobody waits: freed without the coordinator
        Assert.False(state.IsHeld);
        coordinator.Nothing(); // takes the empty line back, publishes nothing (the lock is free)
        Assert.Equal(0, coordinator.Gate.Waiting);
        Assert.Equal(0, state.InLine);
        Assert.True(state.TryTakeOrAnnounce());
    }

    [Fact]
    public void A_line_taken_back_returns_its_flows_to_the_gate_in_order_ahead_of_the_message_that_took_it()
    {
        var (state, coordinator, holder) = Held();
        var first = Waiting(coordinator);
        var second = Joined(state);
        var actor = new Coordination.TestWaiter("actor");
        Assert.False(state.TryTakeOrAnnounce());
        coordinator.Deliver(actor); // takes the line back first: both flows are ahead of the actor
        Assert.Equal(0, state.InLine); // an actor waits: no line, the head (the first flow) is published instead
        Assert.Equal(3, coordinator.Gate.Waiting); // both flows and the actor stand in the gate; the grants below show their order

        Assert.True(state.TryPassOn(holder)); // the published head
        Assert.True(Granted(first));
        coordinator.Nothing(); // publishes the second
        Release(state, first.Flow);
        Assert.True(Granted(second));
        Assert.False(actor.IsGranted);
        coordinator.Nothing(); // the actor is the head now: nothing published
        Assert.True(state.TryClaimRelease(second.Flow, out _));
        Assert.False(state.TryPassOn(second.Flow));
        coordinator.Released(second.Flow);
        Assert.True(actor.IsGranted);
        Assert.Empty(coordinator.Failures);
    }

    [Fact]
    public void A_flow_whose_waiter_is_on_its_way_keeps_later_flows_out_of_the_line()
    {
        var (state, coordinator, holder) = Held();
        var first = Waiting(coordinator); // a line is published
        var sent = new LockWaiter(ActorRefs.Nobody, new object());
        Assert.False(state.TryTakeOrAnnounce());
        state.Sending(); // its acquire returned with its waiter in the coordinator's mailbox

        var later = new LockWaiter(ActorRefs.Nobody, new object());
        Assert.False(state.TryTakeOrAnnounce());
        Assert.False(state.TryJoinLine(later)); // it would be served before the waiter on its way
        state.Sending();
        coordinator.Deliver(sent);
        coordinator.Deliver(later);

        Assert.True(state.TryPassOn(holder));
        Assert.True(Granted(first));
        Release(state, first.Flow);
        Assert.True(sent.IsCompleted);
        Assert.False(later.IsCompleted);
    }

    [Fact]
    public void A_head_taken_by_a_releaser_is_never_granted_again_by_the_gate()
    {
        var (state, coordinator, holder) = Held();
        var only = Waiting(coordinator);
        Assert.True(state.TryPassOn(holder));
        Release(state, only.Flow); // the coordinator has not run since: the lock is free again and nobody is announced
        Assert.False(state.IsHeld);
        Assert.Equal(0, state.Announced);

        coordinator.Nothing(); // unlinks the taken head before it sweeps: the gate never grants it the free lock again

        Assert.Equal(0, coordinator.Gate.Waiting);
        Assert.Equal(0, state.Announced);
        Assert.False(state.IsHeld);
        Assert.Null(state.Owner);
        var newcomer = new object();
        Assert.True(state.TryTakeOrAnnounce()); // the fast path is open
        state.Grant(newcomer, 1);
        coordinator.Nothing();
        Assert.Equal(0, state.Available(TimeSpan.Zero));
    }

    [Fact]
    public void A_release_while_an_actor_is_the_head_tells_the_coordinator_and_the_actor_goes_first()
    {
        var (state, coordinator, holder) = Held();
        var actor = new Coordination.TestWaiter("actor"); // any waiter that is not a flow's lock waiter: an actor's turn
        Assert.False(state.TryTakeOrAnnounce());
        coordinator.Deliver(actor);
        var flow = Waiting(coordinator);

        Assert.False(state.TryPassOn(holder)); // nothing published: the flow behind the actor is not taken out of turn
        Assert.False(flow.Waiter.IsCompleted);
        coordinator.Released(holder);

        Assert.True(actor.IsGranted);
        Assert.False(flow.Waiter.IsCompleted);
        Assert.Empty(coordinator.Failures);
    }

    [Fact]
    public void A_published_head_that_was_cancelled_takes_nothing_and_the_lock_is_not_lost()
    {
        var (state, coordinator, holder) = Held();
        var cancelled = Waiting(coordinator);
        var next = Waiting(coordinator);
        var actor = new Coordination.TestWaiter("actor"); // behind them: no line, the head is published
        Assert.False(state.TryTakeOrAnnounce());
        coordinator.Deliver(actor);
        Assert.True(cancelled.Waiter.TryCancel(CancellationToken.None)); // its withdrawal is still on its way

        Assert.False(state.TryPassOn(holder)); // took the cancelled head; the next is not published: tell the coordinator
        Assert.Same(holder, state.Owner); // still the releaser's, for the coordinator's check
        coordinator.Released(holder);
        Assert.True(Granted(next));

        coordinator.Withdraw(cancelled.Waiter); // arrives late: it was unlinked already and is not counted out twice
        Assert.Empty(coordinator.Failures);
        Assert.Equal(1, coordinator.Gate.Waiting); // the actor
        Assert.Equal(1, state.Announced);
    }

    [Fact]
    public void A_cancelled_flow_in_the_line_takes_nothing_and_the_release_serves_the_next()
    {
        var (state, coordinator, holder) = Held();
        var cancelled = Waiting(coordinator);
        var next = Joined(state);
        Assert.True(cancelled.Waiter.TryCancel(CancellationToken.None)); // its withdrawal is still on its way

        Assert.True(state.TryPassOn(holder)); // served the cancelled one, counted it out, went round: the next
        Assert.True(Granted(next));
        Assert.Equal(0, state.Announced);

        coordinator.Withdraw(cancelled.Waiter); // arrives late: in no queue, not counted out twice
        Assert.Empty(coordinator.Failures);
        Assert.Equal(0, coordinator.Gate.Waiting);
        Assert.Equal(0, state.Announced);
    }

    [Fact]
    public void A_flow_cancelled_in_the_line_leaves_when_the_coordinator_takes_the_line_back()
    {
        var (state, coordinator, holder) = Held();
        var cancelled = Waiting(coordinator);
        var next = Joined(state);
        Assert.True(cancelled.Waiter.TryCancel(CancellationToken.None));

        coordinator.Withdraw(cancelled.Waiter); // takes the line back: the cancelled one leaves, the next goes back
        Assert.Equal(1, state.Announced);
        Assert.True(state.TryPassOn(holder));
        Assert.True(Granted(next));
        Assert.Equal(0, state.Announced);
        Assert.Empty(coordinator.Failures);
    }

    [Fact]
    public void A_release_that_takes_the_only_waiter_cancelled_frees_the_lock_itself()
    {
        var (state, coordinator, holder) = Held();
        var cancelled = Waiting(coordinator);
        Assert.True(cancelled.Waiter.TryCancel(CancellationToken.None));

        Assert.True(state.TryPassOn(holder)); // nobody left announced: freed on the spot

        Assert.False(state.IsHeld);
        Assert.Null(state.Owner);
        coordinator.Withdraw(cancelled.Waiter);
        Assert.Equal(0, coordinator.Gate.Waiting);
        Assert.Equal(0, state.Announced);
    }

    [Fact]
    public void After_the_coordinator_stops_a_release_frees_the_lock_and_grants_no_waiter()
    {
        var (state, coordinator, holder) = Held();
        var waiting = Waiting(coordinator);

        state.Close(coordinator.Gate);

        Assert.True(state.TryPassOn(holder)); // closed: freed, the waiter is the stopping coordinator's to fail
        Assert.False(waiting.Waiter.IsCompleted);
        Assert.False(state.IsHeld);
    }

    /// <summary>A lock held by a flow (taken on the fast path) and its coordinator.</summary>
    private static (LockState State, LockCoordinatorStandIn Coordinator, object Holder) Held()
    {
        var state = new LockState();
        var holder = new object();
        Assert.True(state.TryTakeOrAnnounce());
        state.Grant(holder, 1);
        Assert.True(state.TryClaimRelease(holder, out _)); // its last level, claimed: it is about to pass the lock on
        return (state, new LockCoordinatorStandIn(state), holder);
    }

    /// <summary>A flow that found the lock held and joined the published line: announced, no message.</summary>
    private static Caller Joined(LockState state)
    {
        var flow = new object();
        var waiter = new LockWaiter(ActorRefs.Nobody, flow);
        var granted = waiter.WaitAsTaskAsync(CancellationToken.None);
        Assert.False(state.TryTakeOrAnnounce());
        Assert.True(state.TryJoinLine(waiter));
        return new Caller(flow, waiter, granted);
    }

    /// <summary>Whether the caller was granted (its continuation runs asynchronously, so its task completes a moment later).</summary>
    private static bool Granted(Caller caller) => caller.Waiter.IsCompleted && caller.Granted.Wait(TimeSpan.FromSeconds(10)) && caller.Granted.Result;

    /// <summary>A holding flow's one release, as <c>AsyncLock.Release</c> makes it.</summary>
    private static void Release(LockState state, object flow)
    {
        Assert.True(state.TryClaimRelease(flow, out var remaining));
        Assert.Equal(0, remaining);
        Assert.True(state.TryPassOn(flow));
    }
}
