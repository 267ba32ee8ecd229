using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// Whether a node agent stopped because its actor system shuts down, so that what waited on it is told the limiter is
/// gone (<see cref="ObjectDisposedException"/>), as a dispose would, rather than that its agent stopped unasked while the
/// node runs (<see cref="InvalidOperationException"/>: Review/SystemShutdownAgentRound41Tests).
/// </summary>
/// <remarks>
/// An actor system stops its user guardian first, and stops its system guardian's children (the limiters' agents and
/// the partitions' parents are system actors) only once the user guardian has terminated; its coordinated shutdown, run
/// by <c>Terminate</c> by default, ends the same way. So a system actor that stops while the user guardian has
/// terminated stops with its system; while it is alive, something else stopped it. After the system has terminated, the
/// same holds, so a request that finds the agent gone then is told so too.
/// </remarks>
internal static class SystemShutdown
{
    /// <summary>Whether the actor system of <paramref name="actor"/> (a local actor) has stopped its user guardian: it is shutting down, or down.</summary>
    public static bool IsUnderway(IActorRef actor) => actor is IInternalActorRef { Provider.Guardian.IsTerminated: true };

    /// <summary>
    /// Whether a facade's request found undelivered at <paramref name="sentTo"/> (a local actor) is told the limiter is
    /// disposed: the facade's <paramref name="disposal"/> has begun (<c>null</c>: not known), or the actor system is shutting down.
    /// </summary>
    public static bool Disposes(FacadeDisposal? disposal, IActorRef sentTo) => disposal is { IsDisposed: true } || IsUnderway(sentTo);
}
