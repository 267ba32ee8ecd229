using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A node's limiter agent with one more handler, which throws: a defect in a handler. The production agent in every
/// other respect.
/// </summary>
internal sealed class DefectiveAgent : LimiterAgentActor
{
    public DefectiveAgent(LimiterAgentSetup setup)
        : base(setup) => Receive<Defect>(_ => throw new InvalidOperationException("a defect in the agent's handler (test)"));

    /// <summary>This node's handle on cluster limiter <paramref name="name"/>, whose agent is a <see cref="DefectiveAgent"/> registered with the node host.</summary>
    public static ClusterConcurrencyLimiter Limiter(ActorSystem node, string name, int maxRunning) =>
        ActorQueueCluster.Get(node).StartLimiter(name, new ClusterLimit(maxRunning, null, null, QueueFullMode.RejectNewcomer),
            setup => Akka.Actor.Props.Create(() => new DefectiveAgent(setup)), _ => { }, register: true);

    /// <summary>The message the added handler throws on.</summary>
    public sealed class Defect
    {
        public static readonly Defect Instance = new();
    }
}
