using System.Diagnostics;

namespace ActorQueue.Primitives;

/// <summary>
/// The lock's waiting flows while the coordinator is not running: a FIFO that flows join and releasing holders serve
/// without a message, published by the coordinator at the end of a message when every waiter in its gate is a flow
/// (it moves them all into the line, in order) and taken back at the start of its next one.
/// </summary>
/// <remarks>
/// <para>A linked list behind a dummy node (Michael and Scott's queue without the tail's help). Every step is one atomic
/// operation on one field, and each field has one meaning per step:</para>
/// <list type="bullet">
/// <item>Join (a flow, announced in the lock word): one CAS of its node into the last node's <c>Next</c>; a last node
/// whose <c>Next</c> is <see cref="Closed"/> means the coordinator has taken the line back, and the flow sends its
/// waiter instead.</item>
/// <item>Serve (the holding flow, releasing its last level): one CAS of <c>_first</c> from the dummy to its successor,
/// whose waiter it then owns; <see cref="Taken"/> in <c>_first</c> means the coordinator has taken the line back.</item>
/// <item>Take back (the coordinator, once): one exchange of <c>_first</c> with <see cref="Taken"/> (every node behind
/// the dummy it gets is its own, and no holder serves from the line any more), then one CAS of <see cref="Closed"/>
/// behind the last node (every flow that joined before it is in the list, every later one is refused).</item>
/// </list>
/// <para>So a waiter is either served by exactly one holder or handed back to the coordinator, never both, and a flow
/// that joined is never lost: its CAS succeeded before the coordinator's closing CAS, which walks the list to its end.
/// Nodes are never reused (a fresh line per publication, a fresh node per join), so no step can see an old link.</para>
/// </remarks>
internal sealed class LockLine
{
    /// <summary>Behind the last node: the line has been taken back, nobody joins.</summary>
    private static readonly Node Closed = new(null);

    /// <summary>In <see cref="_first"/>: the line has been taken back, nobody is served from it.</summary>
    private static readonly Node Taken = new(null);

    /// <summary>The dummy: the waiter behind it is the next to be served.</summary>
    private Node _first;

    /// <summary>A node at or before the last one; where a join starts walking.</summary>
    private Node _last;

    /// <summary>A line of <paramref name="waiters"/>, in order.</summary>
    public LockLine(IEnumerable<LockWaiter> waiters)
    {
        _first = _last = new Node(null);
        foreach (var waiter in waiters)
        {
            var node = new Node(waiter);
            _last.Next = node;
            _last = node;
        }
    }

    /// <summary>A flow joins at the end; <c>false</c> when the coordinator has taken the line back.</summary>
    public bool TryJoin(LockWaiter waiter)
    {
        var node = new Node(waiter);
        var last = Volatile.Read(ref _last);
        while (true)
        {
            var next = Volatile.Read(ref last.Next);
            if (next is null)
            {
                next = Interlocked.CompareExchange(ref last.Next, node, null);
                if (next is null)
                {
                    Volatile.Write(ref _last, node); // a hint only: a later join walks on from wherever it points
                    return true;
                }
            }

            if (ReferenceEquals(next, Closed))
            {
                return false;
            }

            last = next;
        }
    }

    /// <summary>The holder takes the next waiter; <c>null</c> when the line is empty or taken back.</summary>
    public LockWaiter? TryServe()
    {
        while (true)
        {
            var first = Volatile.Read(ref _first);
            if (ReferenceEquals(first, Taken))
            {
                return null;
            }

            var next = Volatile.Read(ref first.Next);
            if (next is null || ReferenceEquals(next, Closed))
            {
                return null;
            }

            if (ReferenceEquals(Interlocked.CompareExchange(ref _first, next, first), first))
            {
                return next.Waiter;
            }
        }
    }

    /// <summary>Waiters nobody has served yet, counted by a walk (for diagnostics; racing joins and serves may be missed).</summary>
    public int Count
    {
        get
        {
            var count = 0;
            var first = Volatile.Read(ref _first);
            for (var node = ReferenceEquals(first, Taken) ? null : Volatile.Read(ref first.Next);
                 node is not null && !ReferenceEquals(node, Closed);
                 node = Volatile.Read(ref node.Next))
            {
                count++;
            }

            return count;
        }
    }

    /// <summary>The coordinator takes the line back, once: every waiter nobody served, in order.</summary>
    public List<LockWaiter> TakeBack()
    {
        var node = Interlocked.Exchange(ref _first, Taken);
        Debug.Assert(!ReferenceEquals(node, Taken), "a line is taken back once");
        var waiters = new List<LockWaiter>();
        while (true)
        {
            var next = Volatile.Read(ref node.Next);
            if (next is null)
            {
                next = Interlocked.CompareExchange(ref node.Next, Closed, null);
                if (next is null)
                {
                    return waiters;
                }
            }

            Debug.Assert(!ReferenceEquals(next, Closed), "only the coordinator closes a line");
            waiters.Add(next.Waiter!);
            node = next;
        }
    }

    private sealed class Node(LockWaiter? waiter)
    {
        public readonly LockWaiter? Waiter = waiter;

        public Node? Next;
    }
}
