using System.Diagnostics;
using ActorQueue.Runtime;

namespace ActorQueue.Actors;

/// <summary>
/// The durable router after a disposal stopped waiting for a journal that had not answered its write: every caller has
/// its answer, and the router lingers, refusing everything, only until the journal answers (or fails) that write.
/// </summary>
internal sealed partial class DurableRouterActor<T>
{
    /// <summary>The disposal has been answered while a write was under way: the router stops when the write ends.</summary>
    private bool _detached;

    /// <summary>
    /// The disposal's bound has passed with a write under way (a journal that does not answer): the disposal no longer waits
    /// for it. Every caller hears now — a put whose write was under way that its item may have been stored (and then runs
    /// when the queue is opened again), one behind it that it was not — and the router stops once the journal answers
    /// the write, or fails it, and only then frees the name: stopped now, a queue of the name opened meanwhile would
    /// recover without that write, and write under its sequence number and item ids.
    /// </summary>
    private void Detach()
    {
        _detached = true;
        var name = _telemetry.QueueName;
        _telemetry.AbandonedWrite(_inFlight.Count(outgoing => outgoing.Refused is not null), _outbox.Count(outgoing => outgoing.Refused is not null));
        Become(Detached);
        // A router that failed while writing stashed every message since (FailedWhileWriting): they are refused now, as
        // by a router that is gone; left in the stash, their callers waited for the journal with it (review h147).
        Stash.UnstashAll();
        Settle(new QueueStorageException($"Durable queue '{name}' was disposed before the item was stored: its journal had not answered the write before it"),
            new QueueStorageException($"Durable queue '{name}' was disposed while its journal had not answered the item's write: it may have been stored, and then runs when the queue is opened again"));
    }

    /// <summary>Everything is refused as by a router that is gone; a try that ends now is not journaled (its item runs again when the queue is opened again).</summary>
    private void Detached()
    {
        Command<QueueProtocol.Put>(message => QueueErrors.Refuse<T>(message, Sender, QueueStatus.Stopped));
        Command<QueueProtocol.GetStatus>(_ => TellStatus()); // stopped
        CommandAny(message => (message as IUndeliverableRequest)?.Undelivered());
    }

    /// <summary>The write a detached router waited for has ended (its callers were answered already): the router stops, and PostStop frees the name.</summary>
    private void WriteEndedDetached()
    {
        _inFlight = [];
        _writeInFlight = false;
        Context.Stop(Self);
    }

    /// <summary>
    /// The router is done (stopped, or detached): the items still running (tries it will not hear of, items getters hold)
    /// have no end in the journal and run again when the queue is opened again, so they count as queued again; the
    /// counters read stopped; then every caller still waiting hears — the events never written with
    /// <paramref name="unwritten"/>, those of the write under way with <paramref name="unknown"/> — the joins and gets
    /// fail as disposed, the stops complete and the running tries are cancelled.
    /// </summary>
    private void Settle(QueueStorageException unwritten, QueueStorageException unknown)
    {
        // Handed back to the journal: before, they stayed in flight, and a queue whose system ended read InFlight > 0
        // with Stopped for good (Review/RouterSystemEndRound44Tests). A try that ends later is not journaled.
        ReturnRunning();

        // A journal failure stops the router too: the queue must not go on saying it is processing (its last counters).
        // Stopped is published before any caller hears, so a caller whose stop has completed, whose put was refused or
        // whose join failed reads it; before, it could read Stopping or Processing (Review/DurableStopStatusRound43Tests,
        // Review/RouterSystemEndRound44Tests).
        _status = QueueStatus.Stopped;
        Publish();
        AssertSettled();
        FailUnwritten(unwritten, unknown);
        _writing.Clear();
        _recovered.TrySetException(unwritten);
        RefuseWaiting(QueueStatus.Stopped, QueueErrors.Disposed());
        _waiters.FailJoins(QueueErrors.Disposed());
        _waiters.CompleteStops();
        _runCancellation.Cancel();
    }

    /// <summary>
    /// The router is done (or its disposal about to be answered): the items still running (tries it will not hear of,
    /// items getters hold, whose <c>TaskDone</c> is refused once disposed) have no end in the journal, so they are waiting
    /// again (counted in Size) and nothing is in flight.
    /// </summary>
    private void ReturnRunning()
    {
        _book.ReturnRunning();
        _runningIds.Clear();
        _taken.Clear();
        _busy = 0;
    }

    /// <summary>The router is done: nothing is in flight, and the counters it published say Stopped.</summary>
    [Conditional("DEBUG")]
    private void AssertSettled() =>
        Debug.Assert(_book.InFlight == 0 && _counters.Status == QueueStatus.Stopped && _counters.Metrics.InFlight == 0,
            $"a settled router reads {_counters.Status} with {_book.InFlight} in flight");
}
