using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// The cluster facades on a node whose actor system has terminated or is terminating: disposing them completes and
/// does not throw. The guard on each await only turns a hang into a failure; it is not a timing assertion.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterTerminatedSystemTests
{
    /// <summary>Turns a hang into a test failure.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    /// <summary>Each cluster facade that owns a node agent, by name: creates one on a node.</summary>
    private static readonly Dictionary<string, Func<ActorSystem, IAsyncDisposable>> Facades = new()
    {
        ["ClusterConcurrencyLimiter"] = node => ActorQueueCluster.Get(node).Limiter("terminated", maxRunning: 1),
        ["DistributedWorkQueue"] = node => ActorQueueCluster.Get(node).WorkQueue<int, int>("terminated"),
    };

    public static TheoryData<string> Kinds => new(Facades.Keys);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task DisposeAsync_completes_after_the_nodes_system_has_terminated(string kind)
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = cluster.Nodes[0];
        var facade = Facades[kind](node);
        await node.Terminate().WaitAsync(HangGuard);

        await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task DisposeAsync_completes_while_the_nodes_system_is_terminating(string kind)
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = cluster.Nodes[0];
        var facade = Facades[kind](node);
        var terminating = node.Terminate();

        await facade.DisposeAsync().AsTask().WaitAsync(HangGuard);
        await terminating.WaitAsync(HangGuard);
    }
}
