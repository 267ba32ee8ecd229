namespace ActorQueue.Actors;

/// <summary>What the router knows of one worker: whether it is free or retiring, and the run it holds.</summary>
/// <typeparam name="T">The item type.</typeparam>
internal sealed class WorkerSlot<T>
{
    /// <summary>The items of the run the worker holds; empty while it holds none.</summary>
    private T[] _items = [];

    /// <summary>Whether the worker holds items now.</summary>
    public bool HasItems => _items.Length > 0;

    /// <summary>
    /// The worker's latest run: the task holding the items (told directly to yield when the worker retires), or,
    /// once it has reported, the task waiting to be handed the next run.
    /// </summary>
    public WorkerRun<T>? Run { get; set; }

    /// <summary>Whether the worker stands in the idle queue.</summary>
    public bool Idle { get; set; }

    /// <summary>Whether the worker finishes its current item and then stops.</summary>
    public bool Retiring { get; set; }

    /// <summary>The run sequence number of the items held.</summary>
    public long Sequence { get; private set; }

    public void Give(T[] items, long sequence)
    {
        _items = items;
        Sequence = sequence;
    }

    public T[] TakeItems()
    {
        var items = _items;
        _items = [];
        return items;
    }
}
