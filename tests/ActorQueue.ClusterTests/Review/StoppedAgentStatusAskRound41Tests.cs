using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 41 (helper 193): a whole cluster limiter's status ask (<see cref="ClusterConcurrencyLimiter.GetStatusAsync"/>, and
/// a model-API limiter's, which asks the same agent) sent to a node agent that has stopped is a dead letter. It was the
/// shared <c>GetLimiterStatus</c> singleton, which dead letters cannot fail per call, so its caller waited for the ask's
/// timeout; it is now one undeliverable ask per call, failed as it is published, as a partition's already was
/// (<c>PartitionStatusAsk</c>, Review/AgentStoppedUnaskedRound40SecondReadingTests). The asks here have a five-minute
/// timeout: the step timeout around them is only a hang guard.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class StoppedAgentStatusAskRound41Tests : OneNodeClusterTest
{
    /// <summary>The ask timeout given: far beyond the hang guard, so only an answer from the dead letter passes.</summary>
    private static readonly TimeSpan LongAsk = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The limiter's agent has stopped (as its supervisor stops one it cannot make again), the limiter not disposed: a
    /// status ask fails at once with <see cref="InvalidOperationException"/> naming the limiter.
    /// Failed before: TimeoutException of the hang guard (the ask, a dead letter, was answered only at its five-minute timeout).
    /// </summary>
    [Theory]
    [InlineData("whole")]
    [InlineData("model-api")]
    public async Task A_status_ask_to_a_stopped_agent_fails_at_once_naming_the_limiter(string kind)
    {
        var name = $"h193-status-stopped-{kind}";
        var (agent, status, dispose) = Facade(kind, name);
        await status(ClusterNodes.StepTimeout); // the agent made and following its gatekeeper
        var stopped = agent.WatchAsync();
        Node.Stop(agent);
        Assert.True(await stopped.WaitAsync(ClusterNodes.StepTimeout));

        var asked = status(LongAsk);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => asked.WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("stopped", error.Message, StringComparison.Ordinal);
        await dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// With the agent held between messages, a status ask is made, the limiter's disposal begins (its stop queued behind
    /// the ask), and the agent is stopped before it takes either: the ask, a dead letter, fails at once with
    /// <see cref="ObjectDisposedException"/> naming the limiter, since its facade's disposal had begun.
    /// Failed before: TimeoutException of the hang guard (the ask waited for its five-minute timeout).
    /// </summary>
    [Fact]
    public async Task A_status_ask_left_undelivered_by_a_dispose_is_told_disposed()
    {
        const string name = "h193-status-disposing";
        var limiter = ActorQueueCluster.Get(Node).Limiter(name, maxRunning: 2);
        await limiter.GetStatusAsync(ClusterNodes.StepTimeout);
        var stopped = limiter.Agent.WatchAsync();
        Task<ClusterLimiterStatus> asked;
        ValueTask disposed;
        using (await AgentPause.BetweenMessagesAsync(limiter.Agent))
        {
            asked = limiter.GetStatusAsync(LongAsk);
            disposed = limiter.DisposeAsync();
            Node.Stop(limiter.Agent); // a system message: taken while the agent is held, before the ask and the dispose
            Assert.True(await stopped.WaitAsync(ClusterNodes.StepTimeout));
        }

        var error = await Assert.ThrowsAsync<ObjectDisposedException>(() => asked.WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        await disposed.AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>A whole facade of <paramref name="kind"/>: its agent, its status ask with a timeout, and its dispose.</summary>
    private (IActorRef Agent, Func<TimeSpan, Task<ClusterLimiterStatus>> Status, Func<ValueTask> Dispose) Facade(string kind, string name)
    {
        var cluster = ActorQueueCluster.Get(Node);
        if (kind == "whole")
        {
            var whole = cluster.Limiter(name, maxRunning: 2);
            return (whole.Agent, timeout => whole.GetStatusAsync(timeout), whole.DisposeAsync);
        }

        var model = cluster.ModelApiLimiter(name, new ModelApiLimiterOptions(2, 100, 100_000, TimeSpan.FromMinutes(1)));
        return (model.Agent, timeout => model.GetStatusAsync(timeout), model.DisposeAsync);
    }
}
