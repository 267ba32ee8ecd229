using System.Reflection;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using static ActorQueue.Tests.Review.AgentCarryRound2ReviewTests;
using Tools = ActorQueue.Tests.Review.AgentFailsTwiceReviewTests;
using static ActorQueue.Tests.Cluster.ClusterNodes;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Second-wave review (helper 175) of helper 173's agent leftovers: a resize two instances fail on is sent at once and
/// again after the next instance's announcement; a settle sent while the agent followed no incarnation is re-addressed
/// whole. These pin that neither is counted twice.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AgentLeftoversRound2ReviewTests
{
    /// <summary>
    /// A resize both of A's instances fail on goes out twice (at once, through the hub, and again after the next
    /// instance's announcement) under one number: the gatekeeper applies it once. Once A holds no resize unapplied, the
    /// limit is 3 at version 1 (the first and only change), and a later resize of B (4) is not undone. Pinned: with the
    /// kept copy numbered anew (a mutant, not committed) the resend was applied again (version 2).
    /// </summary>
    [Fact]
    public async Task A_resize_sent_at_once_and_again_is_applied_once()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await InTouchAsync(cluster, "round2-resize-once");
        Assert.Equal(0, LimitOf(a.Agent).Version);

        await AgentResendReviewTests.FailOnAsync(a.Agent, () => a.Resize(maxRunning: 3), message => message is ResizeLimiter, times: 2);

        await Poll.UntilAsync(() => KeptResizes(a.Agent) == 0 && LimitOf(a.Agent).MaxRunning == 3, StepTimeout, "A's resize was applied and A heard it");
        (await a.AcquireAsync(source: "A in touch again").AsTask().WaitAsync(StepTimeout)).Dispose(); // A follows the gatekeeper again: its resend is behind it
        Assert.Equal(1, LimitOf(a.Agent).Version);

        b.Resize(maxRunning: 4);
        await Poll.UntilAsync(() => a.MaxRunning == 4 && b.MaxRunning == 4, StepTimeout, "both nodes heard B's resize");
        await AssertLimitIsExactlyAsync(a, b, 4);
        Assert.Equal(2, LimitOf(a.Agent).Version);
    }

    /// <summary>
    /// A's resize of the queue bound (7) goes to a gatekeeper incarnation that stops before taking it (lost: A keeps it
    /// to send again); then a resize of the running limit (3) both of A's instances fail on. Both are applied: the
    /// limit is 3 with a queue bound of 7. The second one, sent at once by the failing instance through the hub, reaches
    /// the next incarnation before the next instance's announcement and the first one's resend: applied first, its
    /// number (newer) then made the gatekeeper skip the older one for good (<c>Applied.IdOf &gt;= Id</c>). FAILED on 36e5783
    /// (the queue bound stayed unbounded: expected 7, was null); passed with the resize only booked, as before it.
    /// </summary>
    [Fact]
    public async Task A_resize_sent_at_once_does_not_overtake_an_older_one_kept_unapplied()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var (a, b) = await InTouchAsync(cluster, "round2-resize-order");
        var incarnation = ((SingletonLink)Field(b.Agent, "_gatekeeper")).Current!;
        var incarnationCell = (ActorCell)((ActorRefWithCell)incarnation).Underlying;

        incarnationCell.Suspend();
        a.Resize(maxQueued: 7);
        await Poll.UntilAsync(() => Tools.PutFirst(incarnationCell, message => message is ResizeLimiter), StepTimeout, "A's first resize waits at the incarnation");

        await AgentResendReviewTests.FailOnAsync(a.Agent, () =>
            {
                incarnationCell.Stop(); // its mailbox, A's first resize in it, goes with it
                if (!SpinWait.SpinUntil(() => incarnationCell.IsTerminated, StepTimeout))
                {
                    throw new TimeoutException("the incarnation did not stop");
                }

                a.Resize(maxRunning: 3);
            },
            message => message is ResizeLimiter { MaxRunning: 3 }, times: 2);

        var status = await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s is { MaxRunning: 3, Recovering: false } && KeptResizes(a.Agent) == 0, StepTimeout);
        Assert.Equal(7, status!.MaxQueued);
    }

    /// <summary>Limiter <paramref name="name"/> on A and B (a limit of 2), both agents following the incarnation (B hears new limits).</summary>
    private static async Task<(ClusterConcurrencyLimiter A, ClusterConcurrencyLimiter B)> InTouchAsync(ClusterNodes cluster, string name)
    {
        var (a, b) = await Tools.LimitersAsync(cluster, name);
        (await b.AcquireAsync(source: "B in touch").AsTask().WaitAsync(StepTimeout)).Dispose();
        return (a, b);
    }

    /// <summary>The limit <paramref name="agent"/>'s current instance knows.</summary>
    private static LimitChanged LimitOf(IActorRef agent) => (LimitChanged)Field(agent, "_limit");

    /// <summary>How many resizes <paramref name="agent"/>'s current instance holds unapplied.</summary>
    private static int KeptResizes(IActorRef agent) => ((List<ResizeLimiter>)Field(agent, "_resizes")).Count;

    private static object Field(IActorRef agent, string name)
    {
        var instance = Tools.ActorOf((ActorCell)((ActorRefWithCell)agent).Underlying);
        return typeof(LimiterAgentActor).GetField(name, BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(instance)!;
    }
}
