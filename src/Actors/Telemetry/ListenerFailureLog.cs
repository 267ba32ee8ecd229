using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using Akka.Event;

namespace ActorQueue.Telemetry;

/// <summary>
/// Reports the measurements one part of a limiter or a queue dropped because an application's metrics listener threw:
/// the first failure at once, then again each time their number reaches a power of two, with the count so far. A
/// listener that throws on every measurement costs log₂(n) lines for n measurements instead of n (it had flooded the
/// log: one Error per grant), and the count says how many were lost.
/// </summary>
/// <param name="report">Writes one report: the listener's exception, the failures so far (a power of two).</param>
internal sealed class ListenerFailureLog(Action<Exception, long> report)
{
    /// <summary>Measurements dropped so far; counted from any thread that records.</summary>
    private long _dropped;

    /// <summary>Reports to an Akka log, naming the limiter or queue as its metrics tag it.</summary>
    /// <param name="log">Where the reports go.</param>
    /// <param name="metricName">The limiter's or the queue's name.</param>
    public ListenerFailureLog(ILoggingAdapter log, string metricName)
        : this((error, dropped) => log.ErrorSafely(error, Message, metricName, dropped, dropped * 2))
    {
    }

    /// <summary>The report's text, with the name, the count so far and the count of the next report.</summary>
    public const string Message = "A metrics listener of {0} threw; its measurement was dropped ({1} dropped so far; reported again at {2})";

    /// <summary>Measurements dropped so far.</summary>
    public long Dropped => Volatile.Read(ref _dropped);

    /// <summary>A listener threw <paramref name="error"/>: its measurement was dropped; reported if the count is now a power of two.</summary>
    public void Report(Exception error)
    {
        var dropped = Interlocked.Increment(ref _dropped);
        if ((dropped & (dropped - 1)) == 0)
        {
            report(error, dropped);
        }
    }
}

/// <summary>
/// Measurements guarded by a <see cref="ListenerFailureLog"/>, one instrument at a time (so one that throws costs only its
/// own measurement, not the rest of the step's: an up-down counter left out of a step drifts). On a <c>null</c> log the
/// listener's exception reaches the caller (tests that build telemetry without a log).
/// </summary>
internal static class GuardedMeasurements
{
    /// <summary>Adds <paramref name="delta"/> to <paramref name="counter"/>; a listener that throws is reported to <paramref name="failures"/>.</summary>
    public static void Add<T>(this ListenerFailureLog? failures, Counter<T> counter, T delta, KeyValuePair<string, object?> tag)
        where T : struct
    {
        try
        {
            counter.Add(delta, tag);
        }
        catch (Exception error) when (failures is not null)
        {
            failures.Report(error);
        }
    }

    /// <summary>As above, with a second tag.</summary>
    public static void Add<T>(this ListenerFailureLog? failures, Counter<T> counter, T delta, KeyValuePair<string, object?> tag, KeyValuePair<string, object?> second)
        where T : struct
    {
        try
        {
            counter.Add(delta, tag, second);
        }
        catch (Exception error) when (failures is not null)
        {
            failures.Report(error);
        }
    }

    /// <summary>Adds <paramref name="delta"/> to <paramref name="counter"/>; a listener that throws is reported to <paramref name="failures"/>.</summary>
    public static void Add<T>(this ListenerFailureLog? failures, UpDownCounter<T> counter, T delta, KeyValuePair<string, object?> tag)
        where T : struct
    {
        try
        {
            counter.Add(delta, tag);
        }
        catch (Exception error) when (failures is not null)
        {
            failures.Report(error);
        }
    }

    /// <summary>Records <paramref name="value"/> in <paramref name="histogram"/>; a listener that throws is reported to <paramref name="failures"/>.</summary>
    public static void Record<T>(this ListenerFailureLog? failures, Histogram<T> histogram, T value, KeyValuePair<string, object?> tag)
        where T : struct
    {
        try
        {
            histogram.Record(value, tag);
        }
        catch (Exception error) when (failures is not null)
        {
            failures.Report(error);
        }
    }
}
