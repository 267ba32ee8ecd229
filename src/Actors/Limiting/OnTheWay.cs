using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// Facade requests on their way to an actor: counted by the callers that send them, counted off by the actor as it
/// handles them. While any is, the facade's shortcuts (a claim from a loan, a request run in a partition's turn) stay
/// shut, so nobody passes a request whose call has returned. Two monotonic counters rather than one that goes up and
/// down, so the actor's side is a plain store, not a second atomic operation on a line every contended caller writes.
/// Used by <see cref="PermitLoan"/> (requests announced to a gatekeeper) and by a partitioned limiter (requests its
/// actor must route).
/// </summary>
[DebuggerDisplay("{Pending} on their way")]
internal sealed class OnTheWay
{
    /// <summary>Requests ever sent.</summary>
    private long _sent;

    /// <summary>Of those, how many the actor has handled; written by the actor only.</summary>
    private long _handled;

    /// <summary>Whether any request is on its way.</summary>
    public bool Any => Volatile.Read(ref _handled) != Volatile.Read(ref _sent);

    /// <summary>Requests on their way (for the debugger).</summary>
    public long Pending => Volatile.Read(ref _sent) - Volatile.Read(ref _handled);

    /// <summary>Any thread, before it sends a request to the actor.</summary>
    public void Sending() => Interlocked.Increment(ref _sent);

    /// <summary>The actor, once it handled a request it was sent.</summary>
    public void Handled()
    {
        var handled = _handled + 1;
        Debug.Assert(handled <= Volatile.Read(ref _sent), "Every request is handled once, after it was sent.");
        Volatile.Write(ref _handled, handled);
    }
}
