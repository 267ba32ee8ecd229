using ActorQueue.Actors;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// The cluster-wide bound on waiters (<c>maxQueued</c>) holds for a node's first request too. A node's agent that no
/// gatekeeper incarnation has heard of yet (its limiter made after the gatekeeper started, or a partition new on that
/// node) reaches the gatekeeper through its announcement; its requests were never accepted by anyone, so they must meet
/// the bound like any newcomer, not join the queue past it as waits a previous incarnation accepted do.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterQueueBoundTests
{
    [Fact]
    public async Task A_full_queue_refuses_the_first_request_of_a_limiter_made_later_on_another_node()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var first = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter("bounded", maxRunning: 1, maxQueued: 0);
        using var held = await first.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var late = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("bounded", maxRunning: 1, maxQueued: 0);

        var refused = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => late.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout));

        Assert.Contains("max_queued (0)", refused.Message, StringComparison.Ordinal);
        var status = await Poll.ValueAsync(() => ClusterNodes.StatusAsync(first), s => s is not null, ClusterNodes.StepTimeout);
        Assert.Equal((1, 0), (status!.Running, status.Waiting));
    }

    [Fact]
    public async Task A_full_partition_refuses_the_first_request_of_a_node_new_to_the_key()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).PartitionedLimiter("bounded-keys", maxRunning: 1, maxQueued: 1, TimeSpan.FromHours(1))).ToList();
        using var held = await limiters[0].AcquireAsync("a").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = limiters[0].AcquireAsync("a").AsTask();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiters[0], "a"), s => s?.Waiting == 1, ClusterNodes.StepTimeout);

        var refused = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => limiters[1].AcquireAsync("a").AsTask().WaitAsync(ClusterNodes.StepTimeout));

        Assert.Contains("max_queued (1)", refused.Message, StringComparison.Ordinal);
        var status = await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiters[0], "a"), s => s is not null, ClusterNodes.StepTimeout);
        Assert.Equal((1, 1), (status!.Running, status.Waiting));
        Assert.False(waiting.IsCompleted);
    }
}
