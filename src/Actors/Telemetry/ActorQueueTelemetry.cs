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

    /// <summary>Instrument: permits granted (a grant of weight <c>n</c> adds <c>n</c>), per limiter.</summary>
    public const string LimiterPermitsGranted = "actorqueue.limiter.permits_granted";

    /// <summary>Instrument: callers whose wait timeout passed before a grant (or who would not wait), per limiter.</summary>
    public const string LimiterWaitTimeouts = "actorqueue.limiter.wait_timeouts";

    /// <summary>Instrument: waiters evicted from a full queue by a newcomer of higher priority, per limiter.</summary>
    public const string LimiterEvicted = "actorqueue.limiter.evicted";

    /// <summary>Instrument: how long granted callers waited, in seconds, per limiter (0 for an immediate grant).</summary>
    public const string LimiterWaitTime = "actorqueue.limiter.wait_time";

    /// <summary>Instrument: tokens granted by a limit with a tokens rate (each call's estimate), per limiter.</summary>
    public const string LimiterTokensGranted = "actorqueue.limiter.tokens_granted";

    /// <summary>Instrument: tokens calls reported with a settle (what they really used), per limiter.</summary>
    public const string LimiterTokensSettled = "actorqueue.limiter.tokens_settled";

    /// <summary>Instrument: seconds until a limit's next refill or window slide gives something back, per (unpartitioned) limiter with rates.</summary>
    public const string LimiterNextRefill = "actorqueue.limiter.next_refill";

    /// <summary>Instrument: callers turned away for any reason, per limiter, tagged with <see cref="RejectionReasonTag"/>.</summary>
    public const string LimiterRejections = "actorqueue.limiter.rejections";

    /// <summary>
    /// The tag that says why a caller was turned away: <c>queue_full</c>, <c>evicted</c>, <c>timed_out</c>,
    /// <c>would_wait</c> (a zero wait timeout, or a local <c>RateLimiter</c> adapter's refused <c>AttemptAcquire</c>),
    /// <c>exceeds_limit</c>, <c>key_failed</c> (a partitioned limiter's call whose key's <c>GetHashCode</c> or <c>Equals</c> threw on its
    /// actor's thread), <c>handler_failed</c> (a call failed because its handling threw where nothing foresaw it, such as a
    /// limit's clock that could not set a waiter's wake; the cause is in the log). Waiters failed by a limiter's disposal are not counted.
    /// </summary>
    public const string RejectionReasonTag = "actorqueue.rejection.reason";

    /// <summary>Instrument: items waiting in the queue now, per queue.</summary>
    public const string QueueDepth = "actorqueue.queue.depth";

    /// <summary>Instrument: items accepted, per queue.</summary>
    public const string QueueEnqueued = "actorqueue.queue.enqueued";

    /// <summary>Instrument: items finished (returned or threw), per queue.</summary>
    public const string QueueProcessed = "actorqueue.queue.processed";

    /// <summary>Instrument: items whose worker threw, per queue.</summary>
    public const string QueueErrors = "actorqueue.queue.errors";

    /// <summary>Instrument: puts that gave up waiting for space, per queue.</summary>
    public const string QueueBackpressure = "actorqueue.queue.backpressure";

    /// <summary>Instrument: items handed back by <c>DrainAsync</c> without being processed, per queue.</summary>
    public const string QueueDrained = "actorqueue.queue.drained";

    /// <summary>
    /// Instrument: items still queued when their queue was disposed (or put after it stopped), each reported to the error
    /// handler as failed instead of processed, per queue.
    /// </summary>
    public const string QueueDiscarded = "actorqueue.queue.discarded";

    /// <summary>Instrument: how long each successful worker call took, in seconds, per queue.</summary>
    public const string QueueProcessingTime = "actorqueue.queue.processing_time";

    /// <summary>Instrument: items of a distributed queue put back because their worker's node was lost, per queue.</summary>
    public const string QueueRedelivered = "actorqueue.queue.redelivered";

    /// <summary>Instrument: second results for an item of a distributed queue (it ran twice), per queue.</summary>
    public const string QueueDuplicates = "actorqueue.queue.duplicates";

    /// <summary>
    /// Instrument: items of a distributed queue withdrawn by their producer (<c>TryWithdrawAsync</c>, or a cancelled put),
    /// each ending withdrawn instead of processed, per queue; reported by the producer's node, as its metrics'
    /// <c>Withdrawn</c> counts them (a put withdrawn while it waited for space, never enqueued, included).
    /// </summary>
    public const string QueueWithdrawn = "actorqueue.queue.withdrawn";

    /// <summary>
    /// The version of the library's <see cref="ActivitySource"/> and <see cref="Meter"/>: the ActorQueue assembly's
    /// version (<c>major.minor.build</c>), so an exporter can tell which release recorded a measurement or span.
    /// </summary>
    public static string Version { get; } = typeof(ActorQueueTelemetry).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>The library's activity source, used when a limiter is given no tracer of its own.</summary>
    public static ActivitySource Source { get; } = Twice(() => new ActivitySource(Name, Version));

    /// <summary>The library's meter.</summary>
    public static Meter Meter { get; } = new(Name, Version);

    /// <summary>A meter disposed before any instrument was made on it: .NET publishes none of its instruments, so they record nothing.</summary>
    private static readonly Meter Unpublished = Disposed(new Meter(Name, Version));

    /// <summary>
    /// The bucket boundaries advised for the two duration histograms, in seconds, as OpenTelemetry's conventions and .NET's
    /// own instruments measure durations: an exporter's default boundaries (0 to 10,000, made for milliseconds) would put
    /// every wait under 5 s in one bucket. From 0 (an immediate grant) through 100 µs to 5 minutes.
    /// </summary>
    private static readonly InstrumentAdvice<double> DurationBuckets = new()
    {
        HistogramBucketBoundaries = [0, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    };

    internal static UpDownCounter<int> LimiterRunningCounter { get; } =
        Published(meter => meter.CreateUpDownCounter<int>(LimiterRunning, "{slot}", "Slots held now."));

    internal static UpDownCounter<int> LimiterWaitingCounter { get; } =
        Published(meter => meter.CreateUpDownCounter<int>(LimiterWaiting, "{caller}", "Callers waiting for a slot now."));

    internal static Counter<long> LimiterAcquiredCounter { get; } =
        Published(meter => meter.CreateCounter<long>(LimiterAcquired, "{slot}", "Slots granted."));

    internal static Counter<long> LimiterRejectedCounter { get; } =
        Published(meter => meter.CreateCounter<long>(LimiterRejected, "{caller}", "Callers rejected because max_queued was reached."));

    internal static Counter<long> LimiterPermitsGrantedCounter { get; } =
        Published(meter => meter.CreateCounter<long>(LimiterPermitsGranted, "{permit}", "Permits granted."));

    internal static Counter<long> LimiterWaitTimeoutsCounter { get; } =
        Published(meter => meter.CreateCounter<long>(LimiterWaitTimeouts, "{caller}", "Callers whose wait timed out."));

    internal static Counter<long> LimiterEvictedCounter { get; } =
        Published(meter => meter.CreateCounter<long>(LimiterEvicted, "{caller}", "Waiters evicted by a higher-priority newcomer."));

    internal static Histogram<double> LimiterWaitTimeHistogram { get; } =
        Published(meter => meter.CreateHistogram<double>(LimiterWaitTime, "s", "Time from asking for a slot to getting it.", advice: DurationBuckets));

    internal static UpDownCounter<int> QueueDepthCounter { get; } =
        Published(meter => meter.CreateUpDownCounter<int>(QueueDepth, "{item}", "Items waiting in the queue."));

    internal static Counter<long> QueueEnqueuedCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueEnqueued, "{item}", "Items accepted."));

    internal static Counter<long> QueueProcessedCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueProcessed, "{item}", "Items finished, successfully or not."));

    internal static Counter<long> QueueErrorsCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueErrors, "{item}", "Items whose worker threw."));

    internal static Counter<long> QueueBackpressureCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueBackpressure, "{put}", "Puts that timed out waiting for space."));

    internal static Counter<long> QueueRedeliveredCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueRedelivered, "{item}", "Items put back because their worker's node was lost."));

    internal static Counter<long> QueueWithdrawnCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueWithdrawn, "{item}", "Items withdrawn by their producer instead of processed."));

    internal static Counter<long> QueueDuplicatesCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueDuplicates, "{item}", "Second results for an item that already had one."));

    internal static Counter<long> QueueDrainedCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueDrained, "{item}", "Items handed back by DrainAsync without being processed."));

    internal static Counter<long> QueueDiscardedCounter { get; } =
        Published(meter => meter.CreateCounter<long>(QueueDiscarded, "{item}", "Items still queued at disposal, each reported to the error handler as failed."));

    internal static Histogram<double> QueueProcessingTimeHistogram { get; } =
        Published(meter => meter.CreateHistogram<double>(QueueProcessingTime, "s", "Time a worker call took.", advice: DurationBuckets));

    /// <summary>
    /// Makes one instrument with <paramref name="create"/> on <see cref="Meter"/>. .NET publishes an instrument to every
    /// started <see cref="MeterListener"/> inside the call that makes it and lets a throw from a listener's
    /// <see cref="MeterListener.InstrumentPublished"/> out, here out of this type's initialiser, which then failed every
    /// limiter, queue and span for the life of the process. So a publication that throws is tried once more (the
    /// listeners before the one that threw then see the instrument twice), and should it throw again the instrument is made
    /// on a meter nobody hears: it records nothing, and the library works on.
    /// </summary>
    internal static T Published<T>(Func<Meter, T> create)
        where T : Instrument
    {
        try
        {
            return Twice(() => create(Meter));
        }
        catch (Exception)
        {
            return create(Unpublished);
        }
    }

    /// <summary>
    /// <paramref name="make"/>, made again if it throws: a source or an instrument tells the application's listeners of
    /// itself as it is made (<see cref="ActivityListener.ShouldListenTo"/>, <see cref="MeterListener.InstrumentPublished"/>),
    /// and a listener's throw comes out of the call. A second throw is the caller's (an activity source has no quiet
    /// stand-in: a listener whose filter always throws on it still fails this type).
    /// </summary>
    private static T Twice<T>(Func<T> make)
    {
        try
        {
            return make();
        }
        catch (Exception)
        {
            return make();
        }
    }

    private static Meter Disposed(Meter meter)
    {
        meter.Dispose();
        return meter;
    }
}
