using System.Diagnostics;
using System.Numerics;

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
/// A durable book's ready items in run order (higher priority first, then the lower id), on a binary heap kept in chunks of
/// <see cref="ChunkSize"/> slots: no allocation per item, and a recovery builds it from all its ready items at once in
/// linear time (the journal replays them in id order, which is already a heap) instead of sorting them into a tree. An
/// item leaves from the middle (a drain, a withdrawn put) by changing its stamp: its copy in the heap is dropped when it
/// reaches the top, and the heap is rebuilt from the live items when dropped copies outnumber them.
/// </summary>
/// <remarks>
/// Why chunks and not one array (a <see cref="PriorityQueue{TElement,TPriority}"/>, before round 50): one array of
/// 100,000 ready items is 3.2 MB on the large object heap, whose small budget made a recovery pay a full (gen 2)
/// collection; a chunk is 2,048 slots of 24 bytes (48 KiB), under the large object heap's 85,000 bytes, and growing adds a
/// chunk instead of copying the heap. The first chunk grows by doubling, so a small queue holds a small array; when the heap shrinks,
/// the chunk in use and the next are kept, the others let go.
/// </remarks>
/// <typeparam name="TEntry">The book's entry.</typeparam>
[DebuggerDisplay("{Count} ready")]
internal sealed class ReadyQueue<TEntry>
    where TEntry : class, IReadyEntry
{
    /// <summary>Slots per chunk.</summary>
    internal const int ChunkSize = 1 << ChunkBits;

    private const int ChunkBits = 11;
    private const int ChunkMask = ChunkSize - 1;

    /// <summary>The heap's slots (entries and dropped copies, by the key they had when they went in), <see cref="ChunkSize"/> to a chunk.</summary>
    private Slot[]?[] _chunks = [];

    /// <summary>Slots in use: the heap is slots 0 to <c>_used - 1</c>.</summary>
    private int _used;

    /// <summary>Live entries.</summary>
    public int Count { get; private set; }

    /// <summary>
    /// A queue of <paramref name="entries"/> (none of them in another queue), built in one pass into a heap.
    /// <paramref name="capacity"/> is a hint (a book gives its waiting count, delayed items included): it sizes the first
    /// chunk only, the others are added as the entries come, so an over-estimate holds no chunk.
    /// </summary>
    public static ReadyQueue<TEntry> Build(IEnumerable<TEntry> entries, int capacity)
    {
        var queue = new ReadyQueue<TEntry>();
        queue.Reserve(Math.Min(capacity, ChunkSize));
        foreach (var entry in entries)
        {
            queue.Append(entry);
            queue.Count++;
        }

        queue.Heapify();
        return queue;
    }

    /// <summary>Puts <paramref name="entry"/> in at its place.</summary>
    public void Add(TEntry entry)
    {
        var at = Append(entry);
        SiftUp(at);
        Count++;
    }

    /// <summary>Takes <paramref name="entry"/>, which is in the queue, out of it.</summary>
    public void Remove(TEntry entry)
    {
        Drop(entry);
        if (Count == 0)
        {
            Clear();
        }
        else if (_used > (2 * Count) + 64)
        {
            Compact();
        }
    }

    /// <summary>Takes out and returns the entry that runs first; the queue must not be empty.</summary>
    /// <exception cref="InvalidOperationException">The queue is empty (it stays usable).</exception>
    public TEntry TakeFirst()
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("The ready queue is empty");
        }

        DropDeadTop();
        var entry = Pop();
        Drop(entry);
        if (Count == 0)
        {
            Clear(); // the dropped copies left behind would keep their entries (and their records' bytes) alive
        }

        return entry;
    }

    /// <summary>The live entries in run order (for a drain: a copy, sorted).</summary>
    public List<TEntry> InOrder() =>
        [.. LiveSlots().OrderBy(slot => slot.Key, ReadyKey.Ordering).Select(slot => slot.Entry)];

    /// <summary>Empties the queue (its entries are discarded with it: their stamps are left as they are).</summary>
    public void Clear()
    {
        for (var chunk = 0; chunk < _chunks.Length && chunk << ChunkBits < _used; chunk++)
        {
            Array.Clear(_chunks[chunk]!, 0, Math.Min(_chunks[chunk]!.Length, _used - (chunk << ChunkBits))); // the slots in use only
        }

        _used = 0;
        Count = 0;
        LetGoPastUse();
    }

    /// <summary>Every array the queue holds now (its chunks and their directory), for a test to see that none is on the large object heap.</summary>
    internal IEnumerable<Array> Arrays() => [_chunks, .. _chunks.OfType<Array>()];

    private static ReadyKey Stamped(TEntry entry)
    {
        entry.ReadyStamp = unchecked(entry.ReadyStamp + 1);
        return new ReadyKey(entry.Id, entry.Priority, entry.ReadyStamp);
    }

    private static bool IsLive(in Slot slot) => slot.Entry.ReadyStamp == slot.Key.Stamp;

    private ref Slot At(int index) => ref _chunks[index >> ChunkBits]![index & ChunkMask];

    /// <summary>
    /// Room for <paramref name="slots"/> slots in all: the first chunk grows by doubling up to <see cref="ChunkSize"/> (a
    /// small queue keeps a small array), then chunks are added, never copied.
    /// </summary>
    private void Reserve(int slots)
    {
        var chunks = (slots + ChunkMask) >> ChunkBits;
        if (chunks == 0)
        {
            return;
        }

        if (chunks > _chunks.Length)
        {
            Array.Resize(ref _chunks, Math.Max(chunks, _chunks.Length * 2));
        }

        var firstSize = chunks > 1 ? ChunkSize : (int)Math.Min(ChunkSize, BitOperations.RoundUpToPowerOf2((uint)Math.Max(slots, 8)));
        if (_chunks[0] is not { } first || first.Length < firstSize)
        {
            var grown = new Slot[firstSize];
            _chunks[0]?.CopyTo(grown, 0);
            _chunks[0] = grown;
        }

        for (var chunk = 1; chunk < chunks; chunk++)
        {
            _chunks[chunk] ??= new Slot[ChunkSize];
        }
    }

    /// <summary>Lets go of the chunks past the one the next slot is in and the one after it (kept, so a heap going up and down one chunk's edge does not allocate each time).</summary>
    private void LetGoPastUse()
    {
        for (var chunk = (_used >> ChunkBits) + 2; chunk < _chunks.Length && _chunks[chunk] is not null; chunk++)
        {
            _chunks[chunk] = null;
        }
    }

    /// <summary>Puts <paramref name="entry"/>, stamped, in the first free slot (not yet at its place in the heap) and returns the slot.</summary>
    private int Append(TEntry entry)
    {
        if (_used >> ChunkBits >= _chunks.Length || _chunks[_used >> ChunkBits] is not { } chunk || (_used & ChunkMask) >= chunk.Length)
        {
            Reserve(_used + 1);
        }

        At(_used) = new Slot(entry, Stamped(entry));
        return _used++;
    }

    private TEntry Pop()
    {
        Debug.Assert(_used > 0, "the heap is empty");
        var top = At(0).Entry;
        var last = At(--_used);
        At(_used) = default;
        if (_used > 0)
        {
            SiftDown(0, last);
        }

        LetGoPastUse();
        return top;
    }

    private void SiftUp(int index)
    {
        var moving = At(index);
        while (index > 0)
        {
            var parent = (index - 1) >> 1;
            if (!moving.Key.RunsBefore(At(parent).Key))
            {
                break;
            }

            At(index) = At(parent);
            index = parent;
        }

        At(index) = moving;
    }

    /// <summary>Puts <paramref name="moving"/> at <paramref name="index"/> or below it, where it belongs.</summary>
    private void SiftDown(int index, Slot moving)
    {
        while (true)
        {
            var child = (2 * index) + 1;
            if (child >= _used)
            {
                break;
            }

            if (child + 1 < _used && At(child + 1).Key.RunsBefore(At(child).Key))
            {
                child++;
            }

            if (!At(child).Key.RunsBefore(moving.Key))
            {
                break;
            }

            At(index) = At(child);
            index = child;
        }

        At(index) = moving;
    }

    /// <summary>Makes slots 0 to <c>_used - 1</c> a heap, in linear time (none moves when they came in run order).</summary>
    private void Heapify()
    {
        for (var index = (_used >> 1) - 1; index >= 0; index--)
        {
            SiftDown(index, At(index));
        }

        AssertHeap();
    }

    /// <summary>Drops the dead copies: the live slots move to the front, keeping their keys, and become a heap again.</summary>
    private void Compact()
    {
        var kept = 0;
        for (var index = 0; index < _used; index++)
        {
            if (IsLive(At(index)))
            {
                At(kept++) = At(index);
            }
        }

        for (var index = kept; index < _used; index++)
        {
            At(index) = default;
        }

        _used = kept;
        Debug.Assert(_used == Count, $"{_used} live slots, {Count} counted");
        LetGoPastUse();
        Heapify();
    }

    private IEnumerable<Slot> LiveSlots()
    {
        for (var index = 0; index < _used; index++)
        {
            if (IsLive(At(index)))
            {
                yield return At(index);
            }
        }
    }

    private void Drop(TEntry entry)
    {
        entry.ReadyStamp = unchecked(entry.ReadyStamp + 1);
        Count--;
    }

    private void DropDeadTop()
    {
        while (_used > 0 && !IsLive(At(0)))
        {
            Pop();
        }
    }

    [Conditional("DEBUG")]
    private void AssertHeap()
    {
        for (var index = 1; index < _used; index++)
        {
            Debug.Assert(!At(index).Key.RunsBefore(At((index - 1) >> 1).Key), $"slot {index} runs before its parent");
        }
    }

    /// <summary>A heap slot: an entry and the key it went in with.</summary>
    private readonly record struct Slot(TEntry Entry, ReadyKey Key);

    /// <summary>An entry's place: higher priority first, then the lower id; <see cref="Stamp"/> tells a live copy from a dropped one (16 bytes: the id first).</summary>
    private readonly record struct ReadyKey(long Id, int Priority, int Stamp)
    {
        public static readonly IComparer<ReadyKey> Ordering = Comparer<ReadyKey>.Create((x, y) => x.RunsBefore(y) ? -1 : y.RunsBefore(x) ? 1 : 0);

        public bool RunsBefore(ReadyKey other) => Priority != other.Priority ? Priority > other.Priority : Id < other.Id;
    }
}
