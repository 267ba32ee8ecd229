using System.Diagnostics;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// What one actor caller waits for and holds at a gatekeeper: its tickets by request id, waiting and granted alike.
/// Most callers have one request at a time, so the first ticket sits in a field and a table is made only for a caller
/// with several at once.
/// </summary>
[DebuggerDisplay("{Actor.Path} tickets {Count}, counted idle {CountedIdle}")]
internal sealed class HolderRecord(IActorRef actor)
{
    /// <summary>A ticket, or <c>null</c>: every request id is in the books at most once, here or in <see cref="_more"/>.</summary>
    private HolderTicket? _single;

    /// <summary>The tickets beyond <see cref="_single"/>, by request id; <c>null</c> until a caller has two at once.</summary>
    private Dictionary<long, HolderTicket>? _more;

    /// <summary>The actor; it is watched while it is in the gatekeeper's books.</summary>
    public IActorRef Actor { get; } = actor;

    /// <summary>How many requests it has waiting or granted.</summary>
    public int Count { get; private set; }

    /// <summary>Nothing waiting, nothing held.</summary>
    public bool IsIdle => Count == 0;

    /// <summary>Counted among the gatekeeper's idle callers (kept watched until a sweep forgets them).</summary>
    public bool CountedIdle { get; set; }

    /// <summary>The ticket of <paramref name="requestId"/>, waiting or granted; <c>null</c> when the id is free.</summary>
    public HolderTicket? Find(long requestId) =>
        _single is { } single && single.RequestId == requestId ? single
        : _more is not null && _more.TryGetValue(requestId, out var ticket) ? ticket
        : null;

    /// <summary>Books a new request; its id must be free (<see cref="Find"/>).</summary>
    public void Add(HolderTicket ticket)
    {
        Debug.Assert(ReferenceEquals(ticket.Holder, this) && Find(ticket.RequestId) is null, "a request id is booked once, by its own holder");
        if (_single is null)
        {
            _single = ticket;
        }
        else
        {
            (_more ??= []).Add(ticket.RequestId, ticket);
        }

        Count++;
    }

    /// <summary>Takes <paramref name="ticket"/> out of the books: its request ended (released, cancelled, rejected).</summary>
    /// <returns><c>false</c> when it was not booked (already out).</returns>
    public bool Remove(HolderTicket ticket)
    {
        if (ReferenceEquals(_single, ticket))
        {
            _single = null;
        }
        else if (_more is null || !_more.TryGetValue(ticket.RequestId, out var booked) || !ReferenceEquals(booked, ticket)
                 || !_more.Remove(ticket.RequestId))
        {
            return false;
        }

        Count--;
        return true;
    }

    /// <summary>Puts <paramref name="next"/>, a request carried over a restart, in the place of <paramref name="ticket"/>, the same request's.</summary>
    public void Replace(HolderTicket ticket, HolderTicket next)
    {
        Debug.Assert(ticket.RequestId == next.RequestId && ReferenceEquals(next.Holder, this), "a carried request keeps its id and its holder");
        var removed = Remove(ticket);
        Debug.Assert(removed, "the request carried over was booked");
        Add(next);
    }

    /// <summary>Every ticket, for an actor that stopped; the books are not changed.</summary>
    public List<HolderTicket> Tickets()
    {
        var all = new List<HolderTicket>(Count);
        if (_single is not null)
        {
            all.Add(_single);
        }

        if (_more is not null)
        {
            all.AddRange(_more.Values);
        }

        return all;
    }
}
