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
