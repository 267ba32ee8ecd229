using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// The producer's trace context on the put paths beside the facade's single put: a batch, an actor's
/// <see cref="QueueProtocol.Put"/>, and the item a <c>GetAsync</c> taker receives — as the OpenTelemetry SDK exports it.
/// </summary>
public class QueueTracePathsTests : ActorQueueTestKit
{
    private const string Producer = "test-batch-producer";

    private static ActivityContext SomeContext() =>
        new(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);

    [Fact]
    public async Task A_batch_carries_the_producers_context_to_every_item()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource(Producer).AddInMemoryExporter(spans).Build();
        using var producer = new ActivitySource(Producer);
        await using var queue = new WorkQueue<int>(maxSize: 4, system: Sys, name: "traced-batch");

        ActivityContext batch;
        using (var span = producer.StartActivity("batch", ActivityKind.Producer))
        {
            batch = span!.Context;
            await Within(queue.BatchProcessAsync(Enumerable.Range(0, 10), _ => Task.CompletedTask, numWorkers: 2));
        }

        Assert.True(tracing.ForceFlush());
        var processed = spans.Snapshot().Where(s => s.DisplayName == "process traced-batch").ToList();
        Assert.Equal(10, processed.Count);
        Assert.All(processed, s => Assert.Equal((batch.TraceId, batch.SpanId), (s.TraceId, s.ParentSpanId)));
    }

    [Fact]
    public async Task An_actors_put_carries_the_context_on_its_message_to_the_worker()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddInMemoryExporter(spans).Build();
        await using var queue = new WorkQueue<int>(maxSize: 4, system: Sys, name: "traced-actor-put");
        var seen = new TaskCompletionSource<Activity?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.ProcessAsync(_ =>
        {
            seen.TrySetResult(Activity.Current);
            return Task.CompletedTask;
        });
        var sender = SomeContext();

        queue.Router.Tell(new QueueProtocol.Put(7, CorrelationId: 1) { TraceContext = sender }, TestActor);

        ExpectMsg<QueueProtocol.Accepted>();
        var current = await Within(seen.Task);
        await Within(queue.JoinAsync());
        Assert.True(tracing.ForceFlush());
        var span = Assert.Single(spans.Snapshot(), s => s.DisplayName == "process traced-actor-put");
        Assert.Equal((sender.TraceId, sender.SpanId), (span.TraceId, span.ParentSpanId));
        Assert.Equal(span.SpanId, current?.SpanId);
    }

    [Fact]
    public async Task A_taker_records_a_receive_span_in_its_own_trace_linked_to_the_producer()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource(Producer).AddInMemoryExporter(spans).Build();
        using var source = new ActivitySource(Producer);
        await using var queue = new BoundedQueue<int>(maxSize: 4, system: Sys, name: "traced-get");
        await queue.StartAsync();
        ActivityContext put;
        using (var producer = source.StartActivity("put", ActivityKind.Producer))
        {
            put = producer!.Context;
            Assert.True(await queue.PutAsync(1));
            Assert.True(await queue.PutAsync(2));
        }

        ActivityContext taking;
        using (var taker = source.StartActivity("take", ActivityKind.Consumer))
        {
            taking = taker!.Context;
            Assert.Equal(1, await Within(queue.GetAsync()));
            Assert.Same(taker, Activity.Current);
        }

        Activity.Current = null;
        Assert.Equal(2, await Within(queue.GetAsync())); // a taker outside any activity: in the producer's trace
        queue.TaskDone();
        queue.TaskDone();

        Assert.True(tracing.ForceFlush());
        var received = spans.Snapshot().Where(s => s.DisplayName == "receive traced-get").ToList();
        Assert.Equal(2, received.Count);
        Assert.All(received, s => Assert.Equal(put, Assert.Single(s.Links).Context));
        Assert.All(received, s => Assert.Equal(ActivityKind.Consumer, s.Kind));
        Assert.Single(received, s => (s.TraceId, s.ParentSpanId) == (taking.TraceId, taking.SpanId));
        Assert.Single(received, s => (s.TraceId, s.ParentSpanId) == (put.TraceId, put.SpanId));
    }

    [Fact]
    public async Task A_taker_of_an_untraced_item_records_nothing()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddInMemoryExporter(spans).Build();
        await using var queue = new BoundedQueue<int>(maxSize: 4, system: Sys, name: "untraced-get");
        await queue.StartAsync();
        Activity.Current = null;
        Assert.True(await queue.PutAsync(1));

        Assert.Equal(1, await Within(queue.GetAsync()));
        queue.TaskDone();

        Assert.True(tracing.ForceFlush());
        Assert.DoesNotContain(spans.Snapshot(), s => s.DisplayName == "receive untraced-get");
    }
}
