using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 41 (helper 193): a cluster limiter's node agent stopped because its actor system shuts down (terminated, or by
/// its coordinated shutdown) fails what waits on it with <see cref="ObjectDisposedException"/> naming the limiter: the
/// whole node is going away, as a dispose would. Before, it was told <see cref="InvalidOperationException"/> ("while the
/// limiter was not disposed"), which is kept for an agent stopped unasked while the system runs
/// (Review/AgentStoppedUnaskedRound40SecondReadingTests, StoppedAgentAcquireRound40Tests). The node is this test's own
/// one-node cluster; its test configuration leaves the coordinated shutdown out of <c>Terminate</c>, so both ways are
/// taken here.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SystemShutdownAgentRound41Tests : OneNodeClusterTest
{
    /// <summary>
    /// A limiter's only permit is held and a second acquire waits in the agent (a whole limiter's, or a partition's); the
    /// node's actor system is terminated. The waiter is failed with <see cref="ObjectDisposedException"/> naming the
    /// limiter; an acquire, a whole limiter's status ask and an awaited resize made after the termination are failed so too.
    /// Failed before: <see cref="InvalidOperationException"/> ("stopped with this request ... waiting, while the limiter was not disposed").
    /// </summary>
    [Theory]
    [InlineData("whole")]
    [InlineData("partitioned")]
    public async Task A_waiter_of_an_agent_stopped_by_the_systems_termination_is_told_disposed(string kind)
    {
        var name = $"h193-terminated-waiter-{kind}";
        var (acquire, status, resize) = Facade(kind, name);
        var held = await acquire().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = acquire();
        await Poll.ValueAsync(status, s => s.Waiting == 1, ClusterNodes.StepTimeout); // the second acquire waits in the agent

        await Node.Terminate().WaitAsync(ClusterNodes.StepTimeout);

        var error = await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(ClusterNodes.StepTimeout)); // failed: InvalidOperationException
        Assert.Contains($"'{name}", error.Message, StringComparison.Ordinal);
        Assert.Contains("shut", error.Message, StringComparison.Ordinal);
        var late = await Assert.ThrowsAsync<ObjectDisposedException>(() => acquire().WaitAsync(ClusterNodes.StepTimeout)); // failed: InvalidOperationException
        Assert.Contains($"'{name}", late.Message, StringComparison.Ordinal);
        if (kind == "whole")
        {
            await Assert.ThrowsAsync<ObjectDisposedException>(() => status().WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException (the hang guard: the ask was answered by nobody)
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(() => resize().WaitAsync(ClusterNodes.StepTimeout)); // failed: InvalidOperationException

        held.Dispose();
    }

    /// <summary>
    /// A waiter of a whole limiter, and an awaited resize held at the gatekeeper, when the node's coordinated shutdown runs
    /// (as <c>Terminate</c> runs it by default, or a process exit): both are failed with <see cref="ObjectDisposedException"/>
    /// naming the limiter (the resize's saying it was not heard applied).
    /// Failed before: <see cref="InvalidOperationException"/> for both ("while the limiter was not disposed").
    /// </summary>
    [Fact]
    public async Task A_waiter_and_a_resize_of_an_agent_stopped_by_the_coordinated_shutdown_are_told_disposed()
    {
        const string name = "h193-shutdown-waiter";
        var limiter = ActorQueueCluster.Get(Node).Limiter(name, maxRunning: 1);
        var held = await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = limiter.AcquireAsync(source: "h193").AsTask();
        await Poll.ValueAsync(() => limiter.GetStatusAsync(ClusterNodes.StepTimeout), s => s.Waiting == 1, ClusterNodes.StepTimeout);
        var gatekeeper = await Node.ActorSelection($"/system/{ActorQueueCluster.SingletonManagerName}/hub/{HubActor.ChildName(AgentKinds.Limiter, name)}")
                                   .ResolveOne(ClusterNodes.StepTimeout);
        Task applied;
        using (await AgentPause.BetweenMessagesAsync(gatekeeper))
        {
            applied = limiter.ResizeAsync(maxRunning: 3);
            var cell = (ActorCell)((ActorRefWithCell)gatekeeper).Underlying;
            await Poll.UntilAsync(() => AgentFailsTwiceReviewTests.PutFirst(cell, message => message is ResizeLimiter), ClusterNodes.StepTimeout,
                "the resize waits at the gatekeeper");

            await CoordinatedShutdown.Get(Node).Run(CoordinatedShutdown.UnknownReason.Instance).WaitAsync(ClusterNodes.StepTimeout);
        }

        var error = await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(ClusterNodes.StepTimeout)); // failed: InvalidOperationException
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        var resize = await Assert.ThrowsAsync<ObjectDisposedException>(() => applied.WaitAsync(ClusterNodes.StepTimeout)); // failed: InvalidOperationException
        Assert.Contains($"'{name}'", resize.Message, StringComparison.Ordinal);
        Assert.Contains("max_running 3", resize.Message, StringComparison.Ordinal);
        held.Dispose();
    }

    /// <summary>A facade of <paramref name="kind"/> with one permit (key "k" for a partitioned one): its acquire, its status and an awaited resize to two permits.</summary>
    private (Func<Task<IDisposable>> Acquire, Func<Task<ClusterLimiterStatus>> Status, Func<Task> Resize) Facade(string kind, string name)
    {
        var cluster = ActorQueueCluster.Get(Node);
        if (kind == "whole")
        {
            var whole = cluster.Limiter(name, maxRunning: 1);
            return (async () => await whole.AcquireAsync(), () => whole.GetStatusAsync(ClusterNodes.StepTimeout), () => whole.ResizeAsync(maxRunning: 2));
        }

        var plain = cluster.PartitionedLimiter(name, maxRunning: 1, maxQueued: null, TimeSpan.FromMinutes(10));
        return (async () => await plain.AcquireAsync("k"), () => plain.GetStatusAsync("k", ClusterNodes.StepTimeout), () => plain.ResizeAsync("k", maxRunning: 2));
    }
}
