using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>The node agent of a cluster limiter on its own, with a probe in the place of the hub proxy and the gatekeeper.</summary>
public sealed class LimiterAgentTests : ActorQueueTestKit
{
    private readonly Akka.TestKit.TestProbe _hub;
    private readonly IActorRef _agent;

    public LimiterAgentTests()
    {
        _hub = CreateTestProbe();
        _agent = Sys.ActorOf(LimiterAgentActor.Props(new LimiterAgentSetup("agent-test", new ClusterLimit(1, null, null, QueueFullMode.RejectNewcomer),
            _hub, new Address("akka.tcp", "actorqueue", "127.0.0.1", 1), new LimiterCounts(), new LimiterCounts(), new LimitMirror(1, null),
            HelloInterval: TimeSpan.FromMilliseconds(300))));
    }

    private ClusterAcquireRequest Request(string source) => new(source, PermitDemand.One, 0, null, _agent);

    [Fact]
    public async Task A_lost_first_contact_is_repeated_until_a_gatekeeper_answers_and_then_goes_direct()
    {
        var request = Request("caller");
        _agent.Tell(request);
        var first = await _hub.ExpectMsgAsync<LimiterEnvelope>();
        Assert.Equal((0L, 1L), (((RemoteAcquire)first.Message).Epoch, ((RemoteAcquire)first.Message).RequestId));

        // Suppose the proxy dropped it: the agent says hello again, through the proxy, while it has a request at stake.
        var hello = await _hub.ExpectMsgAsync<LimiterEnvelope>(TimeSpan.FromSeconds(5));
        Assert.IsType<AgentHello>(hello.Message);

        // A gatekeeper incarnation asks: the agent announces its waiting request to it, and from then on talks to it directly.
        var gatekeeper = CreateTestProbe();
        _agent.Tell(new RecoverLimiter("agent-test", 77), gatekeeper);
        var announce = await gatekeeper.ExpectMsgAsync<LimiterAnnounce>();
        Assert.Equal(77L, announce.Epoch);
        Assert.Equal([1L], announce.PendingIds);
        Assert.Equal(["caller"], announce.PendingSources);
        Assert.Empty(announce.Held);
        while (_hub.HasMessages)
        {
            Assert.IsType<AgentHello>((await _hub.ExpectMsgAsync<LimiterEnvelope>()).Message); // ticks before it followed
        }
        _agent.Tell(new RemoteGranted(77, 1, 1, 0), gatekeeper);
        var lease = await Within(request.Completion.AsTask());
        lease.Dispose();
        Assert.Equal(new RemoteRelease(77, 1), await gatekeeper.ExpectMsgAsync<RemoteRelease>());

        // Nothing at stake and a gatekeeper followed: a hello tick sends nothing. The status answer comes after the
        // tick is handled, and a local probe receives synchronously, so anything sent would already be there.
        _agent.Tell(HelloTick.Instance);
        await _agent.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance, TimeSpan.FromSeconds(5));
        Assert.False(_hub.HasMessages);
    }

    [Fact]
    public async Task A_grant_from_an_incarnation_the_agent_no_longer_follows_is_ignored()
    {
        var request = Request("caller");
        _agent.Tell(request);
        await _hub.ExpectMsgAsync<LimiterEnvelope>();
        var gatekeeper = CreateTestProbe();
        _agent.Tell(new RecoverLimiter("agent-test", 2), gatekeeper);
        await gatekeeper.ExpectMsgAsync<LimiterAnnounce>();

        _agent.Tell(new RemoteGranted(1, 1, 1, 0), gatekeeper); // from epoch 1: that gatekeeper's state is gone
        await _agent.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance, TimeSpan.FromSeconds(5)); // handled in order after it
        Assert.False(request.IsCompleted);

        _agent.Tell(new RemoteGranted(2, 1, 1, 0), gatekeeper);
        (await Within(request.Completion.AsTask())).Dispose();
    }
}
