using System.Collections.Concurrent;
using System.Diagnostics;
using ActorQueue.Cluster;
using ActorQueue.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace ActorQueue.Tests.Cluster;

/// <summary>The producer's trace context crosses the cluster with each item, as the OpenTelemetry SDK exports it.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedQueueTracingTests
{
    private const string Producer = "test-cluster-producer";

    [Fact]
    public async Task An_item_runs_on_another_node_under_a_consumer_span_that_is_a_child_of_the_producers_activity()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource(Producer).AddInMemoryExporter(spans).Build();
        using var source = new ActivitySource(Producer);
        await using var cluster = await ClusterNodes.StartAsync(2);
        var current = new ConcurrentDictionary<int, (string? TraceId, string? SpanId, string? ParentId, string? State)>();
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[1]).RegisterWorkers<int, int>("traced-cluster", (item, _) =>
        {
            var activity = Activity.Current;
            current[item] = (activity?.TraceId.ToHexString(), activity?.SpanId.ToHexString(), activity?.ParentSpanId.ToHexString(), activity?.TraceStateString);
            return Task.FromResult(item);
        });
        await using var queue = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<int, int>("traced-cluster", maxSize: 10);

        var parents = new ActivityContext[3];
        var submitted = new List<DistributedItem<int>>();
        for (var i = 0; i < parents.Length; i++)
        {
            using var put = source.StartActivity($"put {i}", ActivityKind.Producer)!;
            put.TraceStateString = $"vendor={i}";
            parents[i] = put.Context;
            submitted.Add((await queue.SubmitAsync(i, Timeout.InfiniteTimeSpan).WaitAsync(ClusterNodes.StepTimeout))!);
        }

        Activity.Current = null;
        var untraced = (await queue.SubmitAsync(99, Timeout.InfiniteTimeSpan).WaitAsync(ClusterNodes.StepTimeout))!;
        await Task.WhenAll(submitted.Select(item => item.Completion).Append(untraced.Completion)).WaitAsync(ClusterNodes.StepTimeout);

        Assert.True(tracing.ForceFlush());
        for (var i = 0; i < parents.Length; i++)
        {
            var span = Assert.Single(spans.Snapshot(), s => s.DisplayName == "process traced-cluster" && s.ParentSpanId == parents[i].SpanId);
            Assert.Equal(parents[i].TraceId, span.TraceId);
            Assert.Equal(ActivityKind.Consumer, span.Kind);
            Assert.Equal("traced-cluster", span.GetTagItem(ActorQueueTelemetry.QueueNameTag));
            Assert.Equal(
                (parents[i].TraceId.ToHexString(), span.SpanId.ToHexString(), parents[i].SpanId.ToHexString(), $"vendor={i}"),
                current[i]); // the handler ran with the item's span as Activity.Current, tracestate included
        }

        Assert.Equal((null, null, null, null), current[99]); // an untraced put runs under no span
        Assert.Equal(parents.Length, spans.Snapshot().Count(s => s.DisplayName == "process traced-cluster"));
    }
}
