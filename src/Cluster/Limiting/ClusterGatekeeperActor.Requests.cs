using ActorQueue.Coordination;

namespace ActorQueue.Cluster;

// The cluster gatekeeper's requests from its agents: an acquire (a block, a grant, a wait kept aside while recovering,
// or a rejection), a release, and a cancellation (the waiter withdrawn, or its permits back if it was granted meanwhile).
internal sealed partial class ClusterGatekeeperActor
{
    private void HandleAcquire(RemoteAcquire message)
    {
        if (!IsCurrent(message.Epoch, out var agent) || agent.Knows(message.RequestId))
        {
            return; // of another incarnation, or the announcement carried it already
        }

        if (TryGrantBlock(agent, message))
        {
            return;
        }

        var waiter = new RemoteWaiter(agent, message.RequestId, message.Source, new PermitDemand(message.Permits, message.Tokens), message.Priority, message.MayWait, _replies,
            message.Fetch);
        agent.Pending.Add(message.RequestId, waiter);
        if (!_gate.IsOpen && message.MayWait)
        {
            _newcomers.Add(waiter); // recovering: judged once the gate opens (after any held resize), as a serving gatekeeper would judge it
            return;
        }

        _gate.Offer(waiter); // the listener moves it from Pending when it is granted or rejected at once
    }

    private void Release(long epoch, long requestId)
    {
        if (IsCurrent(epoch, out var agent) && agent.Held.Remove(requestId, out var held))
        {
            _gate.Release(held);
        }
    }

    /// <summary>The caller withdrew: its waiter leaves the gate, or its permits come back if it was granted meanwhile.</summary>
    private void HandleCancel(RemoteCancel message)
    {
        if (!IsCurrent(message.Epoch, out var agent))
        {
            return;
        }

        if (agent.Pending.Remove(message.RequestId, out var waiter))
        {
            if (!_newcomers.Remove(waiter))
            {
                _gate.Withdraw(waiter);
            }
        }
        else if (agent.Held.Remove(message.RequestId, out var held))
        {
            _gate.Release(held);
        }
    }
}
