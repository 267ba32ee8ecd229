using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 39, second reading (helper 186) of the awaited cluster resize (<see cref="ClusterConcurrencyLimiter.ResizeAsync"/>)
/// and of the partitions' parent (<see cref="PartitionAgentsActor"/>): an awaited resize that reaches no agent, and a
/// parent whose handler throws while it is not disposing.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ResizeSecondReadingRound39Tests : OneNodeClusterTest
{
    /// <summary>
    /// The whole limiter's agent has stopped for good (stopped here by the test, as its supervisor stops it when it cannot
    /// be made again): an awaited resize sent to it lands in dead letters, and its caller must be failed promptly,
    /// naming the limiter, not left waiting. Failed before: the task was never answered (TimeoutException after the
    /// step timeout).
    /// </summary>
    [Fact]
    public async Task A_resize_sent_to_a_stopped_agent_fails_its_caller()
    {
        const string name = "h186-resize-stopped-agent";
        var limiter = await StoppedAgentAcquireRound40Tests.WithStoppedAgentAsync(Node, name);

        var resize = limiter.ResizeAsync(maxRunning: 3);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => resize.WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("stopped", error.Message, StringComparison.Ordinal);
        await limiter.DisposeAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// The partitions' parent throws on a message while it is not disposing (its internal status ask with a null key: its
    /// dictionary throws). Its agent, held with a lease out and an awaited resize in its mailbox, must live on: the
    /// failure costs only that message. Failed before: Akka's default restart of the parent stopped the agent ahead of
    /// its mailbox: the resize was a dead letter (its task never answered: TimeoutException) and the gatekeeper freed the
    /// held lease.
    /// </summary>
    [Fact]
    public async Task A_parent_failing_while_not_disposing_keeps_its_agents()
    {
        const string name = "h186-parent-fails-live";
        await using var limiter = ActorQueueCluster.Get(Node).PartitionedLimiter(name, maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
        await using var lease = await limiter.AcquireAsync("k", source: "held").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);
        var agent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(ClusterNodes.StepTimeout);
        var agentStopped = agent.WatchAsync();

        Task resize;
        using (await AgentPause.BetweenMessagesAsync(agent))
        {
            resize = limiter.ResizeAsync("k", maxRunning: 5);
            await parent.Ask<ActorIdentity>(new Identify(1), ClusterNodes.StepTimeout); // routed into the held agent's mailbox
            parent.Tell(new PartitionStatus(null!));
            await parent.Ask<ActorIdentity>(new Identify(2), ClusterNodes.StepTimeout); // behind the failure (and a restart's stop of its children)
        }

        await resize.WaitAsync(ClusterNodes.StepTimeout); // failed: TimeoutException (the resize was a dead letter)
        Assert.False(agentStopped.IsCompleted);
        var status = await limiter.GetStatusAsync("k", ClusterNodes.StepTimeout);
        Assert.Equal((5, 1), (status.MaxRunning, status.Running)); // the held lease still counted
    }

    /// <summary>
    /// The parent's failed handler answers an ask it failed on rather than leave it to its timeout: a status ask with a null
    /// key is failed with the cause at once. Failed before: the parent restarted and the ask timed out (AskTimeoutException).
    /// </summary>
    [Fact]
    public async Task A_parent_failing_on_an_ask_answers_it_failed()
    {
        const string name = "h186-parent-fails-ask";
        await using var limiter = ActorQueueCluster.Get(Node).PartitionedLimiter(name, maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
        await limiter.GetStatusAsync("k", ClusterNodes.StepTimeout);
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);

        var asked = parent.Ask<object>(new PartitionStatus(null!), ClusterNodes.StepTimeout);

        await Assert.ThrowsAsync<ArgumentNullException>(() => asked); // failed: AskTimeoutException
        Assert.Equal(2, (await limiter.GetStatusAsync("k", ClusterNodes.StepTimeout)).MaxRunning);
    }
    /// <summary>
    /// A partitioned facade's awaited resize checks its arguments before anything is sent (each error names its parameter
    /// and value) and refuses at once once disposed; two resizes in flight are each answered, the last one's limit shown.
    /// </summary>
    [Fact]
    public async Task Partition_resizes_check_their_arguments_and_each_of_two_in_flight_is_answered()
    {
        var cluster = ActorQueueCluster.Get(Node);
        var limiter = cluster.PartitionedLimiter("h186-partition-resize-args", maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
        var model = cluster.PartitionedModelApiLimiter<string>("h186-model-resize-args", new ModelApiLimiterOptions(2, 100, 100_000, TimeSpan.FromMinutes(1)), TimeSpan.FromMinutes(10));
        Assert.Equal("key", Assert.Throws<ArgumentNullException>(() => { _ = limiter.ResizeAsync(null!, maxRunning: 3); }).ParamName);
        var running = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = limiter.ResizeAsync("k", maxRunning: 0); });
        Assert.Equal(("maxRunning", (object?)0), (running.ParamName, running.ActualValue));
        var concurrent = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = model.ResizeAsync("k", maxConcurrent: -3); });
        Assert.Equal(("maxConcurrent", (object?)(-3)), (concurrent.ParamName, concurrent.ActualValue));
        var queued = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = model.ResizeAsync("k", maxQueued: -1); });
        Assert.Equal(("maxQueued", (object?)(-1)), (queued.ParamName, queued.ActualValue));
        Assert.Empty(limiter.Partitions.Live); // nothing was sent: no agent made

        var first = limiter.ResizeAsync("k", maxRunning: 4);
        var second = limiter.ResizeAsync("k", maxRunning: 6);
        await Task.WhenAll(first, second).WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(6, (await limiter.GetStatusAsync("k", ClusterNodes.StepTimeout)).MaxRunning);

        await limiter.DisposeAsync();
        await model.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => { _ = limiter.ResizeAsync("k", maxRunning: 3); });
        Assert.Throws<ObjectDisposedException>(() => { _ = model.ResizeAsync("k", maxConcurrent: 3); });
    }
    /// <summary>
    /// The agent's handler fails on an awaited resize before the resize is kept (one without a resize stands in for any such
    /// failure): the handler's failure costs only that message, and its caller must be failed with the cause, as a request's
    /// is, not left waiting; the agent goes on. Failed before: the answer was never booked nor failed (TimeoutException).
    /// </summary>
    [Fact]
    public async Task An_awaited_resize_its_handler_fails_on_is_failed()
    {
        await using var limiter = ActorQueueCluster.Get(Node).Limiter("h186-resize-handler-fails", maxRunning: 2);
        await limiter.GetStatusAsync(ClusterNodes.StepTimeout);
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        limiter.Agent.Tell(new AwaitedResize(null!, answer));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => answer.Task.WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException
        Assert.IsType<NullReferenceException>(error.InnerException);
        await limiter.ResizeAsync(maxRunning: 3).WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(3, limiter.MaxRunning);
    }
}
