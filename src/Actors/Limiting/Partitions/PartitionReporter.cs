using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// A partition's gatekeeper's side of the idle hand-shake: after every message that leaves it with nothing held and
/// nobody waiting, it tells its parent how many of the parent's messages it has handled. The parent stops it only if
/// that number is every message it sent, so a request racing with the stop is never lost (see PartitionTable).
/// </summary>
internal sealed class PartitionReporter(PartitionMembership membership)
{
    /// <summary>How many messages from the parent this gatekeeper has handled.</summary>
    private long _fromParent;

    /// <summary>The <see cref="_fromParent"/> of the last idle report; -1 once busy since.</summary>
    private long _reported = -1;

    public void AfterMessage(IActorRef sender, in PermitSnapshot now, IActorRef self)
    {
        if (membership.Parent.Equals(sender))
        {
            _fromParent++;
        }

        if (now.InUse != 0 || now.Waiting != 0)
        {
            _reported = -1;
            return;
        }

        if (_reported != _fromParent)
        {
            _reported = _fromParent;
            membership.Parent.Tell(new PartitionIdle(membership.Key, self, _fromParent), self);
        }
    }
}

/// <summary>A partition's gatekeeper holds nothing and nobody waits, having handled <paramref name="Handled"/> of its parent's messages.</summary>
internal sealed record PartitionIdle(object Key, IActorRef Gatekeeper, long Handled);
