using ActorQueue.Primitives;
using Akka.Actor;

namespace ActorQueue.Tests.Primitives;

/// <summary>The waiting flows the lock hand-off tests share.</summary>
internal static class LockHandOffCallers
{
    /// <summary>
    /// A flow that found the lock held and sent its waiter: announced, delivered, and queued in the gate (published if
    /// it is the head) or, when only flows wait, moved into the line.
    /// </summary>
    internal static Caller Waiting(LockCoordinatorStandIn coordinator)
    {
        var flow = new object();
        var waiter = new LockWaiter(ActorRefs.Nobody, flow);
        var granted = waiter.WaitAsTaskAsync(CancellationToken.None);
        Assert.False(coordinator.State.TryTakeOrAnnounce());
        coordinator.State.Sending();
        coordinator.Deliver(waiter);
        Assert.True(waiter.IsQueued || coordinator.State.InLine > 0);
        return new Caller(flow, waiter, granted);
    }

    internal sealed record Caller(object Flow, LockWaiter Waiter, Task<bool> Granted);
}
