using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A recover request the node host checked came from the singleton's host by this node's membership view, delivered
/// to an agent as from the request's sender. Local only: it has no serializer binding, so no peer can send one.
/// </summary>
internal sealed record CheckedRecovery<T>(T Request);

/// <summary>
/// An agent's recover request from a remote sender, handed to the node host to check: the host sends <see cref="Checked"/>
/// to <see cref="Target"/>, as from the original sender, once that sender is the singleton's host by its view. Local only.
/// </summary>
internal sealed record CheckRecovery(object Request, object Checked, IActorRef Target);

/// <summary>How agents bind themselves to the singleton's host: a recover request from a remote sender goes to the node host first.</summary>
internal static class SingletonBinding
{
    /// <summary>
    /// Handles <paramref name="request"/> at once when its sender is local (the singleton on this node, or a test), else
    /// hands it to the node host, which delivers it back as a <see cref="CheckedRecovery{T}"/> only from the singleton's host.
    /// </summary>
    public static void Check<T>(IActorContext context, T request, Action<T> handle)
        where T : notnull
    {
        if (context.Sender.Path.Address.HasLocalScope)
        {
            handle(request);
            return;
        }

        context.System.ActorSelection($"/system/{NodeHostActor.ActorName}")
            .Tell(new CheckRecovery(request, new CheckedRecovery<T>(request), context.Self), context.Sender);
    }
}
