using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>A partition's agent → its parent: idle for its whole idle timeout, having seen <see cref="Routed"/> routed messages.</summary>
internal sealed record PartitionIdle(string Key, long Routed);

/// <summary>
/// A <see cref="GatekeeperProtocol"/> message for one partition of a partitioned cluster limiter: local actors send it
/// to the limiter's <c>Agent</c>, which hands <see cref="Message"/> to the agent of the partition <see cref="Key"/> (made
/// if it is not live) with the actor as its sender, so the replies are those of <see cref="ClusterModelApiLimiter.Agent"/>.
/// Every message of one request (its acquire, cancel, settle and release) names the same key.
/// </summary>
/// <param name="Key">The partition's key, as the limiter formats it (<c>FormatKey</c>).</param>
/// <param name="Message">An <see cref="GatekeeperProtocol.Acquire"/>, <see cref="GatekeeperProtocol.CancelAcquire"/>,
/// <see cref="GatekeeperProtocol.Settle"/>, <see cref="GatekeeperProtocol.Release"/>, <see cref="GatekeeperProtocol.ReleaseAndAcquire"/>,
/// <see cref="GatekeeperProtocol.Resize"/> (of this partition) or <see cref="GatekeeperProtocol.GetStatus"/>.</param>
public sealed record ClusterPartitionMessage(string Key, object Message);

/// <summary>
/// The facade → the parent: an attempt on the partition <see cref="Key"/> was refused; its agent (made if the key has
/// none) is asked for a block. <see cref="Opened"/> is the live agent's wish the facade opened for it, or <c>null</c>
/// for a key with no live partition (the facade's fresh wish of its stripe, ended here).
/// </summary>
internal sealed record PartitionWantBlock(string Key, BlockWish? Opened) : Akka.Event.IDeadLetterSuppression;

/// <summary>
/// An ask of a partitioned facade to its node's parent of the partition agents (<see cref="PartitionStatus"/>,
/// <see cref="AllPartitionStatistics"/>), one per call, with its asker. One that reaches no parent — it has stopped: with
/// its actor system, by the facade's disposal racing the ask, or stopped by something else — fails its asker as it is
/// published (<see cref="Undelivered"/>): <see cref="ObjectDisposedException"/> once the facade's disposal has begun or
/// the actor system is shutting down, else <see cref="InvalidOperationException"/>, naming the limiter. (A plain message
/// and a shared instance before, which dead letters cannot fail, its asker waited for its ask timeout:
/// Review/PartitionsParentAskRound41Tests.) One without an <see cref="Asker"/> or <see cref="Disposal"/> (sent by a local
/// actor or a test) is left to its timeout if undelivered, as before. Local only.
/// </summary>
internal abstract record PartitionsParentAsk : ActorQueue.Runtime.IUndeliverableRequest
{
    /// <summary>Who asked: answered with a <see cref="Status.Failure"/> if it reaches no parent.</summary>
    public IActorRef? Asker { get; init; }

    /// <summary>The limiter's name, for the asker's error.</summary>
    public string LimiterName { get; init; } = "";

    /// <summary>The facade's disposal (its <see cref="FacadeDisposal.Agent"/> is the parent), read as the ask is found undelivered.</summary>
    public FacadeDisposal? Disposal { get; init; }

    /// <summary>The ask in words, for the asker's error.</summary>
    protected abstract string What { get; }

    /// <inheritdoc />
    /// <remarks>On the thread that published the dead letter: only a message to the asker.</remarks>
    public void Undelivered()
    {
        if (Asker is { } asker && Disposal is { } disposal)
        {
            asker.Tell(new Status.Failure(SystemShutdown.Disposes(disposal, disposal.Agent)
                ? new ObjectDisposedException(nameof(ClusterPartitionedLimiter),
                    $"The partitioned cluster limiter '{LimiterName}' is disposed (or its actor system is shutting down): its node's parent of the partition agents stopped before taking this {What}.")
                : new InvalidOperationException(
                    $"The node's parent of the partition agents of cluster limiter '{LimiterName}' stopped before taking this {What}, while the limiter was not disposed; this node's limiter takes no more requests")));
        }
    }

    /// <summary>Asks <paramref name="agents"/>, the parent of a facade named <paramref name="name"/> with <paramref name="disposal"/>, <paramref name="ask"/> with its asker.</summary>
    public static Task<T> Send<T>(IActorRef agents, string name, FacadeDisposal disposal, PartitionsParentAsk ask, TimeSpan timeout, CancellationToken cancellationToken) =>
        agents.Ask<T>(asker => ask with { Asker = asker, LimiterName = name, Disposal = disposal }, timeout, cancellationToken);
}

/// <summary>The facade → the parent: the exact counts of the partition <see cref="Key"/>, routed to its agent (<see cref="PartitionStatusAsk"/>).</summary>
internal sealed record PartitionStatus(string Key) : PartitionsParentAsk
{
    /// <inheritdoc />
    protected override string What => $"status ask of partition {Key}";
}

/// <summary>Asks a node's partition agents for the counts of every live partition; the reply is a dictionary by key.</summary>
internal sealed record AllPartitionStatistics : PartitionsParentAsk
{
    /// <summary>One without an asker, for a local actor's ask (left to its timeout if it reaches no parent).</summary>
    public static readonly AllPartitionStatistics Instance = new();

    /// <inheritdoc />
    protected override string What => "statistics ask";
}
