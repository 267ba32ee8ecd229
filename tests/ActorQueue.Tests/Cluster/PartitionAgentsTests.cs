using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>A node's parent of partition agents on its own, with a probe in the place of the hub proxy and the node host.</summary>
public sealed class PartitionAgentsTests : ActorQueueTestKit
{
    private readonly Akka.TestKit.TestProbe _hub;
    private readonly PartitionCount _count = new();
    private readonly IActorRef _parent;

    public PartitionAgentsTests()
    {
        _hub = CreateTestProbe();
        var template = new LimiterAgentSetup("tenants", new ClusterLimit(1, null, null, QueueFullMode.RejectNewcomer), _hub,
            new Address("akka.tcp", "actorqueue", "127.0.0.1", 1), new LimiterCounts(), new LimiterCounts(), new LimitMirror(1, null),
            HelloInterval: TimeSpan.FromMinutes(1)) { IdleTimeout = TimeSpan.FromMinutes(1) };
        _parent = Sys.ActorOf(PartitionAgentsActor.Props(template, CreateTestProbe().Ref, _count));
    }

    private ClusterAcquireRequest Request(string key) => new("caller", PermitDemand.One, 0, null, _parent) { Partition = key };

    [Fact]
    public async Task An_idle_report_that_missed_a_routed_request_does_not_stop_the_agent()
    {
        var first = Request("k");
        _parent.Tell(first);
        var envelope = await _hub.ExpectMsgAsync<LimiterEnvelope>();
        Assert.Equal((PartitionAgentsActor.PartitionName("tenants", "k"), TimeSpan.FromMinutes(1)), (envelope.Name, envelope.IdleTimeout));
        var agent = await Sys.ActorSelection(_parent.Path / "*").ResolveOne(Dilated(TimeSpan.FromSeconds(10)));

        // The agent found itself idle before the request reached it (it had seen 0 routed messages): the report is stale.
        _parent.Tell(new ActorQueue.Cluster.PartitionIdle("k", 0), agent);
        var second = Request("k");
        _parent.Tell(second); // routed to the same agent: it was not stopped
        Assert.Equal(2L, ((RemoteAcquire)(await _hub.ExpectMsgAsync<LimiterEnvelope>()).Message).RequestId);
        Assert.Equal(1, _count.Value);
        Assert.False(first.IsCompleted);

        // A report that saw every routed message stops it; the next request for the key goes to a new agent.
        Watch(agent);
        _parent.Tell(new ActorQueue.Cluster.PartitionIdle("k", 2), agent);
        await ExpectTerminatedAsync(agent);
        Assert.IsType<ObjectDisposedException>(await Assert.ThrowsAnyAsync<Exception>(() => Within(first.Completion.AsTask())));
        Assert.Equal(0, _count.Value);
        _parent.Tell(Request("k"));
        Assert.Equal(1L, ((RemoteAcquire)(await _hub.ExpectMsgAsync<LimiterEnvelope>()).Message).RequestId);
    }
}
