using System.Diagnostics.Metrics;

namespace ActorQueue.Telemetry;

/// <summary>
/// Mirrors one count an actor owns (running, waiting, depth) onto an up-down counter by adding only what changed since
/// the last publication. The instrument's sum is then the count now, also across incarnations: an actor publishes 0 when
/// it stops, taking its part back, and its successor adds what it recovers. Owned by one actor; not thread-safe.
/// </summary>
internal sealed class UpDownPublisher(UpDownCounter<int> counter, KeyValuePair<string, object?> tag)
{
    /// <summary>The value the counter holds from this publisher.</summary>
    private int _published;

    /// <summary>Adds the change since the last publication (nothing when there is none).</summary>
    public void Publish(int value)
    {
        if (value != _published)
        {
            counter.Add(value - _published, tag);
            _published = value;
        }
    }
}
