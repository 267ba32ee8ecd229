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
internal sealed class UndeliveredRequestResponder : ReceiveActor
{
    public UndeliveredRequestResponder()
    {
        Receive<AllDeadLetters>(HandleDeadLetter);
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new UndeliveredRequestResponder());

    private static void HandleDeadLetter(AllDeadLetters letter)
    {
        if (letter.Message is IUndeliverableRequest request)
        {
            request.Undelivered();
        }
    }
}
