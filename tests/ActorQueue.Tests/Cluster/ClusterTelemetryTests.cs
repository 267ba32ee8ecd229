using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorQueue.Cluster;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Cluster;

/// <summary>The cluster gatekeeper, router and producer report on ActorQueue's meter under the same instrument names as the local ones.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterTelemetryTests : IDisposable
{
    private readonly string _id = Guid.NewGuid().ToString("N")[..8];
    private readonly ConcurrentDictionary<string, long> _sums = new();
    private readonly MeterListener _listener = new();

    public ClusterTelemetryTests()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ActorQueueTelemetry.Name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Value is string name && name.EndsWith(_id, StringComparison.Ordinal))
            {
                _sums.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value);
            }
        }
    }

    private long Sum(string instrument) => _sums.GetValueOrDefault(instrument);

    private Task Until(string instrument, long value) =>
        Poll.UntilAsync(() => Sum(instrument) == value, ClusterNodes.StepTimeout, () => $"{instrument} is {value} (it is {Sum(instrument)})");

    [Fact]
    public async Task The_cluster_limiter_reports_running_waiting_and_grants()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter($"metered-{_id}", maxRunning: 1);
        var holder = await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiter = limiter.AcquireAsync().AsTask();
        await Until(ActorQueueTelemetry.LimiterWaiting, 1);
        Assert.Equal((1L, 1L), (Sum(ActorQueueTelemetry.LimiterRunning), Sum(ActorQueueTelemetry.LimiterAcquired)));

        holder.Dispose();
        (await waiter.WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        await Until(ActorQueueTelemetry.LimiterRunning, 0);
        Assert.Equal((0L, 2L), (Sum(ActorQueueTelemetry.LimiterWaiting), Sum(ActorQueueTelemetry.LimiterAcquired)));
    }

    [Fact]
    public async Task The_distributed_queue_reports_depth_enqueued_backpressure_processed_and_errors()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var name = $"metered-{_id}";
        await using var queue = node.WorkQueue<string, int>(name, maxSize: 1);
        var accepted = await queue.SubmitAsync("boom", TimeSpan.Zero);
        Assert.NotNull(accepted);
        Assert.Null(await queue.SubmitAsync("turned away", TimeSpan.Zero));
        await Until(ActorQueueTelemetry.QueueBackpressure, 1);
        Assert.Equal((1L, 1L), (Sum(ActorQueueTelemetry.QueueDepth), Sum(ActorQueueTelemetry.QueueEnqueued)));

        await using var workers = node.RegisterWorkers<string, int>(name, (item, _) => throw new InvalidOperationException(item));
        await accepted.Completion.WaitAsync(ClusterNodes.StepTimeout);
        await Until(ActorQueueTelemetry.QueueErrors, 1);
        Assert.Equal(1L, Sum(ActorQueueTelemetry.QueueProcessed)); // the producer counts processed before errors

        // The router publishes its depth after the message that dispatched the item, which can trail the result.
        await Until(ActorQueueTelemetry.QueueDepth, 0);
    }
}
