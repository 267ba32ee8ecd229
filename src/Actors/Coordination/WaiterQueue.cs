namespace ActorQueue.Coordination;

/// <summary>
/// A node that can stand in one <see cref="WaiterQueue{TWaiter}"/>. The links live in the waiter itself, so
/// enqueueing allocates nothing and a cancelled waiter is unlinked in O(1) wherever it stands.
/// </summary>
/// <typeparam name="TWaiter">The concrete waiter type.</typeparam>
internal abstract class WaiterNode<TWaiter> where TWaiter : WaiterNode<TWaiter>
{
    /// <summary>The waiter ahead of this one, or <c>null</c> at the head.</summary>
    internal TWaiter? Previous;

    /// <summary>The waiter behind this one, or <c>null</c> at the tail.</summary>
    internal TWaiter? Next;

    /// <summary>
    /// The queue this waiter stands in (a <see cref="WaiterQueue{TWaiter}"/>, or the owner of a <see cref="FifoWaiters"/>
    /// list), or <c>null</c> when it stands in none.
    /// </summary>
    internal object? Queue;

    /// <summary>Whether this waiter stands in a queue now.</summary>
    internal bool IsQueued => Queue is not null;

    /// <summary>Links <paramref name="waiter"/> after <paramref name="tail"/> (the list of <paramref name="head"/> and <paramref name="tail"/>), marked as standing in <paramref name="queue"/>.</summary>
    internal static void LinkLast(ref TWaiter? head, ref TWaiter? tail, TWaiter waiter, object queue)
    {
        waiter.Queue = queue;
        waiter.Previous = tail;
        waiter.Next = null;
        if (tail is null)
        {
            head = waiter;
        }
        else
        {
            tail.Next = waiter;
        }

        tail = waiter;
    }

    /// <summary>Unlinks <paramref name="waiter"/> from the list of <paramref name="head"/> and <paramref name="tail"/>, where it stands, and clears its links and mark.</summary>
    internal static void Unlink(ref TWaiter? head, ref TWaiter? tail, TWaiter waiter)
    {
        if (waiter.Previous is null)
        {
            head = waiter.Next;
        }
        else
        {
            waiter.Previous.Next = waiter.Next;
        }

        if (waiter.Next is null)
        {
            tail = waiter.Previous;
        }
        else
        {
            waiter.Next.Previous = waiter.Previous;
        }

        waiter.Previous = null;
        waiter.Next = null;
        waiter.Queue = null;
    }
}

/// <summary>
/// The FIFO of waiters that every gatekeeper and coordinator uses (one per priority level of a
/// <see cref="PermitGate"/>, one per condition of a lock): hand-off in arrival order, O(1) removal of a cancelled
/// waiter, and draining on dispose. Only its owning actor touches it, so it takes no locks.
/// </summary>
/// <typeparam name="TWaiter">The waiter type.</typeparam>
internal sealed class WaiterQueue<TWaiter> where TWaiter : WaiterNode<TWaiter>
{
    /// <summary>The oldest waiter, the next to be served.</summary>
    private TWaiter? _head;

    /// <summary>The newest waiter.</summary>
    private TWaiter? _tail;

    /// <summary>How many waiters stand in the queue.</summary>
    public int Count { get; private set; }

    /// <summary>Whether no waiter stands in the queue.</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>The oldest waiter, the next to be served; <c>null</c> when the queue is empty.</summary>
    public TWaiter? Head => _head;

    /// <summary>The newest waiter; <c>null</c> when the queue is empty.</summary>
    public TWaiter? Tail => _tail;

    /// <summary>Puts <paramref name="waiter"/> at the back of the queue.</summary>
    public void Enqueue(TWaiter waiter)
    {
        if (waiter.Queue is not null)
        {
            throw new InvalidOperationException("The waiter already stands in a queue.");
        }

        WaiterNode<TWaiter>.LinkLast(ref _head, ref _tail, waiter, this);
        Count++;
    }

    /// <summary>Removes and returns the oldest waiter, or <c>null</c> when the queue is empty.</summary>
    public TWaiter? Dequeue()
    {
        var waiter = _head;
        if (waiter is not null)
        {
            Unlink(waiter);
        }

        return waiter;
    }

    /// <summary>Removes <paramref name="waiter"/> if it stands in this queue.</summary>
    /// <returns><c>true</c> when it stood here and was removed; <c>false</c> when it was already gone.</returns>
    public bool Remove(TWaiter waiter)
    {
        if (!ReferenceEquals(waiter.Queue, this))
        {
            return false;
        }

        Unlink(waiter);
        return true;
    }

    /// <summary>The oldest waiter that matches <paramref name="match"/>, or <c>null</c>; O(n).</summary>
    public TWaiter? Find(Predicate<TWaiter> match)
    {
        for (var waiter = _head; waiter is not null; waiter = waiter.Next)
        {
            if (match(waiter))
            {
                return waiter;
            }
        }

        return null;
    }

    /// <summary>Removes every waiter that matches <paramref name="match"/>, keeping the others in order.</summary>
    /// <returns>The removed waiters, oldest first.</returns>
    public List<TWaiter> RemoveWhere(Predicate<TWaiter> match)
    {
        var removed = new List<TWaiter>();
        var waiter = _head;
        while (waiter is not null)
        {
            var next = waiter.Next;
            if (match(waiter))
            {
                Unlink(waiter);
                removed.Add(waiter);
            }

            waiter = next;
        }

        return removed;
    }

    /// <summary>Removes every waiter, oldest first, and hands each to <paramref name="action"/>.</summary>
    public void DrainAll(Action<TWaiter> action)
    {
        while (Dequeue() is { } waiter)
        {
            action(waiter);
        }
    }

    private void Unlink(TWaiter waiter)
    {
        WaiterNode<TWaiter>.Unlink(ref _head, ref _tail, waiter);
        Count--;
    }
}
