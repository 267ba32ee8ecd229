namespace ActorQueue.Actors;

/// <summary>
/// The one value a gatekeeper shares for synchronous acquires (<c>RateLimiter.AttemptAcquire</c>): permits it has lent
/// to callers that will not wait. The channel, written down:
/// <list type="bullet">
/// <item>Writer of loans: the gatekeeper only, at the end of a message, and only when nobody waits: it takes every
/// free permit from its pool and adds it here (<see cref="Lend"/>).</item>
/// <item>Claimers: any thread; <see cref="TryClaim"/> subtracts with a compare-and-swap and never goes below zero, so
/// a permit is claimed once. A claimed permit stays held in the pool; its lease releases it by message, as any lease.</item>
/// <item>Reclaim: the gatekeeper, at the start of every message, takes back what nobody claimed
/// (<see cref="Reclaim"/>, one exchange), so inside a message its pool is exact and its queue rule unchanged.</item>
/// </list>
/// A synchronous caller therefore never passes a waiter (nothing is lent while anyone waits) and never blocks; it may
/// find nothing lent although a permit is free when a release is still in the gatekeeper's mailbox.
/// </summary>
internal sealed class PermitLoan
{
    /// <summary>Lent and not claimed; <see cref="Closed"/> once the gatekeeper stopped.</summary>
    private long _unclaimed;

    /// <summary>What the last loan put in (written by the gatekeeper), so that lent minus unclaimed is what was claimed since.</summary>
    private long _lent;

    /// <summary>The value that fails every claim for ever.</summary>
    private const long Closed = long.MinValue / 2;

    /// <summary>Permits claimed from the current loan: held by synchronous callers the gatekeeper has not counted yet.</summary>
    public long Claimed
    {
        get
        {
            var unclaimed = Volatile.Read(ref _unclaimed);
            return unclaimed < 0 ? 0 : Math.Max(0, Volatile.Read(ref _lent) - unclaimed);
        }
    }

    /// <summary>Lent and not yet claimed.</summary>
    public long Unclaimed => Math.Max(0, Volatile.Read(ref _unclaimed));

    /// <summary>Claims <paramref name="permits"/> if that many are lent; never blocks, never claims a permit twice.</summary>
    public bool TryClaim(int permits)
    {
        var seen = Volatile.Read(ref _unclaimed);
        while (seen >= permits)
        {
            var was = Interlocked.CompareExchange(ref _unclaimed, seen - permits, seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>Gatekeeper: lends <paramref name="permits"/> (0: nothing lent now).</summary>
    public void Lend(long permits)
    {
        Volatile.Write(ref _lent, permits);
        Interlocked.Add(ref _unclaimed, permits);
    }

    /// <summary>Gatekeeper: takes back what nobody claimed.</summary>
    /// <returns>The permits to return to the pool.</returns>
    public long Reclaim()
    {
        var back = Interlocked.Exchange(ref _unclaimed, 0);
        Volatile.Write(ref _lent, 0);
        return Math.Max(0, back);
    }

    /// <summary>Gatekeeper, stopping: takes back what nobody claimed and fails every later claim.</summary>
    public void Close() => Interlocked.Exchange(ref _unclaimed, Closed);
}

/// <summary>An adapter asks the gatekeeper to lend its free permits for synchronous acquires from now on.</summary>
internal sealed class StartLending
{
    public static readonly StartLending Instance = new();
}
