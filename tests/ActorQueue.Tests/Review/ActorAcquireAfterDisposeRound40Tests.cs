using ActorQueue.Primitives;
using Akka.Actor;
using static ActorQueue.Primitives.CoordinatorProtocol;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review round 40 of the actor protocol after a primitive's disposal: <see cref="Refused"/> is documented as the
/// answer for "a disposed primitive", and an actor that sends <see cref="Acquire"/> waits for that answer.
/// </summary>
public sealed class ActorAcquireAfterDisposeRound40Tests : ActorQueueTestKit
{
    /// <summary>
    /// An <see cref="Acquire"/> sent to the coordinator of each disposed primitive is answered <see cref="Refused"/>
    /// with its request id. Failed before: nothing answered it (the message went to dead letters, and only requests
    /// that carry their own completion were answered there): <c>ExpectMsg</c> timed out, the actor would wait for ever.
    /// </summary>
    [Fact]
    public async Task An_actors_acquire_sent_after_the_primitive_was_disposed_is_refused()
    {
        var @lock = new AsyncLock(Sys);
        var semaphore = new AsyncSemaphore(1, Sys);
        var limiter = new AsyncCapacityLimiter(1, Sys);
        var @event = new AsyncEvent(Sys);
        IActorRef[] coordinators = [@lock.Coordinator, semaphore.Coordinator, limiter.Coordinator, @event.Coordinator];
        await @lock.DisposeAsync();
        await semaphore.DisposeAsync();
        await limiter.DisposeAsync();
        await @event.DisposeAsync();

        for (var i = 0; i < coordinators.Length; i++)
        {
            coordinators[i].Tell(new Acquire(40 + i), TestActor);
            var refused = ExpectMsg<Refused>();
            Assert.Equal(40 + i, refused.RequestId);
            Assert.Contains("disposed", refused.Reason, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The same while the actor system terminates: an actor asking a primitive whose system has stopped is refused
    /// (the answer does not depend on an actor of that system). Failed before: no answer, as above.
    /// </summary>
    [Fact]
    public async Task An_acquire_sent_to_a_primitive_of_a_terminated_system_is_refused()
    {
        var system = ActorSystem.Create("round40-acquire-after-terminate",
            Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig));
        var @lock = new AsyncLock(system);
        await system.Terminate().WaitAsync(TimeSpan.FromSeconds(30));

        @lock.Coordinator.Tell(new Acquire(7), TestActor);

        Assert.Equal(7, ExpectMsg<Refused>().RequestId);
        await Within(@lock.DisposeAsync().AsTask());
    }
}
