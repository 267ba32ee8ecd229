using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Cluster;

// The cluster gatekeeper's blocks: permits leased to a node's agent as a whole, which the agent grants to its callers
// and takes back from them without a message. A block is counted in the gate as held by its agent, so the cluster-wide
// limit stays exact whoever holds what. Blocks go out only while nobody waits here (a plain one-permit request granted
// at once brings a share of the free permits with it); once someone waits, or the limit shrinks, every agent holding a
// block is recalled: it gives back the unused part at once and each block lease as it is released, so from then on
// the permits pass through the gate in its order. Limiters with rates never lease blocks (a rate is spent per grant).
internal sealed partial class ClusterGatekeeperActor
{
    /// <summary>
    /// Grants a plain request at once with a block when the agent asks for one, no rate applies, the gate is open,
    /// nobody waits and a permit is free: the block is the agent's share of the free permits (at least the request's own).
    /// </summary>
    /// <returns>Whether it was granted so; if not, it goes through the gate as any request.</returns>
    private bool TryGrantBlock(AgentRecord agent, RemoteAcquire message)
    {
        var free = _slots.Limit - _slots.InUse;
        if (!message.Block || message.Permits != 1 || message.Tokens != 0 || _rates.Length != 0 || !_gate.IsOpen || _gate.Waiting != 0 || free < 1)
        {
            return false;
        }

        var permits = (int)Math.Max(1, free / Math.Max(1, _agents.Count));
        _gate.Adopt(new PermitDemand(permits));
        agent.Block += permits;
        agent.Recalled = false;
        agent.Ref.Tell(new RemoteGranted(_incarnation.Epoch, message.RequestId, (int)_slots.InUse, 0) { Block = permits });
        if (!message.Fetch)
        {
            _listenerFailures.Add(ActorQueueTelemetry.LimiterAcquiredCounter, 1, _metricTag); // after the agent was told; an agent's block fetch granted no caller a lease
        }
        return true;
    }

    /// <summary>An agent gives back part of its block (never more than it holds: a peer's count is not trusted).</summary>
    private void HandleBlockReturn(BlockReturn message)
    {
        if (!IsCurrent(message.Epoch, out var agent))
        {
            return; // of another incarnation: the agent's announcement to this one counts its block without these
        }

        var permits = Math.Min(message.Permits, agent.Block);
        if (permits > 0)
        {
            agent.Block -= permits;
            _gate.Release(new PermitDemand(permits));
        }
    }

    /// <summary>
    /// Someone waits (in the gate, or kept aside for its opening): every agent holding a block not recalled yet is recalled
    /// (once until it is granted a block again).
    /// </summary>
    private void RecallBlocksIfContended()
    {
        if (Waiting != 0)
        {
            RecallBlocks();
        }
    }

    /// <summary>Recalls every block not recalled yet.</summary>
    private void RecallBlocks()
    {
        foreach (var agent in _agents.Values)
        {
            if (agent.Block > 0 && !agent.Recalled)
            {
                agent.Recalled = true;
                agent.Ref.Tell(new BlockRecall(_incarnation.Epoch));
            }
        }
    }
}
