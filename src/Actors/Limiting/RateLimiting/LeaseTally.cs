using System.Diagnostics;
using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>The lease totals a rate-limiting adapter reports in its statistics: every lease it hands out passes through <see cref="Count"/>.</summary>
internal sealed class LeaseTally
{
    /// <summary>Leases granted, counted per processor: one shared counter would cost every caller a cache line the other cores write.</summary>
    private readonly StripedCount _successful = new();
    private long _failed;

    /// <summary>Counts <paramref name="lease"/> as successful or failed and returns it.</summary>
    public RateLimitLease Count(RateLimitLease lease)
    {
        if (lease.IsAcquired)
        {
            _successful.Increment();
        }
        else
        {
            Interlocked.Increment(ref _failed);
        }

        return lease;
    }

    /// <summary>The adapter's statistics: <paramref name="available"/> and <paramref name="queued"/> as its limiter knows them, with the totals.</summary>
    public RateLimiterStatistics Statistics(long available, long queued) => new()
    {
        CurrentAvailablePermits = available,
        CurrentQueuedCount = queued,
        TotalSuccessfulLeases = _successful.Read(),
        TotalFailedLeases = Interlocked.Read(ref _failed),
    };
}

/// <summary>
/// One partition's lease totals (a local <c>Partition</c>'s, a cluster node's live partition's): two longs counted with
/// <see cref="Interlocked"/> by any thread, without a lock or a message. Kept as a field of its owner and changed in
/// place (a mutable struct: never copy it), so an idle partition pays 16 bytes, not an object.
/// </summary>
internal struct LeaseTotals
{
    private long _successful;
    private long _failed;

    /// <summary>Leases granted.</summary>
    public long Successful => Interlocked.Read(ref _successful);

    /// <summary>Leases that failed.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Counts one lease, granted or failed.</summary>
    public void Count(bool acquired) => Interlocked.Increment(ref acquired ? ref _successful : ref _failed);
}

/// <summary>
/// How long an adapter's limiter has been idle, for <see cref="RateLimiter.IdleDuration"/>: timed from the first read
/// that found it idle, and restarted by a read that finds leases were granted since the last one (a limiter used and
/// freed again between two reads was not idle all that time).
/// </summary>
internal sealed class IdleClock
{
    /// <summary>When a read first found the limiter idle (<see cref="Stopwatch"/> stamp); 0 while busy.</summary>
    private long _idleSince;

    /// <summary>The leases granted as of the last read (<see cref="Read(bool, long)"/>): a count of the limiter's, not the adapter's.</summary>
    private long _granted;

    /// <summary>How long the limiter has been idle, as of reads that found it so; <c>null</c> (and the clock reset) when <paramref name="idle"/> is false.</summary>
    public TimeSpan? Read(bool idle) => Read(idle, Volatile.Read(ref _granted));

    /// <summary>
    /// As <see cref="Read(bool)"/>, with the leases granted so far: when they changed since the last read, the limiter
    /// was in use meanwhile, so it has been idle only from now.
    /// </summary>
    public TimeSpan? Read(bool idle, long granted)
    {
        var used = Interlocked.Exchange(ref _granted, granted) != granted;
        if (!idle)
        {
            Volatile.Write(ref _idleSince, 0);
            return null;
        }

        var since = Volatile.Read(ref _idleSince);
        if (since == 0 || used)
        {
            Volatile.Write(ref _idleSince, since = Stopwatch.GetTimestamp());
        }

        return Stopwatch.GetElapsedTime(since);
    }
}
