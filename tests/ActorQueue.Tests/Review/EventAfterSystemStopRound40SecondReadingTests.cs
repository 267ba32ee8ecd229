using ActorQueue.Primitives;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A second reading of review round 40's event fix (<c>Abandon</c> answers the cohort either way): an event whose
/// actor system stopped is gone as a disposed one is (its waiters were failed with <see cref="ObjectDisposedException"/>),
/// so it must not come back to life when <c>Set</c> is called on it afterwards.
/// </summary>
public sealed class EventAfterSystemStopRound40SecondReadingTests : ActorQueueTestKit
{
    /// <summary>
    /// The event's actor system stops while it is unset: a wait then fails with <see cref="ObjectDisposedException"/>,
    /// a later <c>Set</c> is refused with it as after a disposal, and a wait after that fails with it too.
    /// Failed before: <c>Set</c> was accepted (it raised the flag of the abandoned event) and the next <c>WaitAsync</c>
    /// completed successfully (RanToCompletion), while the wait made just before the <c>Set</c> had failed: a waiter
    /// joining after the event was gone succeeded.
    /// </summary>
    [Fact]
    public async Task An_event_whose_system_stopped_cannot_be_set_and_a_later_wait_fails()
    {
        var system = ActorSystem.Create("round40-event-after-terminate",
            Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig));
        var @event = new AsyncEvent(system);
        await Within(system.Terminate());

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(@event.WaitAsync()));
        Assert.Throws<ObjectDisposedException>(@event.Set);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(@event.WaitAsync()));
        await Within(@event.DisposeAsync().AsTask());
    }
}
