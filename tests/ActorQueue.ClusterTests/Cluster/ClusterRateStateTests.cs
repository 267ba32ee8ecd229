using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;
using Akka.TestKit;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A cluster gatekeeper with rates, on a one-node cluster whose agent is a probe, hearing rate states at the edge of
/// what a <see langword="long"/> holds (a member may announce any the reader lets through): the numbers of its states
/// stop at <see cref="long.MaxValue"/> instead of wrapping below every earlier state, and a successor owing a debt near
/// <see cref="long.MaxValue"/> starts its rates empty and owing, not open.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterRateStateTests : OneNodeClusterTest
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private readonly FakeTimeProvider _clock = new();

    private Address NodeAddress => ActorQueueCluster.Get(Node).Cluster.SelfAddress;

    /// <summary>
    /// Starts a gatekeeper with <paramref name="rates"/> whose roll call reaches <paramref name="agent"/>, which announces
    /// <paramref name="state"/> (as the agent of a node that followed an earlier incarnation when <paramref name="successor"/>).
    /// </summary>
    private async Task<long> StartAsync(string name, ModelApiLimiterOptions rates, TestProbe agent, RateState state, bool successor)
    {
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, agent.Ref));
        var gatekeeper = Node.ActorOf(ClusterGatekeeperActor.Props(name, rates.MaxConcurrent, null, QueueFullMode.RejectNewcomer, TimeSpan.Zero,
                                                                    TimeSpan.FromSeconds(30), rates, _clock), $"gatekeeper-{name}");
        var epoch = (await agent.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout)).Epoch;
        gatekeeper.Tell(new LimiterAnnounce(epoch, NodeAddress, [], [], []) { Rates = state, FollowedBefore = successor }, agent);

        // Asked after the announcement (one mailbox, in order): the only member has answered, so it serves and its rates have started.
        var status = await gatekeeper.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, ClusterNodes.StepTimeout);
        Assert.False(status.Recovering);
        return epoch;
    }

    [Fact]
    public async Task The_numbers_of_rate_states_stop_at_the_largest_a_long_holds()
    {
        var agent = Kit.CreateTestProbe();
        var epoch = await StartAsync("sequence-edge", new ModelApiLimiterOptions(4, 100, 1000, Hour), agent, new RateState(long.MaxValue - 1, [0, 0]), successor: false);

        agent.LastSender.Tell(new RemoteAcquire(epoch, 1, "a") { Tokens = 10 }, agent);
        var granted = await agent.ExpectMsgAsync<RemoteGranted>(ClusterNodes.StepTimeout);
        agent.LastSender.Tell(new RemoteSettle(epoch, 1, 1, 10, 20), agent);
        var first = await agent.ExpectMsgAsync<RemoteSettled>(ClusterNodes.StepTimeout);
        agent.LastSender.Tell(new RemoteSettle(epoch, 1, 1, 10, 20), agent);
        var second = await agent.ExpectMsgAsync<RemoteSettled>(ClusterNodes.StepTimeout);

        Assert.True(granted.Rates.Sequence >= long.MaxValue - 1, $"granted with state {granted.Rates.Sequence}");
        Assert.Equal(long.MaxValue, first.Rates.Sequence);
        Assert.Equal(long.MaxValue, second.Rates.Sequence);
    }

    [Fact]
    public async Task A_successor_owing_a_debt_near_the_largest_a_long_holds_still_owes_after_a_refill()
    {
        var agent = Kit.CreateTestProbe();
        var rates = new ModelApiLimiterOptions(4, 100, 1000, Hour);
        var epoch = await StartAsync("debt-edge", rates, agent, new RateState(7, [0, long.MaxValue - 3]), successor: true);

        // A period later the requests have refilled; the tokens still owe nearly all of the debt (summed with wrapping,
        // the bucket started full instead, and granted).
        _clock.Advance(Hour);
        agent.LastSender.Tell(new RemoteAcquire(epoch, 1, "after") { Tokens = 1 }, agent);

        Assert.Equal(new RemoteQueued(epoch, 1, 0, 1), await agent.ExpectMsgAsync<RemoteQueued>(ClusterNodes.StepTimeout));
    }
}
