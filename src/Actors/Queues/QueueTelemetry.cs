using ActorQueue.Telemetry;
using Serilog;

namespace ActorQueue.Actors;

/// <summary>One queue's logger and metric tag, shared by its router and workers (thread-safe).</summary>
internal sealed class QueueTelemetry(string queueName, ILogger? logger)
{
    public string QueueName { get; } = queueName;

    public KeyValuePair<string, object?> Tag { get; } = new(ActorQueueTelemetry.QueueNameTag, queueName);

    /// <summary>The caller's logger, else Serilog's static logger as configured at the time of the event.</summary>
    public ILogger Log => (logger ?? Serilog.Log.Logger).ForContext("Queue", QueueName);

    /// <summary>Whether anyone listens to the processing-time histogram.</summary>
    public bool RecordsProcessingTime => ActorQueueTelemetry.QueueProcessingTimeHistogram.Enabled;

    public void RecordProcessingTime(TimeSpan elapsed) =>
        ActorQueueTelemetry.QueueProcessingTimeHistogram.Record(elapsed.TotalMilliseconds, Tag);

    /// <summary>Hands a worker's exception to the error handler; an error handler that throws is logged and swallowed.</summary>
    public async Task ReportFailureAsync<T>(Func<Exception, T, Task>? errorHandler, Exception exception, T item)
    {
        if (errorHandler is null)
        {
            Log.Error(exception, "Worker failed on item {Item} in queue {QueueName}", item, QueueName);
            return;
        }

        try
        {
            await errorHandler(exception, item).ConfigureAwait(false);
        }
        catch (Exception handlerException)
        {
            Log.Error(handlerException, "Error handler threw for item {Item} in queue {QueueName} (worker error: {WorkerError}); swallowed",
                item, QueueName, exception.Message);
        }
    }
}

/// <summary>What the router publishes after every message, for synchronous reads by the facade.</summary>
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
    private long _inFlight;

    public QueueStatus Status => (QueueStatus)_status;

    public int Size => _size;

    public int WorkerCount => _workerCount;

    public QueueMetrics Metrics => new(
        Volatile.Read(ref _enqueued), Volatile.Read(ref _processed), Volatile.Read(ref _errors), Volatile.Read(ref _backpressure))
    {
        Drained = Volatile.Read(ref _drained),
        InFlight = Volatile.Read(ref _inFlight),
    };

    /// <summary>Called by the router only (one writer), so plain volatile writes suffice; each field is read whole.</summary>
    public void Publish(QueueStatus status, int size, int workerCount, in QueueMetrics metrics)
    {
        Volatile.Write(ref _enqueued, metrics.Enqueued);
        Volatile.Write(ref _processed, metrics.Processed);
        Volatile.Write(ref _errors, metrics.Errors);
        Volatile.Write(ref _backpressure, metrics.BackpressureEvents);
        Volatile.Write(ref _drained, metrics.Drained);
        Volatile.Write(ref _inFlight, metrics.InFlight);
        _workerCount = workerCount;
        _size = size;
        _status = (int)status;
    }
}
