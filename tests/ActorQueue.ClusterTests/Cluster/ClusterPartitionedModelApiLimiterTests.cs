using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Issue 18 item 3 per key: each key of a partitioned cluster model-API limiter is a cluster model-API limit of its own,
/// across nodes and hand-overs, and its partition stops only at rest. Real time with an hour's period, so no refill
/// falls inside a test and every assertion is a count.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterPartitionedModelApiLimiterTests
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    [Fact]
    public async Task A_keys_rate_holds_summed_over_three_nodes_and_another_key_is_independent()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var options = new ModelApiLimiterOptions(maxConcurrent: 8, requestsPerPeriod: 6, tokensPerPeriod: 1000, Hour);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).PartitionedModelApiLimiter<string>("keys-across-nodes", options, TimeSpan.FromMinutes(5))).ToList();
        foreach (var key in new[] { "a", "b" })
        {
            await StatusAsync(limiters[0], key, s => !s.Recovering); // a call that may not wait is refused while a key's gatekeeper recovers
        }

        // 3 nodes × 4 calls of key a that may not wait: exactly the 6 its period holds are granted, whichever nodes ask.
        var granted = await GrantedAsync(limiters.SelectMany(limiter => Enumerable.Repeat(limiter, 4)), "a");
        Assert.Equal(6, granted);
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => limiters[1].AcquireAsync("a", 1, waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));

        // Key b has its own six, on every node.
        Assert.Equal(6, await GrantedAsync(limiters.Concat(limiters), "b"));
        var a = await StatusAsync(limiters[2], "a", s => s.Running == 0);
        Assert.Equal((0L, 940L), (a.RequestsAvailable, a.TokensAvailable));
        var b = await StatusAsync(limiters[2], "b", s => s.Running == 0);
        Assert.Equal((0L, 940L), (b.RequestsAvailable, b.TokensAvailable));
        Assert.Equal(["a", "b"], (await limiters[0].GetStatisticsAsync()).Keys.Order());
    }

    [Fact]
    public async Task A_settle_on_one_node_gives_unused_tokens_to_a_waiter_of_the_same_key_on_another()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var options = new ModelApiLimiterOptions(maxConcurrent: 8, requestsPerPeriod: 100, tokensPerPeriod: 100, Hour);
        var first = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedModelApiLimiter<string>("settle-per-key", options, TimeSpan.FromMinutes(5));
        var second = ActorQueueCluster.Get(cluster.Nodes[2]).PartitionedModelApiLimiter<string>("settle-per-key", options, TimeSpan.FromMinutes(5));

        var lease = await first.AcquireAsync("k", 60).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = second.AcquireAsync("k", 60).AsTask();
        await StatusAsync(second, "k", s => s.Waiting == 1); // 40 tokens left: the estimate counts cluster-wide
        await using (await second.AcquireAsync("other", 60).AsTask().WaitAsync(ClusterNodes.StepTimeout))
        {
            // another key's tokens are its own
        }

        Assert.False(waiting.IsCompleted);
        lease.Settle(10);
        await using var granted = await waiting.WaitAsync(ClusterNodes.StepTimeout); // 50 came back: 90 left
        lease.Dispose();
        var status = await StatusAsync(first, "k", s => s.Running == 1);
        Assert.Equal(30, status.TokensAvailable);
        Assert.Throws<InvalidOperationException>(() => lease.Settle(10));
    }

    [Fact]
    public async Task Across_a_singleton_hand_over_a_drained_key_neither_refills_nor_forgets_its_debt_though_its_agents_were_idle()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var idle = TimeSpan.FromMilliseconds(300);
        var options = new ModelApiLimiterOptions(maxConcurrent: 8, requestsPerPeriod: 100, tokensPerPeriod: 1000, Hour);
        var settler = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedModelApiLimiter<string>("keys-handover", options, idle);
        var other = ActorQueueCluster.Get(cluster.Nodes[2]).PartitionedModelApiLimiter<string>("keys-handover", options, idle);

        (await other.AcquireAsync("k", 10).AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        var lease = await settler.AcquireAsync("k", 500).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        lease.Settle(1800); // 1300 beyond the estimate: 490 left becomes a debt of 810
        lease.Dispose();
        var before = await StatusAsync(other, "k", s => s.Running == 0);
        Assert.Equal((98L, -810L), (before.RequestsAvailable, before.TokensAvailable));

        // Long past the idle timeout (a partition of a concurrency limiter with the same timeout, used after, has stopped
        // everywhere), the drained key is still live on the nodes that used it: they carry its state to the next gatekeeper.
        await UntilConcurrencyPartitionStoppedAsync(cluster, idle);
        Assert.Equal((1, 1), (settler.PartitionCount, other.PartitionCount));

        await cluster.LeaveAsync(cluster.Nodes[0]); // the singleton moves to the next-oldest node

        // Empty (not refilled to 100 and 1000) and still owing the 810: the newest debt a node heard of.
        var after = await StatusAsync(other, "k", s => s is { Recovering: false, Agents: 2 });
        Assert.Equal((0L, -810L), (after.RequestsAvailable, after.TokensAvailable));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => settler.AcquireAsync("k", 1, waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
    }

    [Fact]
    public async Task A_partition_with_a_drained_bucket_lives_past_its_idle_timeout_and_one_at_rest_stops_and_starts_full()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var idle = TimeSpan.FromMilliseconds(300);
        var drained = node.PartitionedModelApiLimiter<string>("drained", new ModelApiLimiterOptions(4, requestsPerPeriod: 2, tokensPerPeriod: 100, Hour), idle);
        (await drained.AcquireAsync("k", 1).AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        (await drained.AcquireAsync("k", 1).AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();

        // Made anew after an idle stop, the partition would grant again at once: its agent and gatekeeper must live on.
        await UntilConcurrencyPartitionStoppedAsync(cluster, idle);
        Assert.Equal(1, drained.PartitionCount);
        Assert.True(await AnyGatekeeperAsync(cluster.Nodes[0], "drained", "k"));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => drained.AcquireAsync("k", 1, waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));

        // With a one-second period the bucket is full again soon: then the partition stops everywhere, and a key made anew starts full.
        var resting = node.PartitionedModelApiLimiter<int>("resting", new ModelApiLimiterOptions(4, requestsPerPeriod: 2, tokensPerPeriod: 100, TimeSpan.FromSeconds(1)), idle);
        await using (await resting.AcquireAsync(7, 100).AsTask().WaitAsync(ClusterNodes.StepTimeout))
        {
            // Read while the call is held: released, the partition is at rest within the second and may stop before a
            // slow machine's read (the statistics were then empty).
            Assert.Equal("7", Assert.Single(await resting.GetStatisticsAsync()).Key);
        }

        await Poll.UntilAsync(() => resting.PartitionCount == 0, ClusterNodes.StepTimeout, "the partition at rest stopped on the node");
        await Poll.ValueAsync(() => AnyGatekeeperAsync(cluster.Nodes[0], "resting", "7"), any => !any, ClusterNodes.StepTimeout);
        await StatusAsync(resting, 7, s => !s.Recovering);
        await using var again = await resting.AcquireAsync(7, 100, waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    [Fact]
    public async Task Local_actors_acquire_settle_and_release_a_keys_tokens_through_the_agent()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedModelApiLimiter<string>("actor-keys", new ModelApiLimiterOptions(8, 100, 100, Hour), TimeSpan.FromMinutes(5));
        var probe = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]); // not disposed: that would shut the node down

        limiter.Agent.Tell(limiter.Message("k", new GatekeeperProtocol.Acquire("actor", 1) { Tokens = 70 }), probe.TestActor);
        var granted = await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
        limiter.Agent.Tell(limiter.Message("k", new GatekeeperProtocol.Acquire("actor", 2) { Tokens = 70 }), probe.TestActor);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Queued>(ClusterNodes.StepTimeout);
        limiter.Agent.Tell(limiter.Message("j", new GatekeeperProtocol.Acquire("actor", 3) { Tokens = 70 }), probe.TestActor);
        Assert.Equal(3, (await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout)).RequestId); // another key's tokens

        limiter.Agent.Tell(limiter.Message("k", new GatekeeperProtocol.Settle(granted.LeaseId, 20)), probe.TestActor);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Settled>(ClusterNodes.StepTimeout);
        Assert.Equal(2, (await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout)).RequestId); // 50 back: 80 left
        limiter.Agent.Tell(limiter.Message("k", new GatekeeperProtocol.Release(granted.LeaseId)), probe.TestActor);
        await StatusAsync(limiter, "k", s => s.Running == 1);
        limiter.Agent.Tell(limiter.Message("k", new GatekeeperProtocol.Settle(granted.LeaseId, 20)), probe.TestActor);
        Assert.Contains("not held", (await probe.ExpectMsgAsync<Status.Failure>(ClusterNodes.StepTimeout)).Cause.Message);
    }

    [Fact]
    public async Task Bad_arguments_name_the_parameter_and_the_value()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var options = new ModelApiLimiterOptions(2, 10, 100, Hour);
        var limiter = node.PartitionedModelApiLimiter<string>("bad-partitions", options, TimeSpan.FromMinutes(1));

        Assert.Equal("key", Assert.Throws<ArgumentNullException>(() => limiter.AcquireAsync(null!, 1)).ParamName);
        var tooMany = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AcquireAsync("k", 101));
        Assert.Equal(("estimatedTokens", (object)101L), (tooMany.ParamName, tooMany.ActualValue));
        Assert.Equal("estimatedTokens", Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AcquireAsync("k", 0)).ParamName);
        Assert.Equal("waitTimeout", Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AcquireAsync("k", 1, waitTimeout: TimeSpan.FromSeconds(-2))).ParamName);
        var resize = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.Resize("k", maxConcurrent: 0));
        Assert.Equal(("maxConcurrent", (object)0), (resize.ParamName, resize.ActualValue));
        Assert.Equal("maxQueued", Assert.Throws<ArgumentOutOfRangeException>(() => limiter.Resize("k", maxQueued: -1)).ParamName);
        var zero = Assert.Throws<ArgumentOutOfRangeException>(() => new ModelApiLimiterOptions(2, 0, 100, Hour));
        Assert.Equal(("RequestsPerPeriod", 0L), (zero.ParamName, Convert.ToInt64(zero.ActualValue, System.Globalization.CultureInfo.InvariantCulture)));

        var idle = Assert.Throws<ArgumentOutOfRangeException>(() => node.PartitionedModelApiLimiter<string>("bad-idle", options, TimeSpan.Zero));
        Assert.Equal(("idleTimeout", (object)TimeSpan.Zero), (idle.ParamName, idle.ActualValue));
        Assert.Equal("options", Assert.Throws<ArgumentNullException>(() => node.PartitionedModelApiLimiter<string>("bad-null", null!, TimeSpan.FromMinutes(1))).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentException>(() => node.PartitionedModelApiLimiter<string>("bad-partitions", options with { TokensPerPeriod = 200 }, TimeSpan.FromMinutes(1))).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentException>(() => node.PartitionedModelApiLimiter<int>("bad-partitions", options, TimeSpan.FromMinutes(1))).ParamName);
        Assert.Same(limiter, node.PartitionedModelApiLimiter<string>("bad-partitions", options, TimeSpan.FromMinutes(1)));
        node.PartitionedLimiter("plain-partitions", maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(1));
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => node.PartitionedModelApiLimiter<string>("plain-partitions", options, TimeSpan.FromMinutes(1))).ParamName);
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => node.PartitionedLimiter("bad-partitions", 2, null, TimeSpan.FromMinutes(1))).ParamName);
        var nullFormat = node.PartitionedModelApiLimiter<int>("null-format", options, TimeSpan.FromMinutes(1), _ => null!);
        Assert.Equal("key", Assert.Throws<ArgumentException>(() => nullFormat.AcquireAsync(3, 1)).ParamName);

        await limiter.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => limiter.AcquireAsync("k", 1));
        Assert.NotSame(limiter, node.PartitionedModelApiLimiter<string>("bad-partitions", options, TimeSpan.FromMinutes(1))); // the name is free again
    }

    /// <summary>How many of <paramref name="limiters"/>' calls for <paramref name="key"/> that may not wait are granted (10 tokens each).</summary>
    private static async Task<int> GrantedAsync(IEnumerable<ClusterPartitionedModelApiLimiter<string>> limiters, string key)
    {
        var attempts = limiters.Select(async limiter =>
        {
            try
            {
                await using var lease = await limiter.AcquireAsync(key, 10, waitTimeout: TimeSpan.Zero);
                return true;
            }
            catch (ConcurrencyWaitTimeoutException)
            {
                return false;
            }
        }).ToList();
        return (await Task.WhenAll(attempts).WaitAsync(ClusterNodes.StepTimeout)).Count(ok => ok);
    }

    /// <summary>A key's exact counts once <paramref name="until"/> holds (asks lost while the singleton moves are asked again).</summary>
    private static async Task<ClusterLimiterStatus> StatusAsync<TKey>(ClusterPartitionedModelApiLimiter<TKey> limiter, TKey key, Func<ClusterLimiterStatus, bool> until)
        where TKey : notnull =>
        (await Poll.ValueAsync(async () =>
        {
            try
            {
                return await limiter.GetStatusAsync(key, TimeSpan.FromSeconds(2));
            }
            catch (AskTimeoutException)
            {
                return null;
            }
        }, s => s is not null && until(s), ClusterNodes.StepTimeout))!;

    /// <summary>
    /// Uses a partition of a concurrency limiter with <paramref name="idle"/> on every live node and waits until it stopped
    /// on all of them and in the singleton: anything with the same idle timeout that went quiet before has had its idle
    /// timeout too.
    /// </summary>
    internal static async Task UntilConcurrencyPartitionStoppedAsync(ClusterNodes cluster, TimeSpan idle)
    {
        var live = cluster.Nodes.Where(node => !node.WhenTerminated.IsCompleted).ToList();
        var name = $"control-{Guid.NewGuid():N}";
        var limiters = live.Select(node => ActorQueueCluster.Get(node).PartitionedLimiter(name, 1, null, idle)).ToList();
        foreach (var limiter in limiters)
        {
            (await limiter.AcquireAsync("c").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        }

        await Poll.UntilAsync(() => limiters.All(limiter => limiter.PartitionCount == 0), ClusterNodes.StepTimeout, "the control partition stopped on every node");
        await Poll.ValueAsync(() => AnyGatekeeperAsync(live[0], name, "c", everywhere: live), any => !any, ClusterNodes.StepTimeout);
    }

    /// <summary>Whether the singleton hub (on any of <paramref name="everywhere"/>, else on <paramref name="node"/>) has the gatekeeper of partition <paramref name="key"/> of <paramref name="limiter"/>.</summary>
    internal static async Task<bool> AnyGatekeeperAsync(ActorSystem node, string limiter, string key, IEnumerable<ActorSystem>? everywhere = null)
    {
        var name = HubActor.ChildName(AgentKinds.Limiter, PartitionAgentsActor.PartitionName(limiter, key));
        foreach (var system in everywhere ?? [node])
        {
            try
            {
                // An exact path that names nobody is answered at once (not found): the timeout is only patience.
                await system.ActorSelection($"/system/{ActorQueueCluster.SingletonManagerName}/hub/{name}").ResolveOne(ClusterNodes.StepTimeout);
                return true;
            }
            catch (ActorNotFoundException)
            {
            }
        }

        return false;
    }
}
