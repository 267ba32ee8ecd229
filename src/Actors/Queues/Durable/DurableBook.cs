using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// A durable queue's items and counts, rebuilt from the journal: every event changes it in one method named after it,
/// so replaying the journal (or a snapshot and the events after it) gives the same book. Handing an item out
/// (<see cref="TryTake"/>) and giving it back (<see cref="Return"/>) are the only changes not journaled: after a crash a
/// running item is simply ready again, with the tries that ended in an error counted (<c>Attempts</c>) and the one cut
/// short by the crash not. Keeps <c>Enqueued == Processed + Drained + Size + InFlight</c>, checked after
/// every change. Only the durable router touches it.
/// </summary>
/// <remarks>
/// A book starts loading: while the journal is replayed, entries only go into the table by id (most of them are
/// completed before the replay ends), and the run order is built once, in bulk, when it is first needed
/// (<see cref="EndLoading"/>) — not one ordered insert and removal per replayed event.
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
[DebuggerDisplay("{Size} queued, {InFlight} running, {DeadCount} dead")]
internal sealed partial class DurableBook<T>
{
    /// <summary>Every item not finished, and every dead letter, by id (in pages: no array of it on the large object heap).</summary>
    private readonly IdTable<Entry> _entries = new();

    /// <summary>Items that may run now: higher priority first, then in the order they were accepted. Empty while loading.</summary>
    private ReadyQueue<Entry> _ready = new();

    /// <summary>Items waiting for their time (delayed puts and retries), earliest first. Empty while loading.</summary>
    private SortedSet<Entry> _delayed = new(DueOrder.Instance);

    /// <summary>The journal is being replayed: waiting entries are in <see cref="_entries"/> only, not yet in the run order.</summary>
    private bool _loading = true;

    /// <summary>Entries ready or delayed (the ready queue's and the delayed set's size once loaded).</summary>
    private int _waiting;

    private DurableCounts _counts;

    private int _running;

    private int _dead;

    /// <summary>Entries a drain has taken whose removal is not yet journaled (<see cref="Draining"/>): still queued, not in the run order.</summary>
    private int _draining;

    /// <summary>The id the next accepted item gets.</summary>
    public long NextId { get; private set; } = 1;

    /// <summary>Items waiting: ready, delayed, or taken by a drain whose removal is not yet journaled.</summary>
    public int Size => _waiting + _draining;

    /// <summary>Items handed out and not finished.</summary>
    public int InFlight => _running;

    /// <summary>Dead letters kept.</summary>
    public int DeadCount => _dead;

    /// <summary>Accepted items that have not finished: waiting or running.</summary>
    public int Unfinished => Size + _running;

    /// <summary>When the earliest delayed item is due (UTC ticks), or <c>null</c> when none waits.</summary>
    public long? NextDueTicks
    {
        get
        {
            EndLoading();
            return _delayed.Count > 0 ? _delayed.Min!.DueTicks : null;
        }
    }

    public QueueMetrics Metrics => new(_counts.Enqueued, _counts.Processed, _counts.Errors, 0)
    {
        Drained = _counts.Drained,
        InFlight = _running,
    };

    /// <summary>Takes a number for the next item.</summary>
    public long ReserveId() => NextId++;

    public void Accepted(ItemAccepted e, T? item, bool hasItem) => Add(new Entry(e.Id, e.Priority, e.DueTicks, e.Payload) { Item = item, HasItem = hasItem });

    /// <summary>An accepted item read back from the journal (<see cref="DurableCodec.Replay{T}"/>): its payload is a slice of the record.</summary>
    public void Accepted(long id, int priority, long dueTicks, ReadOnlyMemory<byte> payload) => Add(new Entry(id, priority, dueTicks, payload));

    /// <summary>
    /// A book that counts every hand-out as a try (<see cref="Started"/>): the distributed queue's journal, whose
    /// delivery count is hand-outs + 1 across router restarts and hand-overs. The local durable queue's does not.
    /// </summary>
    /// <param name="countsStarts">Whether <see cref="Started"/> counts a try.</param>
    public DurableBook(bool countsStarts = false) => _countsStarts = countsStarts;

    private readonly bool _countsStarts;

    /// <summary>
    /// A hand-out. The local durable queue's book counts nothing here: a try is counted when it ends in an error
    /// (<see cref="Retrying"/>, <see cref="DeadLettered"/>), so a try cut short by a crash spends none and starts need
    /// not be journaled (kept for journals written with starts). A book that <c>countsStarts</c> counts it in
    /// <c>Attempts</c>, which snapshots keep.
    /// </summary>
    public void Started(ItemStarted e)
    {
        Debug.Assert(e.Id > 0, "item ids start at 1");
        if (_countsStarts && _entries.TryGetValue(e.Id, out var entry))
        {
            entry.Attempts++;
        }
    }

    public void Completed(ItemCompleted e) => Completed(e.Id);

