using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ActorQueue.Telemetry;

/// <summary>
/// The names of ActorQueue's traces and metrics, and the library's own <see cref="ActivitySource"/> and
/// <see cref="Meter"/>. Subscribe to the source and meter named <see cref="Name"/> to observe the scheduler.
/// </summary>
public static class ActorQueueTelemetry
{
    /// <summary>The name of the library's <see cref="ActivitySource"/> and <see cref="Meter"/>.</summary>
    public const string Name = "ActorQueue";

    /// <summary>The tag that names the limiter on limiter metrics.</summary>
    public const string LimiterNameTag = "actorqueue.limiter.name";

    /// <summary>The tag that names the queue on queue metrics.</summary>
    public const string QueueNameTag = "actorqueue.queue.name";

    /// <summary>Instrument: slots held now, per limiter.</summary>
    public const string LimiterRunning = "actorqueue.limiter.running";

    /// <summary>Instrument: callers waiting now, per limiter.</summary>
    public const string LimiterWaiting = "actorqueue.limiter.waiting";

    /// <summary>Instrument: slots granted, per limiter.</summary>
    public const string LimiterAcquired = "actorqueue.limiter.acquired";

    /// <summary>Instrument: callers turned away because the wait queue was full, per limiter.</summary>
    public const string LimiterRejected = "actorqueue.limiter.rejected";

    /// <summary>Instrument: how long granted callers waited, in milliseconds, per limiter (0 for an immediate grant).</summary>
    public const string LimiterWaitTime = "actorqueue.limiter.wait_time";

    /// <summary>The library's activity source, used when a limiter is given no tracer of its own.</summary>
    public static ActivitySource Source { get; } = new(Name);

    /// <summary>The library's meter.</summary>
    public static Meter Meter { get; } = new(Name);

    internal static UpDownCounter<int> LimiterRunningCounter { get; } =
        Meter.CreateUpDownCounter<int>(LimiterRunning, "{slot}", "Slots held now.");

    internal static UpDownCounter<int> LimiterWaitingCounter { get; } =
        Meter.CreateUpDownCounter<int>(LimiterWaiting, "{caller}", "Callers waiting for a slot now.");

    internal static Counter<long> LimiterAcquiredCounter { get; } =
        Meter.CreateCounter<long>(LimiterAcquired, "{slot}", "Slots granted.");

    internal static Counter<long> LimiterRejectedCounter { get; } =
        Meter.CreateCounter<long>(LimiterRejected, "{caller}", "Callers rejected because max_queued was reached.");

    internal static Histogram<double> LimiterWaitTimeHistogram { get; } =
        Meter.CreateHistogram<double>(LimiterWaitTime, "ms", "Time from asking for a slot to getting it.");
}
