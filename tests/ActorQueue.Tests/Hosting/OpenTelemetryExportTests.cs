using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace ActorQueue.Tests.Hosting;

/// <summary>What an application on the OpenTelemetry SDK sees with <c>AddSource("ActorQueue")</c> and <c>AddMeter("ActorQueue")</c>.</summary>
public class OpenTelemetryExportTests : ActorQueueTestKit
{
    [Fact]
    public async Task The_SDK_exports_a_limiter_wait_span_under_the_callers_activity_and_a_queues_counters()
    {
        var spans = new ExportedSpans(); // other tests' spans end on their threads while this one reads
        var metrics = new List<Metric>();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource("test").AddInMemoryExporter(spans).Build();
        using var metering = Sdk.CreateMeterProviderBuilder().AddMeter(ActorQueueTelemetry.Name).AddInMemoryExporter(metrics).Build();
        using var caller = new ActivitySource("test");

        await using var limiter = new ConcurrencyLimiter(1, name: "otel-limiter", system: Sys);
        var held = await limiter.AcquireAsync("first");
        Task<ConcurrencyLease> waiting;
        ActivityContext parent;
        using (var request = caller.StartActivity("request"))
        {
            parent = request!.Context;
            waiting = limiter.AcquireAsync("second").AsTask();
        }

        await Eventually(() => limiter.WaitingCount == 1, "the second caller waits");
        held.Dispose();
        (await Within(waiting)).Dispose();

        await using var queue = new WorkQueue<int>(maxSize: 10, system: Sys, name: "otel-queue");
        await Within(queue.BatchProcessAsync([1, 2, 3], _ => Task.CompletedTask));

        Assert.True(tracing.ForceFlush());
        Assert.True(metering.ForceFlush());
        var wait = Assert.Single(spans.Snapshot(), span => span.DisplayName == "waiting for otel-limiter concurrency");
        Assert.Equal(parent.TraceId, wait.TraceId);
        Assert.Equal(parent.SpanId, wait.ParentSpanId);
        Assert.Equal(3, Sum(metrics, ActorQueueTelemetry.QueueProcessed, "otel-queue"));
        Assert.Equal(3, Sum(metrics, ActorQueueTelemetry.QueueEnqueued, "otel-queue"));
    }

    /// <summary>The exported total of a counter for one queue (other tests' queues report to the same meter).</summary>
    private static long Sum(List<Metric> metrics, string instrument, string queueName)
    {
        long sum = 0;
        foreach (var metric in metrics.Where(m => m.Name == instrument))
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                foreach (var tag in point.Tags)
                {
                    if (tag.Key == ActorQueueTelemetry.QueueNameTag && Equals(tag.Value, queueName))
                    {
                        sum = Math.Max(sum, point.GetSumLong()); // cumulative: the latest export holds the total
                    }
                }
            }
        }

        return sum;
    }
}
