using ActorQueue.Actors;
using ActorQueue.Tests.Cluster;
using static ActorQueue.Tests.Review.AgentCarryRound2ReviewTests;
using Tools = ActorQueue.Tests.Review.AgentFailsTwiceReviewTests;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Second-wave review (helper 169) of what a node agent does with a message two of its instances fail on before its
/// handler (<c>LimiterAgentActor.AnswerUnhandled</c>, <c>ApplyAtStop</c>, commit 4b216a0). Each test breaks the agent's
/// books in both instances with helper 163's <see cref="AgentResendReviewTests.FailOnAsync"/>, the second one held
/// (suspended) as it is made, and ends with the limit exactly as configured.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ApplyAtStopReviewTests
{
    /// <summary>How long each step may take.</summary>
    private static TimeSpan Step => ClusterNodes.StepTimeout;

    /// <summary>
    /// A local actor's <see cref="GatekeeperProtocol.CancelAcquire"/> of a request already granted releases its lease (the
    /// protocol: "the gatekeeper releases its lease itself"). Two instances fail on it: the lease is freed once all the
    /// same (B takes the whole limit, one more waits), and the limit is exactly 2.
    /// FAILED before: the cancel was taken for one about a wait ("needs no answer") and dropped: the lease, carried,
    /// stayed counted while the actor lived (B's acquire of the whole limit timed out).
    /// </summary>
    [Fact]
    public async Task An_actor_cancel_of_a_granted_request_both_instances_fail_on_frees_its_lease()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await Tools.LimitersAsync(cluster, "stop-cancel-granted");
        var caller = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]).CreateTestProbe(); // the kit is not disposed: that would shut the node down
        a.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 7), caller.Ref);
        await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(Step);

        await AgentResendReviewTests.FailOnAsync(a.Agent, () => a.Agent.Tell(new GatekeeperProtocol.CancelAcquire(7), caller.Ref), message => message is GatekeeperProtocol.CancelAcquire, times: 2);

        await AssertLimitIsExactlyAsync(a, b, 2);
        await caller.ExpectNoMsgAsync(TimeSpan.Zero); // a granted request's cancel has no reply
    }
}
