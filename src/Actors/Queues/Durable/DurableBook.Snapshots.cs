namespace ActorQueue.Actors;

// A durable queue's book loading: from a snapshot (its header, then its items one by one) or a journal replay, and the
// run order built in bulk once the loading ends; and the book written out as a snapshot.
internal sealed partial class DurableBook<T>
{
    /// <summary>The book as a snapshot: running items are kept as waiting, so a restart runs them again.</summary>
    public DurableSnapshot Snapshot() =>
        new(NextId, _counts, [.. _entries.Values // in id order, as the table lists them
            .Select(e => new StoredItem(e.Id, e.Priority, e.DueTicks, e.Attempts, e.LastError, e.State == EntryState.Dead, e.Payload))]);

    /// <summary>
    /// Ends the loading: the waiting entries go into the run order in one bulk build (the ready ones into a heap in linear
    /// time, the few delayed ones sorted), instead of an ordered insert per replayed item. Called when recovery completes,
    /// and by every method that needs the run order, so a book used without a replay behaves the same.
    /// </summary>
    public void EndLoading()
    {
        if (!_loading)
        {
            return;
        }

        _loading = false;
        _ready = ReadyQueue<Entry>.Build(_entries.Values.Where(entry => entry.State == EntryState.Ready), _waiting);
        _delayed = new SortedSet<Entry>(_entries.Values.Where(entry => entry.State == EntryState.Delayed), DueOrder.Instance);
        AssertInvariants();
    }

    /// <summary>Starts over from a snapshot's header (its items follow, one <see cref="Restored"/> each): the book loads again.</summary>
    public void Restore(long nextId, DurableCounts counts)
    {
        _entries.Clear();
        _ready.Clear();
        _delayed.Clear();
        (_running, _dead, _waiting, _loading) = (0, 0, 0, true);
        NextId = nextId;
        _counts = counts;
    }

    /// <summary>One item of the snapshot <see cref="Restore(long, DurableCounts)"/> began.</summary>
    public void Restored(StoredItem stored)
    {
        var entry = new Entry(stored.Id, stored.Priority, stored.DueTicks, stored.Payload) { Attempts = stored.Attempts, LastError = stored.LastError };
        _entries.Add(entry.Id, entry);
        if (stored.Dead)
        {
            entry.State = EntryState.Dead;
            _dead++;
        }
        else
        {
            Enqueue(entry);
        }
    }

    private void Restore(DurableSnapshot snapshot)
    {
        Restore(snapshot.NextId, snapshot.Counts);
        foreach (var stored in snapshot.Items)
        {
            Restored(stored);
        }

        AssertInvariants();
    }
}
