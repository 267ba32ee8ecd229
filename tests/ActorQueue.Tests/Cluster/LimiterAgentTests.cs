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
    private readonly LimitMirror _limits = new(1, null);

    public LimiterAgentTests()
    {
        _hub = CreateTestProbe();
        _agent = Sys.ActorOf(LimiterAgentActor.Props(new LimiterAgentSetup("agent-test", new ClusterLimit(1, null, null, QueueFullMode.RejectNewcomer),
            _hub, new Address("akka.tcp", "actorqueue", "127.0.0.1", 1), new LimiterCounts(), new LimiterCounts(), _limits,
            HelloInterval: TimeSpan.FromMilliseconds(300))));
    }

    private ClusterAcquireRequest Request(string source, int permits = 1, int priority = 0, TimeSpan? timeout = null) =>
        new(source, new PermitDemand(permits), priority, timeout, _agent);

    /// <summary>Makes a probe the gatekeeper incarnation the agent follows; returns it after the agent's announcement.</summary>
    private async Task<(Akka.TestKit.TestProbe Gatekeeper, LimiterAnnounce Announce)> FollowAsync(long epoch)
    {
        var gatekeeper = CreateTestProbe();
        _agent.Tell(new RecoverLimiter("agent-test", epoch), gatekeeper);
        return (gatekeeper, await gatekeeper.ExpectMsgAsync<LimiterAnnounce>());
    }

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
        await _agent.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance, Dilated(TimeSpan.FromSeconds(10)));
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
        await _agent.Ask<GatekeeperProtocol.Status>(GatekeeperProtocol.GetStatus.Instance, Dilated(TimeSpan.FromSeconds(10))); // handled in order after it
        Assert.False(request.IsCompleted);

        _agent.Tell(new RemoteGranted(2, 1, 1, 0), gatekeeper);
        (await Within(request.Completion.AsTask())).Dispose();
    }

    [Fact]
    public async Task A_wait_timeout_runs_on_the_agent_withdraws_the_request_at_the_gatekeeper_and_names_the_limiter()
    {
        var (gatekeeper, _) = await FollowAsync(5);
        var request = Request("patient", permits: 2, timeout: TimeSpan.FromMilliseconds(100));
        _agent.Tell(request);
        Assert.Equal(new RemoteAcquire(5, 1, "patient") { Permits = 2 }, await gatekeeper.ExpectMsgAsync<RemoteAcquire>());
        _agent.Tell(new RemoteQueued(5, 1, 1, 1), gatekeeper);

        var error = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(request.Completion.AsTask()));
        Assert.Equal(("agent-test", TimeSpan.FromMilliseconds(100), 2), (error.LimiterName, error.WaitTimeout, error.Permits));
        Assert.Equal(new RemoteCancel(5, 1), await gatekeeper.ExpectMsgAsync<RemoteCancel>());

        // A zero timeout is decided by the gatekeeper: the request says it may not wait.
        var impatient = Request("impatient", timeout: TimeSpan.Zero);
        _agent.Tell(impatient);
        Assert.False((await gatekeeper.ExpectMsgAsync<RemoteAcquire>()).MayWait);
        _agent.Tell(new RemoteRejected(5, 2, 2, 0) { Kind = PermitRejectionKind.WouldWait }, gatekeeper);
        Assert.Equal(TimeSpan.Zero, (await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(impatient.Completion.AsTask()))).WaitTimeout);
    }

    [Fact]
    public async Task Rejections_reach_the_caller_as_the_exception_of_their_kind()
    {
        var (gatekeeper, _) = await FollowAsync(5);
        var evicted = Request("evicted");
        var tooLarge = Request("too-large", permits: 3);
        var full = Request("full");
        _agent.Tell(evicted);
        _agent.Tell(tooLarge);
        _agent.Tell(full);
        _agent.Tell(new RemoteRejected(5, 1, 2, 1) { Kind = PermitRejectionKind.Evicted }, gatekeeper);
        _agent.Tell(new RemoteRejected(5, 2, 1, 0) { Kind = PermitRejectionKind.ExceedsLimit, Requested = 3, Limit = 2 }, gatekeeper);
        _agent.Tell(new RemoteRejected(5, 3, 2, 1), gatekeeper);

        Assert.Contains("Evicted", (await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(evicted.Completion.AsTask()))).Message, StringComparison.Ordinal);
        var range = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Within(tooLarge.Completion.AsTask()));
        Assert.Equal(("permits", 3L), (range.ParamName, (long)range.ActualValue!));
        Assert.Equal(ConcurrencyLimitExceededException.FormatMessage(2, 1, "agent-test"),
            (await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(full.Completion.AsTask()))).Message);
    }

    [Fact]
    public async Task The_announcement_carries_each_requests_permits_and_priority_and_the_newest_limit()
    {
        var (gatekeeper, _) = await FollowAsync(5);
        _agent.Tell(Request("held", permits: 3));
        _agent.Tell(Request("waiting", permits: 2, priority: 4));
        _agent.Tell(Request("impatient", timeout: TimeSpan.Zero)); // its first send may be dropped by a new gatekeeper: the announcement must say it may not wait
        _agent.Tell(new RemoteGranted(5, 1, 3, 1), gatekeeper);
        _agent.Tell(new LimitChanged(4, 6, 7), gatekeeper);
        _agent.Tell(new LimitChanged(3, 9, null), gatekeeper); // older: ignored
        await Poll.UntilAsync(() => _limits.Current.Version == 4, TimeSpan.FromSeconds(10), "the facade sees the resize");
        Assert.Equal((6, (int?)7), (_limits.Current.MaxRunning, _limits.Current.MaxQueued));

        var (_, announce) = await FollowAsync(8); // the singleton moved
        Assert.Equal([1L], announce.Held);
        Assert.Equal([3], announce.HeldPermits);
        Assert.Equal([2L, 3L], announce.PendingIds);
        Assert.Equal([2, 1], announce.PendingPermits);
        Assert.Equal([4, 0], announce.PendingPriorities);
        Assert.Equal([true, false], announce.PendingMayWait);
        Assert.Equal(new LimitChanged(4, 6, 7), announce.Limit);
    }
}
