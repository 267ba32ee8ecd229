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
    public async Task The_cluster_limiter_reports_permits_granted_wait_timeouts_evictions_and_tokens_and_its_leases_carry_their_permits()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var limiter = node.Limiter($"weighted-{_id}", maxRunning: 3, maxQueued: 1, whenFull: ActorQueue.Actors.QueueFullMode.EvictLowestPriorityNewest);
        var holder = await limiter.AcquireAsync(3, source: "holder").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(3, holder.Permits);
        await Until(ActorQueueTelemetry.LimiterPermitsGranted, 3);

        await Assert.ThrowsAsync<ActorQueue.Actors.ConcurrencyWaitTimeoutException>(() => limiter.AcquireAsync(1, waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        await Until(ActorQueueTelemetry.LimiterWaitTimeouts, 1); // refused at the gatekeeper: it may not wait
        var low = limiter.AcquireAsync(1, priority: 0).AsTask();
        await Until(ActorQueueTelemetry.LimiterWaiting, 1);
        var high = limiter.AcquireAsync(1, priority: 1, waitTimeout: TimeSpan.FromMilliseconds(300)).AsTask();
        await Assert.ThrowsAsync<ActorQueue.Actors.ConcurrencyLimitExceededException>(() => low.WaitAsync(ClusterNodes.StepTimeout));
        await Until(ActorQueueTelemetry.LimiterEvicted, 1);
        await Assert.ThrowsAsync<ActorQueue.Actors.ConcurrencyWaitTimeoutException>(() => high.WaitAsync(ClusterNodes.StepTimeout));
        await Until(ActorQueueTelemetry.LimiterWaitTimeouts, 2); // ran out on the caller's node
        holder.Dispose();

        var rates = node.ModelApiLimiter($"rated-{_id}", new ActorQueue.Actors.ModelApiLimiterOptions(2, 10, 1000, TimeSpan.FromHours(1)));
        var lease = await rates.AcquireAsync(250).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        lease.Settle(40);
        lease.Dispose();
        await Until(ActorQueueTelemetry.LimiterTokensGranted, 250);
        await Until(ActorQueueTelemetry.LimiterTokensSettled, 40);
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
