using System.Collections.Concurrent;
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
/// <para>The router is told about new items only when it might not look on its own. After each message it either
/// declares that it will look anyway (no free worker or getter could take an item, and whatever takes the next one,
/// a worker's report, a get, a start, is a message), or it clears the signal and checks the inbox once more. The
/// put's enqueue and its signal, and the router's clearing and check, are each ordered by a full fence, so no item is
/// left unseen.</para>
/// <para>Credits and pending items share one word, so a put takes its credit and counts its item in one step.</para>
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
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

    public PutInbox(QueueTelemetry telemetry)
    {
        Signal = new InboxSignal<T>(this, telemetry);
    }

    /// <summary>The message that tells the router items are waiting; if the router is gone, it logs what was left.</summary>
    public InboxSignal<T> Signal { get; }

    /// <summary>Items put with a credit that the router has not taken in yet.</summary>
    public int Pending => (int)(Volatile.Read(ref _state) >> 32);

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
    public void Taken(int count) => Interlocked.Add(ref _state, -(count * OnePending));

    /// <summary>Router: reserves <paramref name="credits"/> more places for credited puts.</summary>
    public void Grant(int credits) => Interlocked.Add(ref _state, credits);

    /// <summary>Router: takes back every unused credit; returns how many.</summary>
    public int Revoke()
    {
        var state = Volatile.Read(ref _state);
        while ((int)state != 0)
        {
            var seen = Interlocked.CompareExchange(ref _state, state & ~0xFFFF_FFFFL, state);
            if (seen == state)
            {
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
}

/// <summary>
/// Facade → router: credited puts are waiting in the inbox. Undelivered only if a put took its credit before the queue
/// stopped and added its item after the router was gone (disposal): the item cannot be processed, so it is logged as
/// the router logs the items still queued when it is disposed.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
internal sealed class InboxSignal<T>(PutInbox<T> inbox, QueueTelemetry telemetry) : IUndeliverableRequest
{
    /// <inheritdoc />
    public void Undelivered()
    {
        var left = 0;
        while (inbox.TryTake(out _))
        {
            left++;
        }

        if (left > 0)
        {
            inbox.Taken(left);
            telemetry.Log.Warning("Queue {QueueName} was disposed while {Count} items were being put; they were not processed", telemetry.QueueName, left);
        }
    }
}
