using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Cluster;

// The cluster gatekeeper's sides toward its permit gate (the listener: the agents' books and telemetry) and toward
// its incarnation (the recover requests), and its timers' messages.
internal sealed partial class ClusterGatekeeperActor
{
    /// <inheritdoc />
    void IPermitGateListener.Publish(in PermitSnapshot now)
    {
        // The up-down counters take one delta per message (AroundReceive); agents get the counts in the replies.
    }

    /// <inheritdoc />
    void IPermitGateListener.Queued(PermitWaiter waiter) =>
        // Reading the clock costs a share of a contended hand-off, so only when someone records wait times.
        waiter.ArrivedAt = ActorQueueTelemetry.LimiterWaitTimeHistogram.Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <inheritdoc />
    void IPermitGateListener.Granting(PermitWaiter waiter, in PermitGrant grant)
    {
        var remote = (RemoteWaiter)waiter;
        remote.Agent.Pending.Remove(remote.RequestId);
        remote.Agent.Held.Add(remote.RequestId, grant.Demand);
    }

    /// <inheritdoc />
    void IPermitGateListener.GrantLost(PermitWaiter waiter, in PermitGrant grant) =>
        throw new InvalidOperationException("A remote waiter withdraws by message: a grant always reaches it.");

    /// <inheritdoc />
    void IPermitGateListener.Granted(PermitWaiter waiter, in PermitGrant grant)
    {
        _telemetry.Granted(waiter, grant);
        _rateTelemetry?.Granted(grant);
    }

    /// <inheritdoc />
    Exception IPermitGateListener.Rejecting(PermitWaiter waiter, in PermitRejection rejection)
    {
        var remote = (RemoteWaiter)waiter;
        remote.Agent.Pending.Remove(remote.RequestId);
        if (!remote.IsBlockFetch)
        {
            _telemetry.Rejected(rejection.Kind); // an agent's block fetch refused turned no caller away
        }

        return new RejectionNotice(rejection);
    }

    /// <summary>The counts are the agents' books summed: every held lease its permits, every block its permits, every pending request one waiter.</summary>
    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        System.Diagnostics.Debug.Assert(_slots.InUse == _agents.Values.Sum(agent => agent.Held.Values.Sum(held => (long)held.Permits) + agent.Block),
            "the permits in use are the held leases' and the blocks' permits");
        System.Diagnostics.Debug.Assert(_gate.Waiting + _newcomers.Count == _agents.Values.Sum(agent => agent.Pending.Count),
            "the gate holds every pending request but the newcomers kept for the gate's opening");
        System.Diagnostics.Debug.Assert(!_gate.IsOpen || _newcomers.Count == 0, "an open gate has been offered every newcomer kept for it");
    }

    /// <summary>A new incarnation's node host broadcast: to the nodes' agents, and a probe of whether the node runs ActorQueue at all.</summary>
    void IRecoveryRequests.AskNode(Address node, long epoch)
    {
        var host = NodeHostActor.At(Context, node);
        host.Tell(new RecoverLimiter(_name, epoch), Self);
        host.Tell(new Identify(node.ToString()), Self); // a string id: Akka serializes it natively
    }

    /// <summary>Asks one agent directly; it is <see cref="_asked"/> (and watched) until it announces itself or stops.</summary>
    void IRecoveryRequests.AskAgent(IActorRef agent, long epoch)
    {
        if (_asked.Add(agent))
        {
            Context.Watch(agent);
        }

        agent.Tell(new RecoverLimiter(_name, epoch), Self);
    }

    private sealed class RecoverTick
    {
        public static readonly RecoverTick Instance = new();
    }

    /// <summary>The idle timer's message (<see cref="StopIdle"/>); internal so that a test can fire it at a chosen moment.</summary>
    internal sealed class IdleTick
    {
        public static readonly IdleTick Instance = new();
    }
}
