using ActorQueue.Cluster;
using ActorQueue.Actors;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of b988a79 (an agent that left the incarnation it announced itself to is asked again; its re-announcement
/// replaces what it said), by helper 67. A production producer and router on one node, the hub and the lost incarnation
/// probes. Both FINDINGs are mended: a re-announced put waiting here is accepted past the bound; an adopted lease's
/// settle only owes the excess over its charge.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReannouncementReviewTests : OneNodeClusterTest
{
    private const string Name = "reannounced";

    /// <summary>
    /// FINDING. The producer's put waits for space at the live router (a finite timeout). A late request of a lost
    /// incarnation arrives; the producer announces the put there, and that incarnation accepts it (past the bound, as
    /// announced items must be) before it is lost: the producer holds the put as accepted. Once it says hello, the live
    /// router asks it again and its re-announcement carries the put; the router knows it as waiting and lets it "wait
    /// on". Its timer then expires: the router drops it and says EnqueueFull, which the producer ignores (the put was
    /// accepted). The item is in no queue, never runs, and its result never comes: an accepted item is lost, and the
    /// caller's <c>Done</c> never completes. Expected: a re-announced item is accepted past the bound, as the producer
    /// announces only puts some incarnation may have accepted (it cannot tell).
    /// </summary>
    [Fact]
    public async Task A_re_announced_put_that_waits_here_but_a_lost_incarnation_accepted_is_not_dropped_when_its_wait_expires()
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 1, maxDeliveries: 3), "router-waiting-" + Name);
        var hub = Kit.CreateTestProbe();
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 1, hub.Ref, new ProducerCounts(), TimeSpan.FromHours(1)));
        var first = new PutItem("\"first\"", -1);
        producer.Tell(first);
        router.Tell((await hub.ExpectMsgAsync<QueueEnvelope>()).Message, producer);
        Assert.True(await first.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout)); // first contact: the router is full

        // Waits for space at the live router; the timeout only needs to outlast the few messages below.
        var second = new PutItem("\"second\"", 5_000);
        producer.Tell(second);
        await Poll.ValueAsync(() => StatusAsync(router), status => status.WaitingPuts == 1, ClusterNodes.StepTimeout);

        var lost = Kit.CreateTestProbe();
        lost.Send(producer, new RecoverQueue(Name, 42));
        var announced = await lost.ExpectMsgAsync<ProducerAnnounce>();
        Assert.Equal([first.ItemId, second.ItemId], announced.ItemIds);
        lost.Reply(new EnqueueAccepted([first.ItemId, second.ItemId])); // the lost incarnation queued both, past the bound
        Assert.True(await second.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));
        Assert.True(await lost.Ref.GracefulStop(ClusterNodes.StepTimeout));
        var hello = await hub.ExpectMsgAsync<QueueEnvelope>();
        Assert.Equal(new AgentHello(42), hello.Message);
        router.Tell(hello.Message, producer); // asked again: it re-announces both, straight to the router

        // However the wait ends (taken at the re-announcement, or its timer), the accepted item must still be queued here.
        var status = await Poll.ValueAsync(() => StatusAsync(router), status => status.WaitingPuts == 0, ClusterNodes.StepTimeout);
        Assert.Equal(2, status.Queued); // failed: 1 — the second put was refused by its timer, and the producer ignored that
        Assert.False(second.Done.Task.IsCompleted);
    }

    /// <summary>
    /// FINDING (rates). A gatekeeper with a token rate (100 tokens an hour: no refill during the test) grants agent A
    /// lease 1 for all 100 tokens. A then follows a lost incarnation, which grants it lease 2 (100 tokens charged there,
    /// not here), and comes back: its re-announcement carries lease 2 as held, which <c>AdoptHeld</c> counts without
    /// charging the rates ("a successor's rates start empty anyway" — but this incarnation is not a successor: its
    /// rates started long ago). A settles lease 2 with 0 tokens used: the gatekeeper gives back 100 tokens it never
    /// charged, and grants agent B another 100 in the same period: 200 tokens granted here for a rate of 100.
    /// Expected: B's call (may not wait) is rejected — the refund of a lease this incarnation did not charge must not
    /// add to its rates (e.g. a re-adopted lease is marked uncharged and its settle gives back nothing, or only its excess
    /// is owed, as the agent already does for settles a lost incarnation did not confirm).
    /// </summary>
    [Fact]
    public async Task A_settle_of_a_lease_a_lost_incarnation_granted_gives_back_no_tokens_this_one_never_charged()
    {
        const string name = "reannounced-rates";
        var nodeAgent = Kit.CreateTestProbe();
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, nodeAgent.Ref));
        var rates = new ModelApiLimiterOptions(maxConcurrent: 8, requestsPerPeriod: 100, tokensPerPeriod: 100, TimeSpan.FromHours(1));
        var gatekeeper = Node.ActorOf(ClusterGatekeeperActor.Props(name, 8, null, QueueFullMode.RejectNewcomer, TimeSpan.Zero, TimeSpan.FromSeconds(30), rates),
            $"gatekeeper-{name}");
        var epoch = (await nodeAgent.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout)).Epoch;
        gatekeeper.Tell(new LimiterAnnounce(epoch, ActorQueueCluster.Get(Node).Cluster.SelfAddress, [], [], []), nodeAgent);

        var a = Kit.CreateTestProbe();
        gatekeeper.Tell(new AgentHello(0), a);
        await a.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout);
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [], [], []), a);
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "a-1") { Tokens = 100, MayWait = false }, a);
        Assert.Equal(1, (await a.ExpectMsgAsync<RemoteGranted>(ClusterNodes.StepTimeout)).RequestId); // the rate is spent

        gatekeeper.Tell(new AgentHello(42), a); // it followed a lost incarnation, which granted it lease 2
        Assert.Equal(new RecoverLimiter(name, epoch), await a.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout));
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [1, 2], [], []) { FollowedBefore = true }, a);
        gatekeeper.Tell(new RemoteSettle(epoch, 2, 1, ChargedTokens: 100, ActualTokens: 0), a);
        await a.ExpectMsgAsync<RemoteSettled>(ClusterNodes.StepTimeout);

        var b = Kit.CreateTestProbe();
        gatekeeper.Tell(new AgentHello(0), b);
        await b.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout);
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode2, [], [], []), b);
        gatekeeper.Tell(new RemoteAcquire(epoch, 7, "b-7") { Tokens = 100, MayWait = false }, b);
        var answer = await b.FishForMessageAsync(message => message is RemoteGranted or RemoteRejected, ClusterNodes.StepTimeout);
        Assert.IsType<RemoteRejected>(answer); // failed: granted — 100 more tokens in the period
    }

    /// <summary>
    /// Coverage (passes). A stale hello (an older epoch, sent through the hub before the agents' announcements) reaches
    /// the router after they announced: both are asked once more. The producer re-announces the item already at the
    /// worker: acknowledged again, not queued twice. The worker, given the item before it was asked again, re-announces
    /// itself busy: the item stays in flight (not finished), and its pull finishes it; nothing runs twice.
    /// </summary>
    [Fact]
    public async Task A_stale_hello_after_an_announcement_doubles_nothing()
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 5, maxDeliveries: 3), "router-stale-" + Name);
        var producer = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), producer);
        var epoch = (await producer.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout)).Epoch;
        var worker = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), worker);
        await worker.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        router.Tell(new WorkerAnnounce(epoch, Busy: false), worker);
        router.Tell(new ProducerAnnounce(epoch, 5, [1], ["\"once\""]), producer);
        Assert.Equal(new long[] { 1 }, (await producer.ExpectMsgAsync<EnqueueAccepted>(ClusterNodes.StepTimeout)).ItemIds);
        Assert.Equal(1, (await worker.ExpectMsgAsync<DispatchItem>(ClusterNodes.StepTimeout)).Envelope.ItemId);

        router.Tell(new AgentHello(17), producer); // stale: sent while following an older incarnation
        router.Tell(new AgentHello(17), worker);
        await producer.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        await worker.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        router.Tell(new ProducerAnnounce(epoch, 5, [1], ["\"once\""]), producer);
        Assert.Equal(new long[] { 1 }, (await producer.ExpectMsgAsync<EnqueueAccepted>(ClusterNodes.StepTimeout)).ItemIds); // acknowledged again
        router.Tell(new WorkerAnnounce(epoch, Busy: true), worker);
        var status = await StatusAsync(router);
        Assert.Equal((0, 1, 1L), (status.Queued, status.InFlight, status.Dispatched));

        router.Tell(new WorkerPull(epoch), worker);
        status = await StatusAsync(router);
        Assert.Equal((0, 0, 1L), (status.Queued, status.InFlight, status.Dispatched));
        Assert.False(worker.HasMessages);
    }

    private static readonly Address OtherNode = new("akka.tcp", "actorqueue", "10.0.0.9", 4053);

    private static readonly Address OtherNode2 = new("akka.tcp", "actorqueue", "10.0.0.10", 4053);

    private static Task<DistributedQueueStatus> StatusAsync(IActorRef router) =>
        router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout);
}
