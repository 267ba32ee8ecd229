using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Primitives.Coordination;

/// <summary>
/// Per actor system: answers an actor's <see cref="CoordinatorProtocol.Acquire"/> that reached a coordinator already
/// stopped (its primitive disposed or dropped, or its actor system stopped), or an address where none ever was, with <see cref="CoordinatorProtocol.Refused"/>,
/// as the protocol documents for a disposed primitive. The coordinator refuses the waiters it has when it stops; one
/// sent later goes to dead letters, where nothing answered it and the actor waited for ever (review round 40).
/// </summary>
internal sealed class RefusedAcquires : IExtension
{
    /// <summary>The reason a refused <see cref="CoordinatorProtocol.Acquire"/> carries.</summary>
    public const string Reason = "No live coordinator took it: the primitive has been disposed (its coordinator has stopped), or none is at that address.";

    public RefusedAcquires(ExtendedActorSystem system) =>
        system.EventStream.Subscribe(new Responder(system.Provider.TempPath(), system.Provider), typeof(DeadLetter));

    /// <summary>Subscribes the responder of <paramref name="system"/>, once.</summary>
    public static void Start(ActorSystem system) => system.WithExtension<RefusedAcquires, RefusedAcquiresId>();

    /// <summary>
    /// Not an actor, as <c>UndeliveredRequestResponder</c>: it answers on the thread that published the dead letter,
    /// so it keeps answering while the actor system terminates and after it has.
    /// </summary>
    private sealed class Responder(ActorPath path, IActorRefProvider provider) : MinimalActorRef
    {
        /// <inheritdoc />
        public override ActorPath Path { get; } = path;

        /// <inheritdoc />
        public override IActorRefProvider Provider { get; } = provider;

        /// <inheritdoc />
        protected override void TellInternal(object message, IActorRef sender)
        {
            if (message is DeadLetter { Message: CoordinatorProtocol.Acquire acquire, Sender: { } asker } && !asker.IsNobody())
            {
                asker.Tell(new CoordinatorProtocol.Refused(acquire.RequestId, Reason), ActorRefs.NoSender);
            }
        }
    }
}

/// <summary>Creates <see cref="RefusedAcquires"/> for Akka's extension registry.</summary>
internal sealed class RefusedAcquiresId : ExtensionIdProvider<RefusedAcquires>
{
    /// <inheritdoc />
    public override RefusedAcquires CreateExtension(ExtendedActorSystem system) => new(system);
}
