using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of bdbf719 with a production producer agent and router on one node, the singleton's hand-overs played by
/// hand (a probe stands for an incarnation that is lost): deterministic versions of the races a hand-over opens.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedQueueFirstContactReviewTestsOnOneNode : OneNodeClusterTest
{
    private const string Name = "handed-over";

    /// <summary>
    /// A fresh producer's zero-timeout put reaches a router that drops it (epoch 0) and asks the producer to announce;
    /// the router is lost before the producer's answer (an empty announcement and the put, sent again) reaches it. The
    /// review expected the next, full router to refuse it; decided otherwise: the put was sent to a router the producer
    /// followed, which may have queued it before it was lost (its answer lost with it), and the producer cannot tell, so
    /// it announces the put and the next router queues it past maxSize rather than lose an accepted item (at-least-once,
    /// the README's promise). This test guards that choice: a producer that dropped or refused such a put would fail it.
    /// </summary>
    [Fact]
    public async Task A_put_sent_to_a_router_lost_before_it_answered_is_announced_to_the_next_past_the_bound()
    {
        var router = await FullRouterAsync();
        var hub = Kit.CreateTestProbe();
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 1, hub.Ref, new ProducerCounts(), TimeSpan.FromHours(1)));
        var put = new PutItem("\"zero timeout\"", 0);
        producer.Tell(put);
        Assert.Equal(0, ((RemoteEnqueue)(await hub.ExpectMsgAsync<QueueEnvelope>()).Message).Epoch); // dropped by the lost router

        // The lost incarnation asked the producer to announce; its answer goes nowhere.
        var lost = Kit.CreateTestProbe();
        lost.Send(producer, new RecoverQueue(Name, 42));
        Assert.Empty((await lost.ExpectMsgAsync<ProducerAnnounce>()).ItemIds);
        await lost.ExpectMsgAsync<RemoteEnqueue>();
        Assert.True(await lost.Ref.GracefulStop(ClusterNodes.StepTimeout));

        // Its hello reaches the new incarnation, which asks it to announce.
        var hello = await hub.ExpectMsgAsync<QueueEnvelope>();
        router.Tell(hello.Message, producer);

        Assert.True(await put.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout)); // announced: kept, as the lost router may have accepted it
        Assert.Equal(2, (await router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout)).Queued);
    }

    /// <summary>
    /// The same cause as bdbf719's defect, for a producer that followed an incarnation before: a put made after that
    /// incarnation was lost (so no router can have accepted it) goes with the lost epoch, which the new router drops;
    /// it then reaches the router in the producer's announcement and is queued past maxSize, a zero-timeout put on a
    /// full queue accepted.
    /// </summary>
    [Fact]
    public async Task A_put_made_while_no_router_is_followed_after_a_hand_over_meets_the_bound()
    {
        var router = await FullRouterAsync();
        var hub = Kit.CreateTestProbe();
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 1, hub.Ref, new ProducerCounts(), TimeSpan.FromHours(1)));
        var lost = Kit.CreateTestProbe();
        lost.Send(producer, new RecoverQueue(Name, 42));
        await lost.ExpectMsgAsync<ProducerAnnounce>();
        Assert.True(await lost.Ref.GracefulStop(ClusterNodes.StepTimeout));
        await Poll.UntilAsync(() => ThroughHub(producer, hub), ClusterNodes.StepTimeout, "the producer took the loss: it sends through the hub again");

        var put = new PutItem("\"zero timeout\"", 0);
        producer.Tell(put);
        var enqueue = await hub.FishForMessageAsync<QueueEnvelope>(envelope => envelope.Message is RemoteEnqueue, ClusterNodes.StepTimeout);
        router.Tell(enqueue.Message, producer);

        Assert.False(await put.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout)); // refused: the queue is full
        Assert.Equal(1, (await router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout)).Queued);
    }

    /// <summary>
    /// The variant fixed: the producer followed an incarnation and saw it stop, then made its contact with the new one;
    /// the stopped one's late request to announce is ignored (<c>SingletonLink</c> remembers incarnations it saw stop),
    /// so later puts still go to the live router. Failed before (the producer followed the dead incarnation again and
    /// the later put was never answered).
    /// </summary>
    [Fact]
    public async Task A_late_request_of_a_router_the_producer_saw_stop_is_ignored()
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 5, maxDeliveries: 3), "router-late-" + Name);
        var hub = Kit.CreateTestProbe();
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 5, hub.Ref, new ProducerCounts(), TimeSpan.FromHours(1)));
        var lost = Kit.CreateTestProbe();
        lost.Send(producer, new RecoverQueue(Name, 42));
        await lost.ExpectMsgAsync<ProducerAnnounce>();
        Assert.True(await lost.Ref.GracefulStop(ClusterNodes.StepTimeout));
        await Poll.UntilAsync(() => ThroughHub(producer, hub), ClusterNodes.StepTimeout, "the producer took the loss: it sends through the hub again");
        var first = new PutItem("\"first\"", -1);
        producer.Tell(first);
        router.Tell((await hub.FishForMessageAsync<QueueEnvelope>(envelope => envelope.Message is RemoteEnqueue, ClusterNodes.StepTimeout)).Message, producer);
        Assert.True(await first.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout)); // its contact with the live router

        producer.Tell(new RecoverQueue(Name, 42), lost.Ref); // the stopped router's request, late
        var later = new PutItem("\"later\"", 0);
        producer.Tell(later);

        Assert.True(await later.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));
    }

    /// <summary>
    /// A fresh producer's first contact is with the new incarnation; the lost incarnation's request to announce (sent
    /// before it was lost, by another path) arrives after it. The producer follows the lost one (epochs are random: it
    /// cannot tell it from a newer one) and, when it learns of the loss, says hello and puts through the hub with the
    /// lost epoch. Failed before: the live router had its announcement, so it ignored the hello and dropped the put
    /// without asking again, and every later put was dropped and never answered — a zero-timeout put neither accepted
    /// nor refused. Now the router asks the producer again, which re-announces the first put (known there: queued
    /// once) and sends the later one again.
    /// </summary>
    [Fact]
    public async Task A_late_request_of_a_lost_incarnation_after_the_first_contact_does_not_strand_later_puts()
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 5, maxDeliveries: 3), "router-" + Name);
        var hub = Kit.CreateTestProbe();
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 5, hub.Ref, new ProducerCounts(), TimeSpan.FromHours(1)));
        var firstPut = new PutItem("\"first\"", -1);
        producer.Tell(firstPut);
        router.Tell((await hub.ExpectMsgAsync<QueueEnvelope>()).Message, producer);
        Assert.True(await firstPut.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout)); // first contact with the new incarnation

        var lost = Kit.CreateTestProbe();
        lost.Send(producer, new RecoverQueue(Name, 42));
        Assert.Equal([firstPut.ItemId], (await lost.ExpectMsgAsync<ProducerAnnounce>()).ItemIds);
        Assert.True(await lost.Ref.GracefulStop(ClusterNodes.StepTimeout));
        var hello = await hub.ExpectMsgAsync<QueueEnvelope>();
        Assert.Equal(new AgentHello(42), hello.Message);
        var later = new PutItem("\"later\"", 0);
        producer.Tell(later);
        var enqueue = await hub.ExpectMsgAsync<QueueEnvelope>(); // it follows none: through the hub, with the lost epoch
        Assert.Equal(42, ((RemoteEnqueue)enqueue.Message).Epoch);
        router.Tell(hello.Message, producer);
        router.Tell(enqueue.Message, producer);

        Assert.True(await later.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(2, (await router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout)).Queued);
    }

    /// <summary>
    /// The worker's side: a worker given an item follows a late request of a lost incarnation, finishes the item (its
    /// pull goes nowhere) and, that incarnation gone, says hello. The live router asks it again and it re-announces
    /// itself free: its item has its result, so it is finished there — not put back and run again when the worker stops
    /// later. Nothing is dispatched to a worker asked again until it re-announced itself.
    /// </summary>
    [Fact]
    public async Task A_worker_that_re_announces_itself_free_has_finished_the_item_it_was_given()
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 5, maxDeliveries: 3), "router-worker-" + Name);
        var producer = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), producer);
        var epoch = (await producer.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout)).Epoch;
        var worker = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), worker);
        await worker.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        router.Tell(new WorkerAnnounce(epoch, Busy: false), worker);
        router.Tell(new ProducerAnnounce(epoch, 5, [1], ["\"runs once\""]), producer);
        Assert.Equal(1, (await worker.ExpectMsgAsync<DispatchItem>(ClusterNodes.StepTimeout)).Envelope.ItemId);

        router.Tell(new AgentHello(42), worker); // it followed the lost incarnation, finished the item, and lost it
        Assert.Equal(new RecoverQueue(Name, epoch), await worker.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout));
        router.Tell(new WorkerAnnounce(epoch, Busy: false), worker);
        Assert.True(await worker.Ref.GracefulStop(ClusterNodes.StepTimeout));
        var status = await Poll.ValueAsync(() => router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout),
            status => status.Workers == 0, ClusterNodes.StepTimeout); // the worker's stop is handled
        Assert.Equal((0, 0L), (status.Queued, status.Redelivered)); // item 1 had its result: not put back

        var asked = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), asked);
        await asked.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        router.Tell(new WorkerAnnounce(epoch, Busy: false), asked);
        router.Tell(new AgentHello(42), asked);
        await asked.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        router.Tell(new RemoteEnqueue(epoch, [2], ["\"waits for the worker's announcement\""], -1, 5), producer);
        Assert.Equal(1, (await router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout)).Queued); // not given to the worker asked
        router.Tell(new WorkerAnnounce(epoch, Busy: false), asked);
        Assert.Equal(2, (await asked.ExpectMsgAsync<DispatchItem>(ClusterNodes.StepTimeout)).Envelope.ItemId);
    }

    /// <summary>
    /// A second request of the same incarnation (through the node's host, after the direct one) reaches the fresh
    /// producer after its first contact: its full announcement is ignored by the router (announced already), so the
    /// waiting put still waits and the refused one stays refused, nothing is queued past the bound or twice.
    /// </summary>
    [Fact]
    public async Task A_second_request_of_the_same_incarnation_after_the_first_contact_changes_nothing()
    {
        var router = await FullRouterAsync();
        var hub = Kit.CreateTestProbe();
        var counts = new ProducerCounts();
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 1, hub.Ref, counts, TimeSpan.FromHours(1)));
        var waiting = new PutItem("\"waits\"", -1);
        var refused = new PutItem("\"refused\"", 0);
        producer.Tell(waiting);
        producer.Tell(refused);
        router.Tell((await hub.ExpectMsgAsync<QueueEnvelope>()).Message, producer);
        router.Tell((await hub.ExpectMsgAsync<QueueEnvelope>()).Message, producer);
        Assert.False(await refused.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(1, (await router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout)).WaitingPuts);

        var stranger = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), stranger); // for the epoch
        var recover = await stranger.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        producer.Tell(recover, router);
        var status = await producer.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout); // after its announcement
        Assert.Equal((1, 1), (status.Queued, status.WaitingPuts));
        Assert.False(waiting.Accepted.Task.IsCompleted);
        Assert.Equal((0L, 1L), (counts.Accepted, counts.Rejected));
    }

    /// <summary>
    /// A fresh producer's put, sent again at its first contact, waits for space at a router whose node then leaves; that
    /// router's refusal (the put's timeout ran out there before it stopped) reaches the producer after the next
    /// incarnation's request (another sender, another path: no order between them). The producer has announced the put
    /// to the new router, which queues it; the refusal then tells the caller "not taken" — yet the item is queued and
    /// will run (its result then counts as a duplicate). A put reported refused must not be processed.
    /// </summary>
    [Fact]
    public async Task A_refusal_of_a_lost_router_that_arrives_after_the_put_was_announced_to_the_next_does_not_leave_it_queued()
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 5, maxDeliveries: 3), "router-" + Name);
        var hub = Kit.CreateTestProbe();
        var counts = new ProducerCounts();
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 5, hub.Ref, counts, TimeSpan.FromHours(1)));
        var put = new PutItem("\"waits at the lost router\"", 50);
        producer.Tell(put);
        await hub.ExpectMsgAsync<QueueEnvelope>(); // epoch 0: dropped
        var lost = Kit.CreateTestProbe();
        lost.Send(producer, new RecoverQueue(Name, 42));
        await lost.ExpectMsgAsync<ProducerAnnounce>();
        var resent = await lost.ExpectMsgAsync<RemoteEnqueue>(); // it waits there for space, then times out

        var stranger = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), stranger); // for the new incarnation's epoch
        var recover = await stranger.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        producer.Tell(recover, router); // the new incarnation's request ...
        lost.Send(producer, new EnqueueFull(resent.ItemIds[0])); // ... before the lost one's refusal

        var accepted = await put.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout);
        var status = await producer.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout); // after its announcement
        Assert.Equal((accepted ? 1 : 0, accepted ? 0L : 1L), (status.Queued, counts.Rejected));
    }

    /// <summary>
    /// The same race for a put made after the first contact (the producer follows the router that is then lost): the
    /// cause is older than bdbf719, which exposes the first puts of a handle to it (they were never refused before).
    /// </summary>
    [Fact]
    public async Task A_refusal_of_a_lost_router_that_arrives_after_a_later_put_was_announced_to_the_next_does_not_leave_it_queued()
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 5, maxDeliveries: 3), "router-" + Name);
        var hub = Kit.CreateTestProbe();
        var counts = new ProducerCounts();
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 5, hub.Ref, counts, TimeSpan.FromHours(1)));
        var lost = Kit.CreateTestProbe();
        lost.Send(producer, new RecoverQueue(Name, 42));
        await lost.ExpectMsgAsync<ProducerAnnounce>();
        var put = new PutItem("\"waits at the lost router\"", 50);
        producer.Tell(put);
        var sent = await lost.ExpectMsgAsync<RemoteEnqueue>(); // it waits there for space, then times out

        var stranger = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), stranger); // for the new incarnation's epoch
        var recover = await stranger.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout);
        producer.Tell(recover, router); // the new incarnation's request ...
        lost.Send(producer, new EnqueueFull(sent.ItemIds[0])); // ... before the lost one's refusal

        var accepted = await put.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout);
        var status = await producer.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout); // after its announcement
        Assert.Equal((accepted ? 1 : 0, accepted ? 0L : 1L), (status.Queued, counts.Rejected));
    }

    /// <summary>A router for <see cref="Name"/> with capacity 1, filled by a probe producer's announced item.</summary>
    private async Task<IActorRef> FullRouterAsync()
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 1, maxDeliveries: 3), "router-" + Name);
        var filler = Kit.CreateTestProbe();
        router.Tell(new AgentHello(0), filler);
        var epoch = (await filler.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout)).Epoch;
        router.Tell(new ProducerAnnounce(epoch, 1, [1], ["\"fills it\""]), filler);
        await filler.ExpectMsgAsync<EnqueueAccepted>(ClusterNodes.StepTimeout);
        return router;
    }

    /// <summary>Whether a status ask of the producer goes through the hub now (else to the incarnation it follows).</summary>
    private bool ThroughHub(IActorRef producer, Akka.TestKit.TestProbe hub)
    {
        Kit.CreateTestProbe().Send(producer, GetQueueStatus.Instance);
        return hub.ReceiveOne(TimeSpan.FromMilliseconds(100)) is QueueEnvelope { Message: GetQueueStatus };
    }
}
