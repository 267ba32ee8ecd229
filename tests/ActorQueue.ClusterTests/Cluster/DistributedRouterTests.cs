using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>A distributed queue's router on a one-node cluster, with probes for its producers and workers.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedRouterTests : OneNodeClusterTest
{
    [Fact]
    public async Task A_new_router_serves_at_once_and_asks_every_member_and_each_stale_sender_once_to_announce()
    {
        // A member that is slow to answer (its producer never does): the router does not wait for it.
        var silentMember = Kit.CreateTestProbe();
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Queue, "routed", silentMember.Ref));
        var router = Node.ActorOf(DistributedRouterActor.Props("routed", capacity: 5, maxDeliveries: 3), "router-routed");
        var epoch = (await silentMember.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout)).Epoch;
        Assert.Equal(router, silentMember.LastSender);

        // A producer that follows no router yet: its put is dropped, and it is asked once to announce itself.
        var producer = Kit.CreateTestProbe();
        router.Tell(new RemoteEnqueue(0, [1], ["\"one\""], -1, 5), producer);
        router.Tell(new RemoteEnqueue(0, [2], ["\"two\""], -1, 5), producer);
        router.Tell(new AgentHello(0), producer);
        Assert.Equal(new RecoverQueue("routed", epoch), await producer.ExpectMsgAsync<RecoverQueue>());
        Assert.Equal(0, (await router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout)).Queued);
        Assert.False(producer.HasMessages); // nothing else: the status answer came after all three

        // Its announcement carries both items: they are in the queue at once, and go to the first free worker.
        router.Tell(new ProducerAnnounce(epoch, 5, [1, 2], ["\"one\"", "\"two\""]), producer);
        var accepted = await producer.ExpectMsgAsync<EnqueueAccepted>();
        Assert.Equal([1L, 2L], accepted.ItemIds);
        var worker = Kit.CreateTestProbe();
        router.Tell(new WorkerAnnounce(epoch, Busy: false), worker);
        var dispatched = await worker.ExpectMsgAsync<DispatchItem>();
        Assert.Equal((epoch, 1L, 1), (dispatched.Epoch, dispatched.Envelope.ItemId, dispatched.Envelope.Deliveries));
        Assert.Equal((1, 1), Counts(await router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout)));
    }

    private static (int Queued, int InFlight) Counts(DistributedQueueStatus status) => (status.Queued, status.InFlight);
}
