using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Actors;

/// <summary>One queue's logger, log events and metric tag, shared by its router and workers (thread-safe).</summary>
/// <param name="queueName">The queue's name in logs (an unnamed queue's generated actor name).</param>
/// <param name="log">Where it logs.</param>
/// <param name="metricName">
/// Its name on metrics and spans: the name it was given, else one name all unnamed queues share — a generated name per
/// queue would be a time series per queue ever made, kept for ever by an exporter.
/// </param>
internal sealed class QueueTelemetry(string queueName, LogSink log, string? metricName = null)
{
    /// <summary>The metric and span name every unnamed queue shares.</summary>
    public const string Unnamed = "unnamed";

    public string QueueName { get; } = queueName;

    /// <summary>Its name on metrics and spans.</summary>
    public string MetricName { get; } = metricName ?? queueName;

    public KeyValuePair<string, object?> Tag { get; } = new(ActorQueueTelemetry.QueueNameTag, metricName ?? queueName);

    /// <summary>The name of the span a worker runs a traced item under.</summary>
    public string ProcessSpanName { get; } = $"process {metricName ?? queueName}";

    /// <summary>The caller's logger (Serilog or Microsoft.Extensions.Logging), else the actor system's default as configured at the time of the event.</summary>
    public LogSink Log { get; } = log;

    /// <summary>Where a metrics listener that throws on this queue's measurements is reported (its measurement dropped).</summary>
    public ListenerFailureLog ListenerFailures { get; } = new((error, dropped) => log.Write(LogLevel.Error, error,
        "A metrics listener of queue {QueueName} threw; its measurement was dropped ({Dropped} dropped so far; reported again at {Next})",
        queueName, dropped, dropped * 2));

    /// <summary>Whether anyone listens to the processing-time histogram.</summary>
    public bool RecordsProcessingTime => ActorQueueTelemetry.QueueProcessingTimeHistogram.Enabled;

    /// <summary>Tests: called each time a durable queue's report of an item it cannot read back has ended (the error handler heard, or a stop's timeout ended the wait).</summary>
    internal Action? UnreadableReportEnded { get; set; }

    public void RecordProcessingTime(TimeSpan elapsed) =>
        ListenerFailures.Record(ActorQueueTelemetry.QueueProcessingTimeHistogram, elapsed.TotalSeconds, Tag);

    /// <summary>
    /// Hands a worker's exception to the error handler; an error handler that throws is logged and swallowed. The wait
    /// for the handler ends when <paramref name="cancellationToken"/> (the run's, cancelled by a stop timeout) is
    /// cancelled, so an error handler that never completes cannot hold a stop or a disposal: the report goes on without
    /// the worker, whose item counts as failed all the same.
    /// </summary>
    public async Task ReportFailureAsync<T>(Func<Exception, T, Task>? errorHandler, Exception exception, T item, CancellationToken cancellationToken = default)
    {
        var report = HandleFailureAsync(errorHandler, exception, item);
        if (report.IsCompleted || !cancellationToken.CanBeCanceled)
        {
            await report.ConfigureAwait(false);
            return;
        }

        // Completed asynchronously: the token's callback runs on the thread that cancels it (a worker actor's).
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (cancellationToken.Register(static state => ((TaskCompletionSource)state!).TrySetResult(), cancelled).ConfigureAwait(false))
        {
            if (await Task.WhenAny(report, cancelled.Task).ConfigureAwait(false) != report)
            {
                Log.Write(LogLevel.Warning, null,
                    "Error handler of queue {QueueName} still taking item {Item} when its run was cancelled (stop timeout); the item counts as failed and the report goes on",
                    QueueName, item);
            }
        }
    }

    /// <summary>The error handler's report of one failed item (or the error log without one); never throws.</summary>
    private async Task HandleFailureAsync<T>(Func<Exception, T, Task>? errorHandler, Exception exception, T item)
    {
        if (errorHandler is null)
        {
            Log.Write(LogLevel.Error, exception, "Worker failed on item {Item} in queue {QueueName}", item, QueueName);
            return;
        }

        try
        {
            await errorHandler(exception, item).ConfigureAwait(false);
        }
        catch (Exception handlerException)
        {
            Log.Write(LogLevel.Error, handlerException, "Error handler threw for item {Item} in queue {QueueName} (worker error: {WorkerError}); swallowed",
                item, QueueName, UserText.MessageOf(exception));
        }
    }

