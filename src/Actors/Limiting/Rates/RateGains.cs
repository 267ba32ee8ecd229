using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>When rates next give something back (a bucket's refill, a window's segment sliding out), and that time on the clock.</summary>
internal static class RateGains
{
    /// <summary>The earliest of <paramref name="earliest"/> and the times, asked at gate time <paramref name="at"/>, at which any of <paramref name="rates"/> next gains.</summary>
    public static TimeSpan Earliest(ReadOnlySpan<IRestingPolicy> rates, TimeSpan at, TimeSpan earliest)
    {
        foreach (var rate in rates)
        {
            var gain = rate.NextGainAt(at);
            earliest = gain < earliest ? gain : earliest;
        }

        return earliest;
    }

    /// <summary>Gate time <paramref name="gain"/> as UTC ticks on <paramref name="time"/>, the gate's time being <paramref name="now"/>; 0 for none (<see cref="TimeSpan.MaxValue"/>).</summary>
    public static long UtcTicks(TimeSpan gain, TimeSpan now, TimeProvider time) =>
        gain == TimeSpan.MaxValue ? 0 : (time.GetUtcNow() + (gain - now)).UtcTicks;
}
