using ActorQueue.Runtime;
namespace ActorQueue.Actors;

/// <summary>Where a queue is in its lifecycle: <c>Idle → Processing → Stopping → Stopped</c>, and back to <c>Processing</c> on a restart.</summary>
public enum QueueStatus
{
    /// <summary>Created, not started: puts and gets throw <see cref="QueueStateException"/>.</summary>
    Idle,

    /// <summary>Accepting puts and handing items to workers and getters.</summary>
    Processing,

    /// <summary>Stopping: no new puts; workers finish their current item.</summary>
    Stopping,

    /// <summary>Stopped: no workers run; leftover items stay queued until a restart or a drain.</summary>
    Stopped,
}

/// <summary>Thrown when a queue is asked for something its status does not allow (a put on an idle queue, a join on a stopped queue with items left).</summary>
public class QueueStateException : InvalidOperationException
{
    /// <summary>Creates the exception with a default message.</summary>
    public QueueStateException()
        : base("The queue is not in a state that allows this operation.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public QueueStateException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public QueueStateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an operation refused in <paramref name="status"/>.</summary>
    /// <param name="message">The message.</param>
    /// <param name="status">The queue's status at the time.</param>
    public QueueStateException(string message, QueueStatus status)
        : base(message)
    {
        Status = status;
    }

    /// <summary>The queue's status when the operation was refused, when known.</summary>
    public QueueStatus? Status { get; }
}

/// <summary>
/// A queue's counters. <see cref="Enqueued"/> counts accepted items; <see cref="Processed"/> those finished
/// (the worker returned or threw, or <c>TaskDone</c> was called); <see cref="Errors"/> the subset whose worker
/// threw; <see cref="BackpressureEvents"/> the puts that timed out waiting for space. At any moment
/// <c>Enqueued == Processed + Drained + Discarded + Size + InFlight</c>.
/// </summary>
/// <param name="Enqueued">Items accepted.</param>
/// <param name="Processed">Items finished, successfully or not.</param>
/// <param name="Errors">Items whose worker threw.</param>
/// <param name="BackpressureEvents">Puts that gave up waiting for space.</param>
public readonly record struct QueueMetrics(long Enqueued, long Processed, long Errors, long BackpressureEvents)
{
    /// <summary>Items handed back to the caller by <c>DrainAsync</c>.</summary>
    public long Drained { get; init; }

    /// <summary>
    /// Items taken from the queue and not finished yet (with a worker, or with a <c>GetAsync</c> caller before
    /// <c>TaskDone</c>). 0 once the queue's router is gone (disposed, or its actor system ended): a queue in memory then
    /// counts them in <see cref="Discarded"/>; a durable queue counts them as queued again (its journal keeps them, and
    /// they run when the queue is opened again).
    /// </summary>
    public long InFlight { get; init; }

    /// <summary>
    /// Items still queued when the queue was disposed (or its actor system ended), and those still in flight then: not
    /// processed (or not counted as such), each reported to the error handler of the last <c>ProcessAsync</c> as an
    /// <see cref="ObjectDisposedException"/> (without one, an error log names their count). A durable queue discards
    /// nothing: its journal keeps them.
    /// </summary>
    public long Discarded { get; init; }
}

/// <summary>Configuration of a <see cref="WorkQueue{T}"/> (lionfuncs' <c>QueueConfig</c>); every value is validated when it is set.</summary>
public sealed record QueueConfig
{
    /// <summary>How many items the queue holds (at least 1). Default 100.</summary>
    public int QueueCapacity
    {
        get;
        init => field = value >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(QueueCapacity), value, $"QueueCapacity must be >= 1, got {value}");
    } = 100;

    /// <summary>
    /// How often a processing queue logs its depth and counters at debug level (greater than zero, at most 49.7 days,
    /// the longest timers wait). Default 1 s. Space is handed to waiting puts the moment it frees, not on this period.
    /// </summary>
    public TimeSpan CapacityRefreshTime
    {
        get;
        init => field = Timeouts.Period(value, nameof(CapacityRefreshTime));
    } = TimeSpan.FromSeconds(1);

    /// <summary>How many worker calls may run at once (at least 1), or <c>null</c> for as many as there are workers.</summary>
    public int? ConcurrencyLimit
    {
        get;
        init => field = value is null or >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(ConcurrencyLimit), value, $"ConcurrencyLimit must be >= 1 when set, got {value}");
    }

    /// <summary>
    /// The most queued items one worker takes at once (at least 1), or <c>null</c> for <c>actorqueue.queue.worker-batch</c>
    /// (32). 1 hands items out one by one, so no item waits in a busy worker's run while another worker is free.
    /// </summary>
    public int? WorkerBatch
    {
        get;
        init => field = value is null or >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(WorkerBatch), value, $"WorkerBatch must be >= 1 when set, got {value}");
    }

    /// <summary>
    /// Makes the queue durable (journaled on Akka.Persistence; priorities, delayed items, retries and dead letters), or
    /// <c>null</c> (default) for the in-memory queue. A durable <see cref="WorkQueue{T}"/> needs a name.
    /// </summary>
    public QueueDurability? Durability { get; init; }
}
