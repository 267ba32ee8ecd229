using Akka.Persistence;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Actors;

/// <summary>
/// The durable router's housekeeping: a snapshot of the book every <see cref="QueueDurability.SnapshotEvery"/> events,
/// then the deletion of the events and the snapshots before it — one storage operation at a time, never beside a write.
/// </summary>
/// <remarks>
/// SQLite takes one writer at a time, and Microsoft.Data.Sqlite answers a writer that finds the file taken by sleeping
/// 150 ms before it tries again. The snapshot store and the journal's deletions write on connections of their own: sent
/// beside the next write (as they were, at the end of the write that made the snapshot due), one of the two found the
/// file taken and slept, and every put waited those 150 ms (measured: two or three stalls of 151–152 ms in a run of
/// 20,000 items that otherwise took half a second). So the save, the deletion of events and the deletion of snapshots go
/// one after the other, and the next write waits until the last of them has answered: a few commits' time every
/// <see cref="QueueDurability.SnapshotEvery"/> events. Changes that come meanwhile gather in the outbox and go in one
/// write after it. What is written, and when a caller hears, is as before: only the write's start waits.
/// </remarks>
internal sealed partial class DurableRouterActor<T>
{
    /// <summary>The storage operation of the housekeeping in flight, if any.</summary>
    private HousekeepingStep _housekeeping;

    /// <summary>The sequence number of the snapshot whose older events and snapshots are being deleted.</summary>
    private long _snapshotSequenceNr;

    /// <summary>A step of the housekeeping is in flight: the next write waits for it (<see cref="Flush"/>).</summary>
    private bool HousekeepingUnderWay => _housekeeping != HousekeepingStep.None;

    /// <summary>
    /// Counts events written; after <see cref="QueueDurability.SnapshotEvery"/> of them the book is snapshotted — once no
    /// change applied ahead of its write waits in the outbox: the snapshot would hold it, and the recovery apply it again
    /// from the events after the snapshot (a dead letter counted twice). Called as a write ends, before the next starts:
    /// the snapshot holds the book as journaled, and the next write waits for the housekeeping.
    /// </summary>
    private void Journaled(int events)
    {
        if (_snapshots.Written(events) | _snapshotOwed)
        {
            _snapshotOwed = _appliedAhead > 0;
            if (!_snapshotOwed)
            {
                _housekeeping = HousekeepingStep.SavingSnapshot;
                SaveSnapshot(DurableCodec.Encode(_book.Snapshot()));
            }
        }
    }

    /// <summary>The snapshot is stored: the events before it are deleted next.</summary>
    private void SnapshotSaved(SaveSnapshotSuccess saved)
    {
        if (!Expected(HousekeepingStep.SavingSnapshot, saved))
        {
            return;
        }

        _snapshots.Ended();
        _snapshotSequenceNr = saved.Metadata.SequenceNr;
        _housekeeping = HousekeepingStep.DeletingEvents;
        DeleteMessages(_snapshotSequenceNr);
    }

    /// <summary>The snapshot was not stored: the journal keeps its events, and the writes go on.</summary>
    private void SnapshotFailed(SaveSnapshotFailure failure)
    {
        _telemetry.Log.Write(LogLevel.Warning, failure.Cause, "Durable queue {QueueName} could not save a snapshot; the journal keeps its events", _telemetry.QueueName);
        if (Expected(HousekeepingStep.SavingSnapshot, failure))
        {
            _snapshots.Ended();
            HousekeepingDone();
        }
    }

    /// <summary>The events before the snapshot are deleted (or stay, when <paramref name="failure"/> says why): the older snapshots go next.</summary>
    private void EventsDeleted(object reply, Exception? failure)
    {
        if (failure is not null)
        {
            _telemetry.Log.Write(LogLevel.Warning, failure, "Durable queue {QueueName} could not delete events before its snapshot", _telemetry.QueueName);
        }

        if (Expected(HousekeepingStep.DeletingEvents, reply))
        {
            _housekeeping = HousekeepingStep.DeletingSnapshots;
            DeleteSnapshots(new SnapshotSelectionCriteria(_snapshotSequenceNr - 1));
        }
    }

    /// <summary>The snapshots before the last are deleted (or stay, when <paramref name="failure"/> says why): the housekeeping is done.</summary>
    private void SnapshotsDeleted(object reply, Exception? failure)
    {
        if (failure is not null)
        {
            _telemetry.Log.Write(LogLevel.Warning, failure, "Durable queue {QueueName} could not delete old snapshots", _telemetry.QueueName);
        }

        if (Expected(HousekeepingStep.DeletingSnapshots, reply))
        {
            HousekeepingDone();
        }
    }

    /// <summary>
    /// Whether <paramref name="reply"/> answers the step in flight. An answer to a step of a previous instance of the router
    /// (it restarted meanwhile) is ignored: this instance has no housekeeping of its own under way, and the next snapshot
    /// deletes what that one would have.
    /// </summary>
    private bool Expected(HousekeepingStep step, object reply)
    {
        if (_housekeeping == step)
        {
            return true;
        }

        _telemetry.Log.Write(LogLevel.Debug, null, "Durable queue {QueueName} ignored {Reply}: no such housekeeping step under way", _telemetry.QueueName, reply.GetType().Name);
        return false;
    }

    /// <summary>The housekeeping is done: what gathered in the outbox meanwhile is written now.</summary>
    private void HousekeepingDone()
    {
        _housekeeping = HousekeepingStep.None;
        Flush();
    }
}

/// <summary>The housekeeping step in flight of a durable router or a distributed queue journal (<c>DurableRouterActor.Housekeeping.cs</c>, <c>DistributedQueueJournalActor.Housekeeping.cs</c>).</summary>
internal enum HousekeepingStep
{
    /// <summary>None: writes go as soon as they can.</summary>
    None,

    /// <summary>A snapshot is being saved.</summary>
    SavingSnapshot,

    /// <summary>The events before the snapshot are being deleted.</summary>
    DeletingEvents,

    /// <summary>The snapshots before the last are being deleted.</summary>
    DeletingSnapshots,
}
