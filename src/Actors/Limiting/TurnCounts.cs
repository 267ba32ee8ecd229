using System.Runtime.InteropServices;

namespace ActorQueue.Actors;

/// <summary>
/// The counts a gatekeeper's turn changes on most steps, on a cache line of their own: the gate's counts not yet written
/// for the facade (<c>GatekeeperActor.PublishCounts</c>) and the counts last added to the running and waiting meters.
/// Kept among the actor's (and its telemetry's) fields, each store took the line of the fields every step reads beside
/// them (the gate, the pool, the settings, the metric tag) from the core that ran the turn before, and a contended
/// limit's turn moves between cores on most operations (docs/ARCHITECTURE.md, the limiter's turn). One instance per
/// gatekeeper instance, touched only by whoever holds its turn (or the actor, without one).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 3 * LimiterCounts.CacheLine)]
internal sealed class TurnCounts
{
    /// <summary>The waiters' demand as staged.</summary>
    [FieldOffset(LimiterCounts.CacheLine)]
    private long _queued;

    /// <summary>The running count last added to the meter.</summary>
    [FieldOffset(LimiterCounts.CacheLine + 8)]
    private long _meteredRunning;

    /// <summary>The held count as staged.</summary>
    [FieldOffset(LimiterCounts.CacheLine + 16)]
    private int _running;

    /// <summary>The waiters as staged.</summary>
    [FieldOffset(LimiterCounts.CacheLine + 20)]
    private int _waiting;

    /// <summary>The waiting count last added to the meter.</summary>
    [FieldOffset(LimiterCounts.CacheLine + 24)]
    private int _meteredWaiting;

    /// <summary>Whether counts were staged and not yet taken.</summary>
    [FieldOffset(LimiterCounts.CacheLine + 28)]
    private bool _isStaged;

    /// <summary>Notes the counts, replacing any staged before.</summary>
    public void Stage(int running, int waiting, long queued)
    {
        _running = running;
        _waiting = waiting;
        _queued = queued;
        _isStaged = true;
    }

    /// <summary>Takes the counts staged since the last take, if any.</summary>
    /// <returns>Whether any were staged.</returns>
    public bool TryTake(out int running, out int waiting, out long queued)
    {
        (running, waiting, queued) = (_running, _waiting, _queued);
        if (!_isStaged)
        {
            return false;
        }

        _isStaged = false;
        return true;
    }

    /// <summary>Adds what changed since the last call to <paramref name="telemetry"/>'s running and waiting up-down counters.</summary>
    public void Meter(GatekeeperTelemetry telemetry, long running, int waiting)
    {
        // The counts first: a listener that throws must not make the next change add this one's delta again. No store
        // when nothing changed: a store, even of the same value, takes the line from the core that ran the turn before.
        var (ran, waited) = (running - _meteredRunning, waiting - _meteredWaiting);
        if (ran == 0 && waited == 0)
        {
            return;
        }

        (_meteredRunning, _meteredWaiting) = (running, waiting);
        telemetry.MeterChange((int)ran, waited);
    }

    /// <summary>
    /// The gatekeeper reclaimed its loan with <paramref name="running"/> held: claims and returns since the loan metered
    /// their own changes, so the running instrument already shows this count.
    /// </summary>
    public void Absorb(long running)
    {
        if (_meteredRunning != running)
        {
            _meteredRunning = running; // stored only when it changes: see Meter
        }
    }
}
