using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The limiter's side of <c>DistributedQueueFirstContactReviewTestsOnOneNode.A_late_request_of_a_lost_incarnation…</c>:
/// a production limiter agent and gatekeeper on one node, the lost incarnation a probe, the hub a probe that the test
/// forwards from. The node's own agent (the only member's) is a probe that answers the roll call empty; the agent under
/// test speaks for a node that is not a member.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterLimiterLateRequestReviewTests : OneNodeClusterTest
{
    private const string Name = "late-request";

    private static readonly Address OtherNode = new("akka.tcp", "actorqueue", "10.0.0.9", 4053);

    /// <summary>
    /// The agent made first contact with the live gatekeeper and holds a lease of it; a late request of a lost
    /// incarnation it never followed arrives, and it follows that one. Once it is gone, the agent releases the lease
    /// and asks for another, both through the hub with the lost epoch, and says hello. Failed before: the gatekeeper had
    /// its announcement, so it ignored the hello, dropped the release and the request without asking again, and the
    /// request waited for ever (the released permits counted as held). Now it asks the agent again and takes its
    /// re-announcement in place of what it knew: the lease is gone, the new request is granted.
    /// </summary>
    [Fact]
    public async Task A_late_request_of_a_lost_incarnation_after_the_first_contact_does_not_strand_later_acquires()
    {
        var gatekeeper = await ServingGatekeeperAsync(maxRunning: 2);
        var hub = Kit.CreateTestProbe();
        var agent = Node.ActorOf(LimiterAgentActor.Props(new LimiterAgentSetup(Name, new ClusterLimit(2, null, null, QueueFullMode.RejectNewcomer),
            hub.Ref, OtherNode, new LimiterCounts(), new LimiterCounts(), new LimitMirror(2, null), HelloInterval: TimeSpan.FromHours(1))));

        // Weighted (two permits of two): never granted from a block, so every release and request is a message.
        var first = new ClusterAcquireRequest("first", new PermitDemand(2), 0, null, agent);
        agent.Tell(first);
        gatekeeper.Tell((await hub.ExpectMsgAsync<LimiterEnvelope>()).Message, agent); // first contact: asked, announced, granted
        var lease = await first.Completion.AsTask().WaitAsync(ClusterNodes.StepTimeout);

        var lost = Kit.CreateTestProbe();
        lost.Send(agent, new RecoverLimiter(Name, 42));
        Assert.Single((await lost.ExpectMsgAsync<LimiterAnnounce>()).Held);
        Assert.True(await lost.Ref.GracefulStop(ClusterNodes.StepTimeout));
        var hello = await hub.ExpectMsgAsync<LimiterEnvelope>();
        Assert.Equal(new AgentHello(42), hello.Message);
        lease.Dispose();
        var release = await hub.ExpectMsgAsync<LimiterEnvelope>(); // it follows none: through the hub, with the lost epoch
        Assert.Equal(42, ((RemoteRelease)release.Message).Epoch);
        var later = new ClusterAcquireRequest("later", new PermitDemand(2), 0, null, agent);
        agent.Tell(later);
        var acquire = await hub.ExpectMsgAsync<LimiterEnvelope>();
        Assert.Equal(42, ((RemoteAcquire)acquire.Message).Epoch);
        foreach (var message in new[] { hello, release, acquire })
        {
            gatekeeper.Tell(message.Message, agent);
        }

        (await later.Completion.AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        await Poll.ValueAsync(() => StatusAsync(gatekeeper), status => Counts(status) == (0, 0), ClusterNodes.StepTimeout); // the first lease's permits counted no longer
    }

    /// <summary>
    /// At the gatekeeper, with a probe for the agent: a re-announcement of a known agent (asked again after its hello
    /// showed another epoch) replaces what it said. A lease it no longer holds is released; a lease it announces waiting
    /// (it dropped the grant, or the grant is on its way) stays granted and its grant is sent again; a wait it no longer
    /// has is withdrawn; a wait it still has keeps its place before another agent's; its block is counted once and
    /// recalled again.
    /// </summary>
    [Fact]
    public async Task A_re_announcement_replaces_what_the_agent_announced_before()
    {
        var gatekeeper = await ServingGatekeeperAsync(maxRunning: 5);
        var agent = Kit.CreateTestProbe();
        gatekeeper.Tell(new AgentHello(0), agent);
        var epoch = (await agent.ExpectMsgAsync<RecoverLimiter>()).Epoch;
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [1, 2, 5], [3, 4], ["three", "four"]) { BlockPermits = 1, PendingPermits = [2, 2] }, agent);
        Assert.Equal(new BlockRecall(epoch), await agent.ExpectMsgAsync<BlockRecall>()); // 4 of 5 in use: 3 and 4 (two permits each) wait
        var other = Kit.CreateTestProbe();
        gatekeeper.Tell(new AgentHello(0), other);
        await other.ExpectMsgAsync<RecoverLimiter>();
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [], [9], ["nine"]), other);
        Assert.Equal((4, 3), Counts(await StatusAsync(gatekeeper)));

        gatekeeper.Tell(new AgentHello(42), agent); // it followed another incarnation since, and lost it
        Assert.Equal(new RecoverLimiter(Name, epoch), await agent.ExpectMsgAsync<RecoverLimiter>());
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [1], [2, 4], ["two", "four"]) { BlockPermits = 1, PendingPermits = [1, 2] }, agent);

        // Lease 5 released and wait 3 withdrawn: 1 + 2 + block 1 in use, two permits free, for wait 4, which stood before
        // the other agent's 9; the block is recalled again (the first recall may have been dropped by the agent).
        Assert.Equal(2, (await agent.ExpectMsgAsync<RemoteGranted>()).RequestId);
        Assert.Equal(new RemoteGranted(epoch, 4, 5, 1), await agent.ExpectMsgAsync<RemoteGranted>());
        Assert.Equal(new BlockRecall(epoch), await agent.ExpectMsgAsync<BlockRecall>());
        Assert.Equal((5, 1), Counts(await StatusAsync(gatekeeper)));
        Assert.False(other.HasMessages);
    }

    /// <summary>A gatekeeper for <see cref="Name"/>, serving: the node's agent (a probe) answered its roll call with nothing.</summary>
    private async Task<IActorRef> ServingGatekeeperAsync(int maxRunning)
    {
        var nodeAgent = Kit.CreateTestProbe();
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Limiter, Name, nodeAgent.Ref));
        var gatekeeper = Node.ActorOf(ClusterGatekeeperActor.Props(Name, maxRunning, null, QueueFullMode.RejectNewcomer, TimeSpan.Zero, TimeSpan.FromSeconds(30)), $"gatekeeper-{Name}");
        var epoch = (await nodeAgent.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout)).Epoch;
        gatekeeper.Tell(new LimiterAnnounce(epoch, ActorQueueCluster.Get(Node).Cluster.SelfAddress, [], [], []), nodeAgent);
        Assert.False((await StatusAsync(gatekeeper)).Recovering); // the only member answered
        return gatekeeper;
    }

    private static (int Running, int Waiting) Counts(ClusterLimiterStatus status) => (status.Running, status.Waiting);

    private static Task<ClusterLimiterStatus> StatusAsync(IActorRef gatekeeper) =>
        gatekeeper.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, ClusterNodes.StepTimeout);
}
