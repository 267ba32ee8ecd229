using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>What one actor caller waits for and holds.</summary>
internal sealed class HolderRecord(IActorRef actor)
{
    public IActorRef Actor { get; } = actor;

    /// <summary>Its requests still waiting, by request id.</summary>
    public Dictionary<long, ActorWaiter> Pending { get; } = [];

    /// <summary>Its leases, by the request id that got them.</summary>
    public Dictionary<long, long> LeaseByRequest { get; } = [];

    public bool IsIdle => Pending.Count == 0 && LeaseByRequest.Count == 0;

    /// <summary>Counted among the gatekeeper's idle callers (kept watched until a sweep forgets them).</summary>
    public bool CountedIdle { get; set; }

    public void RemoveLease(long leaseId)
    {
        foreach (var (requestId, held) in LeaseByRequest)
        {
            if (held == leaseId)
            {
                LeaseByRequest.Remove(requestId);
                return;
            }
        }
    }
}
