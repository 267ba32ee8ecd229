using Microsoft.Extensions.Logging;

namespace ActorQueue.Actors;

/// <summary>
/// The durable router while it recovers its book from the journal. Akka keeps every message for after the recovery; a
/// journal whose replay does not answer held them all, and a disposal with them, until Akka's recovery timeout
/// (<c>recovery-event-timeout</c>, 30 s by default, per event). The router's own messages wait in its stash instead, so
/// that once a disposal's bound passes (<see cref="DisposalOverdue"/>) it can answer each of them and stop.
/// </summary>
internal sealed partial class DurableRouterActor<T>
{
    /// <summary>
    /// While recovering: keeps the router's own messages (Akka's go on to the recovery) for <see cref="Recovered"/>, which
    /// hands them back in order; a disposal's stop starts its bound now. <c>true</c> when the message was dealt with.
    /// </summary>
    private bool WhileRecovering(object message)
    {
        if (message is DisposalOverdue)
        {
            GiveUpRecovery();
            return true;
        }

        if (message.GetType().Assembly != typeof(DurableRouterActor<T>).Assembly)
        {
            return false;
        }

        if (message is StopQueue { Terminate: true } stop)
        {
            _waiters.DisposalCame(stop.Timeout);
        }

        Stash.Stash();
        return true;
    }

    /// <summary>
    /// A disposal's bound passed before the journal finished the recovery: the router stops without it. Every caller kept
    /// meanwhile hears now — a put that its item was not stored (counted in a warning), a disposal's stop once the name is
    /// free (PostStop), anything else as from a router that is gone. The name is freed at once: this instance has written
    /// nothing (its journal is only reading), so a queue of the name opened next cannot meet its sequence numbers. The
    /// items already journaled stay there, for that queue.
    /// </summary>
    private void GiveUpRecovery()
    {
        var name = _telemetry.QueueName;
        var notStored = new QueueStorageException(
            $"Durable queue '{name}' was disposed while it recovered from its journal, which had not finished by the disposal's bound (twice its stop timeout): the item was not stored");
        _recovered.TrySetException(new QueueStorageException(
            $"Durable queue '{name}' was disposed before it recovered from its journal, which had not finished by the disposal's bound (twice its stop timeout)"));
        var refused = RefuseKept(notStored);

        // The tries a restart handed over (none for a queue just opened) are cancelled as the router stops (Settle), and
        // left behind: with no end journaled, their items run again when the queue is opened again.
        _telemetry.Log.Write(LogLevel.Warning, null,
            "Durable queue {QueueName} was disposed while it recovered from its journal, which had not finished by the disposal's bound: it stopped without it, refused the {Refused} puts made meanwhile (not stored), and left {Running} running tries behind (their items run again when the queue is opened again)",
            name, refused, _handed?.Running.Count ?? 0);
        Context.Stop(Self);
    }

    /// <summary>
    /// Answers what the router kept while it recovered, the recovery being over without it (given up, or failed): a put
    /// that its item was not stored (<paramref name="notStored"/>), a start with the recovery's error (set before), a stop
    /// once the router has stopped (PostStop), anything
    /// else as from a router that is gone. Returns the count of items refused.
    /// </summary>
    private int RefuseKept(QueueStorageException notStored)
    {
        var refused = 0;
        foreach (var envelope in Stash.ClearStash())
        {
            switch (envelope.Message)
            {
                case FacadePut<T> put:
                    refused++;
                    put.Failed(notStored);
                    break;
                case QueueProtocol.Put put:
                    refused++;
                    ActorPut<T>.From(put, envelope.Sender)?.Failed(notStored);
                    break;
                case BatchPut<T> batch:
                    refused += batch.Items.Count;
                    batch.Completion.TrySetException(new QueueStorageException($"{notStored.Message} (0 of the batch's {batch.Items.Count} items were accepted)"));
                    break;
                case StartQueue start:
                    start.Completion.TrySetException(_recovered.Task.Exception?.InnerException ?? notStored); // the recovery's own error
                    break;
                case StopQueue stop:
                    _waiters.AddStopper(stop);
                    break;
                default:
                    Context.System.DeadLetters.Tell(new Akka.Event.DeadLetter(envelope.Message, envelope.Sender, Self), envelope.Sender);
                    break;
            }
        }

        return refused;
    }
}
