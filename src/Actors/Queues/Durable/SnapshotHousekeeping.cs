using Akka.Persistence;

namespace ActorQueue.Actors;

/// <summary>
/// A durable journal's housekeeping (the local durable router's and the cluster's distributed queue journal's): a
/// snapshot of the book, then the deletion of the events and of the snapshots before it — one storage operation at a
/// time, each sent once the one before has answered (a failed step ends it too, logged by the owner), and never beside a
/// write: the owner sends its next write only once <see cref="UnderWay"/> is over (<see cref="IOwner.HousekeepingDone"/>).
/// </summary>
/// <remarks>
/// SQLite takes one writer at a time, and Microsoft.Data.Sqlite answers a writer that finds the file taken by sleeping
/// 150 ms before it tries again. The snapshot store and the journal's deletions write on connections of their own: sent
/// beside the next write (as they were, at the end of the write that made the snapshot due), one of the two found the
/// file taken and slept, and every put waited those 150 ms (measured: two or three stalls of 151–152 ms in a run of
/// 20,000 items that otherwise took half a second). Waiting costs a few commits' time every
/// <see cref="QueueDurability.SnapshotEvery"/> events; what is written, and when a caller hears, is as before. Another
/// queue's (or process's) operations on the same file are not ordered with these: there, SQLite's busy handler waits
/// (<see cref="SqliteBusyWait"/>), instead of that 150 ms sleep.
/// </remarks>
/// <param name="every">Events between snapshots (<see cref="QueueDurability.SnapshotEvery"/>).</param>
/// <param name="owner">The persistent actor whose storage operations these are.</param>
internal sealed class SnapshotHousekeeping(int every, SnapshotHousekeeping.IOwner owner)
{
    /// <summary>What the housekeeping asks of its persistent actor (its storage calls are the actor's own, protected).</summary>
    internal interface IOwner
    {
        /// <summary><c>SaveSnapshot</c>.</summary>
        void SaveSnapshot(object snapshot);

        /// <summary><c>DeleteMessages</c> up to <paramref name="toSequenceNr"/>.</summary>
        void DeleteEvents(long toSequenceNr);

        /// <summary><c>DeleteSnapshots</c> matching <paramref name="criteria"/>.</summary>
        void DeleteSnapshots(SnapshotSelectionCriteria criteria);

        /// <summary>A step failed: <paramref name="what"/> (it could not …), with <paramref name="cause"/>; the owner logs it.</summary>
        void HousekeepingFailed(string what, Exception cause);

        /// <summary>An answer to a step of a previous instance of the owner (it restarted meanwhile), ignored; the owner logs it.</summary>
        void HousekeepingIgnored(object reply);

        /// <summary>The housekeeping is done: the owner writes what gathered meanwhile.</summary>
        void HousekeepingDone();
    }

    /// <summary>The step in flight.</summary>
    private HousekeepingStep _step;

    /// <summary>Events written since the last snapshot was due.</summary>
    private int _eventsSince;

    /// <summary>The sequence number of the snapshot whose older events and snapshots are being deleted.</summary>
    private long _snapshotSequenceNr;

    /// <summary>A step is in flight: the owner's next write waits for it.</summary>
    public bool UnderWay => _step != HousekeepingStep.None;

    /// <summary>Counts <paramref name="events"/> written (as each write's events are answered).</summary>
    public void Written(int events) => _eventsSince += events;

    /// <summary>
    /// Whether a snapshot is due, as a write ends: every <c>every</c> events written. Counting starts again from a due one,
    /// whether the owner saves it now or later. No step is under way then (the write could not have started), so one
    /// snapshot goes at a time.
    /// </summary>
    public bool TakeDue()
    {
        System.Diagnostics.Debug.Assert(!UnderWay, "a write ends only with no housekeeping under way: it could not have started");
        if (_eventsSince < every)
        {
            return false;
        }

        _eventsSince = 0;
        return true;
    }

    /// <summary>Registers the storage answers with the owner (its <c>Command(Type, Action&lt;object&gt;, …)</c>).</summary>
    public void Register(Action<Type, Action<object>> command)
    {
        command(typeof(SaveSnapshotSuccess), reply => Saved((SaveSnapshotSuccess)reply));
        command(typeof(SaveSnapshotFailure), reply => SaveFailed((SaveSnapshotFailure)reply));
        command(typeof(DeleteMessagesSuccess), reply => Deleted(HousekeepingStep.DeletingEvents, reply, null));
        command(typeof(DeleteMessagesFailure), reply => Deleted(HousekeepingStep.DeletingEvents, reply, ((DeleteMessagesFailure)reply).Cause));
        command(typeof(DeleteSnapshotsSuccess), reply => Deleted(HousekeepingStep.DeletingSnapshots, reply, null));
        command(typeof(DeleteSnapshotsFailure), reply => Deleted(HousekeepingStep.DeletingSnapshots, reply, ((DeleteSnapshotsFailure)reply).Cause));
    }

    /// <summary>Saves <paramref name="snapshot"/>, the book as journaled (called as a write ends, before the next starts).</summary>
    public void Save(object snapshot)
    {
        System.Diagnostics.Debug.Assert(!UnderWay, "a snapshot is taken only between writes, with no housekeeping under way");
        _step = HousekeepingStep.SavingSnapshot;
        owner.SaveSnapshot(snapshot);
    }

    /// <summary>The snapshot is stored: the events before it are deleted next.</summary>
    private void Saved(SaveSnapshotSuccess saved)
    {
        if (!Expected(HousekeepingStep.SavingSnapshot, saved))
        {
            return;
        }

        _snapshotSequenceNr = saved.Metadata.SequenceNr;
        _step = HousekeepingStep.DeletingEvents;
        owner.DeleteEvents(_snapshotSequenceNr);
    }

    /// <summary>The snapshot was not stored: the journal keeps its events until the next, and the writes go on.</summary>
    private void SaveFailed(SaveSnapshotFailure failure)
    {
        owner.HousekeepingFailed("save a snapshot; the journal keeps its events until the next", failure.Cause);
        if (Expected(HousekeepingStep.SavingSnapshot, failure))
        {
            Done();
        }
    }

    /// <summary>
    /// The events before the snapshot (<paramref name="step"/> <see cref="HousekeepingStep.DeletingEvents"/>) or the
    /// snapshots before it are deleted, or stay when <paramref name="failure"/> says why: the older snapshots go next, or
    /// the housekeeping is done.
    /// </summary>
    private void Deleted(HousekeepingStep step, object reply, Exception? failure)
    {
        var deletingEvents = step == HousekeepingStep.DeletingEvents;
        if (failure is not null)
        {
            owner.HousekeepingFailed(deletingEvents ? "delete the events before its snapshot" : "delete its old snapshots", failure);
        }

        if (!Expected(step, reply))
        {
            return;
        }

        if (deletingEvents)
        {
            _step = HousekeepingStep.DeletingSnapshots;
            owner.DeleteSnapshots(new SnapshotSelectionCriteria(_snapshotSequenceNr - 1));
            return;
        }

        Done();
    }

    /// <summary>
    /// Whether <paramref name="reply"/> answers the step in flight. An answer to a step of a previous instance of the owner
    /// (it restarted meanwhile) is ignored: this instance has no such step under way, and its next snapshot deletes what
    /// that one would have.
    /// </summary>
    private bool Expected(HousekeepingStep step, object reply)
    {
        if (_step == step)
        {
            return true;
        }

        owner.HousekeepingIgnored(reply);
        return false;
    }

    private void Done()
    {
        _step = HousekeepingStep.None;
        owner.HousekeepingDone();
    }
}
