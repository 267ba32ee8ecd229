using System.Runtime.CompilerServices;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// The cluster facades' lifetimes: on a node whose actor system has terminated or is terminating, disposing them
/// completes and does not throw (the guard on each await only turns a hang into a failure; it is not a timing
/// assertion); a handle dropped without dispose stops its agent.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterFacadeLifetimeTests
{
    /// <summary>Turns a hang into a test failure.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    /// <summary>Each cluster facade that owns node agents, by name: creates one on a node.</summary>
    private static readonly Dictionary<string, Func<ActorSystem, IAsyncDisposable>> Facades = new()
    {
        ["ClusterConcurrencyLimiter"] = node => ActorQueueCluster.Get(node).Limiter("terminated", maxRunning: 1),
        ["DistributedWorkQueue"] = node => ActorQueueCluster.Get(node).WorkQueue<int, int>("terminated"),
        ["DistributedWorkers"] = node => ActorQueueCluster.Get(node).RegisterWorkers<int, int>("terminated", (item, _) => Task.FromResult(item)),
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

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropWorkQueue(ActorSystem node, string name) => ActorQueueCluster.Get(node).WorkQueue<int, int>(name);

    [Fact]
    public async Task A_work_queue_handle_dropped_without_dispose_stops_its_producer_agent()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = cluster.Nodes[0];
        DropWorkQueue(node, "dropped");
        var producer = await node.ActorSelection("/system/actorqueue-producer-*-dropped").ResolveOne(HangGuard);
        var stopped = producer.WatchAsync();

        await Poll.UntilAsync(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return stopped.IsCompleted;
        }, HangGuard, "the dropped handle's producer agent stopped", TimeSpan.FromMilliseconds(10));
        Assert.True(await stopped);
    }
}
