using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A node follows only the singleton's host (the oldest Up member with the singleton role, by its own membership view)
/// when asked to recover, and an insecure node joins only loopback seeds.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SingletonBindingReviewTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(2);

    /// <summary>
    /// FINDING, fixed: a member that is not the singleton's host sent another node's host a <c>RecoverQueue</c> with a
    /// newer epoch, and that node's producer followed it: it announced its outstanding items to the forger and sent it
    /// every later put (which never completed).
    /// </summary>
    [Fact]
    public async Task A_forged_RecoverQueue_from_a_non_singleton_member_is_refused_and_puts_still_reach_the_router()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var (victim, forgerNode) = (cluster.Nodes[1], cluster.Nodes[2]);
        await using var workers = ActorQueueCluster.Get(cluster.Nodes[0]).RegisterWorkers<int, int>("bound-q", (item, _) => Task.FromResult(item + 1));
        await using var queue = ActorQueueCluster.Get(victim).WorkQueue<int, int>("bound-q", maxSize: 10);
        var first = await queue.SubmitAsync(1).WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(2, (await first!.Completion.WaitAsync(ClusterNodes.StepTimeout)).Result); // the producer follows the real router

        var forger = new Akka.TestKit.Xunit2.TestKit(forgerNode); // not disposed: that would shut the node down
        await ForgeAsync(forger, victim, new RecoverQueue("bound-q", long.MaxValue / 2));

        var second = await queue.SubmitAsync(41).WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(42, (await second!.Completion.WaitAsync(ClusterNodes.StepTimeout)).Result);
        await forger.ExpectNoMsgAsync(Quiet); // before the fix: a ProducerAnnounce, then the put
    }

    /// <summary>
    /// FINDING, fixed: the same with a <c>RecoverLimiter</c>: the node's agent followed the forger, announced its leases
    /// and sent it every later request, which the real gatekeeper never saw.
    /// </summary>
    [Fact]
    public async Task A_forged_RecoverLimiter_from_a_non_singleton_member_is_refused_and_acquires_still_reach_the_gatekeeper()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var (victim, forgerNode) = (cluster.Nodes[1], cluster.Nodes[2]);
        var limiter = ActorQueueCluster.Get(victim).Limiter("bound-l", maxRunning: 2);
        (await limiter.AcquireAsync("first").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose(); // the agent follows the real gatekeeper

        var forger = new Akka.TestKit.Xunit2.TestKit(forgerNode); // not disposed: that would shut the node down
        await ForgeAsync(forger, victim, new RecoverLimiter("bound-l", long.MaxValue / 2));

        using var lease = await limiter.AcquireAsync("second").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await forger.ExpectNoMsgAsync(Quiet); // before the fix: a LimiterAnnounce, then the acquire
    }

    /// <summary>A forged request sent straight to a limiter agent (its path is predictable), not through the node's host, is refused too.</summary>
    [Fact]
    public async Task A_forged_RecoverLimiter_sent_straight_to_the_agent_is_refused()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var (victim, forgerNode) = (cluster.Nodes[1], cluster.Nodes[2]);
        var limiter = ActorQueueCluster.Get(victim).Limiter("bound-d", maxRunning: 2);
        (await limiter.AcquireAsync("first").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();

        var forger = new Akka.TestKit.Xunit2.TestKit(forgerNode);
        var agentPath = new RootActorPath(Akka.Cluster.Cluster.Get(victim).SelfAddress).WithUid(0) / limiter.Agent.Path.Elements;
        var agent = ((ExtendedActorSystem)forgerNode).Provider.ResolveActorRef(agentPath.ToStringWithAddress());
        agent.Tell(new RecoverLimiter("bound-d", long.MaxValue / 2), forger.TestActor);
        await FenceAsync(forger, victim);

        using var lease = await limiter.AcquireAsync("second").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await forger.ExpectNoMsgAsync(Quiet);
    }

    /// <summary>FINDING, fixed: an insecure (loopback-only) node joined any seed address it was given.</summary>
    [Fact]
    public async Task An_insecure_node_refuses_to_join_a_non_loopback_seed()
    {
        var node = ActorQueueClusterRuntime.Create(new ClusterNodeOptions { InsecureLoopback = true }, ClusterNodes.FastCluster);
        try
        {
            var seed = new Address("akka.tcp", ActorQueueClusterRuntime.DefaultSystemName, "10.20.30.40", 4053);
            var error = Assert.Throws<ArgumentException>(() => { _ = ActorQueueCluster.Get(node).JoinAsync(seed); });
            Assert.Equal("seed", error.ParamName);
            Assert.Contains("10.20.30.40", error.Message, StringComparison.Ordinal);
            Assert.Empty(Akka.Cluster.Cluster.Get(node).State.Members);
        }
        finally
        {
            await node.Terminate().WaitAsync(ClusterNodes.StepTimeout);
        }
    }

    /// <summary>Sends <paramref name="request"/> to the victim's node host as the forger's test actor, then waits until the host has handled it.</summary>
    private static async Task ForgeAsync(Akka.TestKit.Xunit2.TestKit forger, ActorSystem victim, object request)
    {
        Host(forger, victim).Tell(request, forger.TestActor);
        await FenceAsync(forger, victim);
    }

    /// <summary>An Identify after the forged request, on the same connection: answered, the host has handled the request (and forwarded it, before the fix).</summary>
    private static async Task FenceAsync(Akka.TestKit.Xunit2.TestKit forger, ActorSystem victim)
    {
        Host(forger, victim).Tell(new Identify("fence"), forger.TestActor);
        await forger.ExpectMsgAsync<ActorIdentity>(identity => Assert.Equal("fence", identity.MessageId), ClusterNodes.StepTimeout);
    }

    private static ActorSelection Host(Akka.TestKit.Xunit2.TestKit forger, ActorSystem victim) =>
        forger.Sys.ActorSelection(new RootActorPath(Akka.Cluster.Cluster.Get(victim).SelfAddress) / "system" / NodeHostActor.ActorName);
}
