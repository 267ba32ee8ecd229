using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A distributed queue's bound (<c>maxSize</c>) holds for a node's first put too. A producer that no router incarnation
/// has heard of yet reaches the router through its announcement; its puts were never accepted, so they must meet the
/// bound and their wait for space like any put, not be queued past it as items a previous router accepted are.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedQueueBoundTests
{
    [Fact]
    public async Task A_full_queue_pushes_back_the_first_put_of_a_handle_made_later_on_another_node()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        await using var first = ActorQueueCluster.Get(cluster.Nodes[0]).WorkQueue<string, int>("bounded-queue", maxSize: 1);
        Assert.NotNull(await first.SubmitAsync("fills it", TimeSpan.Zero).WaitAsync(ClusterNodes.StepTimeout)); // no workers: it stays queued
        await using var late = ActorQueueCluster.Get(cluster.Nodes[1]).WorkQueue<string, int>("bounded-queue", maxSize: 1);

        var turnedAway = await late.SubmitAsync("turned away", TimeSpan.Zero).WaitAsync(ClusterNodes.StepTimeout);

        Assert.Null(turnedAway);
        var status = await first.GetStatusAsync().WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(1, status.Queued);
    }
}
