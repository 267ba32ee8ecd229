using System.Collections.Concurrent;
using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>A durable queue carries the producer's trace context from the put to the worker, as the in-memory queue does.</summary>
public sealed class DurableTraceTests : ActorQueueTestKit, IDisposable
{
    private const string Producer = "durable-test-producer";

    private readonly DurableStore _store;

    public DurableTraceTests()
    {
        _store = new DurableStore(Sys);
    }

    [Fact]
    public async Task A_traced_put_runs_under_a_consumer_span_that_is_a_child_of_the_producers_activity_even_on_its_retry()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource(Producer)
            .AddInMemoryExporter(spans).Build();
        using var producer = new ActivitySource(Producer);
        var name = DurableStore.UniqueName("traced");
        var seen = new ConcurrentQueue<(int Item, ActivityContext Context)>();
        var retry = new RetryPolicy { MaxAttempts = 2, InitialDelay = TimeSpan.Zero, Jitter = 0 };

        await using var queue = new BoundedQueue<int>(10, _store.Durability(retry: retry), name, system: Sys);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(item =>
        {
            seen.Enqueue((item, Activity.Current?.Context ?? default));
            return item == 1 && seen.Count(s => s.Item == 1) == 1 ? throw new InvalidOperationException("first try fails") : Task.CompletedTask;
        }, numWorkers: 1);

        var parents = new ActivityContext[2];
        for (var i = 0; i < parents.Length; i++)
        {
            using var put = producer.StartActivity($"put {i}", ActivityKind.Producer);
            parents[i] = put!.Context;
            Assert.True(await Within(queue.PutAsync(i)));
        }

        await Within(queue.JoinAsync());
        Assert.True(tracing.ForceFlush());
        var processed = spans.Snapshot().Where(s => s.DisplayName == "process " + name).ToList();
        Assert.Equal(3, processed.Count); // item 0 once, item 1 twice
        Assert.All(seen, run =>
        {
            var span = Assert.Single(processed, s => s.SpanId == run.Context.SpanId);
            Assert.Equal((parents[run.Item].TraceId, parents[run.Item].SpanId, ActivityKind.Consumer), (span.TraceId, span.ParentSpanId, span.Kind));
        });
    }

    [Fact]
    public async Task A_traced_put_with_a_priority_and_a_due_time_runs_under_a_child_of_the_producers_activity()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource(Producer)
            .AddInMemoryExporter(spans).Build();
        using var producer = new ActivitySource(Producer);
        var name = DurableStore.UniqueName("traced-priority");
        var seen = new TaskCompletionSource<ActivityContext>(TaskCreationOptions.RunContinuationsAsynchronously);

        await using var queue = new BoundedQueue<int>(10, _store.Durability(), name, system: Sys);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(_ =>
        {
            seen.TrySetResult(Activity.Current?.Context ?? default);
            return Task.CompletedTask;
        }, numWorkers: 1);

        ActivityContext parent;
        using (var put = producer.StartActivity("put", ActivityKind.Producer))
        {
            parent = put!.Context;
            Assert.True(await Within(queue.PutAsync(1, priority: 5, notBefore: DateTimeOffset.UtcNow)));
        }

        var context = await Within(seen.Task);
        await Within(queue.JoinAsync());
        Assert.True(tracing.ForceFlush());
        var span = Assert.Single(spans.Snapshot(), s => s.DisplayName == "process " + name);
        Assert.Equal((parent.TraceId, parent.SpanId, context.SpanId), (span.TraceId, span.ParentSpanId, span.SpanId));
    }

    [Fact]
    public async Task An_untraced_put_runs_under_no_span()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddInMemoryExporter(spans).Build();
        var name = DurableStore.UniqueName("untraced");
        var seen = new TaskCompletionSource<Activity?>(TaskCreationOptions.RunContinuationsAsynchronously);

        await using var queue = new BoundedQueue<int>(10, _store.Durability(), name, system: Sys);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(_ =>
        {
            seen.TrySetResult(Activity.Current);
            return Task.CompletedTask;
        }, numWorkers: 1);
        Activity.Current = null;
        Assert.True(await Within(queue.PutAsync(1)));

        Assert.Null(await Within(seen.Task));
        await Within(queue.JoinAsync());
        Assert.True(tracing.ForceFlush());
        Assert.DoesNotContain(spans.Snapshot(), s => s.DisplayName == "process " + name);
    }

    /// <summary>
    /// A getter of a traced durable item records a <c>receive</c> span linked to the producer's, under the taker's
    /// activity, as the in-memory queue's getters do (QueueTracePathsTests). Failed before: a durable getter recorded no span.
    /// </summary>
    [Fact]
    public async Task A_getter_of_a_traced_item_records_a_receive_span_linked_to_the_producers()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource(Producer)
            .AddInMemoryExporter(spans).Build();
        using var producer = new ActivitySource(Producer);
        var name = DurableStore.UniqueName("traced-get");
        await using var queue = new BoundedQueue<int>(10, _store.Durability(), name, system: Sys);
        await Within(queue.StartAsync());
        ActivityContext put;
        using (var putting = producer.StartActivity("put", ActivityKind.Producer))
        {
            put = putting!.Context;
            Assert.True(await Within(queue.PutAsync(1)));
        }

        ActivityContext taking;
        using (var taker = producer.StartActivity("take", ActivityKind.Consumer))
        {
            taking = taker!.Context;
            Assert.Equal(1, await Within(queue.GetAsync()));
        }

        queue.TaskDone();
        await Within(queue.JoinAsync());
        Assert.True(tracing.ForceFlush());
        var received = Assert.Single(spans.Snapshot(), s => s.DisplayName == "receive " + name);
        Assert.Equal((put.TraceId, put.SpanId), (Assert.Single(received.Links).Context.TraceId, Assert.Single(received.Links).Context.SpanId));
        Assert.Equal((taking.TraceId, taking.SpanId, ActivityKind.Consumer), (received.TraceId, received.ParentSpanId, received.Kind));
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }
}
