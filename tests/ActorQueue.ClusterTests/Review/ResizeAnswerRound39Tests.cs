using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>A cluster resize's caller gets a definite answer from <see cref="ClusterConcurrencyLimiter.ResizeAsync"/> (round 39, helper 184).</summary>
/// <remarks>
/// <see cref="ClusterConcurrencyLimiter.Resize"/> returns once the resize is sent; a resize waiting at a gatekeeper
/// incarnation when the node's limiter was disposed was only logged as it stopped (ClusterLeftoversReviewTests), and
/// lost if that incarnation stopped before taking it. The gatekeeper here is the singleton's, on a one-node cluster.
/// </remarks>
[Collection(ClusterCollection.Name)]
public sealed class ResizeAnswerRound39Tests : OneNodeClusterTest
{
    /// <summary>
    /// The gatekeeper is held with the resize in its mailbox, and the node's limiter is disposed: the dispose completes at
    /// once and the resize's task fails with <see cref="ObjectDisposedException"/> naming the resize.
    /// </summary>
    /// <remarks>
    /// Failed before (with the facade's ResizeAsync sending the resize, the agent keeping no answer): the task was never
    /// answered (TimeoutException after the step timeout), the stop only logged a warning.
    /// </remarks>
    [Fact]
    public async Task A_resize_not_heard_applied_when_the_limiter_is_disposed_fails_its_caller_saying_so()
    {
        const string name = "h184-resize-answer-disposed";
        var limiter = ActorQueueCluster.Get(Node).Limiter(name, maxRunning: 2);
        await limiter.GetStatusAsync(ClusterNodes.StepTimeout); // the agent follows the gatekeeper
        var gatekeeper = await Node.ActorSelection($"/system/{ActorQueueCluster.SingletonManagerName}/hub/{HubActor.ChildName(AgentKinds.Limiter, name)}")
                                   .ResolveOne(ClusterNodes.StepTimeout);
        using var held = await AgentPause.BetweenMessagesAsync(gatekeeper); // a gatekeeper is held as an agent is
        var applied = limiter.ResizeAsync(maxRunning: 3);
        var cell = (ActorCell)((ActorRefWithCell)gatekeeper).Underlying;
        await Poll.UntilAsync(() => AgentFailsTwiceReviewTests.PutFirst(cell, message => message is ResizeLimiter), ClusterNodes.StepTimeout,
            "the resize waits at the gatekeeper");
        await limiter.DisposeAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout); // at once: it waits for no answer

        var refused = await Assert.ThrowsAsync<ObjectDisposedException>(() => applied.WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException
        Assert.Contains("max_running 3", refused.Message, StringComparison.Ordinal);
        Assert.Contains("not heard applied", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The task completes once the node heard the resize applied, and not before: <see cref="ClusterConcurrencyLimiter.MaxRunning"/>
    /// shows it by then (an answer at sending, or before the limit is published, fails this).
    /// </summary>
    [Fact]
    public async Task A_resize_heard_applied_completes_its_caller_with_the_limit_shown()
    {
        const string name = "h184-resize-answer-applied";
        await using var limiter = ActorQueueCluster.Get(Node).Limiter(name, maxRunning: 2);
        await limiter.GetStatusAsync(ClusterNodes.StepTimeout);

        await limiter.ResizeAsync(maxRunning: 3, maxQueued: 7).WaitAsync(ClusterNodes.StepTimeout);

        Assert.Equal((3, (int?)7), (limiter.MaxRunning, limiter.MaxQueued));
    }

    /// <summary>
    /// A partitioned facade's awaited resize is routed to the key's agent and answered as a whole limiter's: failed when
    /// the limiter is disposed with the partition's gatekeeper held, completed once applied otherwise (the partition's
    /// status shows it). Before, a partition's resize had no answer to await (Resize returns once sent); the failing half
    /// rides on the agent's answers, which the first test saw fail (TimeoutException) without.
    /// </summary>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task A_partitions_resize_is_answered_as_a_whole_limiters(string kind)
    {
        var (resize, dispose, status) = PartitionFacade(kind, $"h184-resize-answer-{kind}");
        await resize("applied").WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(5, (await status("applied")).MaxRunning);
        await status("held");
        var gatekeeper = await Node.ActorSelection($"/system/{ActorQueueCluster.SingletonManagerName}/hub/" +
                                                   HubActor.ChildName(AgentKinds.Limiter, PartitionAgentsActor.PartitionName($"h184-resize-answer-{kind}", "held")))
                                   .ResolveOne(ClusterNodes.StepTimeout);

        using var held = await AgentPause.BetweenMessagesAsync(gatekeeper);
        var applied = resize("held");
        var cell = (ActorCell)((ActorRefWithCell)gatekeeper).Underlying;
        await Poll.UntilAsync(() => AgentFailsTwiceReviewTests.PutFirst(cell, message => message is ResizeLimiter), ClusterNodes.StepTimeout,
            "the resize waits at the partition's gatekeeper");
        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);

        var refused = await Assert.ThrowsAsync<ObjectDisposedException>(() => applied.WaitAsync(ClusterNodes.StepTimeout));
        Assert.Contains("(partition held)", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>A disposed limiter refuses the resize at once, as <see cref="ClusterConcurrencyLimiter.Resize"/> does; bad bounds name their parameter.</summary>
    [Fact]
    public async Task A_resize_of_a_disposed_limiter_or_with_bad_bounds_throws_at_once()
    {
        var limiter = ActorQueueCluster.Get(Node).Limiter("h184-resize-answer-refused", maxRunning: 2);
        Assert.Equal("maxRunning", Assert.Throws<ArgumentOutOfRangeException>(() => { _ = limiter.ResizeAsync(maxRunning: 0); }).ParamName);
        Assert.Equal("maxQueued", Assert.Throws<ArgumentOutOfRangeException>(() => { _ = limiter.ResizeAsync(maxQueued: -1); }).ParamName);
        await limiter.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => { _ = limiter.ResizeAsync(maxRunning: 3); }); // thrown, not a faulted task
    }

    /// <summary>A partitioned facade of <paramref name="kind"/>: an awaited resize of a key to 5, its dispose and a key's status.</summary>
    private (Func<string, Task> Resize, Func<ValueTask> Dispose, Func<string, Task<ClusterLimiterStatus>> Status) PartitionFacade(string kind, string name)
    {
        var cluster = ActorQueueCluster.Get(Node);
        if (kind == "partitioned")
        {
            var plain = cluster.PartitionedLimiter(name, maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
            return (key => plain.ResizeAsync(key, maxRunning: 5), plain.DisposeAsync, key => plain.GetStatusAsync(key, ClusterNodes.StepTimeout));
        }

        var model = cluster.PartitionedModelApiLimiter<string>(name, new ModelApiLimiterOptions(2, 100, 100_000, TimeSpan.FromMinutes(1)), TimeSpan.FromMinutes(10));
        return (key => model.ResizeAsync(key, maxConcurrent: 5), model.DisposeAsync, key => model.GetStatusAsync(key, ClusterNodes.StepTimeout));
    }
}
