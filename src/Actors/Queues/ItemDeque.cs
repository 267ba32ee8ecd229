namespace ActorQueue.Actors;

/// <summary>
/// The router's buffer: a growable ring that takes items at the back and, for work handed back by a stop, at the
/// front. Only the router actor touches it.
/// </summary>
internal sealed class ItemDeque<T>
{
    /// <summary>The ring; its length is a power of two.</summary>
    private T[] _items;

    /// <summary>Index of the front item.</summary>
    private int _head;

    public ItemDeque(int initialCapacity)
    {
        _items = new T[Math.Max(4, (int)Math.Min(1 << 20, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)initialCapacity)))];
    }

    public int Count { get; private set; }

    public void PushBack(T item)
    {
        GrowIfFull();
        _items[(_head + Count) & (_items.Length - 1)] = item;
        Count++;
    }

    public void PushFront(T item)
    {
        GrowIfFull();
        _head = (_head - 1) & (_items.Length - 1);
        _items[_head] = item;
        Count++;
    }

    public T PopFront()
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("The buffer is empty.");
        }

        var item = _items[_head];
        _items[_head] = default!;
        _head = (_head + 1) & (_items.Length - 1);
        Count--;
        return item;
    }

    /// <summary>Takes back the item just pushed at the back (its put was withdrawn at the last moment).</summary>
    public T PopBack()
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("The buffer is empty.");
        }

        Count--;
        var index = (_head + Count) & (_items.Length - 1);
        var item = _items[index];
        _items[index] = default!;
        return item;
    }

    /// <summary>Removes every item, front first.</summary>
    public List<T> PopAll()
    {
        var all = new List<T>(Count);
        while (Count > 0)
        {
            all.Add(PopFront());
        }

        return all;
    }

    private void GrowIfFull()
    {
        if (Count < _items.Length)
        {
            return;
        }

        var grown = new T[_items.Length * 2];
        for (var i = 0; i < Count; i++)
        {
            grown[i] = _items[(_head + i) & (_items.Length - 1)];
        }

        _items = grown;
        _head = 0;
    }
}
