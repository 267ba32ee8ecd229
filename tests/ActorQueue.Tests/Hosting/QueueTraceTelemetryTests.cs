using System.Collections.Concurrent;
using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace ActorQueue.Tests.Hosting;

/// <summary>The producer's trace context travels with each item to the worker that runs it, as the SDK exports it.</summary>
public class QueueTraceTelemetryTests : ActorQueueTestKit
{
    private const string Producer = "test-producer";

    [Fact]
    public async Task Each_item_runs_under_a_consumer_span_that_is_a_child_of_the_producers_activity_at_put()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource(Producer)
            .AddInMemoryExporter(spans).Build();
        using var producer = new ActivitySource(Producer);
        var current = new ConcurrentDictionary<int, Activity?>();

        await using var queue = new WorkQueue<int>(maxSize: 10, system: Sys, name: "traced-queue");
        await queue.StartAsync();
        await queue.ProcessAsync(item =>
        {
            current[item] = Activity.Current;
            return Task.CompletedTask;
        });

        var parents = new ActivityContext[3];
        for (var i = 0; i < parents.Length; i++)
        {
            using var put = producer.StartActivity($"put {i}", ActivityKind.Producer);
            parents[i] = put!.Context;
            Assert.True(await queue.PutAsync(i));
        }

        await Within(queue.JoinAsync());
        Assert.True(tracing.ForceFlush());
        for (var i = 0; i < parents.Length; i++)
        {
            var span = Assert.Single(spans.Snapshot(), s => s.DisplayName == "process traced-queue" && s.ParentSpanId == parents[i].SpanId);
            Assert.Equal(parents[i].TraceId, span.TraceId);
            Assert.Equal(ActivityKind.Consumer, span.Kind);
            Assert.Equal("traced-queue", span.GetTagItem(ActorQueueTelemetry.QueueNameTag));
            var seen = current[i];
            Assert.NotNull(seen);
            Assert.Equal(span.SpanId, seen.SpanId);
            Assert.Equal(parents[i].TraceId, seen.TraceId);
        }
    }

    [Fact]
    public async Task An_item_put_outside_any_activity_runs_under_no_span()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddInMemoryExporter(spans).Build();
        var seen = new TaskCompletionSource<Activity?>(TaskCreationOptions.RunContinuationsAsynchronously);

        await using var queue = new WorkQueue<int>(maxSize: 10, system: Sys, name: "untraced-queue");
        await queue.StartAsync();
        await queue.ProcessAsync(_ =>
        {
            seen.TrySetResult(Activity.Current);
            return Task.CompletedTask;
        });
        Activity.Current = null;
        Assert.True(await queue.PutAsync(1));

        Assert.Null(await Within(seen.Task));
        await Within(queue.JoinAsync());
        Assert.True(tracing.ForceFlush());
        Assert.DoesNotContain(spans.Snapshot(), s => s.DisplayName == "process untraced-queue");
    }
}
