using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>A distributed queue's router on a one-node cluster, with probes for its producers and workers.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DistributedRouterTests : IAsyncLifetime
{
    private ClusterNodes _cluster = null!;
    private Akka.TestKit.Xunit2.TestKit _kit = null!;

    public async Task InitializeAsync()
    {
        _cluster = await ClusterNodes.StartAsync(1);
        _kit = new Akka.TestKit.Xunit2.TestKit(Node); // not disposed: that would shut the node down
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private ActorSystem Node => _cluster.Nodes[0];

    [Fact]
    public async Task A_new_router_serves_at_once_and_asks_every_member_and_each_stale_sender_once_to_announce()
    {
        // A member that is slow to answer (its producer never does): the router does not wait for it.
        var silentMember = _kit.CreateTestProbe();
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Queue, "routed", silentMember.Ref));
        var router = Node.ActorOf(DistributedRouterActor.Props("routed", capacity: 5, maxDeliveries: 3), "router-routed");
        var epoch = (await silentMember.ExpectMsgAsync<RecoverQueue>(ClusterNodes.StepTimeout)).Epoch;
        Assert.Equal(router, silentMember.LastSender);

        // A producer that follows no router yet: its put is dropped, and it is asked once to announce itself.
        var producer = _kit.CreateTestProbe();
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
        var worker = _kit.CreateTestProbe();
        router.Tell(new WorkerAnnounce(epoch, Busy: false), worker);
        var dispatched = await worker.ExpectMsgAsync<DispatchItem>();
        Assert.Equal((epoch, 1L, 1), (dispatched.Epoch, dispatched.Envelope.ItemId, dispatched.Envelope.Deliveries));
        Assert.Equal((1, 1), Counts(await router.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, ClusterNodes.StepTimeout)));
    }

    private static (int Queued, int InFlight) Counts(DistributedQueueStatus status) => (status.Queued, status.InFlight);
}
