using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A node's limiter agent whose answers to recover requests the test holds back, as on a node slow to answer a new
/// gatekeeper: the production agent in every other respect. Recover requests reach an agent through its node host and
/// directly (after its hello), so the hold sits in the agent's own <c>AroundReceive</c>, ahead of its behaviour.
/// </summary>
internal sealed class RecoveryHoldingAgent : LimiterAgentActor, IWithUnboundedStash
{
    /// <summary>Whether recover requests are held now.</summary>
    private bool _holding;

    public RecoveryHoldingAgent(LimiterAgentSetup setup)
        : base(setup)
    {
    }

    /// <inheritdoc />
    public IStash Stash { get; set; } = null!;

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        switch (message)
        {
            case HoldRecovery:
                _holding = true;
                return true;
            case ReleaseRecovery:
                _holding = false;
                Stash.UnstashAll();
                return true;
            case RecoverLimiter or CheckedRecovery<RecoverLimiter> when _holding:
                Stash.Stash();
                return true;
            default:
                return base.AroundReceive(receive, message);
        }
    }

    /// <summary>From now on, recover requests wait.</summary>
    public sealed record HoldRecovery
    {
        public static HoldRecovery Instance { get; } = new();
    }

    /// <summary>The held recover requests are answered, in the order they came, and later ones at once.</summary>
    public sealed record ReleaseRecovery
    {
        public static ReleaseRecovery Instance { get; } = new();
    }
}

/// <summary>Starts cluster limiter handles whose node agent is a <see cref="RecoveryHoldingAgent"/>.</summary>
internal static class RecoveryHolding
{
    /// <summary>
    /// This node's handle on cluster limiter <paramref name="name"/>, in place of <see cref="ActorQueueCluster.Limiter"/>:
    /// its agent is a <see cref="RecoveryHoldingAgent"/>, registered with the node host like a production agent.
    /// </summary>
    public static ClusterConcurrencyLimiter Limiter(ActorSystem node, string name, int maxRunning) =>
        ActorQueueCluster.Get(node).StartLimiter(name, new ClusterLimit(maxRunning, null, null, QueueFullMode.RejectNewcomer),
            setup => Props.Create(() => new RecoveryHoldingAgent(setup)), _ => { }, register: true);
}
