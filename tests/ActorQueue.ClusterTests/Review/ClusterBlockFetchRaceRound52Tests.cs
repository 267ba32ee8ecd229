using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 52: a node's block fetch and its caller's acquire meet at the gatekeeper in that order. A caller that tries,
/// then acquires (ASP.NET Core's rate-limiting middleware does) on a node without a block sends both: the refused
/// attempt's wish makes the agent fetch, and the acquire follows. The gatekeeper grants the fetch the free permit as a
/// block and refuses the acquire for want of one. The agent here follows a probe as its gatekeeper, so the order is
/// the test's, not the machine's (ClusterRateLimiterTests' ASP.NET Core partitioned case met it about once in ten runs).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterBlockFetchRaceRound52Tests : OneNodeClusterTest
{
    private const long Epoch = 5;

    private Address NodeAddress => ActorQueueCluster.Get(Node).Cluster.SelfAddress;

    /// <summary>
    /// A limit of one with no queue: the fetch is granted the only permit as a block, the acquire refused for a full
    /// queue. The acquire is served from that block, its node's own, rather than refused while the block holds the permit
    /// unused. Failed before (<c>ae6451a</c>'s change taken out): the caller got
    /// <c>Rejected</c> ("queue depth (1) exceeds max_queued (0)"), an HTTP 429 in the middleware.
    /// </summary>
    [Fact]
    public async Task An_acquire_refused_for_the_permit_its_nodes_block_fetch_took_is_served_from_that_block()
    {
        var (agent, gatekeeper, counts) = await FollowingAgentAsync("fetch-first");
        var (fetch, acquire, caller) = await FetchThenAcquireAsync(agent, gatekeeper);

        agent.Tell(new RemoteGranted(Epoch, fetch, 1, 0) { Block = 1 }, gatekeeper.Ref);
        agent.Tell(new RemoteRejected(Epoch, acquire, 1, 0) { Kind = PermitRejectionKind.QueueFull }, gatekeeper.Ref);

        await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
        Assert.Equal(1, counts.Running); // the fetch's grant said the block holds the limit's only permit
    }

    /// <summary>
    /// The same with two acquires after the fetch, both refused: the older is served from the block although the younger
    /// still waits for its answer, and the younger, refused after it, is refused (the block's only permit is held).
    /// Failed before (the younger pending kept the older from the block): the older got <c>Rejected</c> — an older caller
    /// refused while a younger one of the same node would have been served.
    /// </summary>
    [Fact]
    public async Task The_older_of_two_refused_acquires_is_served_from_the_block_first()
    {
        var (agent, gatekeeper, _) = await FollowingAgentAsync("fetch-two");
        var (fetch, older, olderCaller) = await FetchThenAcquireAsync(agent, gatekeeper);
        var youngerCaller = Kit.CreateTestProbe();
        agent.Tell(new GatekeeperProtocol.Acquire("younger", 1), youngerCaller.Ref);
        var younger = (await gatekeeper.ExpectMsgAsync<RemoteAcquire>(ClusterNodes.StepTimeout)).RequestId;

        agent.Tell(new RemoteGranted(Epoch, fetch, 1, 0) { Block = 1 }, gatekeeper.Ref);
        agent.Tell(new RemoteRejected(Epoch, older, 1, 0) { Kind = PermitRejectionKind.QueueFull }, gatekeeper.Ref);
        await olderCaller.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
        agent.Tell(new RemoteRejected(Epoch, younger, 1, 0) { Kind = PermitRejectionKind.QueueFull }, gatekeeper.Ref);
        Assert.Equal(RejectionReason.QueueFull, (await youngerCaller.ExpectMsgAsync<GatekeeperProtocol.Rejected>(ClusterNodes.StepTimeout)).Kind);
    }

    /// <summary>
    /// The same, with a roll call of the same incarnation between the fetch and its grant: the roll call ends the fetch
    /// on the agent's books (a fetch is in no announcement, and one the incarnation dropped must not stop later ones), so
    /// its grant arrives as one for a request no longer waiting, with a block the node takes all the same. The cluster
    /// counts the grant carries are published as any grant's: the node's statistics showed the permit free while its own
    /// caller held it. Failed before: <c>Assert.Equal() Failure: Expected: 1, Actual: 0</c>
    /// (ClusterRateLimiterTests: "CurrentAvailablePermits" 1 with the partition's only permit held on that node).
    /// </summary>
    [Fact]
    public async Task A_block_granted_to_a_fetch_a_roll_call_ended_brings_the_cluster_counts_with_it()
    {
        var (agent, gatekeeper, counts) = await FollowingAgentAsync("fetch-roll-call");
        var (fetch, acquire, caller) = await FetchThenAcquireAsync(agent, gatekeeper);
        agent.Tell(new RecoverLimiter("fetch-roll-call", Epoch), gatekeeper.Ref); // asked again: the incarnation's roll call and directly
        Assert.Equal([acquire], (await gatekeeper.ExpectMsgAsync<LimiterAnnounce>(ClusterNodes.StepTimeout)).PendingIds);

        agent.Tell(new RemoteGranted(Epoch, fetch, 1, 0) { Block = 1 }, gatekeeper.Ref);
        agent.Tell(new RemoteRejected(Epoch, acquire, 1, 0) { Kind = PermitRejectionKind.QueueFull }, gatekeeper.Ref);

        await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
        Assert.Equal(1, counts.Running);
    }

    /// <summary>An agent of a limit of one with no queue, following <c>gatekeeper</c>'s incarnation <see cref="Epoch"/>, and the cluster counts it publishes.</summary>
    private async Task<(IActorRef Agent, Akka.TestKit.TestProbe Gatekeeper, LimiterCounts ClusterCounts)> FollowingAgentAsync(string name)
    {
        var counts = new LimiterCounts();
        var agent = Node.ActorOf(LimiterAgentActor.Props(new LimiterAgentSetup(name, new ClusterLimit(1, 0, null, QueueFullMode.RejectNewcomer),
            Kit.CreateTestProbe().Ref, NodeAddress, counts, new LimiterCounts(), new LimitMirror(1, 0), HelloInterval: TimeSpan.FromHours(1)) { Wish = _wish }));
        var gatekeeper = Kit.CreateTestProbe();
        agent.Tell(new RecoverLimiter(name, Epoch), gatekeeper.Ref);
        await gatekeeper.ExpectMsgAsync<LimiterAnnounce>(ClusterNodes.StepTimeout);
        return (agent, gatekeeper, counts);
    }

    private readonly BlockWish _wish = new();

    /// <summary>A refused attempt's wish (the agent fetches a block), then an actor's acquire (the agent sends it on): their request ids, and the caller.</summary>
    private async Task<(long Fetch, long Acquire, Akka.TestKit.TestProbe Caller)> FetchThenAcquireAsync(IActorRef agent, Akka.TestKit.TestProbe gatekeeper)
    {
        Assert.True(_wish.TryOpen());
        agent.Tell(WantBlock.Instance);
        var fetch = await gatekeeper.ExpectMsgAsync<RemoteAcquire>(ClusterNodes.StepTimeout);
        Assert.True(fetch.Fetch);
        var caller = Kit.CreateTestProbe();
        agent.Tell(new GatekeeperProtocol.Acquire("caller", 1), caller.Ref);
        var acquire = await gatekeeper.ExpectMsgAsync<RemoteAcquire>(ClusterNodes.StepTimeout);
        Assert.False(acquire.Fetch);
        return (fetch.RequestId, acquire.RequestId, caller);
    }
}
