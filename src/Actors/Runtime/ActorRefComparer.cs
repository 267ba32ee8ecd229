using Akka.Actor;

namespace ActorQueue.Runtime;

/// <summary>
/// Compares actor refs as Akka does, but hashes them by their path's uid instead of the whole path. Akka's
/// <c>ActorPath.GetHashCode</c> walks the path and its address on every call; a router that looks its worker up on
/// every report spent 3–4 % of a small item's cost there. Refs that Akka calls equal have the same uid, so the hash
/// stays consistent with equality. A ref without a uid (an <c>Ask</c>'s temporary actor: all of them have 0) hashes
/// as Akka does, so that many of them do not share one bucket.
/// </summary>
internal sealed class ActorRefComparer : IEqualityComparer<IActorRef>
{
    public static readonly ActorRefComparer Instance = new();

    private ActorRefComparer()
    {
    }

    /// <inheritdoc />
    public bool Equals(IActorRef? x, IActorRef? y) => ReferenceEquals(x, y) || (x is not null && x.Equals(y));

    /// <inheritdoc />
    public int GetHashCode(IActorRef obj) => obj.Path.Uid is var uid and not 0 ? uid.GetHashCode() : obj.GetHashCode();
}
