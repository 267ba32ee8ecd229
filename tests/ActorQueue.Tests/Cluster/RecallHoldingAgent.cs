using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A node's limiter agent whose block recalls the test holds back, as on a node a recall has not reached yet: the
/// production agent in every other respect (the hold sits in its own <c>AroundReceive</c>, ahead of its behaviour).
/// </summary>
internal sealed class RecallHoldingAgent(LimiterAgentSetup setup) : LimiterAgentActor(setup), IWithUnboundedStash
{
    /// <summary>Whether recalls are held now.</summary>
    private bool _holding = true;

    /// <inheritdoc />
    public IStash Stash { get; set; } = null!;

    /// <summary>This node's handle on cluster limiter <paramref name="name"/>, whose agent holds recalls until told <see cref="ReleaseRecalls"/>.</summary>
    public static ClusterConcurrencyLimiter Limiter(ActorSystem node, string name, int maxRunning) =>
        ActorQueueCluster.Get(node).StartLimiter(name, new ClusterLimit(maxRunning, null, null, QueueFullMode.RejectNewcomer),
            agentSetup => Akka.Actor.Props.Create(() => new RecallHoldingAgent(agentSetup)), _ => { }, register: true);

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        switch (message)
        {
            case ReleaseRecalls:
                _holding = false;
                Stash.UnstashAll();
                return true;
            case BlockRecall when _holding:
                Stash.Stash();
                return true;
            default:
                return base.AroundReceive(receive, message);
        }
    }

    /// <summary>The held recalls are taken, in the order they came, and later ones at once.</summary>
    public sealed record ReleaseRecalls
    {
        public static ReleaseRecalls Instance { get; } = new();
    }
}
