using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 40 (helper 188): an awaited partition resize (<see cref="ClusterPartitionedLimiter.ResizeAsync"/>,
/// <see cref="ClusterPartitionedModelApiLimiter{TKey}.ResizeAsync"/>) that the partitions' parent routes to a key's agent
/// which stops on its own (not by the limiter's disposal) before the parent hears of it. The resize reaches no agent; its
/// caller must get a definite answer, never wait for ever.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionAgentStoppedResizeRound40Tests : OneNodeClusterTest
{
    /// <summary>
    /// The parent is held while a local actor's message stops the key's agent (a <see cref="PoisonPill"/> routed to it) and
    /// a resize of the key is sent: resumed, the parent routes both to that agent, which stops before taking the resize.
    /// The caller is failed with <see cref="InvalidOperationException"/> naming the limiter and the key and saying the
    /// resize was not applied; the key goes on with a new agent, which a next resize reaches.
    /// </summary>
    /// <remarks>
    /// Failed before: the resize was a dead letter and its task was never answered (TimeoutException after the step
    /// timeout): the facade watches only the parent, which lives on, and nothing answers an awaited resize in dead letters.
    /// </remarks>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task A_resize_routed_to_an_agent_that_stopped_unasked_fails_its_caller(string kind)
    {
        var name = $"h188-resize-stopped-partition-{kind}";
        var facade = PartitionFacade(kind, name);
        var applied = await BehindTheAgentsStopAsync(name, facade, () => facade.Resize("k", 5));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => applied.WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException
        Assert.Contains($"'{name} (partition k)'", error.Message, StringComparison.Ordinal);
        Assert.Contains("max_running 5", error.Message, StringComparison.Ordinal);
        Assert.Contains("not applied", error.Message, StringComparison.Ordinal);

        await Poll.UntilAsync(() => !facade.Partitions.Live.ContainsKey("k"), ClusterNodes.StepTimeout, "the parent forgot the stopped agent");
        await facade.Resize("k", 6).WaitAsync(ClusterNodes.StepTimeout); // a new agent for the key takes it
        Assert.Equal(6, (await facade.Status("k")).MaxRunning);
        await facade.Dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// As above with an acquire: the request reaches no agent and is answered from dead letters. Its caller must be told
    /// what happened — the key's agent stopped before taking it, the limiter is not disposed — with an
    /// <see cref="InvalidOperationException"/> naming the limiter and the key, and the key's next acquire is granted by a new
    /// agent. Failed before: <see cref="ObjectDisposedException"/> ("The cluster concurrency limiter has been disposed.") for
    /// a limiter that was not disposed and goes on.
    /// </summary>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task An_acquire_routed_to_an_agent_that_stopped_unasked_fails_saying_so_not_disposed(string kind)
    {
        var name = $"h188-acquire-stopped-partition-{kind}";
        var facade = PartitionFacade(kind, name);
        var acquired = await BehindTheAgentsStopAsync(name, facade, () => facade.Acquire("k"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => acquired.WaitAsync(ClusterNodes.StepTimeout)); // failed: ObjectDisposedException
        Assert.Contains($"'{name} (partition k)'", error.Message, StringComparison.Ordinal);
        Assert.Contains("stopped before taking", error.Message, StringComparison.Ordinal);

        await Poll.UntilAsync(() => !facade.Partitions.Live.ContainsKey("k"), ClusterNodes.StepTimeout, "the parent forgot the stopped agent");
        using (await facade.Acquire("k").WaitAsync(ClusterNodes.StepTimeout))
        {
            Assert.Equal(1, (await facade.Status("k")).Running);
        }

        await facade.Dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// Makes the agent of key <c>k</c>, then, with the parent held, sends it a <see cref="PoisonPill"/> through the parent
    /// and makes the call <paramref name="send"/> for the key: resumed, the parent routes both to that agent, which stops
    /// before taking the call's message. Returns once the agent has stopped.
    /// </summary>
    private async Task<T> BehindTheAgentsStopAsync<T>(string name, PartitionedFacade facade, Func<T> send)
    {
        await facade.Status("k"); // the key's agent made and following its gatekeeper
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);
        var agent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(ClusterNodes.StepTimeout);
        var agentStopped = agent.WatchAsync();
        T sent;
        using (await AgentPause.BetweenMessagesAsync(parent))
        {
            parent.Tell(new ClusterPartitionMessage("k", PoisonPill.Instance));
            sent = send();
        }

        Assert.True(await agentStopped.WaitAsync(ClusterNodes.StepTimeout));
        return sent;
    }

    /// <summary>A partitioned facade of <paramref name="kind"/>: an awaited resize of a key's running limit, a key's acquire, a key's status, its partitions and its dispose.</summary>
    private PartitionedFacade PartitionFacade(string kind, string name)
    {
        var cluster = ActorQueueCluster.Get(Node);
        if (kind == "partitioned")
        {
            var plain = cluster.PartitionedLimiter(name, maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
            return new((key, running) => plain.ResizeAsync(key, maxRunning: running), async key => await plain.AcquireAsync(key),
                key => plain.GetStatusAsync(key, ClusterNodes.StepTimeout), plain.Partitions, plain.DisposeAsync);
        }

        var model = cluster.PartitionedModelApiLimiter<string>(name, new ModelApiLimiterOptions(2, 100, 100_000, TimeSpan.FromMinutes(1)), TimeSpan.FromMinutes(10));
        return new((key, running) => model.ResizeAsync(key, maxConcurrent: running), async key => await model.AcquireAsync(key, estimatedTokens: 10),
            key => model.GetStatusAsync(key, ClusterNodes.StepTimeout), model.Partitions, model.DisposeAsync);
    }

    /// <summary>What these tests do with a partitioned facade of either kind.</summary>
    private sealed record PartitionedFacade(Func<string, int, Task> Resize, Func<string, Task<IDisposable>> Acquire, Func<string, Task<ClusterLimiterStatus>> Status,
                                            PartitionCount Partitions, Func<ValueTask> Dispose);
}
