using System.Diagnostics;

namespace ActorQueue.Actors;

/// <content>Handing items out in run order and taking them back: due items promoted, a take, a drain's hold, a return, a try carried across a restart, and the waiting list.</content>
internal sealed partial class DurableBook<T>
{
    /// <summary>Moves the delayed items due at <paramref name="nowTicks"/> among the ready ones.</summary>
    public void PromoteDue(long nowTicks)
    {
        EndLoading();
        while (_delayed.Count > 0 && _delayed.Min!.DueTicks <= nowTicks)
        {
            var entry = _delayed.Min;
            _delayed.Remove(entry);
            entry.State = EntryState.Ready;
            _ready.Add(entry);
        }
    }

    /// <summary>
    /// Hands out the first ready item (after promoting the due ones); it runs until an event settles it or
    /// <see cref="Return"/>. An item replayed as bytes is decoded now; one whose bytes cannot be read back as
    /// <typeparamref name="T"/> (the type changed since it was written, or never round-trips) is handed out all the same,
    /// with <paramref name="unreadable"/> saying why, and the router dead-letters it.
    /// </summary>
    public bool TryTake(long nowTicks, out long id, out int attempts, out T item, out Exception? unreadable, Func<ReadOnlyMemory<byte>, T> decode)
    {
        PromoteDue(nowTicks);
        if (_ready.Count == 0)
        {
            (id, attempts, item, unreadable) = (0, 0, default!, null);
            return false;
        }

        var entry = _ready.TakeFirst();
        unreadable = Decoded(entry, decode);
        HandOut(entry, out id, out attempts, out item);
        return true;
    }

    /// <summary>
    /// Hands out the first ready item that can be read back as <typeparamref name="T"/> (after promoting the due ones), as
    /// <see cref="TryTake"/> does; the ready items ahead of it that cannot be read back stay ready, at their places, for a
    /// hand-out that can report them (a getter's caller cannot be handed one, and while no worker is free nobody can
    /// report it: round 46).
    /// </summary>
    public bool TryTakeReadable(long nowTicks, out long id, out int attempts, out T item, Func<ReadOnlyMemory<byte>, T> decode)
    {
        PromoteDue(nowTicks);
        List<Entry>? unreadable = null;
        Entry? taken = null;
        while (_ready.Count > 0)
        {
            var entry = _ready.TakeFirst();
            if (Decoded(entry, decode) is null)
            {
                taken = entry;
                break;
            }

            (unreadable ??= []).Add(entry); // back in the run order below: it stays ready all along
        }

        foreach (var entry in unreadable ?? [])
        {
            _ready.Add(entry);
        }

        if (taken is null)
        {
            (id, attempts, item) = (0, 0, default!);
            return false;
        }

        HandOut(taken, out id, out attempts, out item);
        return true;
    }

    /// <summary>Makes <paramref name="entry"/>, just taken off the ready ones and decoded, run: a take's common end.</summary>
    private void HandOut(Entry entry, out long id, out int attempts, out T item)
    {
        _waiting--;
        entry.State = EntryState.Running;
        _running++;
        (id, attempts, item) = (entry.Id, entry.Attempts, entry.Item!);
        AssertInvariants();
    }

    /// <summary>Decodes an entry replayed as bytes, once; returns the error when its bytes cannot be read back (the entry then has no item).</summary>
    private static Exception? Decoded(Entry entry, Func<ReadOnlyMemory<byte>, T> decode)
    {
        if (entry.HasItem)
        {
            return null;
        }

        try
        {
            entry.Item = decode(entry.Payload);
            entry.HasItem = true;
            return null;
        }
        catch (Exception error)
        {
            return error;
        }
    }

    /// <summary>
    /// A drain takes a waiting item out of the run order until its removal is journaled, so no hand-out, and no other
    /// drain, takes it meanwhile; it still counts as queued. The written removal ends it; a refused one gives it back
    /// (<see cref="Return"/>).
    /// </summary>
    public void Draining(long id)
    {
        var entry = Leave(_entries[id]);
        Debug.Assert(entry.State is EntryState.Ready or EntryState.Delayed, "a drain takes waiting items only");
        entry.State = EntryState.Draining;
        _draining++;
        AssertInvariants();
    }

    /// <summary>
    /// A running item did not finish (its work was cancelled by a stop), or a drained one's removal was refused: it is
    /// ready (or delayed) again, at its place.
    /// </summary>
    public void Return(long id)
    {
        var entry = Leave(_entries[id]);
        Enqueue(entry);
        AssertInvariants();
    }

    /// <summary>
    /// The router is done (stopped by a journal failure or its actor system's end, or detached) with items still running:
    /// tries it will never hear of, and items getters hold. None has an end in the journal, so each runs again when the
    /// queue is opened again: each is waiting again, at its place (handed back to the journal, counted in
    /// <see cref="Size"/>), and nothing is in flight.
    /// </summary>
    /// <returns>How many items were running.</returns>
    public int ReturnRunning()
    {
        var running = _entries.Values.Where(entry => entry.State == EntryState.Running).ToList();
        foreach (var entry in running)
        {
            Leave(entry);
            Enqueue(entry);
        }

        Debug.Assert(_running == 0, $"{_running} items still running");
        AssertInvariants();
        return running.Count;
    }

    /// <summary>
    /// Marks waiting item <paramref name="id"/> as running again: a try (or a getter's hold) that the router's previous
    /// instance started goes on, and its end comes to the next instance. <c>false</c> when no such item waits (its end was
    /// journaled before the restart).
    /// </summary>
    public bool Hold(long id)
    {
        if (!_entries.TryGetValue(id, out var entry) || entry.State is not (EntryState.Ready or EntryState.Delayed))
        {
            return false;
        }

        Leave(entry);
        entry.State = EntryState.Running;
        _running++;
        AssertInvariants();
        return true;
    }

    /// <summary>
    /// The waiting items, in the order they would run (delayed ones after the ready ones, by due time), each with the
    /// error when its bytes cannot be read back (its item is then the default).
    /// </summary>
    public List<(long Id, T Item, Exception? Unreadable)> Waiting(Func<ReadOnlyMemory<byte>, T> decode)
    {
        EndLoading();
        return [.. _ready.InOrder().Concat(_delayed).Select(entry => Decoded(entry, decode) is { } error ? (entry.Id, default(T)!, error) : (entry.Id, entry.Item!, null))];
    }
}
