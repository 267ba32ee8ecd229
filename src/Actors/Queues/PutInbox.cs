using System.Collections.Concurrent;
using System.Diagnostics;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// Credited puts: space the router has reserved for the facade's puts, and the items put into it that the router has
/// not taken in yet. The router stays the one owner of the queue: it decides how much space the facade may fill
/// (credits), takes every item in before it handles its next message, and takes credits back when it needs the
/// space (a put from an actor, a stop). A put that finds a credit completes at once, without a message; the others
/// go to the router as before.
/// </summary>
/// <remarks>
/// <para>A shared-memory channel between the facade (any caller's thread) and the router actor. Each value, its
/// writers and readers:</para>
/// <list type="bullet">
/// <item><c>_state</c>, one word of pending items (high 32 bits) and unused credits (low 32 bits). The router owns it:
/// it grants, revokes and takes in. A put only moves one credit to one pending item, by compare-and-swap, so it takes
/// its credit and counts its item in one step, and the sum, <see cref="Reserved"/>, changes only by the router's own
/// calls, which keep it beside the word so that reading it touches no memory the facade writes. Every write to the
/// word is an interlocked read-modify-write. Read by the facade (<see cref="Pending"/>, for <c>Size</c> and
/// <c>Metrics</c>).</item>
/// <item><c>_items</c>: the facade enqueues, the router alone dequeues.</item>
/// <item><c>_signalled</c>, 1 while the router will look at the inbox without being told. The router writes it after
/// each message (<see cref="WillLook"/>, <see cref="StopLooking"/>); a put sets it from 0 to 1 when it tells the
/// router (<see cref="TryPut"/>).</item>
/// <item><c>_routedPuts</c> and <c>_closed</c>: the facade's own, so that its puts keep their order behind a put or a
/// stop that went to the router.</item>
/// <item><c>_errorHandler</c>: written by the router when it starts workers, read by <see cref="InboxSignal{T}"/> only
/// once the router is gone (volatile reads and writes of one reference).</item>
/// </list>
/// <para>Orderings. (1) Dekker, so no item is left unseen: a put enqueues its item, then swaps the flag from 0 to 1
/// (a full fence) and tells the router if it did; the router clears the flag by an exchange (a full fence), then
/// checks the queue. Either the router finds the item or the put finds the flag cleared and tells it. The router may
/// declare it will look without being told only while no free worker or getter could take an item: whatever takes the
/// next item (a worker's report, a get, a start) is a message, and the inbox is taken in before every message.
/// (2) The router publishes its counts with the items it took in before it lowers <see cref="Pending"/>
/// (<see cref="Taken"/>), and the facade reads <see cref="Pending"/> before the published size
/// (<see cref="QueueCounters.SizeWith{TItem}"/>), so <c>Size</c> never misses an accepted item; it may count one
/// twice for an instant.</para>
/// </remarks>
internal sealed class PutInbox<T>
{
    private const long OnePending = 1L << 32;

    private readonly ConcurrentQueue<T> _items = new();

    /// <summary>1 while the router will look at the inbox without being told.</summary>
    private int _signalled;

    /// <summary>Pending items (high 32 bits) and unused credits (low 32 bits).</summary>
    private long _state;

    /// <summary>Facade puts sent to the router and not answered yet: while there are any, puts take that path too, in order.</summary>
    private int _routedPuts;

    /// <summary>Set from the facade's stop until its next start: puts go to the router, behind the stop.</summary>
    private volatile bool _closed;

    /// <summary>
    /// The router's own count of <see cref="Reserved"/>: a put leaves credits + pending unchanged, so only the router's
    /// calls change it, here, next to the word; the router reads it without touching the word the facade writes.
    /// </summary>
    private int _reserved;

    private Func<Exception, T, Task>? _errorHandler;

    /// <param name="telemetry">Where items left in the inbox when the router is gone are reported.</param>
    /// <param name="counters">The facade's published counters, which then count those items as discarded; <c>null</c> in unit tests of the inbox alone.</param>
    public PutInbox(QueueTelemetry telemetry, QueueCounters? counters = null)
    {
        Signal = new InboxSignal<T>(this, telemetry, counters);
    }

    /// <summary>
    /// The error handler of the router's workers (set by the router when it starts them; read once the router is gone):
    /// where the items a put added after the router had stopped are reported (<see cref="InboxSignal{T}"/>).
    /// </summary>
    public Func<Exception, T, Task>? ErrorHandler
    {
        get => Volatile.Read(ref _errorHandler);
        set => Volatile.Write(ref _errorHandler, value);
    }

    /// <summary>The message that tells the router items are waiting; if the router is gone, it logs what was left.</summary>
    public InboxSignal<T> Signal { get; }

