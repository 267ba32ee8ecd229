using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// The router's buffer: a growable ring that takes items at the back and, for work handed back by a stop, at the
/// front. Only the router actor touches it.
/// </summary>
internal sealed class ItemDeque<T>
{
    /// <summary>The ring; its length is a power of two.</summary>
    private T[] _items;

    /// <summary>
    /// The producer's trace context of each item, index for index with <see cref="_items"/>; allocated only when a
    /// traced item arrives (see <see cref="ItemTraces"/>), so an untraced queue pays nothing.
    /// </summary>
    private ActivityContext[]? _traces;

    /// <summary>Index of the front item.</summary>
    private int _head;

    public ItemDeque(int initialCapacity)
    {
        _items = new T[Math.Max(4, (int)Math.Min(1 << 20, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)initialCapacity)))];
    }

    public int Count { get; private set; }

    public void PushBack(T item, ActivityContext trace = default)
    {
        GrowIfFull();
        var index = (_head + Count) & (_items.Length - 1);
        _items[index] = item;
        SetTrace(index, trace);
        Count++;
    }

    public void PushFront(T item, ActivityContext trace = default)
    {
        GrowIfFull();
        _head = (_head - 1) & (_items.Length - 1);
        _items[_head] = item;
        SetTrace(_head, trace);
        Count++;
    }

    public T PopFront() => PopFront(out _);

    /// <summary>Takes the front item and the trace context it carries (<c>default</c> for none).</summary>
    public T PopFront(out ActivityContext trace)
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("The buffer is empty.");
        }

        var item = _items[_head];
        _items[_head] = default!;
        trace = TakeTrace(_head);
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
        TakeTrace(index);
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
        var grownTraces = _traces is null ? null : new ActivityContext[grown.Length];
        for (var i = 0; i < Count; i++)
        {
            var from = (_head + i) & (_items.Length - 1);
            grown[i] = _items[from];
            if (grownTraces is not null)
            {
                grownTraces[i] = _traces![from];
            }
        }

        _items = grown;
        _traces = grownTraces;
        _head = 0;
    }

    private void SetTrace(int index, ActivityContext trace)
    {
        if (trace != default)
        {
            (_traces ??= new ActivityContext[_items.Length])[index] = trace;
        }
        else if (_traces is not null)
        {
            _traces[index] = default;
        }
    }

    private ActivityContext TakeTrace(int index)
    {
        if (_traces is null)
        {
            return default;
        }

        var trace = _traces[index];
        _traces[index] = default;
        return trace;
    }
}
