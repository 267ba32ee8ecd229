using System.Reflection;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using static ActorQueue.Tests.Review.AgentCarryRound2ReviewTests;
using Tools = ActorQueue.Tests.Review.AgentFailsTwiceReviewTests;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Third-wave review (helper 173) of a node agent across its restarts: what was left after helpers 163 and 169 (a
/// gatekeeper's block recall, a resize racing a dispose, a settle's give-back). Each test breaks the agent's books in
/// one or more instances in a row with helper 163's <see cref="AgentResendReviewTests.FailOnAsync"/>.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AgentLeftoversReviewTests
{
    /// <summary>How long each step may take.</summary>
    private static TimeSpan Step => ClusterNodes.StepTimeout;

    /// <summary>
    /// A's unused block is recalled (B waits for the whole limit) and both of A's instances fail on the recall: B is
    /// granted all the same, long before the block's linger (an hour), and the limit is exactly 2. The agent need not
    /// apply the recall at its stop: the next instance's re-announcement makes the gatekeeper count the block anew
    /// (<c>Reconcile</c>) and, B still waiting, recall it again. Passed before the changes of this review; without that
    /// re-recall (<c>agent.Recalled = false</c> in <c>Reconcile</c> removed) B's acquire timed out.
    /// </summary>
    [Fact]
    public async Task A_block_recall_both_instances_fail_on_does_not_keep_the_block()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, "actorqueue.cluster.limiter-block-linger = 1h");
        var (a, b) = await Tools.LimitersAsync(cluster, "leftover-recall");
        var claimed = await Poll.ValueAsync(() => Task.FromResult(a.TryClaim(1, "claimed")), claim => claim is not null, Step); // A holds a block (a refusal fetches one)
        claimed!.Dispose(); // back into the loan: unused

        Task<ConcurrencyLease> all = null!;
        await AgentResendReviewTests.FailOnAsync(a.Agent, () => all = b.AcquireAsync(2, source: "all").AsTask(), message => message is BlockRecall, times: 2);

        Assert.Equal(1, UnhandledCount(a.Agent)); // both instances failed on it before its handler
        (await all.WaitAsync(Step)).Dispose();
        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// A resize both of A's instances fail on, then A's dispose (handled by the next instance, or failed on by two more
    /// and carried to the one after, which stops at once): the resize is applied all the same (the limit becomes 3 on B),
    /// and the dispose completes. FAILED before (both): the resize was only booked, for the next instance to send after
    /// its announcement; the instance that took the dispose stopped before any, and the limit stayed 2 (polling timed out).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_resize_kept_across_a_restart_is_applied_when_the_limiter_is_disposed(bool disposeFailsTwice)
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await Tools.LimitersAsync(cluster, $"leftover-resize-{disposeFailsTwice}");
        (await b.AcquireAsync(source: "B in touch").AsTask().WaitAsync(Step)).Dispose(); // so B hears the new limit

        Task disposed = null!;
        await AgentResendReviewTests.FailOnAsync(a.Agent, () =>
            {
                a.Resize(maxRunning: 3);
                disposed = a.DisposeAsync().AsTask();
            },
            message => message is ResizeLimiter || (disposeFailsTwice && message is DisposeGatekeeper), times: disposeFailsTwice ? 4 : 2);

        await disposed.WaitAsync(Step);
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s?.MaxRunning == 3, Step);
        await Poll.UntilAsync(() => b.MaxRunning == 3, Step, "B heard the new limit");
        await AssertLimitIsExactlyAsync(n => b.AcquireAsync(n, source: "all").AsTask(), () => b.AcquireAsync(source: "extra").AsTask(),
            () => ClusterNodes.StatusAsync(b), 3);
    }

    /// <summary>
    /// A model-API lease settles 40 of its estimated 100 tokens, and A's agent fails on the settle: once (the next
    /// instance sends it before it follows the gatekeeper again) or twice (the failing instance's stop applies it). The
    /// 60 tokens are given back: 1000 - 40 are left once the lease is released. FAILED before (both): the settle went
    /// out while the agent followed no incarnation, was dropped there, and was sent again with its excess only (none):
    /// the rate kept 900 for ever (polling for 960 timed out).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_settle_give_back_after_a_restart_reaches_the_gatekeeper(int times)
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var a = ModelApiLimiters(cluster, $"leftover-settle-{times}");
        var lease = await a.AcquireAsync(100).AsTask().WaitAsync(Step);

        await AgentResendReviewTests.FailOnAsync(a.Agent, () => lease.Settle(40), message => message is SettleTokens, times);
        lease.Dispose();

        var status = await Poll.ValueAsync(() => a.GetStatusAsync(Step), s => s is { Running: 0, TokensAvailable: 960 }, Step);
        Assert.Equal(99, status.RequestsAvailable);
    }

    /// <summary>How many messages two instances of <paramref name="agent"/> failed on before their handler (<see cref="AgentCarry.Unhandled"/>).</summary>
    private static long UnhandledCount(IActorRef agent)
    {
        var instance = Tools.ActorOf((ActorCell)((ActorRefWithCell)agent).Underlying);
        return ((AgentCarry)typeof(LimiterAgentActor).GetField("_carry", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(instance)!).Unhandled;
    }

    /// <summary>Model-API limiter <paramref name="name"/> (1000 tokens an hour) on node A, which is returned, and B.</summary>
    private static ClusterModelApiLimiter ModelApiLimiters(ClusterNodes cluster, string name)
    {
        var options = new ModelApiLimiterOptions(maxConcurrent: 2, requestsPerPeriod: 100, tokensPerPeriod: 1000, TimeSpan.FromHours(1));
        ActorQueueCluster.Get(cluster.Nodes[0]).ModelApiLimiter(name, options);
        return ActorQueueCluster.Get(cluster.Nodes[1]).ModelApiLimiter(name, options);
    }
}
