// snippet: limiter-resize
using ActorQueue.Actors;
using Akka.Actor;
// end snippet

namespace ActorQueue.Examples;

public static class LimiterResize
{
    public static void Run(ConcurrencyLimiter limiter, IActorRef gatekeeper)
    {
        // snippet: limiter-resize
        limiter.Resize(maxRunning: 16);                 // or maxQueued:, or both; null leaves a value as it is
        gatekeeper.Tell(new GatekeeperProtocol.Resize(MaxRunning: 2, MaxQueued: null));   // the same from an actor
        // end snippet
    }
}
