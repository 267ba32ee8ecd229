using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Queues;

public class QueueTelemetryTests : ActorQueueTestKit
{
    [Fact]
    public async Task Queue_instruments_count_items_errors_backpressure_and_depth_per_queue()
    {
        var name = $"metrics-{Guid.NewGuid():N}";
        var sums = new ConcurrentDictionary<string, double>();
        var timings = new ConcurrentQueue<double>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == ActorQueueTelemetry.Name)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var tag in tags)
            {
                if (tag.Key == ActorQueueTelemetry.QueueNameTag && Equals(tag.Value, name))
                {
                    if (instrument.Name == ActorQueueTelemetry.QueueProcessingTime)
                    {
                        timings.Enqueue(value);
                    }
                    else
                    {
                        sums.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value);
                    }
                }
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        listener.Start();

        await using var queue = new BoundedQueue<int>(maxSize: 2, timeout: TimeSpan.Zero, system: Sys, name: name);
        await queue.StartAsync();
        await queue.PutAsync(1);
        await queue.PutAsync(2);
        Assert.False(await queue.PutAsync(3));
        Assert.Equal(2d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueDepth));
        await queue.StartWorkersAsync(item => item == 2 ? throw new InvalidOperationException() : Task.CompletedTask, 1,
            errorHandler: (_, _) => Task.CompletedTask);
        await Within(queue.JoinAsync());

        Assert.Equal(2d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueEnqueued));
        Assert.Equal(2d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueProcessed));
        Assert.Equal(1d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueErrors));
        Assert.Equal(1d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueBackpressure));
        Assert.Equal(0d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueDepth));
        Assert.Single(timings);
    }

    /// <summary>
    /// A worker waits for the error handler's report of a failed item only until its run is cancelled (a stop timeout):
    /// a handler that never completes cannot hold the worker, so neither a stop nor a disposal; the report goes on.
    /// </summary>
    [Fact]
    public async Task A_failure_report_is_awaited_only_until_the_run_is_cancelled()
    {
        var telemetry = new QueueTelemetry("report", ActorQueue.Runtime.LogSink.ForMicrosoft(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handled = 0;
        using var run = new CancellationTokenSource();

        var report = telemetry.ReportFailureAsync<int>((_, _) =>
        {
            handled++;
            return never.Task;
        }, new InvalidOperationException("boom"), 1, run.Token);
        Assert.False(report.IsCompleted, "the handler has not returned");
        await run.CancelAsync();

        await report.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, handled);
        never.SetResult();
    }
}
