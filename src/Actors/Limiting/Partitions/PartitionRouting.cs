using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// How many requests are on their way to a partitioned limiter's actor: sent by a caller that found no live partition
/// (or found one dropped), and not yet routed by the actor. While any is, nobody claims from a loan or runs a request in
/// a partition's turn: every request goes to the actor behind them, so none passes one whose call returned first — not
/// when the actor publishes the key's partition while an earlier request for it still waits in its mailbox, nor when a
/// lease released in the partition's turn frees a permit meanwhile. Two monotonic counters, so the actor's side is a
/// plain store (as <see cref="PermitLoan"/>'s announce); both are written only when a request goes to the actor, so a
/// limiter whose keys all have live partitions only reads them.
/// </summary>
[DebuggerDisplay("{Pending} on their way")]
internal sealed class PartitionRouting
{
    /// <summary>Requests ever sent to the actor.</summary>
    private long _sent;

    /// <summary>Of those, how many the actor has routed; written by the actor only.</summary>
    private long _routed;

    /// <summary>Whether no request is on its way to the actor: callers may claim and run requests in partitions' turns.</summary>
    public bool IsQuiet => Volatile.Read(ref _routed) == Volatile.Read(ref _sent);

    /// <summary>Requests on their way (for tests and the debugger).</summary>
    public long Pending => Volatile.Read(ref _sent) - Volatile.Read(ref _routed);

    /// <summary>Any thread, before it sends a request to the actor.</summary>
    public void Sending() => Interlocked.Increment(ref _sent);

    /// <summary>The actor, once it routed a request it was sent.</summary>
    public void Routed()
    {
        var routed = _routed + 1;
        Debug.Assert(routed <= Volatile.Read(ref _sent), "Every request is routed once, after it was sent.");
        Volatile.Write(ref _routed, routed);
    }
}
