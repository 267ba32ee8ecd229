using System.Collections.Concurrent;
using System.Diagnostics;
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
        using var listener = Listen(name, sums, timings);

        await using var queue = new BoundedQueue<int>(maxSize: 2, timeout: TimeSpan.Zero, system: Sys, name: name);
        await queue.StartAsync();
        await queue.PutAsync(1);
        await queue.PutAsync(2);
        Assert.False(await queue.PutAsync(3));
        Assert.Equal(2d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueDepth));
        var measured = Stopwatch.StartNew(); // around the worker calls: a processing time in seconds is at most this
        await queue.StartWorkersAsync(item => item == 2 ? throw new InvalidOperationException() : Task.CompletedTask, 1,
            errorHandler: (_, _) => Task.CompletedTask);
        await Within(queue.JoinAsync());

        Assert.Equal(2d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueEnqueued));
        Assert.Equal(2d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueProcessed));
        Assert.Equal(1d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueErrors));
        Assert.Equal(1d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueBackpressure));
        Assert.Equal(0d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueDepth));
        Assert.InRange(Assert.Single(timings), 0d, measured.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Items a drain hands back and items a disposal discards (each reported to the error handler as failed) are counted
    /// on their own instruments, so a dashboard sees work that left a queue unprocessed.
    /// </summary>
    [Fact]
    public async Task Drained_and_discarded_items_are_counted_per_queue()
    {
        var name = $"metrics-{Guid.NewGuid():N}";
        var sums = new ConcurrentDictionary<string, double>();
        using var listener = Listen(name, sums, new ConcurrentQueue<double>());
        var queue = new BoundedQueue<int>(maxSize: 10, timeout: TimeSpan.Zero, system: Sys, name: name);
        await queue.StartAsync();
        for (var item = 1; item <= 3; item++)
        {
            await queue.PutAsync(item);
        }

        await queue.StopAsync();
        Assert.Equal([1, 2, 3], await queue.DrainAsync());
        await queue.StartAsync();
        await queue.PutAsync(4);
        await queue.PutAsync(5);
        await queue.DisposeAsync();

        Assert.Equal(2, queue.Metrics.Discarded);
        Assert.Equal(3d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueDrained));
        Assert.Equal(2d, sums.GetValueOrDefault(ActorQueueTelemetry.QueueDiscarded));
        Assert.Equal(queue.Metrics.Discarded, (long)sums.GetValueOrDefault(ActorQueueTelemetry.QueueDiscarded));
    }

    /// <summary>The library's meter and activity source carry its assembly's version, so an exporter can tell releases apart.</summary>
    [Fact]
    public void The_meter_and_the_activity_source_carry_the_librarys_version()
    {
        var version = typeof(ActorQueueTelemetry).Assembly.GetName().Version!;
        Assert.Equal($"{version.Major}.{version.Minor}.{version.Build}", ActorQueueTelemetry.Version);
        Assert.Equal(ActorQueueTelemetry.Version, ActorQueueTelemetry.Meter.Version);
        Assert.Equal(ActorQueueTelemetry.Version, ActorQueueTelemetry.Source.Version);
    }

    /// <summary>A started listener of ActorQueue's meter: every measurement tagged with queue <paramref name="name"/> summed by instrument, the processing times kept apart.</summary>
    private static MeterListener Listen(string name, ConcurrentDictionary<string, double> sums, ConcurrentQueue<double> timings)
    {
        var listener = new MeterListener
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
        return listener;
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