    public void Completed(long id)
    {
        var entry = Remove(id);
        _counts = _counts with { Processed = _counts.Processed + 1 };
        Debug.Assert(entry.State != EntryState.Dead, "a dead letter cannot complete");
        AssertInvariants();
    }

    public void Retrying(ItemRetrying e)
    {
        var entry = Leave(_entries[e.Id]);
        entry.Attempts++;
        entry.LastError = e.Error;
        entry.DueTicks = e.DueTicks;
        Enqueue(entry);
        AssertInvariants();
    }

    public void DeadLettered(ItemDeadLettered e)
    {
        var entry = Leave(_entries[e.Id]);
        entry.Attempts++;
        entry.LastError = e.Error;
        entry.State = EntryState.Dead;
        _dead++;
        _counts = _counts with { Processed = _counts.Processed + 1, Errors = _counts.Errors + 1 };
        AssertInvariants();
    }

    public void Requeued(ItemRequeued e)
    {
        if (!IsDead(e.Id))
        {
            return; // a second requeue of one dead letter (journals written before the router kept them apart): once is enough
        }

        var entry = Leave(_entries[e.Id]);
        entry.Attempts = 0;
        entry.DueTicks = 0;
        Enqueue(entry);
        _counts = _counts with { Enqueued = _counts.Enqueued + 1 };
        AssertInvariants();
    }

    public void Removed(ItemRemoved e)
    {
        if (e.Reason == RemovalReason.Purged && !IsDead(e.Id))
        {
            return; // a second purge of one dead letter (as for Requeued): its first removed it
        }

        Remove(e.Id);
        _counts = e.Reason switch
        {
            RemovalReason.Withdrawn => _counts with { Enqueued = _counts.Enqueued - 1 },
            RemovalReason.Drained => _counts with { Drained = _counts.Drained + 1 },
            _ => _counts,
        };
        AssertInvariants();
    }

    /// <summary>Applies one journaled event (recovery, and the router's persist callbacks).</summary>
    public void Apply(IDurableQueueMessage message)
    {
        switch (message)
        {
            case ItemAccepted e:
                Accepted(e, default, hasItem: false);
                break;
            case ItemStarted e:
                Started(e);
                break;
            case ItemCompleted e:
                Completed(e.Id);
                break;
            case ItemRetrying e:
                Retrying(e);
                break;
            case ItemDeadLettered e:
                DeadLettered(e);
                break;
            case ItemRequeued e:
                Requeued(e);
                break;
            case ItemRemoved e:
                Removed(e);
                break;
            case DurableSnapshot s:
                Restore(s);
                break;
            case DurableBatch batch:
                foreach (var inner in batch.Events)
                {
                    Apply(inner);
                }

                break;
        }
    }

    /// <summary>Which invariant is broken, or <c>null</c> (tests check this in any build).</summary>
    public string? BrokenInvariant()
    {
        var c = _counts;
        if (c.Enqueued != c.Processed + c.Drained + Size + _running)
        {
            return $"Enqueued {c.Enqueued} != Processed {c.Processed} + Drained {c.Drained} + Size {Size} + InFlight {_running}";
        }

        if (!_loading && _waiting != _ready.Count + _delayed.Count)
        {
            return $"{_waiting} waiting != {_ready.Count} ready + {_delayed.Count} delayed";
        }

        return _entries.Count != Size + _running + _dead ? $"{_entries.Count} entries != {Size} waiting + {_running} running + {_dead} dead" : null;
    }

    private void Add(Entry entry)
    {
        NextId = Math.Max(NextId, entry.Id + 1);
        _entries.Add(entry.Id, entry);
        Enqueue(entry);
        _counts = _counts with { Enqueued = _counts.Enqueued + 1 };
        AssertInvariants();
    }

    private void Enqueue(Entry entry)
    {
        _waiting++;
        entry.State = entry.DueTicks > 0 ? EntryState.Delayed : EntryState.Ready;
        if (_loading)
        {
            return;
        }

        if (entry.State == EntryState.Delayed)
        {
            _delayed.Add(entry);
        }
        else
        {
            _ready.Add(entry);
        }
    }

    /// <summary>Takes an entry out of whichever set holds it; it stays in the book.</summary>
    private Entry Leave(Entry entry)
    {
        switch (entry.State)
        {
            case EntryState.Ready:
                _waiting--;
                if (!_loading)
                {
                    _ready.Remove(entry);
                }

                break;
            case EntryState.Delayed:
                _waiting--;
                if (!_loading)
                {
                    _delayed.Remove(entry);
                }

                break;
            case EntryState.Running:
                _running--;
                break;
            case EntryState.Draining:
                _draining--;
                break;
            case EntryState.Dead:
                _dead--;
                break;
        }

        return entry;
    }

    private Entry Remove(long id)
    {
        var entry = Leave(_entries[id]);
        _entries.Remove(id);
        return entry;
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        var broken = BrokenInvariant();
        Debug.Assert(broken is null, broken);
    }
}
