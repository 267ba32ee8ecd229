using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A cluster limiter's node agent whose handler throws (a defect, or a message it cannot read) keeps its books: the
/// callers waiting go on waiting and are answered, the leases held are still released to the gatekeeper, and it still
/// follows the same incarnation. Before, Akka's default supervision restarted it empty: its waiters failed as
/// "disposed", releases of its leases were ignored (the gatekeeper's permits leaked), a request whose grant it failed
/// on was never answered, and its next requests went out as a first contact.
/// </summary>
public sealed class LimiterAgentRestartTests : ActorQueueTestKit
{
    private const string Name = "agent-restart";
    private readonly Akka.TestKit.TestProbe _hub;
    private readonly IActorRef _agent;

    public LimiterAgentRestartTests()
    {
        _hub = CreateTestProbe();
        var setup = new LimiterAgentSetup(Name, new ClusterLimit(3, null, null, QueueFullMode.RejectNewcomer), _hub,
            new Address("akka.tcp", "actorqueue", "127.0.0.1", 1), new LimiterCounts(), new LimiterCounts(), new LimitMirror(3, null),
            HelloInterval: TimeSpan.FromHours(1));
        _agent = Sys.ActorOf(Props.Create(() => new DefectiveAgent(setup)));
    }

    private ClusterAcquireRequest Request(string source) => new(source, PermitDemand.One, 0, null, _agent);

    /// <summary>Which incarnation an acquire went to, and its request id.</summary>
    private static (long Epoch, long RequestId) Sent(RemoteAcquire acquire) => (acquire.Epoch, acquire.RequestId);

    /// <summary>Makes a probe the gatekeeper incarnation the agent follows, as of its announcement.</summary>
    private async Task<Akka.TestKit.TestProbe> FollowAsync(long epoch)
    {
        var gatekeeper = CreateTestProbe();
        _agent.Tell(new RecoverLimiter(Name, epoch), gatekeeper);
        await gatekeeper.ExpectMsgAsync<LimiterAnnounce>();
        return gatekeeper;
    }

    [Fact]
    public async Task A_handler_that_throws_leaves_the_agents_waiters_leases_and_gatekeeper_as_they_were()
    {
        var gatekeeper = await FollowAsync(5);
        var held = Request("held");
        _agent.Tell(held);
        Assert.Equal(1, (await gatekeeper.ExpectMsgAsync<RemoteAcquire>()).RequestId);
        _agent.Tell(new RemoteGranted(5, 1, 1, 0), gatekeeper);
        var lease = await Within(held.Completion.AsTask());
        var waiting = Request("waiting");
        _agent.Tell(waiting);
        Assert.Equal(2, (await gatekeeper.ExpectMsgAsync<RemoteAcquire>()).RequestId);
        var actor = CreateTestProbe();
        _agent.Tell(new GatekeeperProtocol.Acquire("actor", 7), actor);
        Assert.Equal(3, (await gatekeeper.ExpectMsgAsync<RemoteAcquire>()).RequestId);

        _agent.Tell(DefectiveAgent.Defect.Instance);

        // The waiters are still the agent's: granted when the gatekeeper grants them.
        _agent.Tell(new RemoteGranted(5, 2, 2, 1), gatekeeper);
        (await Within(waiting.Completion.AsTask())).Dispose();
        Assert.Equal(new RemoteRelease(5, 2), await gatekeeper.ExpectMsgAsync<RemoteRelease>());
        _agent.Tell(new RemoteGranted(5, 3, 2, 0), gatekeeper);
        Assert.Equal(new GatekeeperProtocol.Granted(7, 3), await actor.ExpectMsgAsync<GatekeeperProtocol.Granted>());

        // The leases held before are released to the incarnation it follows, and new requests go straight to it.
        lease.Dispose();
        Assert.Equal(new RemoteRelease(5, 1), await gatekeeper.ExpectMsgAsync<RemoteRelease>());
        _agent.Tell(new GatekeeperProtocol.Release(3), actor);
        Assert.Equal(new RemoteRelease(5, 3), await gatekeeper.ExpectMsgAsync<RemoteRelease>());
        _agent.Tell(Request("after"));
        Assert.Equal((5L, 4L), Sent(await gatekeeper.ExpectMsgAsync<RemoteAcquire>()));
    }

    /// <summary>
    /// The handler fails half-way through a grant (here: a reply whose rates cannot be read, after the request left the
    /// waiting list): the request the message was about is answered with a failure that names the cause, and its grant
    /// goes back to the gatekeeper; the agent goes on.
    /// </summary>
    [Fact]
    public async Task A_grant_the_agent_fails_on_fails_its_request_with_the_cause_and_goes_back_to_the_gatekeeper()
    {
        var gatekeeper = await FollowAsync(5);
        var request = Request("caller");
        _agent.Tell(request);
        await gatekeeper.ExpectMsgAsync<RemoteAcquire>();
        var actor = CreateTestProbe();
        _agent.Tell(new GatekeeperProtocol.Acquire("actor", 7), actor);
        await gatekeeper.ExpectMsgAsync<RemoteAcquire>();

        _agent.Tell(new RemoteGranted(5, 1, 1, 1) { Rates = null! }, gatekeeper);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Within(request.Completion.AsTask()));
        Assert.IsType<NullReferenceException>(error.InnerException);
        Assert.Contains($"cluster limiter '{Name}'", error.Message, StringComparison.Ordinal);
        Assert.Equal(new RemoteCancel(5, 1), await gatekeeper.ExpectMsgAsync<RemoteCancel>());

        _agent.Tell(new RemoteGranted(5, 2, 2, 0) { Rates = null! }, gatekeeper);
        var rejected = await actor.ExpectMsgAsync<GatekeeperProtocol.Rejected>();
        Assert.Equal(7, rejected.RequestId);
        Assert.Contains(nameof(NullReferenceException), rejected.Reason, StringComparison.Ordinal);
        Assert.Equal(new RemoteCancel(5, 2), await gatekeeper.ExpectMsgAsync<RemoteCancel>());

        var next = Request("next");
        _agent.Tell(next);
        Assert.Equal((5L, 3L), Sent(await gatekeeper.ExpectMsgAsync<RemoteAcquire>()));
        _agent.Tell(new RemoteGranted(5, 3, 1, 0), gatekeeper);
        (await Within(next.Completion.AsTask())).Dispose();
    }
}
