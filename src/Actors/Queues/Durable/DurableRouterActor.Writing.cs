using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The durable router's writes: every event waits in an outbox, and one journal record (<see cref="DurableBatch"/>)
/// carries all the events gathered while the previous write was under way, so a busy queue writes one row per commit
/// rather than one per put, start and completion. One write is in flight at a time (SQLite takes one writer anyway), and
/// none while a step of the housekeeping (a snapshot, a deletion) is (<c>DurableRouterActor.Housekeeping.cs</c>); its
/// end applies the events to the book, publishes the counters, and only then answers the callers.
/// </summary>
/// <remarks>
/// The callers a write answers usually put again at once, but their next puts reach the mailbox only after the next
/// write has left: written at once, every other write would carry half the producers (measured: 31 puts a write with 64
/// producers, twice the commits of raw SQLite's loop for the same items). So after a write that answered puts, the next
/// one waits until as many puts are back in the outbox, or for <see cref="LingerLimit"/> at most (a caller that does not
/// put again costs the next write that much, never more).
/// </remarks>
internal sealed partial class DurableRouterActor<T>
{
    private const string LingerTimerKey = "linger";

    /// <summary>
    /// How long a write waits at most for the callers the last write answered: about one commit of the embedded SQLite
    /// file, and the .NET timer queue's granularity.
    /// </summary>
    private static readonly TimeSpan LingerLimit = TimeSpan.FromMilliseconds(1);

    /// <summary>Puts (accepted items) in the outbox.</summary>
    private int _outboxPuts;

    /// <summary>The next write waits until this many puts are in the outbox (the callers the last write answered); 0 when it need not wait.</summary>
    private int _awaitedPuts;

    /// <summary>Events waiting for the next write, in the order they happened.</summary>
    private readonly List<Outgoing> _outbox = [];

    /// <summary>
    /// Events changed in the book ahead of their write (<see cref="ApplyThenWrite"/>) and not yet written: while there are
    /// any, a snapshot would hold a change that its journal replays again after it.
    /// </summary>
    private int _appliedAhead;

    /// <summary>A snapshot is due but waits for the changes applied ahead of their write to be written.</summary>
    private bool _snapshotOwed;

    /// <summary>A write is in flight: new events wait for its end.</summary>
    private bool _writeInFlight;

    /// <summary>The events of the write in flight.</summary>
    private Outgoing[] _inFlight = [];

    /// <summary>A <see cref="FlushWrites"/> is in the mailbox: events until then share its write.</summary>
    private bool _flushScheduled;

    /// <summary>Events are waiting or being written: a stop waits for them, so a stopped queue has journaled its ends.</summary>
    private bool Writing => _writeInFlight || _outbox.Count > 0;

    /// <summary>
    /// Queues <paramref name="message"/> for the next write. Once written it is applied (<paramref name="apply"/>, or the
    /// book's own <c>Apply</c>), the counters are published, and then <paramref name="answer"/> tells whoever waits; if it
    /// is never written, <paramref name="refused"/> tells them why.
    /// </summary>
    private void WriteLater(IDurableQueueMessage message, Action? apply = null, Action? answer = null, Action<Exception>? refused = null)
    {
        _outbox.Add(new Outgoing(message, apply, answer, refused));
        if (message is ItemAccepted)
        {
            _outboxPuts++;
        }

        if (!_writeInFlight && !HousekeepingUnderWay && !_flushScheduled && _outboxPuts >= _awaitedPuts)
        {
            // Not written at once: the puts already in the mailbox join this write.
            _flushScheduled = true;
            Self.Tell(FlushWrites.Instance);
        }
    }

    /// <summary>
    /// Changes the book now and journals <paramref name="message"/> with the next write: for an item that must leave the
    /// run order before the next hand-out (a withdrawn put, an unreadable item). A refused write leaves the change in
    /// memory only, as for a try's end; a crash before the write undoes it (the item is recovered as it was).
    /// </summary>
    private void ApplyThenWrite(IDurableQueueMessage message)
    {
        _book.Apply(message);
        _appliedAhead++;
        WriteLater(message, apply: () => _appliedAhead--);
    }

