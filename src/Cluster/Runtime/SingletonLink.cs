using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A node agent's link to its singleton child (a gatekeeper or a router): through the hub proxy, wrapped in the
/// child's envelope, until an incarnation introduces itself with a recover request; then straight to that actor,
/// watched, until it stops.
/// </summary>
internal sealed class SingletonLink(IActorRef hubProxy, Func<object, object> envelope)
{

    /// <summary>The incarnation followed now; <c>null</c> before the first and after it stopped.</summary>
    public IActorRef? Current { get; private set; }

    /// <summary>That incarnation's epoch; 0 before the first (the last one's after it stopped).</summary>
    public long Epoch { get; private set; }

    /// <summary>Follows the incarnation that sent a recover request.</summary>
    public void Follow(IActorContext context, IActorRef incarnation, long epoch)
    {
        if (!incarnation.Equals(Current))
        {
            if (Current is not null)
            {
                context.Unwatch(Current);
            }

            Current = incarnation;
            context.Watch(incarnation);
        }

        Epoch = epoch;
    }

    /// <summary>Whether <paramref name="terminated"/> is the followed incarnation; if so, messages go through the proxy again.</summary>
    public bool Lost(IActorRef terminated)
    {
        if (!terminated.Equals(Current))
        {
            return false;
        }

        Current = null;
        return true;
    }

    /// <summary>
    /// Says hello through the hub when no incarnation is followed, so one exists and asks the agent to announce. Agents
    /// call it when they have something at stake: on their hello timer and when their incarnation stops.
    /// </summary>
    public void HelloIfUnfollowed(IActorRef self)
    {
        if (Current is null)
        {
            Send(new AgentHello(Epoch), self);
        }
    }

    /// <summary>Sends to the followed incarnation, or through the proxy in the child's envelope.</summary>
    public void Send(object message, IActorRef sender) =>
        (Current ?? hubProxy).Tell(Current is null ? envelope(message) : message, sender);
}

/// <summary>An agent's timer: say hello again if no singleton incarnation is followed yet (<c>actorqueue.cluster.hello-interval</c>).</summary>
internal sealed class HelloTick
{
    public static readonly HelloTick Instance = new();
}
