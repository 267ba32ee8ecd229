using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using Akka.Dispatch.SysMsg;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 41 (helper 194): a partitioned cluster limiter's status ask of one key and its statistics ask of all
/// (<see cref="ClusterPartitionedLimiter.GetStatusAsync"/>, <see cref="ClusterPartitionedLimiter.GetStatisticsAsync"/>, and
/// the partitioned model-API limiter's) go to the node's parent of the partition agents. They were a plain
/// <c>PartitionStatus</c> and the shared <c>AllPartitionStatistics</c>, which a dead letter cannot fail, so once that
/// parent had stopped (its actor system terminated, or the parent alone stopped) the caller waited for its whole ask
/// timeout. Each is now an undeliverable ask of its own, failed as it is published, as a whole limiter's is
/// (Review/StoppedAgentStatusAskRound41Tests). The asks here have a five-minute timeout: the step timeout around them is
/// only a hang guard.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionsParentAskRound41Tests : OneNodeClusterTest
{
    /// <summary>The ask timeout given: far beyond the hang guard, so only an answer from the dead letter passes.</summary>
    private static readonly TimeSpan LongAsk = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The node's actor system is terminated (the parent stopped with it); a key's status ask, or the statistics ask,
    /// fails at once with <see cref="ObjectDisposedException"/> naming the limiter.
    /// Failed before: TimeoutException of the hang guard, for all four (the ask, a dead letter, waited for its five minutes).
    /// </summary>
    [Theory]
    [InlineData("partitioned", "status")]
    [InlineData("partitioned", "statistics")]
    [InlineData("partitioned-model-api", "status")]
    [InlineData("partitioned-model-api", "statistics")]
    public async Task An_ask_after_the_systems_termination_is_told_disposed(string kind, string ask)
    {
        var name = $"h194-terminated-{kind}-{ask}";
        var facade = Facade(kind, name);
        await facade.Status("k", ClusterNodes.StepTimeout); // the key's agent made, following its gatekeeper

        await Node.Terminate().WaitAsync(ClusterNodes.StepTimeout);

        Task asked = ask == "status" ? facade.Status("k", LongAsk) : facade.Statistics(LongAsk);
        var error = await Assert.ThrowsAsync<ObjectDisposedException>(() => asked.WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("shutting down", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The parent of the partition agents alone is stopped, the limiter not disposed and the system running: a key's status
    /// ask, or the statistics ask, fails at once with <see cref="InvalidOperationException"/> naming the limiter; a dispose
    /// afterwards completes.
    /// Failed before: TimeoutException of the hang guard, for all four.
    /// </summary>
    [Theory]
    [InlineData("partitioned", "status")]
    [InlineData("partitioned", "statistics")]
    [InlineData("partitioned-model-api", "status")]
    [InlineData("partitioned-model-api", "statistics")]
    public async Task An_ask_to_a_stopped_parent_fails_at_once_naming_the_limiter(string kind, string ask)
    {
        var name = $"h194-parent-stopped-{kind}-{ask}";
        var facade = Facade(kind, name);
        await facade.Status("k", ClusterNodes.StepTimeout);
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);
        var stopped = parent.WatchAsync();
        Node.Stop(parent);
        Assert.True(await stopped.WaitAsync(ClusterNodes.StepTimeout));

        Task asked = ask == "status" ? facade.Status("k", LongAsk) : facade.Statistics(LongAsk);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => asked.WaitAsync(ClusterNodes.StepTimeout)); // failed: TimeoutException
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("not disposed", error.Message, StringComparison.Ordinal);
        await facade.Dispose().AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// While the node's actor system shuts down (its user guardian terminated; a termination hook of this test holds the
    /// system actors alive), a key's status ask is queued at the parent, held between messages, and the key's agent is
    /// stopped: the parent routes the ask to the stopped agent, and the asker is told <see cref="ObjectDisposedException"/>
    /// naming the partition, as a whole limiter's asker is (<c>LimiterStatusAsk</c>).
    /// Failed before: <see cref="InvalidOperationException"/> ("stopped before taking this status ask").
    /// </summary>
    [Theory]
    [InlineData("partitioned")]
    [InlineData("partitioned-model-api")]
    public async Task A_key_status_ask_routed_to_an_agent_stopped_while_the_system_shuts_down_is_told_disposed(string kind)
    {
        var name = $"h194-shutdown-routed-{kind}";
        var facade = Facade(kind, name);
        await facade.Status("k", ClusterNodes.StepTimeout);
        var parent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}").ResolveOne(ClusterNodes.StepTimeout);
        var agent = await Node.ActorSelection($"/system/actorqueue-partitions-*-{name}/*").ResolveOne(ClusterNodes.StepTimeout);
        var agentStopped = agent.WatchAsync();
        var hook = TerminationHold.Start(Node);
        await hook.Registered.WaitAsync(ClusterNodes.StepTimeout);

        var terminated = Node.Terminate();
        try
        {
            await hook.Reached.WaitAsync(ClusterNodes.StepTimeout); // the user guardian has terminated; the system actors live on
            Task<ClusterLimiterStatus> asked;
            using (await AgentPause.BetweenMessagesAsync(parent))
            {
                asked = facade.Status("k", LongAsk); // queued at the parent, ahead of its word of the agent's stop
                Node.Stop(agent);
                Assert.True(await agentStopped.WaitAsync(ClusterNodes.StepTimeout));
            }

            var error = await Assert.ThrowsAsync<ObjectDisposedException>(() => asked.WaitAsync(ClusterNodes.StepTimeout)); // failed: InvalidOperationException
            Assert.Contains($"'{name} (partition k)'", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            hook.Release();
        }

        await terminated.WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>A partitioned facade of <paramref name="kind"/>: a key's status ask, the statistics ask (each with its timeout) and its dispose.</summary>
    private (Func<string, TimeSpan, Task<ClusterLimiterStatus>> Status, Func<TimeSpan, Task<IReadOnlyDictionary<string, ClusterPartitionStatistics>>> Statistics,
        Func<ValueTask> Dispose) Facade(string kind, string name)
    {
        var cluster = ActorQueueCluster.Get(Node);
        if (kind == "partitioned")
        {
            var plain = cluster.PartitionedLimiter(name, maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(10));
            return ((key, timeout) => plain.GetStatusAsync(key, timeout), timeout => plain.GetStatisticsAsync(timeout), plain.DisposeAsync);
        }

        var model = cluster.PartitionedModelApiLimiter<string>(name, new ModelApiLimiterOptions(2, 100, 100_000, TimeSpan.FromMinutes(1)), TimeSpan.FromMinutes(10));
        return ((key, timeout) => model.GetStatusAsync(key, timeout), timeout => model.GetStatisticsAsync(timeout), model.DisposeAsync);
    }

    /// <summary>
    /// A system actor registered as a termination hook of its system's guardian: once the user guardian has terminated, the
    /// system guardian (and so every system actor) waits for it until <see cref="Release"/>.
    /// </summary>
    private sealed class TerminationHold
    {
        private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private IActorRef _actor = ActorRefs.Nobody;

        /// <summary>Completes once the system guardian holds the registration.</summary>
        public Task Registered => _registered.Task;

        /// <summary>Completes once the system guardian waits for this hook: the user guardian has terminated.</summary>
        public Task Reached => _reached.Task;

        /// <summary>Lets the system guardian stop.</summary>
        public void Release() => _actor.Tell(TerminationHookDone.Instance);

        /// <summary>Starts one on <paramref name="system"/>; it registers as it starts.</summary>
        public static TerminationHold Start(ActorSystem system)
        {
            var hold = new TerminationHold();
            hold._actor = ((ExtendedActorSystem)system).SystemActorOf(Props.Create(() => new Hook(hold)), "h194-termination-hold");
            return hold;
        }

        /// <summary>The hook: registers as it starts, signals the guardian's call, and answers it once released.</summary>
        private sealed class Hook(TerminationHold hold) : UntypedActor
        {
            private IActorRef? _guardian;

            protected override void PreStart()
            {
                var guardian = ((ExtendedActorSystem)Context.System).SystemGuardian;
                guardian.Tell(RegisterTerminationHook.Instance, Self);
                guardian.Tell(new Identify(null), Self); // answered after the registration: the guardian takes both in order
            }

            protected override void OnReceive(object message)
            {
                switch (message)
                {
                    case ActorIdentity:
                        hold._registered.TrySetResult();
                        break;
                    case TerminationHook:
                        _guardian = Sender;
                        hold._reached.TrySetResult();
                        break;
                    case TerminationHookDone done:
                        _guardian?.Tell(done, Self);
                        break;
                }
            }
        }
    }
}
