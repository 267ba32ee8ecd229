using Akka.Event;

namespace ActorQueue.Actors;

/// <summary>
/// Reports the measurements one limiter's telemetry dropped because an application's metrics listener threw: the first
/// failure at once, then again each time their number reaches a power of two, with the count so far. A listener that
/// throws on every measurement costs log₂(n) lines for n measurements instead of n (it had flooded the log: one Error
/// per grant), and the count says how many were lost.
/// </summary>
/// <param name="log">Where the reports go.</param>
/// <param name="metricName">The limiter's name, as its metrics tag it.</param>
internal sealed class ListenerFailureLog(ILoggingAdapter log, string metricName)
{
    /// <summary>Measurements dropped so far; counted from any thread that records.</summary>
    private long _dropped;

    /// <summary>Measurements dropped so far.</summary>
    public long Dropped => Volatile.Read(ref _dropped);

    /// <summary>A listener threw <paramref name="error"/>: its measurement was dropped; reported if the count is now a power of two.</summary>
    public void Report(Exception error)
    {
        var dropped = Interlocked.Increment(ref _dropped);
        if ((dropped & (dropped - 1)) == 0)
        {
            log.Error(error, "A metrics listener of {0} threw; its measurement was dropped ({1} dropped so far; reported again at {2})",
                      metricName, dropped, dropped * 2);
        }
    }
}