    /// <summary>Items put with a credit that the router has not taken in yet.</summary>
    public int Pending => (int)(Volatile.Read(ref _state) >> 32);

    /// <summary>
    /// Router: the places reserved for credited puts: unused credits plus items put with them and not taken in. A put
    /// turns a credit into a pending item, so only the router's own calls change this.
    /// </summary>
    public int Reserved => _reserved;

    /// <summary>
    /// Facade: puts <paramref name="item"/> with a credit, telling <paramref name="router"/> when it might not look;
    /// <c>false</c> when there is no credit (or an earlier put still waits for the router's answer).
    /// </summary>
    public bool TryPut(T item, IActorRef router)
    {
        if (_closed || Volatile.Read(ref _routedPuts) != 0)
        {
            return false;
        }

        var state = Volatile.Read(ref _state);
        while ((int)state > 0)
        {
            var seen = Interlocked.CompareExchange(ref _state, state - 1 + OnePending, state);
            if (seen == state)
            {
                _items.Enqueue(item);
                if (Interlocked.CompareExchange(ref _signalled, 1, 0) == 0)
                {
                    router.Tell(Signal, ActorRefs.NoSender);
                }

                return true;
            }

            state = seen;
        }

        return false;
    }

    /// <summary>Facade, before it sends a stop: later puts go to the router, so they reach it after the stop.</summary>
    public void Close() => _closed = true;

    /// <summary>Facade, before it sends a start: puts may use credits again (the router grants them once it processes).</summary>
    public void Open() => _closed = false;

    /// <summary>Facade: a put goes to the router; later puts follow it there until it is answered.</summary>
    public void Routed() => Interlocked.Increment(ref _routedPuts);

    /// <summary>A put that went to the router is answered (accepted, full, refused, cancelled or undelivered).</summary>
    public void RoutedAnswered() => Interlocked.Decrement(ref _routedPuts);

    /// <summary>Router: the next pending item, oldest first.</summary>
    public bool TryTake(out T item) => _items.TryDequeue(out item!);

    /// <summary>Router: <paramref name="count"/> items were taken in.</summary>
    public void Taken(int count)
    {
        Interlocked.Add(ref _state, -(count * OnePending));
        _reserved -= count;
        AssertReserved();
    }

    /// <summary>Router: reserves <paramref name="credits"/> more places for credited puts.</summary>
    public void Grant(int credits)
    {
        Interlocked.Add(ref _state, credits);
        _reserved += credits;
        AssertReserved();
    }

    /// <summary>Router: takes back every unused credit; returns how many.</summary>
    public int Revoke()
    {
        var state = Volatile.Read(ref _state);
        while ((int)state != 0)
        {
            var seen = Interlocked.CompareExchange(ref _state, state & ~0xFFFF_FFFFL, state);
            if (seen == state)
            {
                _reserved -= (int)state;
                AssertReserved();
                return (int)state;
            }

            state = seen;
        }

        return 0;
    }

    /// <summary>Router: no free worker or getter could take an item, and whatever takes the next one is a message, so puts need not tell it.</summary>
    public void WillLook() => Volatile.Write(ref _signalled, 1);

    /// <summary>Router: from now on a put tells the router; returns whether items came in before that (take them in).</summary>
    public bool StopLooking()
    {
        Interlocked.Exchange(ref _signalled, 0);
        return !_items.IsEmpty;
    }

    /// <summary>The router's count matches the word: puts move credits to pending items, which keeps the sum.</summary>
    [Conditional("DEBUG")]
    private void AssertReserved()
    {
        var state = Volatile.Read(ref _state);
        Debug.Assert(_reserved == (int)state + (int)(state >> 32), $"reserved {_reserved}, word: {(int)state} credits + {(int)(state >> 32)} pending");
    }
}

/// <summary>
/// Facade → router: credited puts are waiting in the inbox. Undelivered only if a put took its credit before the queue
/// stopped and added its item after the router was gone (disposal): the item cannot be processed, so it is reported
/// and counted as the router reports the items still queued when it is disposed (<see cref="QueueMetrics.Discarded"/>).
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
internal sealed class InboxSignal<T>(PutInbox<T> inbox, QueueTelemetry telemetry, QueueCounters? counters) : IUndeliverableRequest
{
    /// <inheritdoc />
    public void Undelivered()
    {
        var left = new List<T>();
        while (inbox.TryTake(out var item))
        {
            left.Add(item);
        }

        if (left.Count > 0)
        {
            // Counted before the inbox lowers its pending count, so Metrics never misses them (it may count them twice for an instant).
            counters?.CountDiscardedPuts(left.Count);
            inbox.Taken(left.Count);
            _ = telemetry.ReportDiscarded(inbox.ErrorHandler, left);
        }
    }
}
