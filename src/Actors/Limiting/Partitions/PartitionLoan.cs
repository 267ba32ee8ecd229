using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// The one value a concurrency <see cref="Partition"/> shares with callers that need not wait: permits its actor lent
/// while nobody waited. The channel, written down:
/// <list type="bullet">
/// <item>Writer of loans: the owner of the partition's turn (<see cref="TurnInbox"/>), as it gives the turn back
/// with nothing pushed, only while nobody waits in it: it takes the free permits out of the partition's count and
/// publishes them here (<see cref="Lend"/>), a compare-and-swap from shut only because a close may come meanwhile.</item>
/// <item>Reclaim: the owner, whenever it takes the turn (and again when it takes what was pushed to it, or a give-back
/// fails because someone pushed),
/// exchanges the loan for shut (<see cref="Reclaim"/>) and counts what nobody claimed as free again, so inside a turn
/// the partition's count is exact and the queue rule untouched.</item>
/// <item>Claimers: any thread; <see cref="TryClaim"/> subtracts with a compare-and-swap that never goes below zero.</item>
/// <item>Returners: any thread; a lease of the partition gives its permits back into the open loan
/// (<see cref="TryReturn"/>): the actor, which counted them held, would lend them again at once. Shut or closed, they go
/// back by message.</item>
/// <item>Announcers: a caller whose op was pushed to a turn someone else owns (<see cref="Announce"/>): shuts a loan
/// the owner opened just before the push, so nobody who calls after it claims, and no release goes into the loan,
/// before the owner runs its op. The owner's give-back then fails on the push and takes the loan back.</item>
/// <item>Close: the owner, when a sweep drops the partition or the limiter stops (<see cref="Close"/>): for good, so a
/// caller that found the partition before its drop can neither claim nor return into it.</item>
/// </list>
/// An announce that shuts an open loan sets its unclaimed permits aside in the same compare-and-swap (the word then reads
/// <see cref="SetAsideBase"/> less them), so the owner's next reclaim, on whatever core and however soon, takes them back:
/// a reclaim that found the loan shut but nothing set aside would count lent permits as held and queue callers behind
/// permits nobody holds.
/// A claim therefore never passes a waiter (nothing is lent while anyone waits, and a waiter queues only inside a
/// turn, after the reclaim) and a sweep sees every claim (it reclaims when it takes the turn, before it judges).
/// </summary>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
internal sealed class PartitionLoan
{
    /// <summary>Nothing lent: claims and returns fail (a message is being handled, someone waits, or nothing was free).</summary>
    private const long Shut = -1;

    /// <summary>The partition was dropped or its limiter stopped: nothing is ever lent again.</summary>
    private const long Closed = long.MinValue;

    /// <summary>Shut, and marked by a pusher's announce so that no lend opens it before the owner's next reclaim.</summary>
    private const long AnnouncedShut = -2;

    /// <summary>An open loan shut by an announce with nothing set aside; a word of <c>SetAsideBase - n</c> holds <c>n</c> set aside.</summary>
    private const long SetAsideBase = -3;

    /// <summary>
    /// Lent and not claimed (returns included); <see cref="Shut"/>, <see cref="Closed"/>, <see cref="AnnouncedShut"/>, or
    /// an open loan shut by an announce with what was unclaimed then set aside (<see cref="SetAsideBase"/> less it).
    /// </summary>
    private long _unclaimed = Shut;

    /// <summary>What the open loan put in (actor-written before the loan opens), so lent minus unclaimed is claimed net of returns.</summary>
    private long _lent;

