using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

// A router incarnation taking its producers' and workers' announcements: a first one, or a re-announcement of an agent
// that left this incarnation (it followed another's request) and was asked again, which repeats what is known here.
internal sealed partial class DistributedRouterActor
{
    /// <summary>
    /// Items of a memory router accepted and without a result yet (queued or at a worker), by producer and the
    /// producer's id: an item re-announced is not queued twice. A durable router knows them by its journal's keys.
    /// </summary>
    private readonly HashSet<(IActorRef Producer, long ItemId)> _unfinished = [];

    /// <summary>The puts in <see cref="_waitingPuts"/>, by producer and the producer's id: one sent again waits on, once; one announced is accepted.</summary>
    private readonly Dictionary<(IActorRef Producer, long ItemId), WaitingPut> _waiting = [];

    /// <summary>
    /// A producer announces the items it has no result for that it sent while it followed an incarnation (which may
    /// have accepted them): they are accepted, past the bound. An item this router knows is not taken twice
    /// (<see cref="Known"/>): a producer that left this incarnation and was asked again re-announces everything.
    /// </summary>
    private void HandleProducerAnnounce(ProducerAnnounce message)
    {
        if (!_incarnation.Announced(message.Epoch, Sender))
        {
            return;
        }

        _capacity = message.Capacity;
        Context.Watch(Sender); // only to forget it when it stops: its items are still processed
        ReleaseAnnounced(Sender); // a durable router's recovered items of this producer: withdrawn below, or dispatched
        var taken = 0;
        for (var i = 0; i < message.ItemIds.Length; i++)
        {
            // One waiting here for space may have been accepted by the incarnation the producer followed meanwhile (it
            // announces it because it cannot tell): accepted past the bound, as every announced item, not left to a
            // timeout whose refusal the producer would ignore (review 67: the item was then in no queue).
            if (_waiting.Remove((Sender, message.ItemIds[i]), out var waiting))
            {
                _waitingPuts.Remove(waiting);
                Timers.Cancel(waiting);
            }

            if (!Known(Sender, message.ItemIds[i]))
            {
                Accept(Sender, message.ItemIds[i], message.Payloads[i], TraceOf(message.Traces, i));
                taken++;
            }
        }

        if (taken > 0)
        {
            _log.Info("Distributed queue {0}: producer {1} re-announced {2} item(s) without a result", _name, Sender.Path, taken);
        }

        // Withdrawn before any is handed out: an item its producer withdrew never starts here.
        foreach (var withdrawn in message.Withdrawn)
        {
            Withdraw(Sender, withdrawn);
        }

        Dispatch();
    }

    /// <summary>
    /// Whether this router knows the item already: waiting for space (it waits on and is answered in its turn), or
    /// accepted without a result — in memory, or in a durable router's journal or being written there
    /// (<see cref="KnownStored"/>) — and acknowledged again (the producer may not have heard). Checked before the bound:
    /// a put sent again (a restarted producer re-sends every put not yet acknowledged) is never refused for want of space.
    /// </summary>
    private bool Known(IActorRef producer, long itemId)
    {
        if (_waiting.ContainsKey((producer, itemId)))
        {
            return true;
        }

        if (_storage is not null)
        {
            return KnownStored(producer, itemId);
        }

        if (!_unfinished.Contains((producer, itemId)))
        {
            return false;
        }

        Acknowledge(producer, itemId);
        return true;
    }

    /// <summary>
    /// The books of known items match the queues: every waiting put is in <see cref="_waiting"/>, and a memory router's
    /// <see cref="_unfinished"/> holds exactly its queued items and those at workers (a durable router's are keyed by
    /// its journal instead).
    /// </summary>
    [System.Diagnostics.Conditional("DEBUG")]
    private void AssertKnownItems()
    {
        System.Diagnostics.Debug.Assert(_waiting.Count == _waitingPuts.Count, "every waiting put is known by its producer and id");
        System.Diagnostics.Debug.Assert(_storage is not null || _unfinished.Count == _queue.Count + _workers.Values.Count(item => item is not null),
            "a memory router knows exactly its items without a result");
        System.Diagnostics.Debug.Assert(_storage is null || _ending.Keys.All(_keys.ContainsKey), "an item whose end is being written is still known by its key");
        AssertWithdrawing();
        AssertHeld();
    }

    /// <summary>
    /// A worker announces whether it is busy. One that re-announces itself free after it left this incarnation has
    /// finished the item this router gave it (this router's request to announce came after its dispatch, and nothing is
    /// dispatched to a worker asked until it announced): its pull went to the incarnation it followed, so the item is
    /// finished here. One busy stays out of the idle list until it pulls.
    /// </summary>
    private void HandleWorkerAnnounce(WorkerAnnounce message)
    {
        if (!_incarnation.Announced(message.Epoch, Sender))
        {
            return;
        }

        WorkerFor(Sender);
        if (message.Busy)
        {
            return;
        }

        if (_workers[Sender] is { } finished)
        {
            Finished(finished);
            _workers[Sender] = null;
        }

        MarkIdle(Sender);
        Dispatch();
    }
}
