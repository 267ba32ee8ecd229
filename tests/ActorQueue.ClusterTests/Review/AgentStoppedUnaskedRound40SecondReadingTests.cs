using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 40, second reading (helper 192) of helper 188's fixes: a request that reached the node's agent and waits there
/// when that agent stops unasked (a partition's agent stopped by a routed <see cref="PoisonPill"/>, a whole limiter's
/// stopped as its supervisor stops one it cannot make again), while the limiter is not disposed. A request that reached
/// no agent now says the agent stopped (<c>ClusterAcquireRequest.Undelivered</c>); one that reached it must not claim a
/// disposal either.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AgentStoppedUnaskedRound40SecondReadingTests : OneNodeClusterTest
{
    /// <summary>
    /// The key's only permit is held and a second acquire waits in the key's agent; the agent is stopped by a
    /// <see cref="PoisonPill"/> routed through the parent. The waiter is failed with <see cref="InvalidOperationException"/>
    /// naming the limiter and the key, and the key's next acquire is granted by a new agent.
    /// Failed before: <see cref="ObjectDisposedException"/> ("The cluster concurrency limiter has been disposed.") for a
    /// limiter nobody disposed, which goes on.
    /// </summary>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task A_waiter_of_a_partition_agent_stopped_unasked_is_told_so_not_disposed(string kind)
    {
        var name = $"h192-waiter-stopped-partition-{kind}";
        var (acquire, status, dispose) = PartitionFacade(kind, name, out _, out var partitions);
        var held = await acquire("k").WaitAsync(ClusterNodes.StepTimeout);
        var waiting = acquire("k");
        await Poll.ValueAsync(() => status("k"), s => s.Waiting == 1, ClusterNodes.StepTimeout); // the second acquire waits in the agent
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);
        var agent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(ClusterNodes.StepTimeout);
        var agentStopped = agent.WatchAsync();

        parent.Tell(new ClusterPartitionMessage("k", PoisonPill.Instance));

        Assert.True(await agentStopped.WaitAsync(ClusterNodes.StepTimeout));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => waiting.WaitAsync(ClusterNodes.StepTimeout)); // failed: ObjectDisposedException
        Assert.Contains($"'{name} (partition k)'", error.Message, StringComparison.Ordinal);
        Assert.Contains("not disposed", error.Message, StringComparison.Ordinal);
        held.Dispose(); // (the key's next agent is not waited for: the release may itself make one, so the key can stay live; it failed CI once waiting)
        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// A whole limiter's only permit is held and a second acquire waits in the node's agent, which is then stopped (as its
    /// supervisor stops one it cannot make again). The waiter is failed with <see cref="InvalidOperationException"/> naming
    /// the limiter (the README: an agent that fails for good fails its waiters so, "not ObjectDisposedException: nobody
    /// disposed the limiter"); a dispose afterwards completes and refuses what follows as disposed.
    /// Failed before: <see cref="ObjectDisposedException"/> ("The cluster concurrency limiter has been disposed.").
    /// </summary>
    [Fact]
    public async Task A_waiter_of_a_whole_limiters_agent_stopped_unasked_is_told_so_not_disposed()
    {
        const string name = "h192-waiter-stopped-agent";
        var limiter = ActorQueueCluster.Get(Node).Limiter(name, maxRunning: 1);
        var held = await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = limiter.AcquireAsync(source: "h192").AsTask();
        await Poll.ValueAsync(() => limiter.GetStatusAsync(ClusterNodes.StepTimeout), s => s.Waiting == 1, ClusterNodes.StepTimeout); // the second acquire waits in the agent
        var stopped = limiter.Agent.WatchAsync();

        Node.Stop(limiter.Agent);

        Assert.True(await stopped.WaitAsync(ClusterNodes.StepTimeout));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => waiting.WaitAsync(ClusterNodes.StepTimeout)); // failed: ObjectDisposedException
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("not disposed", error.Message, StringComparison.Ordinal);
        held.Dispose();
        await limiter.DisposeAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        Assert.Throws<ObjectDisposedException>(() => { _ = limiter.AcquireAsync(); });
    }

    /// <summary>
    /// A key's awaited resize is taken by its agent and waits at the partition's gatekeeper (held); the agent is then
    /// stopped by a routed <see cref="PoisonPill"/>, the limiter not disposed. Its caller is failed with
    /// <see cref="InvalidOperationException"/> naming the limiter and the key (as the README has it: an agent that
    /// stopped before the resize was heard applied), not told the limiter was disposed.
    /// Failed before: <see cref="ObjectDisposedException"/> ("The cluster limiter '...' was disposed with its resize ...").
    /// </summary>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task A_taken_resize_of_a_partition_agent_stopped_unasked_is_told_so_not_disposed(string kind)
    {
        var name = $"h192-resize-stopped-partition-{kind}";
        var (_, status, dispose) = PartitionFacade(kind, name, out var resize, out _);
        await status("k"); // the key's agent made and following its gatekeeper
        var gatekeeper = await Node.ActorSelection($"/system/{ActorQueueCluster.SingletonManagerName}/hub/" +
                                                   HubActor.ChildName(AgentKinds.Limiter, PartitionAgentsActor.PartitionName(name, "k")))
                                   .ResolveOne(ClusterNodes.StepTimeout);
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);
        var agent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(ClusterNodes.StepTimeout);
        var agentStopped = agent.WatchAsync();
        Task applied;
        using (await AgentPause.BetweenMessagesAsync(gatekeeper))
        {
            applied = resize("k", 5);
            var cell = (ActorCell)((ActorRefWithCell)gatekeeper).Underlying;
            await Poll.UntilAsync(() => AgentFailsTwiceReviewTests.PutFirst(cell, message => message is ResizeLimiter), ClusterNodes.StepTimeout,
                "the resize waits at the partition's gatekeeper");
            parent.Tell(new ClusterPartitionMessage("k", PoisonPill.Instance));
            Assert.True(await agentStopped.WaitAsync(ClusterNodes.StepTimeout));
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => applied.WaitAsync(ClusterNodes.StepTimeout)); // failed: ObjectDisposedException
        Assert.Contains($"'{name} (partition k)'", error.Message, StringComparison.Ordinal);
        Assert.Contains("max_running 5", error.Message, StringComparison.Ordinal);
        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// With the parent held, a <see cref="PoisonPill"/> is routed to the key's agent and a status ask of the key is made:
    /// resumed, the parent routes both to that agent, which stops before taking the ask. The asker is failed at once with
    /// <see cref="InvalidOperationException"/> naming the limiter and the key, not left to its ask timeout.
    /// Failed before: AskTimeoutException at the ask's timeout (the ask, a dead letter, was answered by nobody).
    /// </summary>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task A_status_ask_routed_to_an_agent_that_stopped_unasked_fails_at_once(string kind)
    {
        var name = $"h192-status-stopped-partition-{kind}";
        var (_, status, dispose) = PartitionFacade(kind, name, out _, out _);
        await status("k"); // the key's agent made and following its gatekeeper
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);
        var agent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(ClusterNodes.StepTimeout);
        var agentStopped = agent.WatchAsync();
        Task<ClusterLimiterStatus> asked;
        using (await AgentPause.BetweenMessagesAsync(parent))
        {
            parent.Tell(new ClusterPartitionMessage("k", PoisonPill.Instance));
            asked = status("k");
        }

        Assert.True(await agentStopped.WaitAsync(ClusterNodes.StepTimeout));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => asked.WaitAsync(ClusterNodes.StepTimeout * 2)); // failed: AskTimeoutException
        Assert.Contains($"'{name} (partition k)'", error.Message, StringComparison.Ordinal);
        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>A partitioned facade of <paramref name="kind"/> with one permit per key: a key's acquire, a key's status and its dispose, an awaited resize of a key's running limit (<paramref name="resize"/>) and its live partitions (<paramref name="partitions"/>).</summary>
    private (Func<string, Task<IDisposable>> Acquire, Func<string, Task<ClusterLimiterStatus>> Status, Func<ValueTask> Dispose) PartitionFacade(
        string kind, string name, out Func<string, int, Task> resize, out Func<PartitionCount> partitions)
    {
        var cluster = ActorQueueCluster.Get(Node);
        if (kind == "partitioned")
        {
            var plain = cluster.PartitionedLimiter(name, maxRunning: 1, maxQueued: null, TimeSpan.FromMinutes(10));
            resize = (key, running) => plain.ResizeAsync(key, maxRunning: running);
            partitions = () => plain.Partitions;
            return (async key => await plain.AcquireAsync(key), key => plain.GetStatusAsync(key, ClusterNodes.StepTimeout), plain.DisposeAsync);
        }

        var model = cluster.PartitionedModelApiLimiter<string>(name, new ModelApiLimiterOptions(1, 100, 100_000, TimeSpan.FromMinutes(1)), TimeSpan.FromMinutes(10));
        resize = (key, running) => model.ResizeAsync(key, maxConcurrent: running);
        partitions = () => model.Partitions;
        return (async key => await model.AcquireAsync(key, estimatedTokens: 10), key => model.GetStatusAsync(key, ClusterNodes.StepTimeout), model.DisposeAsync);
    }
}
