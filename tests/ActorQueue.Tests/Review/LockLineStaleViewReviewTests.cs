using ActorQueue.Primitives;
using ActorQueue.Tests.Primitives;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review: the lock's line of flows (LockState remarks: "No barging and no lost wake-up ... only the coordinator takes
/// or frees the word: its view, copied after the announcement, is exact"; AsyncLock: one holder at a time). A line
/// published at the end of a message during which a flow took the free lock on the fast path must never let the
/// coordinator grant a flow that joined it while that flow still holds the lock.
/// </summary>
public sealed class LockLineStaleViewReviewTests
{
    [Fact]
    public void A_flow_that_joined_a_line_published_beside_a_fast_take_is_not_granted_while_the_taker_holds()
    {
        var state = new LockState();
        var coordinator = new LockCoordinatorStandIn(state);

        // Any message the coordinator handles while the lock is free and nobody waits (a status, a late withdrawal, an
        // actor holder's release): its sweep sees the lock free; a flow takes it on the fast path before the message ends.
        state.BeginMessage(coordinator.Gate);
        var taker = new object();
        Assert.True(state.TryTakeOrAnnounce());
        state.Grant(taker, 1);
        state.EndMessage(coordinator.Gate);

        // A later flow finds the lock held: it joins the line if one is published, else sends its waiter.
        var flow = new object();
        var waiter = new LockWaiter(ActorRefs.Nobody, flow);
        _ = waiter.WaitAsTaskAsync(CancellationToken.None);
        Assert.False(state.TryTakeOrAnnounce());
        if (state.TryJoinLine(waiter))
        {
            coordinator.Nothing(); // the coordinator's next message takes the line back
        }
        else
        {
            state.Sending();
            coordinator.Deliver(waiter);
        }

        Assert.True(state.IsHeldBy(taker), "the coordinator granted the lock to the flow in the line while the fast taker, which never released, held it");
        Assert.False(waiter.IsCompleted, "the flow in the line was granted while the fast taker held the lock");

        // The taker's release, as AsyncLock makes it: the waiter is served next.
        Assert.True(state.TryClaimRelease(taker, out var remaining));
        Assert.Equal(0, remaining);
        if (!state.TryPassOn(taker))
        {
            coordinator.Released(taker);
        }

        Assert.True(waiter.IsCompleted, "the flow in the line is served once the taker released");
        Assert.Empty(coordinator.Failures);
    }
}
