using System.Diagnostics.Metrics;

namespace ActorQueue.Telemetry;

/// <summary>
/// Mirrors one count an actor owns (running, waiting, depth) onto an up-down counter by adding only what changed since
/// the last publication. The instrument's sum is then the count now, also across incarnations: an actor publishes 0 when
/// it stops, taking its part back, and its successor adds what it recovers. Owned by one actor; not thread-safe. Given
/// <paramref name="failures"/>, a metrics listener that throws is reported there and its measurement dropped (it would
/// otherwise throw out of the actor's message, and restart it); without, it reaches the publisher's caller (tests).
/// </summary>
/// <param name="counter">The instrument.</param>
/// <param name="tag">The actor's metric tag.</param>
/// <param name="failures">Where a throwing listener is reported.</param>
internal sealed class UpDownPublisher(UpDownCounter<int> counter, KeyValuePair<string, object?> tag, ListenerFailureLog? failures = null)
{
    /// <summary>The value the counter holds from this publisher.</summary>
    private int _published;

    /// <summary>Adds the change since the last publication (nothing when there is none).</summary>
    public void Publish(int value)
    {
        if (value != _published)
        {
            // Kept before the listeners run: a change a throwing listener dropped is not added again by the next publication.
            var delta = value - _published;
            _published = value;
            failures.Add(counter, delta, tag);
        }
    }
}
