using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// The production limiter agent, holding back the messages <paramref name="held"/> picks between <see cref="Hold"/> and
/// <see cref="Release"/> (from its start if <paramref name="holding"/>), as on a node slow to take them. The hold sits
/// in its own <c>AroundReceive</c>, ahead of its behaviour, so it also catches what reaches the agent through its node
/// host; <see cref="ReleaseOne"/> has the oldest held message taken next, before anything else in the mailbox.
/// </summary>
internal sealed class HoldingAgent(LimiterAgentSetup setup, Func<object, bool> held, bool holding = false) : LimiterAgentActor(setup), IWithUnboundedStash
{
    private bool _holding = holding;

    /// <summary>How many held messages, put back in front of the mailbox, are taken despite the hold.</summary>
    private int _passes;

    /// <inheritdoc />
    public IStash Stash { get; set; } = null!;

    /// <summary>Picks a new gatekeeper's recover request (directly, or checked through the node host).</summary>
    public static bool Recovery(object message) => message is RecoverLimiter or CheckedRecovery<RecoverLimiter>;

    /// <summary>Picks a block recall.</summary>
    public static bool Recall(object message) => message is BlockRecall;

    /// <summary>
    /// This node's handle on cluster limiter <paramref name="name"/>, in place of <see cref="ActorQueueCluster.Limiter"/>:
    /// its agent, registered with the node host like a production agent, holds what <paramref name="held"/> picks.
    /// </summary>
    public static ClusterConcurrencyLimiter Limiter(ActorSystem node, string name, int maxRunning, Func<object, bool> held, bool holding = false) =>
        ActorQueueCluster.Get(node).StartLimiter(name, new ClusterLimit(maxRunning, null, null, QueueFullMode.RejectNewcomer),
            setup => Akka.Actor.Props.Create(() => new HoldingAgent(setup, held, holding)), _ => { }, register: true);

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        switch (message)
        {
            case Hold:
                _holding = true;
                return true;
            case ReleaseOne:
                _passes++;
                Stash.Unstash();
                return true;
            case Release:
                _holding = false;
                Stash.UnstashAll();
                return true;
            case var _ when _holding && held(message) && _passes == 0:
                Stash.Stash();
                return true;
            case var _ when _holding && held(message):
                _passes--;
                return base.AroundReceive(receive, message);
            default:
                return base.AroundReceive(receive, message);
        }
    }

    /// <summary>From now on, the picked messages wait.</summary>
    public sealed record Hold
    {
        public static Hold Instance { get; } = new();
    }

    /// <summary>The oldest held message is taken next.</summary>
    public sealed record ReleaseOne
    {
        public static ReleaseOne Instance { get; } = new();
    }

    /// <summary>The held messages are taken, in the order they came, and later ones at once.</summary>
    public sealed record Release
    {
        public static Release Instance { get; } = new();
    }
}
