using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>
/// The router's counts as the facade reads them without a message: a mirror the router publishes after every change
/// that a reader could observe, and always before it answers a caller.
/// </summary>
/// <remarks>
/// A shared-memory channel with one writer, the router actor (<see cref="Publish"/>), and any number of readers, the
/// facade's callers. Each field is written with a volatile write and read whole; fields are not read as one snapshot
/// (that is <c>QueueProtocol.GetStatus</c>'s job). The router publishes before it completes the caller's task (a full
/// fence), so a caller whose put, stop or get has returned reads counts that include it. Items put with a credit and
/// not yet taken in live in the inbox, not here: <see cref="SizeWith{TItem}"/> and <see cref="MetricsWith{TItem}"/>
/// add them, reading the inbox first (see <see cref="PutInbox{T}"/>, ordering 2).
/// </remarks>
[DebuggerDisplay("{Status}, {Size} queued, {WorkerCount} workers")]
internal sealed class QueueCounters
{
    private volatile int _status;
    private volatile int _size;
    private volatile int _workerCount;
    private long _enqueued;
    private long _processed;
    private long _errors;
    private long _backpressure;
    private long _drained;
    private long _discarded;
    private long _inFlight;

    public QueueStatus Status => (QueueStatus)_status;

    /// <summary>Items in the router's buffer, without those still in the inbox.</summary>
    public int Size => _size;

    public int WorkerCount => _workerCount;

    /// <summary>The router's counters, without the items still in the inbox.</summary>
    public QueueMetrics Metrics => new(
        Volatile.Read(ref _enqueued), Volatile.Read(ref _processed), Volatile.Read(ref _errors), Volatile.Read(ref _backpressure))
    {
        Drained = Volatile.Read(ref _drained),
        Discarded = Volatile.Read(ref _discarded),
        InFlight = Volatile.Read(ref _inFlight),
    };

    /// <summary>
    /// Items waiting: the router's buffer plus the items in <paramref name="inbox"/>. The inbox is read first: the
    /// router publishes the items it took in before it lowers the inbox's count, so an accepted item is never missed.
    /// </summary>
    public int SizeWith<TItem>(PutInbox<TItem> inbox)
    {
        var pending = inbox.Pending;
        return pending + Size;
    }

    /// <summary>The counters with the items in <paramref name="inbox"/> counted as enqueued (the inbox read first, as in <see cref="SizeWith{TItem}"/>).</summary>
    public QueueMetrics MetricsWith<TItem>(PutInbox<TItem> inbox)
    {
        var pending = inbox.Pending;
        var metrics = Metrics;
        return metrics with { Enqueued = metrics.Enqueued + pending };
    }

    /// <summary>
    /// Items a put added to the inbox after the router was gone: accepted and discarded. Called only then, when the
    /// router, the one other writer, publishes no more.
    /// </summary>
    public void CountDiscardedPuts(int count)
    {
        Interlocked.Add(ref _enqueued, count);
        Interlocked.Add(ref _discarded, count);
    }

    /// <summary>Called by the router only (one writer), so plain volatile writes suffice; each field is read whole.</summary>
    public void Publish(QueueStatus status, int size, int workerCount, in QueueMetrics metrics)
    {
        Volatile.Write(ref _enqueued, metrics.Enqueued);
        Volatile.Write(ref _processed, metrics.Processed);
        Volatile.Write(ref _errors, metrics.Errors);
        Volatile.Write(ref _backpressure, metrics.BackpressureEvents);
        Volatile.Write(ref _drained, metrics.Drained);
        Volatile.Write(ref _discarded, metrics.Discarded);
        Volatile.Write(ref _inFlight, metrics.InFlight);
        _workerCount = workerCount;
        _size = size;
        _status = (int)status;
    }
}