    /// <summary>A disposal completed at its stop timeout while the error handler was still taking its discarded items.</summary>
    public void DiscardedStillReporting() =>
        Log.Write(LogLevel.Warning, null, "Queue {QueueName} disposed after its stop timeout while its error handler was still taking the items discarded; the reports go on",
            QueueName);

    /// <summary>
    /// A durable queue's try of an item failed and the item will be retried, with a batch's collector as the handler
    /// (<see cref="WorkerSpec{T}.LastTryOnly"/>): not the batch's failure, but never silent.
    /// </summary>
    public void TryRetried<T>(Exception exception, T item, int attempt) =>
        Log.Write(LogLevel.Warning, exception, "Try {Attempt} of item {Item} failed in durable queue {QueueName}; it will be retried: {Reason}",
            attempt, item, QueueName, UserText.MessageOf(exception));

    /// <summary>
    /// An item failed after a batch run without an error handler had returned, the queue's workers still that batch's (its
    /// collector has ended): an item the batch left queued, or one it never queued (a durable queue's item it cannot read
    /// back, found by a drain or a later get; an item put later and run by those workers). Before, the log said the batch
    /// had queued it (round 46).
    /// </summary>
    public void FailedAfterBatch<T>(Exception exception, T item) =>
        Log.Write(LogLevel.Error, exception, "Item {Item} of queue {QueueName} failed after the batch that last started its workers had returned, with no error handler: {Reason}",
            item, QueueName, UserText.MessageOf(exception));

    public void Started(int queued) => Log.Write(LogLevel.Information, null, "Queue {QueueName} started with {Count} items queued", QueueName, queued);

    public void Stopping(int inFlight, int queued) => Log.Write(LogLevel.Information, null, "Queue {QueueName} stopping: {InFlight} in flight, {Count} queued", QueueName, inFlight, queued);

    public void StopTimedOut(int busyWorkers) =>
        Log.Write(LogLevel.Warning, null, "Queue {QueueName} stop timeout: cancelling {Count} in-flight items; they go back to the head of the queue", QueueName, busyWorkers);

    /// <summary>A disposal stops waiting for <paramref name="busyWorkers"/> workers whose cancelled work has not returned.</summary>
    public void AbandonedWorkers(int busyWorkers) =>
        Log.Write(LogLevel.Warning, null,
            "Queue {QueueName} disposed with {Count} workers still running after their tokens were cancelled (do they honour them?): the queue stops without them, and the items of their runs not finished are reported as discarded",
            QueueName, busyWorkers);

    /// <summary>A durable queue's disposal stops waiting for <paramref name="busyWorkers"/> tries whose cancelled work has not returned.</summary>
    public void AbandonedTries(int busyWorkers) =>
        Log.Write(LogLevel.Warning, null,
            "Durable queue {QueueName} disposed with {Count} workers still running after their tokens were cancelled (do they honour them?): the queue stops without them, and their items, with no end journaled, run again when the queue is opened again",
            QueueName, busyWorkers);

    /// <summary>
    /// A durable queue's disposal stops waiting for its journal, which has not answered a write: <paramref name="unknown"/>
    /// changes with a caller (puts, a drain's removals, dead-letter changes) may have been stored, <paramref name="unwritten"/> were not.
    /// </summary>
    public void AbandonedWrite(int unknown, int unwritten) =>
        Log.Write(LogLevel.Warning, null,
            "Durable queue {QueueName} disposed while its journal had not answered a write: {Unknown} changes their callers were waiting for may have been stored (a put's item then runs when the queue is opened again), {Unwritten} were not; the queue keeps its name until the journal answers",
            QueueName, unknown, unwritten);

    public void Stopped(int queued) =>
        Log.Write(LogLevel.Information, null, "Queue {QueueName} stopped with {Count} items still queued (StartAsync resumes them, DrainAsync hands them back)", QueueName, queued);