    /// <summary>
    /// A caller about to push its op to someone else's turn: shuts an open loan (what was unclaimed is set aside for the
    /// owner's next reclaim), so no caller after it claims, and no release goes into the loan, before its op ran; and
    /// marks a shut one announced (set aside, nothing), so the owner's lend, which opens only a plainly shut loan, fails
    /// — an owner that read its turn idle and is about to lend would otherwise open the loan just after the push, for a
    /// later caller to claim past the pushed op. A loan already announced needs nothing (one read).
    /// </summary>
    public void Announce()
    {
        var seen = Volatile.Read(ref _unclaimed);
        while (seen >= 0 || seen == Shut)
        {
            // One step: a reclaim that sees the loan shut sees what was set aside with it.
            var was = Interlocked.CompareExchange(ref _unclaimed, seen == Shut ? AnnouncedShut : SetAsideBase - seen, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }

    /// <summary>
    /// A pusher, after its op landed in the partition's turn: shuts the loan if it is open (a later owner lent between the
    /// pusher's <see cref="Announce"/> and its push), setting the unclaimed aside as an announce does; one read otherwise.
    /// </summary>
    /// <returns>Whether it shut an open loan (then only the owner's next reclaim opens it again).</returns>
    public bool ShutIfOpen()
    {
        var seen = Volatile.Read(ref _unclaimed);
        while (seen >= 0)
        {
            var was = Interlocked.CompareExchange(ref _unclaimed, SetAsideBase - seen, seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>Permits claimed from the open loan net of permits returned into it (negative when more came back); 0 when none is open.</summary>
    public long Claimed
    {
        get
        {
            var unclaimed = Volatile.Read(ref _unclaimed);
            if (IsSetAside(unclaimed))
            {
                // Shut by an announce: what was claimed then is claimed until the actor's reclaim counts it.
                return Volatile.Read(ref _lent) - (SetAsideBase - unclaimed);
            }

            return unclaimed < 0 ? 0 : Volatile.Read(ref _lent) - unclaimed;
        }
    }

    /// <summary>Actor, right after a <see cref="Reclaim"/> that found a loan open: what that loan put in (so what it put in less what came back is what its claimers hold net).</summary>
    public long LentAtReclaim => Volatile.Read(ref _lent);

    /// <summary>Whether the loan is shut (reclaimed and not lent again), so the actor may lend it.</summary>
    public bool IsShut => Volatile.Read(ref _unclaimed) == Shut;

    private string DebuggerDisplay => Volatile.Read(ref _unclaimed) switch
    {
        Closed => "closed",
        Shut => "shut",
        AnnouncedShut => "shut, announced",
        < 0 and var aside => $"shut, {SetAsideBase - aside} set aside",
        var unclaimed => $"lent {unclaimed} of {Volatile.Read(ref _lent)}",
    };

    /// <summary>Whether <paramref name="permits"/> are lent now (a probe; it claims nothing).</summary>
    public bool Covers(int permits) => Volatile.Read(ref _unclaimed) >= permits;

    /// <summary>Claims <paramref name="permits"/> if that many are lent; never blocks, never claims a permit twice.</summary>
    public bool TryClaim(int permits) => TryMove(-permits);

    /// <summary>Gives <paramref name="permits"/> back into the open loan; <c>false</c> when it is shut or closed and they must go back by message.</summary>
    public bool TryReturn(int permits) => TryMove(permits);

    /// <summary>Actor, on a shut loan: lends <paramref name="permits"/> (taken out of the partition's count already).</summary>
    /// <returns><c>false</c> when the loan is closed: the caller takes its permits back.</returns>
    public bool Lend(long permits)
    {
        Debug.Assert(Volatile.Read(ref _unclaimed) is Shut or Closed or AnnouncedShut, "The owner lends only a loan it reclaimed (a pusher may have announced since).");
        Volatile.Write(ref _lent, permits);
        return Interlocked.CompareExchange(ref _unclaimed, permits, Shut) == Shut;
    }

    /// <summary>Actor: shuts the loan and takes back what nobody claimed (returned permits included).</summary>
    /// <param name="unclaimed">What nobody claimed; 0 when no loan was open.</param>
    /// <returns>Whether a loan was open (then claims may have moved the count, even if all of it was claimed).</returns>
    public bool Reclaim(out long unclaimed)
    {
        // Read first: under contention the loan is shut (someone waits), and a shut loan needs no atomic.
        // An announce on a shut loan is answered by this reclaim too (the owner runs the pushed op next): no loan was open.
        var seen = Volatile.Read(ref _unclaimed);
        while (seen >= 0 || IsSetAside(seen) || seen == AnnouncedShut)
        {
            var was = Interlocked.CompareExchange(ref _unclaimed, Shut, seen);
            if (was == seen)
            {
                unclaimed = seen >= 0 ? seen : seen == AnnouncedShut ? 0 : SetAsideBase - seen;
                return seen != AnnouncedShut;
            }

            seen = was;
        }

        unclaimed = 0;
        return false;
    }

    /// <summary>Whether <paramref name="word"/> is a loan an announce shut, with what was unclaimed then set aside.</summary>
    private static bool IsSetAside(long word) => word is <= SetAsideBase and not Closed;

    /// <summary>Moves the open loan's unclaimed count by <paramref name="delta"/> with a compare-and-swap, never below zero; fails on a shut or closed loan.</summary>
    private bool TryMove(long delta)
    {
        var seen = Volatile.Read(ref _unclaimed);
        while (seen >= 0 && seen + delta >= 0)
        {
            var was = Interlocked.CompareExchange(ref _unclaimed, seen + delta, seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>Actor, on a reclaimed loan: fails every later claim, return and loan for ever.</summary>
    public void Close()
    {
        Debug.Assert(Volatile.Read(ref _unclaimed) < 0, "The actor closes only a loan it reclaimed.");
        Volatile.Write(ref _unclaimed, Closed);
    }
}
