using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using Akka.TestKit;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the acquires that reach a recovering cluster gatekeeper (helper 124). A gatekeeper on a one-node cluster
/// whose agents are probes, so that the ordering is forced: the node's probe answers the roll call last, which opens
/// the gate. FINDING failed before its fix; the others pin what the fix had to keep.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RecoveringGateReviewTests : OneNodeClusterTest
{
    private static readonly Address OtherNode = new("akka.tcp", "actorqueue", "10.0.0.9", 4053);

    private Address NodeAddress => ActorQueueCluster.Get(Node).Cluster.SelfAddress;

    /// <summary>
    /// Starts a recovering gatekeeper whose roll call reaches a probe as the node's agent (which has not answered yet)
    /// and an agent probe announced from another node; returns them with the epoch.
    /// </summary>
    private async Task<(IActorRef Gatekeeper, long Epoch, TestProbe NodeAgent, TestProbe Agent)> StartRecoveringAsync(string name, int maxRunning, int? maxQueued,
        QueueFullMode whenFull = QueueFullMode.RejectNewcomer, LimiterAnnounce? announce = null)
    {
        var nodeAgent = Kit.CreateTestProbe();
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, nodeAgent.Ref));
        var gatekeeper = Node.ActorOf(ClusterGatekeeperActor.Props(name, maxRunning, maxQueued, whenFull, TimeSpan.Zero, TimeSpan.FromSeconds(30)), $"gatekeeper-{name}");
        var epoch = (await nodeAgent.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout)).Epoch;
        var agent = Kit.CreateTestProbe();
        gatekeeper.Tell(new AgentHello(0), agent);
        await agent.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout);
        gatekeeper.Tell((announce ?? new LimiterAnnounce(0, OtherNode, [], [], [])) with { Epoch = epoch }, agent);
        return (gatekeeper, epoch, nodeAgent, agent);
    }

    private static Task<ClusterLimiterStatus> StatusAsync(IActorRef gatekeeper) =>
        gatekeeper.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, ClusterNodes.StepTimeout);

    /// <summary>The node's probe answers the roll call: the gate opens.</summary>
    private static async Task OpenAsync(IActorRef gatekeeper, long epoch, TestProbe nodeAgent, Address node)
    {
        gatekeeper.Tell(new LimiterAnnounce(epoch, node, [], [], []), nodeAgent);
        Assert.False((await StatusAsync(gatekeeper)).Recovering);
    }

    /// <summary>The first answer to each request id among the next replies, until <paramref name="count"/> ids are answered.</summary>
    private static async Task<Dictionary<long, string>> AnswersAsync(TestProbe agent, int count)
    {
        var answers = new Dictionary<long, string>();
        while (answers.Count < count)
        {
            var (id, kind) = await agent.ReceiveOneAsync(ClusterNodes.StepTimeout) switch
            {
                null => throw new Xunit.Sdk.XunitException($"no answer within {ClusterNodes.StepTimeout}; answered: {string.Join(", ", answers)}"),
                RemoteGranted granted => (granted.RequestId, "granted"),
                RemoteQueued queued => (queued.RequestId, "queued"),
                RemoteRejected rejected => (rejected.RequestId, $"rejected {rejected.Kind}"),
                _ => (0L, ""),
            };
            if (id != 0)
            {
                answers.TryAdd(id, kind);
            }
        }

        return answers;
    }

    /// <summary>
    /// FINDING: limit 1, no queue (ASP.NET Core's middleware with QueueLimit 0). An announced agent's acquire that may
    /// wait reaches the gatekeeper while it recovers: it was offered at the closed gate at once and rejected QueueFull,
    /// though the gatekeeper serving a moment later grants it. Expected: kept aside (counted waiting) and granted as
    /// the gate opens.
    /// </summary>
    [Fact]
    public async Task A_waiting_acquire_reaching_a_recovering_gatekeeper_is_judged_once_its_gate_opens()
    {
        var (gatekeeper, epoch, nodeAgent, agent) = await StartRecoveringAsync("recovering-acquire", maxRunning: 1, maxQueued: 0);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "first"), agent);

        var status = await StatusAsync(gatekeeper);
        Assert.True(status.Recovering);
        Assert.Equal(1, status.Waiting); // failed: 0 (rejected QueueFull at once)
        await agent.ExpectNoMsgAsync(TimeSpan.Zero);

        await OpenAsync(gatekeeper, epoch, nodeAgent, NodeAddress);
        Assert.Equal(1, (await agent.ExpectMsgAsync<RemoteGranted>(ClusterNodes.StepTimeout)).RequestId);
        status = await StatusAsync(gatekeeper);
        Assert.Equal((1, 0), (status.Running, status.Waiting));
    }

    /// <summary>An acquire that may not wait is still judged at once (a recovering gatekeeper grants nothing): rejected, not kept aside.</summary>
    [Fact]
    public async Task An_acquire_that_may_not_wait_is_still_rejected_while_recovering()
    {
        var (gatekeeper, epoch, nodeAgent, agent) = await StartRecoveringAsync("recovering-attempt", maxRunning: 1, maxQueued: 0);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "attempt") { MayWait = false }, agent);
        Assert.Equal(1, (await agent.ExpectMsgAsync<RemoteRejected>(ClusterNodes.StepTimeout)).RequestId);
        Assert.Equal(0, (await StatusAsync(gatekeeper)).Waiting);
        await OpenAsync(gatekeeper, epoch, nodeAgent, NodeAddress);
        gatekeeper.Tell(new RemoteAcquire(epoch, 2, "next"), agent);
        Assert.Equal(2, (await agent.ExpectMsgAsync<RemoteGranted>(ClusterNodes.StepTimeout)).RequestId); // the rejected one was not kept aside too
    }

    /// <summary>A request kept aside and cancelled leaves: never granted, its permit stays free for the next.</summary>
    [Fact]
    public async Task A_request_kept_aside_and_cancelled_is_never_granted()
    {
        var (gatekeeper, epoch, nodeAgent, agent) = await StartRecoveringAsync("recovering-cancel", maxRunning: 1, maxQueued: 0);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "withdrawn"), agent);
        gatekeeper.Tell(new RemoteCancel(epoch, 1), agent);
        Assert.Equal(0, (await StatusAsync(gatekeeper)).Waiting);

        await OpenAsync(gatekeeper, epoch, nodeAgent, NodeAddress);
        gatekeeper.Tell(new RemoteAcquire(epoch, 2, "next"), agent);
        var answers = await AnswersAsync(agent, 1);
        Assert.Equal([(2L, "granted")], answers.Select(answer => (answer.Key, answer.Value)));
    }

    /// <summary>An agent that stops while its request is kept aside is forgotten with it: the permit goes to the next agent.</summary>
    [Fact]
    public async Task A_request_kept_aside_goes_with_its_stopped_agent()
    {
        var (gatekeeper, epoch, nodeAgent, agent) = await StartRecoveringAsync("recovering-forget", maxRunning: 1, maxQueued: 0);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "of the stopped"), agent);
        Assert.Equal(1, (await StatusAsync(gatekeeper)).Waiting);
        Node.Stop(agent.Ref);
        await Kit.AwaitAssertAsync(async () => Assert.Equal(0, (await StatusAsync(gatekeeper)).Waiting));

        await OpenAsync(gatekeeper, epoch, nodeAgent, NodeAddress);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "next"), nodeAgent);
        Assert.Equal(1, (await nodeAgent.FishForMessageAsync<RemoteGranted>(_ => true, ClusterNodes.StepTimeout)).RequestId);
        Assert.Equal(1, (await StatusAsync(gatekeeper)).Running);
    }

    /// <summary>
    /// Limit 1, queue 2. A re-announced wait (accepted by the previous incarnation) ranks before the acquires sent to this
    /// one while it recovers, even one that arrived before the announcement; those keep their arrival order.
    /// </summary>
    [Fact]
    public async Task Requests_kept_aside_come_after_the_re_announced_waits_in_arrival_order()
    {
        var (gatekeeper, epoch, nodeAgent, agent) = await StartRecoveringAsync("recovering-order", maxRunning: 1, maxQueued: 2);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "first sent here"), agent);
        gatekeeper.Tell(new RemoteAcquire(epoch, 2, "second sent here"), agent);
        gatekeeper.Tell(new LimiterAnnounce(epoch, NodeAddress, [], [7], ["waited longer"]), nodeAgent); // the last member: the gate opens

        Assert.Equal("granted", (await AnswersAsync(nodeAgent, 1))[7]);
        Assert.Equal(new Dictionary<long, string> { [1] = "queued", [2] = "queued" }, await AnswersAsync(agent, 2));
        gatekeeper.Tell(new RemoteRelease(epoch, 7), nodeAgent);
        Assert.Equal(1, (await agent.ExpectMsgAsync<RemoteGranted>(ClusterNodes.StepTimeout)).RequestId);
    }

    /// <summary>
    /// With <see cref="QueueFullMode.EvictLowestPriorityNewest"/>, limit 1 held, queue 1: of two requests kept aside, the
    /// higher priority one that came second evicts the first as the gate opens, as a serving gatekeeper would.
    /// </summary>
    [Fact]
    public async Task Requests_kept_aside_evict_by_priority_as_the_gate_opens()
    {
        var (gatekeeper, epoch, nodeAgent, agent) = await StartRecoveringAsync("recovering-evict", maxRunning: 1, maxQueued: 1, QueueFullMode.EvictLowestPriorityNewest,
            new LimiterAnnounce(0, OtherNode, [5], [], []));
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "low"), agent);
        gatekeeper.Tell(new RemoteAcquire(epoch, 2, "high") { Priority = 1 }, agent);
        Assert.Equal(2, (await StatusAsync(gatekeeper)).Waiting);

        await OpenAsync(gatekeeper, epoch, nodeAgent, NodeAddress);
        Assert.Equal(new Dictionary<long, string> { [1] = "queued" }, await AnswersAsync(agent, 1)); // offered first, in arrival order
        var evicted = await agent.ExpectMsgAsync<RemoteRejected>(ClusterNodes.StepTimeout);
        Assert.Equal((1L, PermitRejectionKind.Evicted), (evicted.RequestId, evicted.Kind));
        Assert.Equal(2, (await agent.ExpectMsgAsync<RemoteQueued>(ClusterNodes.StepTimeout)).RequestId);
    }

    /// <summary>
    /// An agent announced with a block while the gatekeeper recovers: a request kept aside is someone waiting, so the block
    /// is recalled at once (as when the request stood in the closed gate), not only once the gate opens.
    /// </summary>
    [Fact]
    public async Task A_request_kept_aside_recalls_the_blocks()
    {
        var (gatekeeper, epoch, _, agent) = await StartRecoveringAsync("recovering-recall", maxRunning: 2, maxQueued: 0,
            announce: new LimiterAnnounce(0, OtherNode, [], [], []) { BlockPermits = 2 });
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "waits"), agent);
        await agent.ExpectMsgAsync<BlockRecall>(ClusterNodes.StepTimeout);
        Assert.True((await StatusAsync(gatekeeper)).Recovering);
    }
}
