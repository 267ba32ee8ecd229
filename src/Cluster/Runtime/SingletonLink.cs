using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A node agent's link to its singleton child (a gatekeeper or a router): through the hub proxy, wrapped in the
/// child's envelope, until an incarnation introduces itself with a recover request; then straight to that actor,
/// watched, until it stops.
/// </summary>
internal sealed class SingletonLink(IActorRef hubProxy, Func<object, object> envelope)
{
    /// <summary>How many incarnations left behind are remembered: a few hand-overs' worth of late messages.</summary>
    private const int Remembered = 8;

    /// <summary>
    /// The incarnations this link followed and saw stop, newest last. Its recover request that arrives late (nothing
    /// orders messages from two senders) must not be followed, or the agent would follow a dead incarnation, send
    /// everything with its epoch, and the live one, which it already announced itself to, would drop it all without
    /// asking again.
    /// </summary>
    private readonly Queue<IActorRef> _left = new();

    /// <summary>The incarnation followed now; <c>null</c> before the first and after it stopped.</summary>
    public IActorRef? Current { get; private set; }

    /// <summary>That incarnation's epoch; 0 before the first (the last one's after it stopped).</summary>
    public long Epoch { get; private set; }

    /// <summary>Follows the incarnation that sent a recover request, unless it is one this link saw stop.</summary>
    /// <returns>Whether the agent follows it now and must answer; <c>false</c> for a late request of a stopped incarnation, to ignore.</returns>
    public bool Follow(IActorContext context, IActorRef incarnation, long epoch)
    {
        if (_left.Contains(incarnation))
        {
            return false;
        }

        if (!incarnation.Equals(Current))
        {
            if (Current is not null)
            {
                context.Unwatch(Current); // not remembered as gone: a switch cannot tell which of the two is the older
            }

            Current = incarnation;
            context.Watch(incarnation);
        }

        Epoch = epoch;
        return true;
    }

    /// <summary>Whether <paramref name="terminated"/> is the followed incarnation; if so, messages go through the proxy again.</summary>
    public bool Lost(IActorRef terminated)
    {
        if (!terminated.Equals(Current))
        {
            return false;
        }

        Leave(terminated);
        Current = null;
        return true;
    }

    private void Leave(IActorRef incarnation)
    {
        _left.Enqueue(incarnation);
        if (_left.Count > Remembered)
        {
            _left.Dequeue();
        }
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
