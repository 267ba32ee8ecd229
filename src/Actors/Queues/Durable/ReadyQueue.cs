using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>An entry a <see cref="ReadyQueue{TEntry}"/> can order: its run order, and the stamp that tells its live place in the queue.</summary>
internal interface IReadyEntry
{
    /// <summary>Higher runs first.</summary>
    int Priority { get; }

    /// <summary>Among equal priorities, the lower id (accepted earlier) runs first.</summary>
    long Id { get; }

    /// <summary>Changed by the queue whenever the entry goes in or out: only the copy in the heap with the current stamp is live.</summary>
    int ReadyStamp { get; set; }
}

/// <summary>
/// A durable book's ready items in run order (higher priority first, then the lower id), on a binary heap over one array:
/// no allocation per item, and a recovery builds it from all its ready items at once in linear time (the journal replays
/// them in id order, which is already a heap) instead of sorting them into a tree. An item leaves from the middle (a drain,
/// a withdrawn put) by changing its stamp: its copy in the heap is dropped when it reaches the top, and the heap is rebuilt
/// from the live items when dropped copies outnumber them.
/// </summary>
/// <typeparam name="TEntry">The book's entry.</typeparam>
[DebuggerDisplay("{Count} ready")]
internal sealed class ReadyQueue<TEntry>
    where TEntry : class, IReadyEntry
{
    /// <summary>Entries and dropped copies, by the key they had when they went in.</summary>
    private PriorityQueue<TEntry, ReadyKey> _heap;

    private ReadyQueue(PriorityQueue<TEntry, ReadyKey> heap, int count)
    {
        _heap = heap;
        Count = count;
    }

    /// <summary>An empty queue.</summary>
    public ReadyQueue()
        : this(new PriorityQueue<TEntry, ReadyKey>(), 0)
    {
    }

    /// <summary>Live entries.</summary>
    public int Count { get; private set; }

    /// <summary>A queue of <paramref name="entries"/> (none of them in another queue), built in one pass into a heap of <paramref name="capacity"/> (at least their number: it never grows while building).</summary>
    public static ReadyQueue<TEntry> Build(IEnumerable<TEntry> entries, int capacity)
    {
        var heap = new PriorityQueue<TEntry, ReadyKey>(capacity);
        heap.EnqueueRange(entries.Select(entry => (entry, Stamped(entry))));
        return new ReadyQueue<TEntry>(heap, heap.Count);
    }

    /// <summary>Puts <paramref name="entry"/> in at its place.</summary>
    public void Add(TEntry entry)
    {
        _heap.Enqueue(entry, Stamped(entry));
        Count++;
    }

    /// <summary>Takes <paramref name="entry"/>, which is in the queue, out of it.</summary>
    public void Remove(TEntry entry)
    {
        Drop(entry);
        if (Count == 0)
        {
            _heap.Clear();
        }
        else if (_heap.Count > (2 * Count) + 64)
        {
            _heap = new PriorityQueue<TEntry, ReadyKey>(_heap.UnorderedItems.Where(IsLive));
        }
    }

    /// <summary>Takes out and returns the entry that runs first; the queue must not be empty.</summary>
    public TEntry TakeFirst()
    {
        DropDeadTop();
        var entry = _heap.Dequeue();
        Drop(entry);
        return entry;
    }

    /// <summary>The live entries in run order (for a drain: a copy, sorted).</summary>
    public List<TEntry> InOrder() =>
        [.. _heap.UnorderedItems.Where(IsLive).OrderBy(item => item.Priority, ReadyKey.Ordering).Select(item => item.Element)];

    /// <summary>Empties the queue (its entries are discarded with it: their stamps are left as they are).</summary>
    public void Clear()
    {
        _heap.Clear();
        Count = 0;
    }

    private static ReadyKey Stamped(TEntry entry)
    {
        entry.ReadyStamp = unchecked(entry.ReadyStamp + 1);
        return new ReadyKey(entry.Priority, entry.Id, entry.ReadyStamp);
    }

    private static bool IsLive((TEntry Element, ReadyKey Priority) item) => item.Element.ReadyStamp == item.Priority.Stamp;

    private void Drop(TEntry entry)
    {
        entry.ReadyStamp = unchecked(entry.ReadyStamp + 1);
        Count--;
    }

    private void DropDeadTop()
    {
        while (_heap.TryPeek(out var entry, out var key) && entry.ReadyStamp != key.Stamp)
        {
            _heap.Dequeue();
        }
    }

    /// <summary>An entry's place: higher priority first, then the lower id; <see cref="Stamp"/> tells a live copy from a dropped one.</summary>
    private readonly record struct ReadyKey(int Priority, long Id, int Stamp) : IComparable<ReadyKey>
    {
        public static readonly IComparer<ReadyKey> Ordering = Comparer<ReadyKey>.Default;

        public int CompareTo(ReadyKey other) => Priority != other.Priority ? other.Priority.CompareTo(Priority) : Id.CompareTo(other.Id);
    }
}
