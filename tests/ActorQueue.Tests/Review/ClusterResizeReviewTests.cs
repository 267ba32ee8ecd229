using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review: <c>LocalRunningCount</c> of a cluster limiter counted leases while <c>RunningCount</c> counts permits (a
/// weighted lease of 3 permits counted 1 locally, 3 cluster-wide).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterResizeReviewTests
{
    /// <summary>No blocks of permits: every grant is the gatekeeper's, so the counts are the leases the test holds.</summary>
    private const string NoBlocks = "actorqueue.cluster.limiter-blocks = off";

    [Fact]
    public async Task LocalRunningCount_counts_the_permits_of_weighted_leases_as_RunningCount_does()
    {
        await using var cluster = await ClusterNodes.StartAsync(1, NoBlocks);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter("rz-local", maxRunning: 5);

        await using var weighted = await limiter.AcquireAsync(3).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await using var single = await limiter.AcquireAsync("one").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var status = await limiter.GetStatusAsync();

        Assert.Equal(4, status.Running);
        Assert.Equal(4, limiter.RunningCount);
        Assert.Equal(4, limiter.LocalRunningCount); // was 2: one per lease
        weighted.Dispose();
        await Poll.UntilAsync(() => limiter.LocalRunningCount == 1, ClusterNodes.StepTimeout, () => $"the weighted lease's 3 permits came back ({limiter.LocalRunningCount})");
    }

    [Fact]
    public async Task A_model_api_limiters_LocalRunningCount_counts_the_slots_an_actors_weighted_acquire_holds()
    {
        await using var cluster = await ClusterNodes.StartAsync(1, NoBlocks);
        var node = cluster.Nodes[0];
        var limiter = ActorQueueCluster.Get(node).ModelApiLimiter("rz-model", new ModelApiLimiterOptions(4, 100, 10_000, TimeSpan.FromMinutes(1)));
        var kit = new Akka.TestKit.Xunit2.TestKit(node);
        var caller = kit.CreateTestProbe();

        await using var call = await limiter.AcquireAsync(10).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 7) { Permits = 2, Tokens = 10 }, caller);
        var granted = await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);

        Assert.Equal(3, limiter.LocalRunningCount); // one call's slot and the actor's two
        limiter.Agent.Tell(new GatekeeperProtocol.Release(granted.LeaseId), caller);
        await Poll.UntilAsync(() => limiter.LocalRunningCount == 1, ClusterNodes.StepTimeout, () => $"the actor's slots came back ({limiter.LocalRunningCount})");
    }
}