    /// <summary><paramref name="count"/> items were handed back by a drain: logged and counted on the drained instrument.</summary>
    public void HandedBack(int count)
    {
        ListenerFailures.Add(ActorQueueTelemetry.QueueDrainedCounter, count, Tag);
        Log.Write(LogLevel.Information, null, "Queue {QueueName} handed back {Count} items", QueueName, count);
    }

    /// <summary>
    /// Reports the items still queued at disposal as failed, off the router's thread: each, in queue order, to
    /// <paramref name="errorHandler"/> as an <see cref="ObjectDisposedException"/> naming the queue; without a handler,
    /// one error names their count. The task completes when every report has.
    /// </summary>
    /// <param name="errorHandler">The last workers' error handler, if any.</param>
    /// <param name="items">The items discarded.</param>
    /// <param name="taken">
    /// Whether they are the items <c>GetAsync</c> callers still held when the router went (disposed, or its actor system
    /// ended): no <c>TaskDone</c> can count them any more.
    /// </param>
    public Task ReportDiscarded<T>(Func<Exception, T, Task>? errorHandler, List<T> items, bool taken = false)
    {
        ListenerFailures.Add(ActorQueueTelemetry.QueueDiscardedCounter, items.Count, Tag);
        var held = taken ? "taken by GetAsync and not marked done" : "still queued";
        if (errorHandler is null)
        {
            Log.Write(LogLevel.Error, null,
                "Queue {QueueName} disposed with {Count} items {Held}; they were not processed and there is no error handler to report them to{Hint}",
                QueueName, items.Count, held, taken ? "" : " (DrainAsync before disposing hands them back)");
            return Task.CompletedTask;
        }

        Log.Write(LogLevel.Warning, null, "Queue {QueueName} disposed with {Count} items {Held}; they were not processed and go to the error handler",
            QueueName, items.Count, held);
        var error = new ObjectDisposedException(QueueName, taken
            ? $"Queue {QueueName} ended (disposed, or its actor system terminated) while GetAsync's caller held this item; its TaskDone can no longer be counted"
            : $"Queue {QueueName} was disposed with this item still queued; it was not processed");
        return Task.Run(() => ReportEachAsync(errorHandler, error, items));
    }

    /// <summary>Hands each of <paramref name="items"/>, in order, to the error handler as failed with <paramref name="reason"/> (as <see cref="ReportFailureAsync{T}"/>, unbounded).</summary>
    public async Task ReportEachAsync<T>(Func<Exception, T, Task> errorHandler, Exception reason, IEnumerable<T> items)
    {
        foreach (var item in items)
        {
            await ReportFailureAsync(errorHandler, reason, item).ConfigureAwait(false);
        }
    }

    public void TaskDoneWithoutGet() => Log.Write(LogLevel.Error, null, "TaskDone reached queue {QueueName} with no item taken by GetAsync outstanding; ignored", QueueName);

    public void Backpressure(int capacity, TimeSpan timeout) =>
        Log.Write(LogLevel.Warning, null, "Queue {QueueName} is full ({Capacity} items): a put gave up after {Timeout}", QueueName, capacity, timeout);

    public void Heartbeat(int size, int capacity, in QueueMetrics metrics, int workers) =>
        Log.Write(LogLevel.Debug, null, "Queue {QueueName}: {Size}/{Capacity} queued, {InFlight} in flight, {Workers} workers, {Enqueued} enqueued, {Processed} processed",
            QueueName, size, capacity, metrics.InFlight, workers, metrics.Enqueued, metrics.Processed);

    /// <summary>A worker actor crashed: logged, and the item it had in hand goes to the error handler, off the router's thread.</summary>
    public void WorkerCrashed<T>(string worker, Exception cause, Func<Exception, T, Task>? errorHandler, T lostItem)
    {
        Log.Write(LogLevel.Error, cause, "Worker {Worker} of queue {QueueName} crashed; restarting it, its item is reported as an error", worker, QueueName);
        if (errorHandler is not null)
        {
            _ = Task.Run(() => ReportFailureAsync(errorHandler, cause, lostItem));
        }
    }
}
