using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// The cluster limiter's kinds (weights, priorities, timeouts, resizes, partitions, the RateLimiting views) against the
/// issue's promises: the hand-over guarantees of the plain limit, and bad input refused by name and value. One node; a
/// gatekeeper's agents are probes where the test must decide what they announce.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterLimiterKindsReviewTests : OneNodeClusterTest
{
    private static readonly Address OtherNode = new("akka.tcp", "actorqueue", "10.0.0.9", 4053);

    private static readonly Address ThirdNode = new("akka.tcp", "actorqueue", "10.0.0.10", 4053);

    /// <summary>
    /// A new incarnation learns a resize to 2 from one agent's announcement; another agent then announces a wait of 3
    /// permits, accepted by the predecessor under the old limit of 4 (nodes may also create a limiter with other bounds:
    /// the gatekeeper takes the first envelope's). Failed before: the wait was requeued unchecked and, as the head of
    /// its priority, could never fit: nobody behind it was ever granted again and its caller waited for ever (in Debug
    /// the gate's invariant threw). Now it is refused as an acquire too large is (<see cref="PermitRejectionKind.ExceedsLimit"/>)
    /// and the limit goes on serving; a wait that only a newer, larger limit of the same announcement fits is still taken.
    /// </summary>
    [Fact]
    public async Task An_announced_wait_larger_than_the_limit_is_refused_not_queued_at_the_head_for_ever()
    {
        var (gatekeeper, epoch, nodeAgent) = await StartGatekeeperAsync("announced-too-large", maxRunning: 4);

        var other = await HelloAsync(gatekeeper, epoch);
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [], [], []) { Limit = new LimitChanged(1, 2, null) }, other);
        Assert.Equal(new LimitChanged(1, 2, null), await other.ExpectMsgAsync<LimitChanged>());

        // The only member answers last: its wait of 3 can never fit 2 permits.
        gatekeeper.Tell(new LimiterAnnounce(epoch, ActorQueueCluster.Get(Node).Cluster.SelfAddress, [], [8], ["too-large"])
        {
            PendingPermits = [3], Limit = new LimitChanged(1, 2, null),
        }, nodeAgent);
        var rejected = await nodeAgent.ExpectMsgAsync<RemoteRejected>();
        Assert.Equal((epoch, 8L, PermitRejectionKind.ExceedsLimit, 3L, 2L), (rejected.Epoch, rejected.RequestId, rejected.Kind, rejected.Requested, rejected.Limit));
        gatekeeper.Tell(new RemoteAcquire(epoch, 1, "behind"), other);
        Assert.Equal(new RemoteGranted(epoch, 1, 1, 0), await other.ExpectMsgAsync<RemoteGranted>());
        gatekeeper.Tell(new RemoteRelease(epoch, 1), other);

        // A late agent knows of a newer resize to 5 and waits for 5: the limit it brings makes the wait fit.
        var late = await HelloAsync(gatekeeper, epoch);
        gatekeeper.Tell(new LimiterAnnounce(epoch, ThirdNode, [], [9], ["fits-the-newer-limit"])
        {
            PendingPermits = [5], Limit = new LimitChanged(2, 5, null),
        }, late);
        Assert.Equal(new LimitChanged(2, 5, null), await late.ExpectMsgAsync<LimitChanged>()); // told to every agent
        Assert.Equal(new RemoteGranted(epoch, 9, 5, 0), await late.ExpectMsgAsync<RemoteGranted>());
        var status = await gatekeeper.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, ClusterNodes.StepTimeout);
        Assert.Equal((5, 0, 5), (status.Running, status.Waiting, status.MaxRunning));
    }

    /// <summary>
    /// The status and statistics asks take a timeout for the answer. Failed before: zero or a negative value was taken,
    /// and Akka's Ask reads either as no timeout, so an ask whose answer never comes (the limiter disposed, the
    /// singleton gone) waited for ever; and an ask on a disposed limiter waited out its timeout for an
    /// <c>AskTimeoutException</c>. Now both are refused at once, by name and value, as every other bad argument.
    /// </summary>
    [Fact]
    public async Task Status_asks_refuse_a_zero_or_negative_timeout_by_name_and_value_and_a_disposed_limiter_at_once()
    {
        var node = ActorQueueCluster.Get(Node);
        var limiter = node.Limiter("status-timeouts", maxRunning: 2);
        var modelApi = node.ModelApiLimiter("status-timeouts-model", new ModelApiLimiterOptions(2, 10, 1_000, TimeSpan.FromHours(1)));
        var partitioned = node.PartitionedLimiter("status-timeouts-partitioned", 2, null, TimeSpan.FromMinutes(5));
        var partitionedModelApi = node.PartitionedModelApiLimiter<string>("status-timeouts-partitioned-model",
            new ModelApiLimiterOptions(2, 10, 1_000, TimeSpan.FromHours(1)), TimeSpan.FromMinutes(5));

        foreach (var bad in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1), Timeout.InfiniteTimeSpan })
        {
            var asks = new (string What, Func<Task> Ask)[]
            {
                ("limiter", () => limiter.GetStatusAsync(bad)),
                ("model-API limiter", () => modelApi.GetStatusAsync(bad)),
                ("partition", () => partitioned.GetStatusAsync("k", bad)),
                ("partitions", () => partitioned.GetStatisticsAsync(bad)),
                ("model-API partition", () => partitionedModelApi.GetStatusAsync("k", bad)),
                ("model-API partitions", () => partitionedModelApi.GetStatisticsAsync(bad)),
            };
            foreach (var (what, ask) in asks)
            {
                var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(ask);
                Assert.True(error.ParamName == "timeout" && error.Message.Contains($"got {bad}", StringComparison.Ordinal), $"{what}, {bad}: {error.Message}");
            }
        }

        Assert.Equal(2, (await limiter.GetStatusAsync(TimeSpan.FromSeconds(10))).MaxRunning); // a positive timeout is taken
        await limiter.DisposeAsync();
        await modelApi.DisposeAsync();
        await partitioned.DisposeAsync();
        await partitionedModelApi.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => { _ = limiter.GetStatusAsync(); });
        Assert.Throws<ObjectDisposedException>(() => { _ = modelApi.GetStatusAsync(); });
        Assert.Throws<ObjectDisposedException>(() => { _ = partitioned.GetStatusAsync("k"); });
        Assert.Throws<ObjectDisposedException>(() => { _ = partitionedModelApi.GetStatusAsync("k"); });
    }

    /// <summary>
    /// A local actor's acquire for a partition must name its key. Failed before: a <see cref="ClusterPartitionMessage"/>
    /// without one was dropped with a warning, so the actor waited for an answer that never came. Now it is turned
    /// away as an invalid request naming the key, as the facade refuses a null key.
    /// </summary>
    [Fact]
    public async Task A_partition_message_without_a_key_is_answered_not_dropped()
    {
        var limiter = ActorQueueCluster.Get(Node).PartitionedModelApiLimiter<string>("keyless",
            new ModelApiLimiterOptions(2, 10, 1_000, TimeSpan.FromHours(1)), TimeSpan.FromMinutes(5));
        var caller = Kit.CreateTestProbe();
        limiter.Agent.Tell(new ClusterPartitionMessage(null!, new GatekeeperProtocol.Acquire("keyless-caller", 7) { Tokens = 10 }), caller);
        var rejected = await caller.ExpectMsgAsync<GatekeeperProtocol.Rejected>(ClusterNodes.StepTimeout);
        Assert.Equal((7L, RejectionReason.InvalidRequest), (rejected.RequestId, rejected.Kind));
        Assert.Contains("Key must not be null", rejected.Reason, StringComparison.Ordinal);
        Assert.Equal(0, limiter.PartitionCount);
    }

    /// <summary>
    /// <c>ReleaseAndAcquire</c> at a cluster limiter's agent, which takes <see cref="GatekeeperProtocol"/> "exactly as a
    /// local gatekeeper". Failed before: the agent had no handler for it, so the release was lost (the permit stayed
    /// held cluster-wide: a facade caller waited for ever) and the next acquire was never answered. Now the lease goes
    /// back first and the acquire (reusing its request id) is answered as one sent on its own.
    /// </summary>
    [Fact]
    public async Task An_actors_ReleaseAndAcquire_gives_the_lease_back_and_asks_again()
    {
        var limiter = ActorQueueCluster.Get(Node).Limiter("release-and-acquire", maxRunning: 1);
        var actor = Kit.CreateTestProbe();
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 1), actor);
        var first = await actor.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);

        limiter.Agent.Tell(new GatekeeperProtocol.ReleaseAndAcquire(first.LeaseId, new GatekeeperProtocol.Acquire("actor", 1)), actor);
        var second = await actor.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
        Assert.Equal(1, second.RequestId);
        Assert.NotEqual(first.LeaseId, second.LeaseId);

        // The first permit came back: once the second goes too, a facade caller gets the only one.
        var facade = limiter.AcquireAsync("facade").AsTask();
        limiter.Agent.Tell(new GatekeeperProtocol.Release(second.LeaseId), actor);
        (await facade.WaitAsync(ClusterNodes.StepTimeout)).Dispose();
    }

    /// <summary>
    /// <c>Resize</c> from an actor at a cluster limiter's agent (and a partition's, through <see cref="ClusterPartitionMessage"/>).
    /// Failed before: unhandled, so an actor could not resize a cluster limit at all. Now it goes to the gatekeeper as
    /// the facade's <c>Resize</c> does, and reaches every node; invalid bounds are logged and ignored, as at a local gatekeeper.
    /// </summary>
    [Fact]
    public async Task An_actors_Resize_reaches_the_gatekeeper_and_invalid_bounds_are_ignored()
    {
        var node = ActorQueueCluster.Get(Node);
        var limiter = node.Limiter("actor-resize", maxRunning: 2);
        var actor = Kit.CreateTestProbe();
        limiter.Agent.Tell(new GatekeeperProtocol.Resize(0, -1), actor); // ignored
        limiter.Agent.Tell(new GatekeeperProtocol.Resize(3, 4), actor);
        await Poll.ValueAsync(() => limiter.GetStatusAsync(), status => (status.MaxRunning, status.MaxQueued) == (3, 4), ClusterNodes.StepTimeout);
        await Poll.UntilAsync(() => limiter.MaxRunning == 3 && limiter.MaxQueued == 4, ClusterNodes.StepTimeout, "the node heard of the resize");

        var partitioned = node.PartitionedModelApiLimiter<string>("actor-resize-partitioned",
            new ModelApiLimiterOptions(2, 10, 1_000, TimeSpan.FromHours(1)), TimeSpan.FromMinutes(5));
        partitioned.Agent.Tell(partitioned.Message("k", new GatekeeperProtocol.Resize(5, null)), actor);
        await Poll.ValueAsync(() => partitioned.GetStatusAsync("k"), status => status.MaxRunning == 5, ClusterNodes.StepTimeout);
    }

    /// <summary>
    /// An actor that asks with <c>ReplyQueued = false</c> hears only <c>Granted</c> or <c>Rejected</c>, as at a local
    /// gatekeeper. Failed before: the cluster agent told it <c>Queued</c> all the same.
    /// </summary>
    [Fact]
    public async Task An_actor_that_asks_not_to_hear_queued_is_not_told_it()
    {
        var limiter = ActorQueueCluster.Get(Node).Limiter("reply-queued", maxRunning: 1);
        var holder = Kit.CreateTestProbe();
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("holder", 1), holder);
        var held = await holder.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
        var waiter = Kit.CreateTestProbe();
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("waiter", 1) { ReplyQueued = false }, waiter);
        await Poll.UntilAsync(() => limiter.WaitingCount == 1, ClusterNodes.StepTimeout, "the waiter is queued at the gatekeeper");

        limiter.Agent.Tell(new GatekeeperProtocol.Release(held.LeaseId), holder);
        Assert.Equal(1, (await waiter.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout)).RequestId); // the first and only reply
    }

    /// <summary>
    /// A waiter evicted from a cluster limiter's full queue by one of higher priority hears it as at a local gatekeeper:
    /// an actor <c>Rejected</c> of kind <see cref="RejectionReason.Evicted"/>, a facade caller the eviction's
    /// <see cref="ConcurrencyLimitExceededException"/> with the queue's bound. Failed before: the agent made a plain
    /// exception from a message, so the actor was told <see cref="RejectionReason.QueueFull"/> and the facade caller's
    /// exception said <c>MaxQueued</c> 0.
    /// </summary>
    [Fact]
    public async Task An_evicted_waiter_hears_it_was_evicted_as_at_a_local_gatekeeper()
    {
        var limiter = ActorQueueCluster.Get(Node).Limiter("evicted", maxRunning: 1, maxQueued: 1, whenFull: QueueFullMode.EvictLowestPriorityNewest);
        using var held = await limiter.AcquireAsync("holder").AsTask().WaitAsync(ClusterNodes.StepTimeout);

        var actor = Kit.CreateTestProbe();
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 1), actor);
        await actor.ExpectMsgAsync<GatekeeperProtocol.Queued>(ClusterNodes.StepTimeout);
        var facade = limiter.AcquireAsync(1, priority: 1, source: "facade").AsTask();
        var evicted = await actor.ExpectMsgAsync<GatekeeperProtocol.Rejected>(ClusterNodes.StepTimeout);
        Assert.Equal(RejectionReason.Evicted, evicted.Kind);

        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("urgent", 2) { Priority = 2 }, actor);
        var error = await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => facade.WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(1, error.MaxQueued);
        Assert.Contains("Evicted", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A cluster partition's measurements carry its limiter's name, never its key (README, Metrics: "never a partition
    /// key: keys are unbounded, and each tag value would be a time series kept for ever"). Failed before: a partition's
    /// gatekeeper and agent tagged them with the partition's cluster-wide name, the limiter's name and the key.
    /// </summary>
    [Fact]
    public async Task A_partitions_measurements_are_tagged_with_its_limiters_name_not_its_key()
    {
        var name = $"tagged-{Guid.NewGuid():N}";
        var tags = new System.Collections.Concurrent.ConcurrentDictionary<(string Instrument, string Tag), long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, meters) =>
        {
            if (instrument.Meter.Name == ActorQueue.Telemetry.ActorQueueTelemetry.Name)
            {
                meters.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, measured, _) =>
        {
            foreach (var tag in measured)
            {
                if (tag is { Key: ActorQueue.Telemetry.ActorQueueTelemetry.LimiterNameTag, Value: string limiter } && limiter.StartsWith(name, StringComparison.Ordinal))
                {
                    tags.AddOrUpdate((instrument.Name, limiter), value, (_, sum) => sum + value);
                }
            }
        });
        listener.Start();

        var limiter = ActorQueueCluster.Get(Node).PartitionedLimiter(name, maxRunning: 1, maxQueued: null, TimeSpan.FromMinutes(5));
        using (await limiter.AcquireAsync("tenant-1").AsTask().WaitAsync(ClusterNodes.StepTimeout))
        {
            await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => limiter.AcquireAsync("tenant-1", waitTimeout: TimeSpan.FromMilliseconds(10)).AsTask().WaitAsync(ClusterNodes.StepTimeout));
            (await limiter.AcquireAsync("tenant-2").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        }

        await Poll.UntilAsync(() => tags.Keys.Count(key => key.Instrument == ActorQueue.Telemetry.ActorQueueTelemetry.LimiterWaitTimeouts) == 1
                                    && tags.Where(key => key.Key.Instrument == ActorQueue.Telemetry.ActorQueueTelemetry.LimiterAcquired).Sum(key => key.Value) >= 2,
            ClusterNodes.StepTimeout, () => $"the grants and the wait timeout are measured: {string.Join(", ", tags)}");
        Assert.All(tags.Keys, key => Assert.Equal(name, key.Tag));
    }

    /// <summary>
    /// A partition resized below a request's weight refuses it at once by name and value (it passed the node's check
    /// against the configured limit), and a partition's refusals name the limiter and the key in words. Failed before:
    /// the messages named the partition's cluster-wide name, the limiter's name and the key joined by a U+001F control
    /// character (into an HTTP reason phrase, a log line).
    /// </summary>
    [Fact]
    public async Task A_partitions_refusals_name_the_limiter_and_the_key_in_words()
    {
        var limiter = ActorQueueCluster.Get(Node).PartitionedLimiter("worded", maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(5));
        limiter.Resize("tenant", maxRunning: 1);
        await Poll.ValueAsync(() => limiter.GetStatusAsync("tenant"), status => status.MaxRunning == 1, ClusterNodes.StepTimeout);

        var tooLarge = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => limiter.AcquireAsync("tenant", permits: 2).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(("permits", (object?)2L), (tooLarge.ParamName, tooLarge.ActualValue));
        using var held = await limiter.AcquireAsync("tenant").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var timedOut = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => limiter.AcquireAsync("tenant", waitTimeout: TimeSpan.FromMilliseconds(10)).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        var wouldWait = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => limiter.AcquireAsync("tenant", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        foreach (var error in new Exception[] { tooLarge, timedOut, wouldWait })
        {
            Assert.DoesNotContain('\u001f', error.Message);
            Assert.Contains("worded (partition tenant)", error.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A recovering gatekeeper counts the waits it keeps aside for its gate's opening (a new limiter's or key's first
    /// requests, announced as sent while the agent followed no incarnation) as waiting. Failed before: its status (and
    /// the waiting gauge) said nobody waited until the roll call ended.
    /// </summary>
    [Fact]
    public async Task A_recovering_gatekeeper_counts_the_waits_it_keeps_for_its_gates_opening()
    {
        var (gatekeeper, epoch, nodeAgent) = await StartGatekeeperAsync("kept-aside", maxRunning: 1);
        var other = await HelloAsync(gatekeeper, epoch);
        gatekeeper.Tell(new LimiterAnnounce(epoch, OtherNode, [], [3], ["first"]) { PendingUnsent = [true] }, other);

        var recovering = await gatekeeper.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, ClusterNodes.StepTimeout);
        Assert.Equal((0, 1, true), (recovering.Running, recovering.Waiting, recovering.Recovering));
        gatekeeper.Tell(new LimiterAnnounce(epoch, ActorQueueCluster.Get(Node).Cluster.SelfAddress, [], [], []), nodeAgent);
        Assert.Equal(new RemoteGranted(epoch, 3, 1, 0), await other.ExpectMsgAsync<RemoteGranted>());
        var serving = await gatekeeper.Ask<ClusterLimiterStatus>(GetLimiterStatus.Instance, ClusterNodes.StepTimeout);
        Assert.Equal((1, 0, false), (serving.Running, serving.Waiting, serving.Recovering));
    }

    /// <summary>A gatekeeper whose roll call reaches a probe as the only member's agent (the test decides when it answers), with its epoch.</summary>
    private async Task<(IActorRef Gatekeeper, long Epoch, Akka.TestKit.TestProbe NodeAgent)> StartGatekeeperAsync(string name, int maxRunning)
    {
        var nodeAgent = Kit.CreateTestProbe();
        ActorQueueCluster.Get(Node).Host.Tell(new RegisterAgent(AgentKinds.Limiter, name, nodeAgent.Ref));
        var gatekeeper = Node.ActorOf(ClusterGatekeeperActor.Props(name, maxRunning, null, QueueFullMode.RejectNewcomer, TimeSpan.Zero, TimeSpan.FromSeconds(30)), $"gatekeeper-{name}");
        return (gatekeeper, (await nodeAgent.ExpectMsgAsync<RecoverLimiter>(ClusterNodes.StepTimeout)).Epoch, nodeAgent);
    }

    /// <summary>A probe for an agent of a node that is not a member: it says hello and is asked to announce itself.</summary>
    private async Task<Akka.TestKit.TestProbe> HelloAsync(IActorRef gatekeeper, long epoch)
    {
        var agent = Kit.CreateTestProbe();
        gatekeeper.Tell(new AgentHello(0), agent);
        Assert.Equal(epoch, (await agent.ExpectMsgAsync<RecoverLimiter>()).Epoch);
        return agent;
    }
}
