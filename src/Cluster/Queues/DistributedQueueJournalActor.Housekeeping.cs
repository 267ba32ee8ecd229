using ActorQueue.Actors;
using Akka.Event;
using Akka.Persistence;

namespace ActorQueue.Cluster;

/// <summary>
/// The distributed queue journal's writes and housekeeping: one write in flight at a time (the events that come meanwhile
/// wait in an outbox and go together in the next), and every <see cref="QueueDurability.SnapshotEvery"/> events a
/// snapshot of the book, then the deletion of the events and of the snapshots before it — one storage operation at a
/// time, never beside a write.
/// </summary>
/// <remarks>
/// The housekeeping is the local durable queue's (<see cref="SnapshotHousekeeping"/>, which says why). The journal keeps
/// its own outbox (Akka would send the events it holds as soon as a write ends) and sends the next write only once the
/// write before it and the last step of the housekeeping have answered. Each event is still its own record and its own
/// atomic write, and an acceptance is still answered as soon as it is written: only a write's start waits.
/// </remarks>
internal sealed partial class DistributedQueueJournalActor : SnapshotHousekeeping.IOwner
{
    /// <summary>Events waiting for the next write, in the order they came, each with what its write does.</summary>
    private readonly List<Outgoing> _outbox = [];

    /// <summary>Events of the write in flight not answered yet (written or refused); 0 when no write is in flight.</summary>
    private int _unanswered;

    /// <summary>A step of the housekeeping is in flight: the next write waits for it.</summary>
    private bool HousekeepingUnderWay => _housekeeping.UnderWay;

    /// <summary>Journals an event with the next write (events arriving together share it) and applies it once written.</summary>
    private void Write<TEvent>(TEvent message, Action<TEvent> apply)
        where TEvent : IDurableQueueMessage
    {
        _outbox.Add(new Outgoing(message, () => apply(message)));
        Flush();
    }

    /// <summary>Sends everything in the outbox as one write, unless a write or a step of the housekeeping is in flight (its end flushes).</summary>
    private void Flush()
    {
        if (_unanswered > 0 || HousekeepingUnderWay || _outbox.Count == 0)
        {
            return;
        }

        _unanswered = _outbox.Count;

        // Each event its own atomic write, as before (PersistAllAsync would make them one: a refused event, say an item
        // too large, would refuse its batch-mates with its reason, and stop the journal for a hand-out or an end among
        // them); Akka sends the writes persisted in one command together. A refused event has no callback
        // (OnPersistRejected answers it).
#pragma warning disable AK1006 // on purpose: one atomic write per event (above), as the journal did before its outbox
        foreach (var outgoing in _outbox)
        {
            PersistAsync(DurableCodec.Encode(outgoing.Message), _ =>
            {
                outgoing.Apply();
                _housekeeping.Written(1);
                Answered();
            });
        }

        _outbox.Clear();
#pragma warning restore AK1006
    }

    /// <summary>
    /// An event of the write in flight was written or refused. After the last, the write has ended: the book holds exactly
    /// the events up to it (<c>LastSequenceNr</c> is its last event's), so a snapshot due now is taken; otherwise, or once
    /// the housekeeping is done, what gathered meanwhile is written.
    /// </summary>
    private void Answered()
    {
        System.Diagnostics.Debug.Assert(_unanswered > 0, "an event is answered only while its write is in flight");
        if (--_unanswered > 0)
        {
            return;
        }

        if (_housekeeping.TakeDue())
        {
            _housekeeping.Save(DurableCodec.Encode(_book.Snapshot()));
            return;
        }

        Flush();
    }

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.SaveSnapshot(object snapshot) => SaveSnapshot(snapshot);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.DeleteEvents(long toSequenceNr) => DeleteMessages(toSequenceNr);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.DeleteSnapshots(SnapshotSelectionCriteria criteria) => DeleteSnapshots(criteria);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.HousekeepingFailed(string what, Exception cause) =>
        _log.Warning("Distributed queue journal {0}: could not {1}: {2}", _persistenceId, what, cause.Message);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.HousekeepingIgnored(object reply) =>
        _log.Debug("Distributed queue journal {0} ignored {1}: no such housekeeping step under way", _persistenceId, reply.GetType().Name);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.HousekeepingDone() => Flush();

    /// <summary>One event in the outbox, with what its write does.</summary>
    private readonly record struct Outgoing(IDurableQueueMessage Message, Action Apply);

    /// <summary>
    /// An acceptance of the write in flight was refused (<see cref="OnPersistRejected"/>): Akka calls that outside a
    /// command and sends no write persisted there until a command ends, so the refusal is answered as one.
    /// </summary>
    private sealed class WriteRefused
    {
        public static readonly WriteRefused Instance = new();
    }
}
