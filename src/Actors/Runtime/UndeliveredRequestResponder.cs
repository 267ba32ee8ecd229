using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Runtime;

/// <summary>
/// A request from a facade that carries its own completion. If it cannot be delivered (its actor has stopped),
/// the caller must still get an answer instead of waiting forever.
/// </summary>
internal interface IUndeliverableRequest : IDeadLetterSuppression
{
    /// <summary>Completes the request with the failure that fits an actor that is gone.</summary>
    void Undelivered();
}

/// <summary>
/// Listens to dead letters and answers facade requests that reached a stopped actor, so that a call racing a
/// Dispose fails with <see cref="ObjectDisposedException"/> instead of hanging.
/// </summary>
/// <remarks>
/// Not an actor on purpose: it answers on the thread that published the dead letter, so it keeps answering while
/// the actor system terminates and after it has (an actor would be stopped with the system, and requests sent to a
/// terminated system's actors would wait for ever). Answering only completes a task whose continuations run
/// asynchronously, so this is safe on any thread.
/// </remarks>
internal sealed class UndeliveredRequestResponder(ActorPath path, IActorRefProvider provider) : MinimalActorRef
{
    /// <inheritdoc />
    public override ActorPath Path { get; } = path;

    /// <inheritdoc />
    public override IActorRefProvider Provider { get; } = provider;

    /// <summary>Subscribes a responder to every dead letter of <paramref name="system"/>.</summary>
    public static void Start(ExtendedActorSystem system)
    {
        var responder = new UndeliveredRequestResponder(system.Provider.TempPath(), system.Provider);
        system.EventStream.Subscribe(responder, typeof(AllDeadLetters));
    }

    /// <inheritdoc />
    protected override void TellInternal(object message, IActorRef sender)
    {
        if (message is AllDeadLetters { Message: IUndeliverableRequest request })
        {
            request.Undelivered();
        }
    }
}
