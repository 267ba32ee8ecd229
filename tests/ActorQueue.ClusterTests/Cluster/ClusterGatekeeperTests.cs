using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.TestKit;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A cluster gatekeeper on a one-node cluster with probes for agents: the node's agent is a probe registered with the
/// node host, so the test decides when the only member answers the roll call; other probes speak for agents of nodes
/// that are not members (they announce themselves when asked, but answer no roll call).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterGatekeeperTests : OneNodeClusterTest
{
    private static readonly Address OtherNode = new("akka.tcp", "actorqueue", "10.0.0.9", 4053);

    private Address NodeAddress => ActorQueueCluster.Get(Node).Cluster.SelfAddress;

    /// <summary>Starts a gatekeeper whose roll call reaches <paramref name="nodeAgent"/> as the node's agent, and returns it with its epoch.</summary>
    private async Task<(IActorRef Gatekeeper, long Epoch)> StartAsync(string name, int maxRunning, int? maxQueued, TestProbe nodeAgent,
                                                                      QueueFullMode whenFull = QueueFullMode.RejectNewcomer)
    {
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, nodeAgent.Ref));
        var gatekeeper = Node.ActorOf(ClusterGatekeeperActor.Props(name, maxRunning, maxQueued, whenFull, TimeSpan.Zero, TimeSpan.FromSeconds(30)), $"gatekeeper-{name}");
        var recover = await nodeAgent.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout);
        Assert.Equal(gatekeeper, nodeAgent.LastSender);
        return (gatekeeper, recover.Epoch);
    }

    /// <summary>A probe for an agent of a node that is not a member: it says hello and announces what it is given when asked.</summary>
    private async Task<TestProbe> AnnouncedAgentAsync(IActorRef gatekeeper, long epoch, long[]? held = null)
    {
        var agent = Kit.CreateTestProbe();
        gatekeeper.Tell(new AgentHello(0), agent);
        Assert.Equal(epoch, (await agent.ExpectMsgAsync<RecoverLimiter>()).Epoch);
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, held ?? [], [], []), agent);
        return agent;
    }

    private Task<ClusterLimiterStatus> StatusAsync(IActorRef gatekeeper) => gatekeeper.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, ClusterNodes.StepTimeout);

    [Fact]
    public async Task A_recovering_gatekeeper_keeps_requests_aside_and_grants_nothing_until_every_member_answered()
    {
        var nodeAgent = Kit.CreateTestProbe();
        var (gatekeeper, epoch) = await StartAsync("recovering", maxRunning: 1, maxQueued: 1, nodeAgent);
        var other = await AnnouncedAgentAsync(gatekeeper, epoch);

        // A slot is free, but the node's agent has not said what it holds: the requests wait, kept aside for the gate's
        // opening, where they meet the bound as a serving gatekeeper's would.
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "other-1"), other);
        gatekeeper.Tell(new RemoteAcquire(epoch, 2, "other-2"), other);
        Assert.Equal(new ClusterLimiterStatus("recovering", 0, 2, 1, 1, true, 1), await StatusAsync(gatekeeper));
        Assert.False(other.HasMessages);

        // The node's agent answers: it holds lease 7 and waits for 8, accepted earlier, which ranks first. Then the
        // gatekeeper serves: the slot is held and the queue full, so both requests kept aside are refused.
        gatekeeper.Tell(new LimiterAnnounce(epoch, NodeAddress, [7], [8], ["node-8"]), nodeAgent);
        Assert.Equal(new RemoteRejected(epoch, 1, 2, 1), await other.ExpectMsgAsync<RemoteRejected>());
        Assert.Equal(new RemoteRejected(epoch, 2, 2, 1), await other.ExpectMsgAsync<RemoteRejected>());
        Assert.Equal(new ClusterLimiterStatus("recovering", 1, 1, 1, 1, false, 2), await StatusAsync(gatekeeper));

        gatekeeper.Tell(new RemoteRelease(epoch, 7), nodeAgent);
        Assert.Equal(new RemoteGranted(epoch, 8, 1, 0), await nodeAgent.ExpectMsgAsync<RemoteGranted>());
    }

    [Fact]
    public async Task A_slot_released_while_recovering_is_granted_only_once_recovered()
    {
        var nodeAgent = Kit.CreateTestProbe();
        var (gatekeeper, epoch) = await StartAsync("released", maxRunning: 1, maxQueued: null, nodeAgent);
        var holder = await AnnouncedAgentAsync(gatekeeper, epoch, held: [3]);
        var waiter = await AnnouncedAgentAsync(gatekeeper, epoch);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "waiter"), waiter); // kept aside for the gate's opening

        gatekeeper.Tell(new RemoteRelease(epoch, 3), holder);
        Assert.Equal((0, 1, true), Counts(await StatusAsync(gatekeeper))); // freed, but not granted
        Assert.False(waiter.HasMessages);

        gatekeeper.Tell(new NoLimiterAgent("released", epoch, NodeAddress), ActorRefs.NoSender); // the last member: nothing held there
        Assert.Equal(new RemoteGranted(epoch, 1, 1, 0), await waiter.ExpectMsgAsync<RemoteGranted>());
        Assert.Equal((1, 0, false), Counts(await StatusAsync(gatekeeper)));
    }

    [Fact]
    public async Task A_serving_gatekeeper_counts_a_late_agents_leases_and_asks_a_stale_sender_once()
    {
        var nodeAgent = Kit.CreateTestProbe();
        var (gatekeeper, epoch) = await StartAsync("serving", maxRunning: 2, maxQueued: null, nodeAgent);
        gatekeeper.Tell(new LimiterAnnounce(epoch, NodeAddress, [], [], []), nodeAgent);
        Assert.False((await StatusAsync(gatekeeper)).Recovering);

        // An agent that follows no incarnation yet: its acquire is dropped, and it is asked (once) to announce itself.
        var late = Kit.CreateTestProbe();
        gatekeeper.Tell(new RemoteAcquire(0, 1, "late"), late);
        gatekeeper.Tell(new RemoteAcquire(0, 2, "late"), late);
        gatekeeper.Tell(new AgentHello(0), late);
        Assert.Equal(new RecoverLimiter("serving", epoch), await late.ExpectMsgAsync<RecoverLimiter>());
        Assert.Equal((0, 0, false), Counts(await StatusAsync(gatekeeper)));
        Assert.False(late.HasMessages); // nothing else: the status answer came after all three

        // It announces a lease it got from the previous incarnation and its two waits; one slot is left for them.
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [5], [1, 2], ["late", "late"]), late);
        Assert.Equal(new RemoteGranted(epoch, 1, 2, 1), await late.ExpectMsgAsync<RemoteGranted>());
        Assert.Equal((2, 1, false), Counts(await StatusAsync(gatekeeper)));
    }

    /// <summary>Starts a gatekeeper and lets the node's agent answer with nothing, so it serves; returns it with its epoch and an announced agent.</summary>
    private async Task<(IActorRef Gatekeeper, long Epoch, TestProbe Agent)> ServingAsync(string name, int maxRunning, int? maxQueued,
                                                                                        QueueFullMode whenFull = QueueFullMode.RejectNewcomer)
    {
        var nodeAgent = Kit.CreateTestProbe();
        var (gatekeeper, epoch) = await StartAsync(name, maxRunning, maxQueued, nodeAgent, whenFull);
        gatekeeper.Tell(new LimiterAnnounce(epoch, NodeAddress, [], [], []), nodeAgent);
        return (gatekeeper, epoch, await AnnouncedAgentAsync(gatekeeper, epoch));
    }

    [Fact]
    public async Task Weighted_requests_are_served_by_priority_and_a_waiting_head_is_never_overtaken_by_smaller_ones()
    {
        var (gatekeeper, epoch, agent) = await ServingAsync("weights", maxRunning: 3, maxQueued: null);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "big") { Permits = 2 }, agent);
        Assert.Equal(new RemoteGranted(epoch, 1, 2, 0), await agent.ExpectMsgAsync<RemoteGranted>());
        gatekeeper.Tell(new RemoteAcquire(epoch, 2, "head") { Permits = 2 }, agent);
        Assert.Equal(new RemoteQueued(epoch, 2, 2, 1), await agent.ExpectMsgAsync<RemoteQueued>());
        gatekeeper.Tell(new RemoteAcquire(epoch, 3, "small"), agent); // one permit is free, but the head waits: no barging
        Assert.Equal(new RemoteQueued(epoch, 3, 2, 2), await agent.ExpectMsgAsync<RemoteQueued>());
        gatekeeper.Tell(new RemoteAcquire(epoch, 4, "urgent") { Priority = 5 }, agent); // ranks before every waiter: takes the free permit
        Assert.Equal(new RemoteGranted(epoch, 4, 3, 2), await agent.ExpectMsgAsync<RemoteGranted>());
        gatekeeper.Tell(new RemoteAcquire(epoch, 5, "urgent-2") { Priority = 5, Permits = 2 }, agent);
        Assert.Equal(new RemoteQueued(epoch, 5, 3, 3), await agent.ExpectMsgAsync<RemoteQueued>());

        gatekeeper.Tell(new RemoteRelease(epoch, 1), agent); // two free: the higher priority first
        Assert.Equal(new RemoteGranted(epoch, 5, 3, 2), await agent.ExpectMsgAsync<RemoteGranted>());
        gatekeeper.Tell(new RemoteRelease(epoch, 4), agent); // one free: the head wants two, and the one behind it must not pass
        Assert.Equal((2, 2, false), Counts(await StatusAsync(gatekeeper)));
        Assert.False(agent.HasMessages);
        gatekeeper.Tell(new RemoteRelease(epoch, 5), agent);
        Assert.Equal(new RemoteGranted(epoch, 2, 2, 1), await agent.ExpectMsgAsync<RemoteGranted>());
        Assert.Equal(new RemoteGranted(epoch, 3, 3, 0), await agent.ExpectMsgAsync<RemoteGranted>());
    }

    [Fact]
    public async Task A_full_queue_evicts_the_newest_lowest_priority_waiter_and_requests_that_cannot_wait_or_fit_are_rejected_by_kind()
    {
        var (gatekeeper, epoch, agent) = await ServingAsync("evict", maxRunning: 1, maxQueued: 2, QueueFullMode.EvictLowestPriorityNewest);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "holder"), agent);
        await agent.ExpectMsgAsync<RemoteGranted>();
        gatekeeper.Tell(new RemoteAcquire(epoch, 2, "old"), agent);
        gatekeeper.Tell(new RemoteAcquire(epoch, 3, "new"), agent);
        Assert.Equal(new RemoteQueued(epoch, 2, 1, 1), await agent.ExpectMsgAsync<RemoteQueued>());
        Assert.Equal(new RemoteQueued(epoch, 3, 1, 2), await agent.ExpectMsgAsync<RemoteQueued>());

        gatekeeper.Tell(new RemoteAcquire(epoch, 4, "equal"), agent); // equal priority evicts nobody
        Assert.Equal(new RemoteRejected(epoch, 4, 3, 2), await agent.ExpectMsgAsync<RemoteRejected>());
        gatekeeper.Tell(new RemoteAcquire(epoch, 5, "higher") { Priority = 1 }, agent);
        Assert.Equal(new RemoteRejected(epoch, 3, 2, 2) { Kind = PermitRejectionKind.Evicted }, await agent.ExpectMsgAsync<RemoteRejected>());
        Assert.Equal(new RemoteQueued(epoch, 5, 1, 2), await agent.ExpectMsgAsync<RemoteQueued>());

        gatekeeper.Tell(new RemoteAcquire(epoch, 6, "impatient") { Priority = 9, MayWait = false }, agent);
        Assert.Equal(PermitRejectionKind.WouldWait, (await agent.ExpectMsgAsync<RemoteRejected>()).Kind);
        gatekeeper.Tell(new RemoteAcquire(epoch, 7, "too-big") { Permits = 2 }, agent);
        var tooBig = await agent.ExpectMsgAsync<RemoteRejected>();
        Assert.Equal((PermitRejectionKind.ExceedsLimit, 2L, 1L), (tooBig.Kind, tooBig.Requested, tooBig.Limit));

        gatekeeper.Tell(new RemoteRelease(epoch, 1), agent);
        Assert.Equal(new RemoteGranted(epoch, 5, 1, 1), await agent.ExpectMsgAsync<RemoteGranted>());
    }

    [Fact]
    public async Task Announced_weighted_leases_and_a_newer_resized_limit_are_adopted_and_a_resize_while_recovering_waits_until_serving()
    {
        var nodeAgent = Kit.CreateTestProbe();
        var (gatekeeper, epoch) = await StartAsync("readopt", maxRunning: 4, maxQueued: null, nodeAgent);
        var other = Kit.CreateTestProbe();
        gatekeeper.Tell(new AgentHello(0), other);
        await other.ExpectMsgAsync<RecoverLimiter>();

        // The other node holds a lease of 3 permits and knows of a resize to 3 that this incarnation (created with 4) missed.
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [5], [], []) { HeldPermits = [3], Limit = new LimitChanged(2, 3, null) }, other);
        Assert.Equal(new LimitChanged(2, 3, null), await other.ExpectMsgAsync<LimitChanged>());
        gatekeeper.Tell(new ResizeLimiter(5, null), other); // held back: a member not heard yet may know a newer one
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "waiter"), other); // after the held resize: judged under it, as the gate opens
        Assert.Equal(new ClusterLimiterStatus("readopt", 3, 1, 3, null, true, 1), await StatusAsync(gatekeeper));
        Assert.False(other.HasMessages); // not queued yet (Review/GatekeeperLeftoversReviewTests)

        // The node's agent answers with no resize: it is told the newer limit; then the held resize applies, and the gate
        // opens under it and grants (held resizes apply before anything is granted: Review/RecoveryRacesReviewTests).
        gatekeeper.Tell(new LimiterAnnounce(epoch, NodeAddress, [], [], []), nodeAgent);
        Assert.Equal(new LimitChanged(2, 3, null), await nodeAgent.ExpectMsgAsync<LimitChanged>());
        Assert.Equal(new LimitChanged(3, 5, null), await other.ExpectMsgAsync<LimitChanged>());
        Assert.Equal(new RemoteGranted(epoch, 1, 4, 0), await other.ExpectMsgAsync<RemoteGranted>());
        Assert.Equal(new LimitChanged(3, 5, null), await nodeAgent.ExpectMsgAsync<LimitChanged>());

        // Shrinking revokes nothing held, and fails the waiter that could never fit the new limit.
        gatekeeper.Tell(new RemoteAcquire(epoch, 2, "large") { Permits = 3 }, other);
        await other.ExpectMsgAsync<RemoteQueued>();
        gatekeeper.Tell(new ResizeLimiter(2, 0), nodeAgent);
        Assert.Equal(new RemoteRejected(epoch, 2, 1, 0) { Kind = PermitRejectionKind.ExceedsLimit, Requested = 3, Limit = 2 }, await other.ExpectMsgAsync<RemoteRejected>());
        Assert.Equal(new ClusterLimiterStatus("readopt", 4, 0, 2, 0, false, 2), await StatusAsync(gatekeeper));
    }

    /// <summary>
    /// An agent may announce itself and fetch a block before the incarnation knows the membership (its hello is
    /// answered at once): the fetch may not wait, but it is neither refused nor granted bare at the closed gate — it is
    /// answered once the gatekeeper serves, with a block. Failed before: refused at once as one that would wait, so a
    /// fresh node's first attempt brought no block and its facade stayed quiet (a CI run's
    /// <c>ClusterLimitGapsReviewTests.A_fresh_nodes_first_refused_attempt_brings_a_block_once_the_agent_follows</c> timed out so).
    /// </summary>
    [Fact]
    public async Task A_block_fetch_sent_while_recovering_is_answered_with_a_block_once_serving()
    {
        var nodeAgent = Kit.CreateTestProbe();
        var (gatekeeper, epoch) = await StartAsync("early-fetch", maxRunning: 4, maxQueued: null, nodeAgent);
        var other = await AnnouncedAgentAsync(gatekeeper, epoch);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "block-fetch") { MayWait = false, Block = true, Fetch = true }, other);
        Assert.Equal((0, 0, true), Counts(await StatusAsync(gatekeeper)));
        Assert.False(other.HasMessages); // no answer yet (a local probe receives synchronously, so a refusal would be there)

        gatekeeper.Tell(new LimiterAnnounce(epoch, NodeAddress, [], [], []), nodeAgent);
        Assert.Equal(new RemoteGranted(epoch, 1, 2, 0) { Block = 2 }, await other.ExpectMsgAsync<RemoteGranted>()); // half the free permits: two agents
        Assert.Equal((2, 0, false), Counts(await StatusAsync(gatekeeper)));
    }

    private static (int Running, int Waiting, bool Recovering) Counts(ClusterLimiterStatus status) => (status.Running, status.Waiting, status.Recovering);
}
