using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 40 (helper 188): a whole cluster limiter's request that reaches no agent — the node's agent stopped for good
/// while the limiter was not disposed — is answered from dead letters, and must say so rather than claim a disposal.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class StoppedAgentAcquireRound40Tests : OneNodeClusterTest
{
    /// <summary>
    /// The limiter's agent has stopped (stopped here by the test, as its supervisor stops it when it cannot be made again):
    /// an acquire is failed at once with <see cref="InvalidOperationException"/> naming the limiter and saying its agent
    /// stopped; a dispose afterwards still completes, and a request after it is refused as disposed.
    /// Failed before: <see cref="ObjectDisposedException"/> ("The cluster concurrency limiter has been disposed.") for a
    /// limiter nobody had disposed.
    /// </summary>
    [Fact]
    public async Task An_acquire_sent_to_a_stopped_agent_of_a_limiter_not_disposed_says_its_agent_stopped()
    {
        const string name = "h188-acquire-stopped-agent";
        var limiter = await WithStoppedAgentAsync(Node, name);

        var acquired = limiter.AcquireAsync(source: "h188").AsTask();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => acquired.WaitAsync(ClusterNodes.StepTimeout)); // failed: ObjectDisposedException
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("stopped before taking this request of h188", error.Message, StringComparison.Ordinal);
        await limiter.DisposeAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        Assert.Throws<ObjectDisposedException>(() => { _ = limiter.AcquireAsync(); });
    }

    /// <summary>A cluster limiter named <paramref name="name"/> on <paramref name="node"/> whose agent has been stopped (not disposed), as its supervisor stops one it cannot make again.</summary>
    internal static async Task<ClusterConcurrencyLimiter> WithStoppedAgentAsync(ActorSystem node, string name)
    {
        var limiter = ActorQueueCluster.Get(node).Limiter(name, maxRunning: 2);
        await limiter.GetStatusAsync(ClusterNodes.StepTimeout); // the agent made and following its gatekeeper
        var stopped = limiter.Agent.WatchAsync();
        node.Stop(limiter.Agent);
        Assert.True(await stopped.WaitAsync(ClusterNodes.StepTimeout));
        return limiter;
    }
}
