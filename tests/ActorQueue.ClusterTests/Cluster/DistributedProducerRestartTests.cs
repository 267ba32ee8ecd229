using ActorQueue.Cluster;
using Akka.Actor;
using Akka.TestKit;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A distributed queue's producer agent restarted by its supervisor after a handler threw (here: a malformed message,
/// standing for any error in a handler) keeps what it owes its callers: its outstanding items, its ids and the router
/// it follows. Before, the new instance started empty: the old items were failed as "disposed" although the router
/// still ran them, the next ids repeated the old ones (the router took a new put for an item it knew), and the new
/// instance's puts, sent as a first contact, were dropped for good by a router that had this agent as announced.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedProducerRestartTests : OneNodeClusterTest
{
    private const string Name = "producer-restart";

    [Fact]
    public async Task A_restarted_producer_keeps_its_items_and_ids_and_its_next_put_is_queued()
    {
        var (router, producer) = Start("router-restart-put");
        var first = new PutItem("\"first\"", -1);
        producer.Tell(first);
        Assert.True(await first.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));

        producer.Tell(new EnqueueAccepted(null!)); // throws in the handler: the supervisor restarts the producer
        var second = new PutItem("\"second\"", -1);
        producer.Tell(second);

        Assert.True(await second.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout)); // before: never answered (dropped at the router)
        Assert.NotEqual(first.ItemId, second.ItemId); // before: 1 and 1
        Assert.Equal(2, (await StatusAsync(router)).Queued);
        Assert.False(first.Done.Task.IsCompleted); // before: failed as "disposed" while the router still held it
    }

    /// <summary>
    /// The message a handler threw on is lost to the actor: a batch that failed half-way has its registered items sent
    /// after the restart (the router takes an item it knows once) and the rest failed with the reason, never sent.
    /// </summary>
    [Fact]
    public async Task A_batch_the_producer_failed_on_is_sent_as_far_as_it_was_taken_and_the_rest_failed_with_the_reason()
    {
        var (router, producer) = Start("router-restart-batch");
        var first = new PutItem("\"first\"", -1);
        producer.Tell(first);
        Assert.True(await first.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));

        var taken = new PutItem("\"taken\"", -1);
        var after = new PutItem("\"after\"", -1);
        producer.Tell(new PutBatch([taken, null!, after])); // the null item throws after the first was registered

        Assert.True(await taken.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));
        var failed = await Assert.ThrowsAsync<InvalidOperationException>(() => after.Accepted.Task.WaitAsync(ClusterNodes.StepTimeout));
        Assert.IsType<NullReferenceException>(failed.InnerException);
        await Assert.ThrowsAsync<InvalidOperationException>(() => after.Done.Task.WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(2, (await StatusAsync(router)).Queued);
        Assert.False(first.Done.Task.IsCompleted);
    }

    /// <summary>A router and a producer on the node; the producer's hub is a probe that hands everything to the router.</summary>
    private (IActorRef Router, IActorRef Producer) Start(string routerName)
    {
        var router = Node.ActorOf(DistributedRouterActor.Props(Name, capacity: 5, maxDeliveries: 3), routerName);
        var hub = Kit.CreateTestProbe();
        hub.SetAutoPilot(new DelegateAutoPilot((sender, message) =>
        {
            router.Tell(((QueueEnvelope)message).Message, sender);
            return AutoPilot.KeepRunning;
        }));
        var producer = Node.ActorOf(DistributedProducerActor.Props(Name, 5, hub.Ref, new ProducerCounts(), TimeSpan.FromHours(1)));
        return (router, producer);
    }

    private static Task<DistributedQueueStatus> StatusAsync(IActorRef router) =>
        router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout);
}