    /// <summary>
    /// Writes everything in the outbox as one record, unless a write is already in flight (its end flushes) or a step of
    /// the housekeeping (<c>DurableRouterActor.Housekeeping.cs</c>: its end flushes).
    /// </summary>
    private void Flush()
    {
        _flushScheduled = false;
        if (_writeInFlight || HousekeepingUnderWay)
        {
            return;
        }

        // Whatever ended the wait (the last awaited put, the linger timer, or nothing to wait for), it has ended.
        _awaitedPuts = 0;
        Timers.Cancel(LingerTimerKey);
        if (_outbox.Count == 0)
        {
            return;
        }

        var batch = _outbox.ToArray();
        _outbox.Clear();
        _outboxPuts = 0;
        _inFlight = batch;
        _writeInFlight = true;
        var record = batch.Length == 1 ? batch[0].Message : new DurableBatch(Array.ConvertAll(batch, outgoing => outgoing.Message));
        PersistAsync(DurableCodec.Encode(record), _ => Written(batch));
    }

    /// <summary>A write ended: its events change the book, the counters are published, then the callers hear, and the next write starts.</summary>
    private void Written(Outgoing[] batch)
    {
        if (_detached)
        {
            WriteEndedDetached();
            return;
        }

        foreach (var outgoing in batch)
        {
            if (outgoing.Apply is { } apply)
            {
                apply();
            }
            else
            {
                _book.Apply(outgoing.Message);
            }
        }

        if (_failedWhileWriting is null)
        {
            Journaled(batch.Length); // a failed instance's book is not snapshotted: the failure may have left it half changed
        }

        Publish();
        var answeredPuts = 0;
        foreach (var outgoing in batch)
        {
            if (outgoing.Answer is { } answer)
            {
                answer();
                answeredPuts += outgoing.Message is ItemAccepted ? 1 : 0;
            }
        }

        AfterWrite(answeredPuts);
    }

    /// <summary>
    /// After a write: items move on, and what gathered meanwhile is written next — at once, or once the
    /// <paramref name="answeredPuts"/> callers just answered are back (see the remarks), within <see cref="LingerLimit"/>.
    /// </summary>
    private void Next(int answeredPuts = 0)
    {
        _inFlight = [];
        _writeInFlight = false;
        AfterChange();
        if (_outboxPuts < answeredPuts && _status == QueueStatus.Processing)
        {
            _awaitedPuts = answeredPuts;
            Timers.StartSingleTimer(LingerTimerKey, FlushWrites.Instance, LingerLimit);
            return;
        }

        Flush();
    }

    /// <summary>
    /// The journal refused a record (it could not serialise or store it, but goes on). An event whose caller must know it
    /// was stored (it carries <see cref="Outgoing.Refused"/>: a put, a drain's removals, a dead-letter change) is not
    /// applied, and its caller hears the error: applied in memory only, a drain handed back items the journal still
    /// held, which a reopened queue ran again (review 68). The other events (a try's end, a retry, a dead letter) are
    /// applied in memory only: a lost end means the item runs again after a restart, as after a crash.
    /// </summary>
    private void Rejected(Exception cause)
    {
        if (_detached)
        {
            WriteEndedDetached();
            return;
        }

        var batch = _inFlight;
        var error = new QueueStorageException($"Durable queue '{_telemetry.QueueName}' could not write to its journal: {cause.Message}", cause);
        foreach (var outgoing in batch.Where(outgoing => outgoing.Refused is null))
        {
            if (outgoing.Apply is { } apply)
            {
                apply();
            }
            else
            {
                _book.Apply(outgoing.Message);
            }
        }

        Publish();
        foreach (var outgoing in batch)
        {
            if (outgoing.Refused is { } refused)
            {
                refused(error);
            }
            else
            {
                outgoing.Answer?.Invoke();
            }
        }

        AfterWrite();
    }

    /// <summary>
    /// The router stops with events unwritten: those in the outbox were never written (their callers get
    /// <paramref name="error"/>); those of the write in flight may have been (<paramref name="unknown"/>). A drain whose
    /// removals were in flight hands its items back all the same: told it failed while its removals were stored, its
    /// items would be neither handed back nor queued (lost); handed back while they were not, they run again when the
    /// queue is opened again (at least once, as after a crash).
    /// </summary>
    private void FailUnwritten(Exception error, Exception unknown)
    {
        foreach (var outgoing in _inFlight)
        {
            if (outgoing.Message is ItemRemoved { Reason: RemovalReason.Drained })
            {
                outgoing.Answer?.Invoke(); // the drain's last removal carries its answer
            }
            else
            {
                outgoing.Refused?.Invoke(unknown);
            }
        }

        foreach (var outgoing in _outbox.ToArray()) // a refused batch item withdraws the batch's others from the outbox
        {
            outgoing.Refused?.Invoke(error);
        }

        _inFlight = [];
        _outbox.Clear();
        _outboxPuts = 0;
    }

    /// <summary>One event in the outbox, with what its write does.</summary>
    private readonly record struct Outgoing(IDurableQueueMessage Message, Action? Apply, Action? Answer, Action<Exception>? Refused);
}
