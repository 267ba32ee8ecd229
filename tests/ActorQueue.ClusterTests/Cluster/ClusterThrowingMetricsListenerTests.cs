using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// As <c>ThrowingMetricsListenerTests</c>, for a cluster limiter: a metrics listener is the application's code, run
/// inside the gatekeeper's or the node agent's message when they record; a listener that throws there must cost a
/// measurement, never a caller.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterThrowingMetricsListenerTests
{
    private readonly string _id = Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task A_listener_that_throws_on_a_wait_timeout_still_fails_the_caller()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter($"throwing-timeout-{_id}", maxRunning: 1);
        var holder = await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        using var listener = ThrowingOn(ActorQueueTelemetry.LimiterWaitTimeouts, _id);

        // The wait runs out on the caller's node (its agent's timer): counting the timeout there throws.
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(
            () => limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(200)).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        holder.Dispose();
        (await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
    }

    /// <summary>A listener whose callback throws for the measurements of <paramref name="instrumentName"/> tagged with a limiter whose name ends with <paramref name="id"/>.</summary>
    private static MeterListener ThrowingOn(string instrumentName, string id) =>
        ThrowingMeterListener.Start(instrumentName, ActorQueueTelemetry.LimiterNameTag, name => name is string limiter && limiter.EndsWith(id, StringComparison.Ordinal));
}
