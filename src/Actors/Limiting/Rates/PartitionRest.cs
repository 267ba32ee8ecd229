using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// The rates of a partition's gatekeeper: while one of them is not at rest (a bucket not yet refilled, a window not
/// yet empty) the partition is not idle, since a partition made anew would start full and grant more than the rate.
/// The gatekeeper wakes when they come to rest, so that it reports itself idle then.
/// </summary>
internal sealed class PartitionRest(IRestingPolicy[] rates)
{
    /// <summary>When every rate is at rest; <paramref name="now"/> if they all are.</summary>
    private TimeSpan RestsAt(TimeSpan now)
    {
        var at = now;
        foreach (var rate in rates)
        {
            var rests = rate.RestsAt(now);
            at = rests > at ? rests : at;
        }

        return at;
    }

    /// <summary>The gate's next wake, or earlier the moment the rates come to rest.</summary>
    public TimeSpan WakeAt(PermitGate gate)
    {
        var now = gate.Now;
        var rests = RestsAt(now);
        return rests > now && rests < gate.NextWakeAt ? rests : gate.NextWakeAt;
    }

    /// <summary>The gate's counts for the idle report: busy (one more in use) while a rate is not at rest.</summary>
    public PermitSnapshot Snapshot(PermitGate gate)
    {
        var snapshot = gate.Snapshot;
        return RestsAt(gate.Now) > gate.Now ? snapshot with { InUse = snapshot.InUse + 1 } : snapshot;
    }
}
