using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

[Collection(ClusterCollection.Name)]
public sealed class ClusterPartitionedLimiterTests
{
    [Fact]
    public async Task Statistics_of_every_live_partition_come_in_one_call_with_cluster_and_local_counts()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var here = ActorQueueCluster.Get(cluster.Nodes[0]).PartitionedLimiter("stats", maxRunning: 3, maxQueued: null, TimeSpan.FromMinutes(5));
        var there = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("stats", maxRunning: 3, maxQueued: null, TimeSpan.FromMinutes(5));
        using var a = await here.AcquireAsync("a", permits: 2).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        using var b = await here.AcquireAsync("b").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        using var a2 = await there.AcquireAsync("a").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = there.AcquireAsync("a").AsTask();
        await Poll.ValueAsync(() => there.GetStatisticsAsync(), s => s["a"] is { LocalWaiting: 1, Waiting: 1 }, ClusterNodes.StepTimeout);

        var mine = await here.GetStatisticsAsync();
        Assert.Equal(["a", "b"], mine.Keys.Order());
        Assert.Equal(new ClusterPartitionStatistics(2, 0, 2, 0), mine["a"]); // cluster-wide as of this node's last reply; locally the lease's 2 permits
        Assert.Equal(new ClusterPartitionStatistics(1, 0, 1, 0), mine["b"]);
        var theirs = await there.GetStatisticsAsync();
        Assert.Equal(new ClusterPartitionStatistics(3, 1, 1, 1), Assert.Single(theirs).Value);
        Assert.False(waiting.IsCompleted);
    }

    [Fact]
    public async Task Partitions_limit_each_key_across_nodes_and_idle_ones_stop_on_the_nodes_and_in_the_singleton()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var singletonNode = cluster.Nodes[0];
        var idle = TimeSpan.FromMilliseconds(300);
        var here = ActorQueueCluster.Get(singletonNode).PartitionedLimiter("tenants", maxRunning: 1, maxQueued: null, idle);
        var there = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("tenants", maxRunning: 1, maxQueued: null, idle);

        var heldA = await there.AcquireAsync("a").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waitingA = here.AcquireAsync("a").AsTask();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(here, "a"), s => s?.Waiting == 1, ClusterNodes.StepTimeout);
        (await here.AcquireAsync("b").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose(); // another key is not held up
        Assert.True(await AnyGatekeeperAsync(singletonNode, "a", ClusterNodes.StepTimeout)); // a held partition stays
        Assert.False(waitingA.IsCompleted);
        heldA.Dispose();
        (await waitingA.WaitAsync(ClusterNodes.StepTimeout)).Dispose();

        // A stream of distinct keys: every partition stops once idle, on both nodes and in the singleton.
        for (var i = 0; i < 50; i++)
        {
            (await there.AcquireAsync($"key-{i}").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        }

        await Poll.UntilAsync(() => here.PartitionCount == 0 && there.PartitionCount == 0, ClusterNodes.StepTimeout,
            () => $"every node's partitions stopped (here {here.PartitionCount}, there {there.PartitionCount})", TimeSpan.FromMilliseconds(20));
        await Poll.ValueAsync(() => AnyGatekeeperAsync(singletonNode, ""), any => !any, ClusterNodes.StepTimeout);

        // A key used again after its partition stopped is a new gatekeeper incarnation, and its limit still holds.
        await using var again = await here.AcquireAsync("a").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => there.AcquireAsync("a", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        Assert.Throws<ArgumentNullException>("key", () => here.AcquireAsync(null!));
    }

    /// <summary>
    /// Whether the singleton hub has a gatekeeper for a partition of "tenants" whose key starts with
    /// <paramref name="keyPrefix"/>. A wildcard selection that matches nothing is never answered, so "none" is a
    /// timeout: short (1 s) by default, for polls that wait for none; a check that one is there passes the patience a
    /// loaded machine may need to answer (it fails only after that).
    /// </summary>
    private static async Task<bool> AnyGatekeeperAsync(ActorSystem singletonNode, string keyPrefix, TimeSpan? patience = null)
    {
        var name = HubActor.ChildName(AgentKinds.Limiter, PartitionAgentsActor.PartitionName("tenants", keyPrefix));
        try
        {
            await singletonNode.ActorSelection($"/system/{ActorQueueCluster.SingletonManagerName}/hub/{name}*").ResolveOne(patience ?? TimeSpan.FromSeconds(1));
            return true;
        }
        catch (ActorNotFoundException)
        {
            return false;
        }
    }
}
