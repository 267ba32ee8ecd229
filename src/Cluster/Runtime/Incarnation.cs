using System.Diagnostics;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>How an <see cref="Incarnation"/> reaches the members and agents it asks to announce themselves (its owner's recover message).</summary>
internal interface IRecoveryRequests
{
    /// <summary>Asks the node host at <paramref name="node"/> to have the node's agents announce themselves to <paramref name="epoch"/>.</summary>
    void AskNode(Address node, long epoch);

    /// <summary>
    /// Asks one agent, which spoke to this incarnation without having announced itself (or after it left this
    /// incarnation: it announces itself again), to announce itself to <paramref name="epoch"/>.
    /// </summary>
    void AskAgent(IActorRef agent, long epoch);
}

/// <summary>
/// One singleton child's incarnation (a cluster gatekeeper's or a queue router's): its epoch, the agents that have
/// announced themselves to it, whom it asked, and — when it must hear from every member before it serves — the roll
/// call of the members still silent. Pure bookkeeping, owned by one actor; the actor sends what it asks for through
/// <see cref="IRecoveryRequests"/> and decides what an announcement means.
/// </summary>
/// <remarks>
/// A new incarnation knows nothing of what the previous one handed out. Every message an agent sends carries the
/// epoch of the incarnation it follows; a message of another epoch, or from an agent that has not announced itself,
/// is not admitted and its sender is asked (once) to announce, so the incarnation's state comes only from
/// announcements and later messages. An announced agent whose hello shows another epoch has left this incarnation and
/// is asked again: its re-announcement replaces what it said before. A node is answered by an announcement of its
/// agent, by its host saying it has no agent, by having no host at all (a member without ActorQueue), or by leaving the
/// cluster.
/// </remarks>
[DebuggerDisplay("epoch {Epoch}, announced {_announced.Count}, silent {_silent?.Count}")]
internal sealed class Incarnation
{
    /// <summary>Sends the recover requests.</summary>
    private readonly IRecoveryRequests _requests;

    /// <summary>Whether the incarnation waits for every member before it is recovered (a gatekeeper) or serves at once (a router).</summary>
    private readonly bool _awaitEveryMember;

    /// <summary>Agents that announced themselves to this incarnation (until they stop, or leave it for another).</summary>
    private readonly HashSet<IActorRef> _announced = [];

    /// <summary>Agents asked one by one, outside the members' broadcast, so each is asked once.</summary>
    private readonly HashSet<IActorRef> _askedDirectly = [];

    /// <summary>Nodes that answered before the roll call began (an agent may announce before the membership is known).</summary>
    private readonly HashSet<Address> _answeredEarly = [];

    /// <summary>Members not yet heard from; null until the roll call began (and always for an incarnation that does not await members).</summary>
    private HashSet<Address>? _silent;

    /// <summary>Starts an incarnation with a new epoch.</summary>
    /// <param name="requests">Sends what the incarnation asks for.</param>
    /// <param name="awaitEveryMember">Whether it is recovered only once every member answered (else at once).</param>
    public Incarnation(IRecoveryRequests requests, bool awaitEveryMember)
    {
        _requests = requests;
        _awaitEveryMember = awaitEveryMember;
    }

    /// <summary>The highest epoch an incarnation draws (<see cref="Epoch"/> is 1 to this); a peer's higher or negative one names none.</summary>
    public const long HighestEpoch = long.MaxValue - 1;

    /// <summary>This incarnation's epoch: random, 1 to <see cref="HighestEpoch"/>, never 0 (an agent's epoch before it followed any incarnation).</summary>
    public long Epoch { get; } = Random.Shared.NextInt64(1, HighestEpoch + 1);

    /// <summary>Whether the roll call is over: every member answered (at once for an incarnation that does not await members).</summary>
    public bool IsRecovered => !_awaitEveryMember || _silent is { Count: 0 };

    /// <summary>
    /// Starts the roll call: asks every member's node host, except nodes that already answered. Called once, when the
    /// membership is known.
    /// </summary>
    /// <param name="members">The cluster's members now.</param>
    /// <returns>Whether the incarnation is recovered already (nobody left to hear from).</returns>
    public bool Begin(IEnumerable<Address> members)
    {
        Debug.Assert(_silent is null, "the roll call begins once");
        var silent = members.Where(node => !_answeredEarly.Contains(node)).ToHashSet();
        _answeredEarly.Clear();
        foreach (var node in silent)
        {
            _requests.AskNode(node, Epoch);
        }

        if (_awaitEveryMember)
        {
            _silent = silent;
        }

        return IsRecovered;
    }

    /// <summary>Asks the members still silent again (a first request or its answer may be lost while a node starts or the singleton moves).</summary>
    public void AskAgain()
    {
        foreach (var node in _silent ?? [])
        {
            _requests.AskNode(node, Epoch);
        }
    }

    /// <summary>
    /// <paramref name="node"/> answered the roll call: its agent announced itself, it has no agent or no ActorQueue host,
    /// or it left the cluster.
    /// </summary>
    /// <returns>Whether the node was still silent (a later answer of the same node, or one of a non-member, counts for nothing).</returns>
    public bool Answered(Address node)
    {
        if (_silent is null)
        {
            _answeredEarly.Add(node);
            return false;
        }

        return _silent.Remove(node);
    }

    /// <summary>A node host says its node has no agent, answering the request of incarnation <paramref name="epoch"/>.</summary>
    /// <returns>Whether it answered this incarnation's roll call (an answer to an earlier incarnation counts for nothing).</returns>
    public bool NoAgent(long epoch, Address node) => epoch == Epoch && Answered(node);

    /// <summary>An agent announces itself (its state at the time) to incarnation <paramref name="epoch"/>.</summary>
    /// <returns>
    /// Whether this incarnation takes the announcement: it is for this epoch and the agent's first since it (re)joined
    /// this incarnation (an agent asked both through its node and directly announces twice; the second repeats what the
    /// first said). An agent that left and was asked again (<see cref="Hello"/>) announces anew: the owner must take
    /// it as a re-announcement of an agent it may know, whose state replaces what it knew.
    /// </returns>
    public bool Announced(long epoch, IActorRef agent) => epoch == Epoch && _announced.Add(agent);

    /// <summary>
    /// Whether a message of <paramref name="sender"/> that carries <paramref name="epoch"/> belongs to this incarnation:
    /// the epoch is current and the sender announced itself. If not, the sender is asked to announce itself (once) and
    /// the message must be dropped: what it means is part of what the announcement will say.
    /// </summary>
    public bool Admit(long epoch, IActorRef sender)
    {
        if (epoch == Epoch && _announced.Contains(sender))
        {
            return true;
        }

        AskOnce(sender);
        return false;
    }

    /// <summary>
    /// An agent that follows no incarnation says hello (through the singleton proxy): it is asked to announce itself
    /// unless it follows this one. An agent announced here that says hello with another epoch, not 0, has left this
    /// incarnation: it followed another incarnation's request since (a late one of an incarnation already lost cannot be
    /// told from a newer one's: epochs are random), dropped this one's replies meanwhile and, that one lost, sends with
    /// its epoch. It counts as not announced and is asked again, so it comes back with its whole state, which the owner
    /// takes as a re-announcement (part of it known already). Only a hello, sent when the agent follows none, says it
    /// left; another message of another epoch may be older than its announcement (in flight through the proxy when it
    /// announced itself directly) and is dropped without asking. Epoch 0 is older than any announcement.
    /// </summary>
    public void Hello(long epoch, IActorRef sender)
    {
        if (epoch == Epoch)
        {
            return;
        }

        if (epoch != 0 && _announced.Remove(sender))
        {
            _askedDirectly.Remove(sender);
        }

        AskOnce(sender);
    }

    /// <summary>An agent stopped: it is neither announced nor asked any more (a new agent at its node must announce itself).</summary>
    public void Forget(IActorRef stopped)
    {
        _announced.Remove(stopped);
        _askedDirectly.Remove(stopped);
    }

    private void AskOnce(IActorRef agent)
    {
        if (!_announced.Contains(agent) && _askedDirectly.Add(agent))
        {
            _requests.AskAgent(agent, Epoch);
        }
    }
}
