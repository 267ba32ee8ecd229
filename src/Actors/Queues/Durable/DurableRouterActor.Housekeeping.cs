using Akka.Persistence;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Actors;

/// <summary>
/// The durable router's housekeeping (<see cref="SnapshotHousekeeping"/>): a snapshot of the book every
/// <see cref="QueueDurability.SnapshotEvery"/> events, then the deletion of the events and the snapshots before it — one
/// storage operation at a time, never beside a write. Changes that come meanwhile gather in the outbox and go in one
/// write after it.
/// </summary>
internal sealed partial class DurableRouterActor<T> : SnapshotHousekeeping.IOwner
{
    /// <summary>A step of the housekeeping is in flight: the next write waits for it (<see cref="Flush"/>).</summary>
    private bool HousekeepingUnderWay => _housekeeping.UnderWay;

    /// <summary>
    /// Counts events written; after <see cref="QueueDurability.SnapshotEvery"/> of them the book is snapshotted — once no
    /// change applied ahead of its write waits in the outbox: the snapshot would hold it, and the recovery apply it again
    /// from the events after the snapshot (a dead letter counted twice). Called as a write ends, before the next starts:
    /// the snapshot holds the book as journaled, and the next write waits for the housekeeping.
    /// </summary>
    private void Journaled(int events)
    {
        _housekeeping.Written(events);
        if (_housekeeping.TakeDue() | _snapshotOwed)
        {
            _snapshotOwed = _appliedAhead > 0;
            if (!_snapshotOwed)
            {
                _housekeeping.Save(DurableCodec.Encode(_book.Snapshot()));
            }
        }
    }

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.SaveSnapshot(object snapshot) => SaveSnapshot(snapshot);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.DeleteEvents(long toSequenceNr) => DeleteMessages(toSequenceNr);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.DeleteSnapshots(SnapshotSelectionCriteria criteria) => DeleteSnapshots(criteria);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.HousekeepingFailed(string what, Exception cause) =>
        _telemetry.Log.Write(LogLevel.Warning, cause, "Durable queue {QueueName} could not {What}", _telemetry.QueueName, what);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.HousekeepingIgnored(object reply) =>
        _telemetry.Log.Write(LogLevel.Debug, null, "Durable queue {QueueName} ignored {Reply}: no such housekeeping step under way", _telemetry.QueueName, reply.GetType().Name);

    /// <inheritdoc />
    void SnapshotHousekeeping.IOwner.HousekeepingDone() => Flush();
}

/// <summary>The step of a <see cref="SnapshotHousekeeping"/> in flight.</summary>
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
