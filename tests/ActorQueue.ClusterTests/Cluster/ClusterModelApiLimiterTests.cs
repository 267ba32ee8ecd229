using ActorQueue.Actors;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Issue 18 on the cluster: requests and tokens per period granted cluster-wide, settles from any node and from actors,
/// and what a singleton hand-over keeps of the rates. Real time with an hour's period, so no refill falls inside a test
/// and every assertion is a count.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterModelApiLimiterTests
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    private static async Task<ClusterLimiterStatus> StatusAsync(ClusterModelApiLimiter limiter, Func<ClusterLimiterStatus, bool> until) =>
        (await Poll.ValueAsync(async () =>
        {
            try
            {
                return await limiter.GetStatusAsync(TimeSpan.FromSeconds(2));
            }
            catch (Akka.Actor.AskTimeoutException)
            {
                return null; // asked while the singleton moved
            }
        }, s => s is not null && until(s), ClusterNodes.StepTimeout))!;

    [Fact]
    public async Task Grants_in_one_period_never_exceed_the_requests_rate_summed_over_three_nodes()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var options = new ModelApiLimiterOptions(maxConcurrent: 8, requestsPerPeriod: 6, tokensPerPeriod: 1000, Hour);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).ModelApiLimiter("rate-across-nodes", options)).ToList();
        await StatusAsync(limiters[0], s => s is { Recovering: false, Agents: 3 }); // a call that may not wait is refused while the gatekeeper recovers

        // 3 nodes × 5 calls that may not wait: exactly the 6 the period holds are granted, whichever nodes ask.
        var attempts = limiters.SelectMany(limiter => Enumerable.Range(0, 5).Select(async _ =>
        {
            try
            {
                await using var lease = await limiter.AcquireAsync(10, waitTimeout: TimeSpan.Zero);
                return true;
            }
            catch (ConcurrencyWaitTimeoutException)
            {
                return false;
            }
        })).ToList();
        var granted = (await Task.WhenAll(attempts).WaitAsync(ClusterNodes.StepTimeout)).Count(ok => ok);

        Assert.Equal(6, granted);
        var status = await StatusAsync(limiters[2], s => s.Running == 0);
        Assert.Equal((0L, 940L), (status.RequestsAvailable, status.TokensAvailable));
    }

    [Fact]
    public async Task A_settle_on_one_node_gives_unused_tokens_to_a_waiter_on_another()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var options = new ModelApiLimiterOptions(maxConcurrent: 8, requestsPerPeriod: 100, tokensPerPeriod: 100, Hour);
        var first = ActorQueueCluster.Get(cluster.Nodes[1]).ModelApiLimiter("settle-across-nodes", options);
        var second = ActorQueueCluster.Get(cluster.Nodes[2]).ModelApiLimiter("settle-across-nodes", options);

        var lease = await first.AcquireAsync(60).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = second.AcquireAsync(60).AsTask();
        await StatusAsync(second, s => s.Waiting == 1); // 40 tokens left: the estimate counts cluster-wide
        Assert.False(waiting.IsCompleted);

        lease.Settle(10);
        await using var granted = await waiting.WaitAsync(ClusterNodes.StepTimeout); // 50 came back: 90 left
        lease.Dispose();
        var status = await StatusAsync(first, s => s.Running == 1);
        Assert.Equal(30, status.TokensAvailable);
    }

    [Fact]
    public async Task Across_a_singleton_hand_over_the_buckets_neither_refill_nor_forget_their_debt()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var options = new ModelApiLimiterOptions(maxConcurrent: 8, requestsPerPeriod: 100, tokensPerPeriod: 1000, Hour);
        ActorQueueCluster.Get(cluster.Nodes[0]).ModelApiLimiter("rates-handover", options); // the singleton's node uses it too
        var settler = ActorQueueCluster.Get(cluster.Nodes[1]).ModelApiLimiter("rates-handover", options);
        var other = ActorQueueCluster.Get(cluster.Nodes[2]).ModelApiLimiter("rates-handover", options);

        (await other.AcquireAsync(10).AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        var lease = await settler.AcquireAsync(500).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        lease.Settle(1800); // 1300 beyond the estimate: 490 left becomes a debt of 810
        lease.Dispose();
        var before = await StatusAsync(other, s => s.Running == 0);
        Assert.Equal((98L, -810L), (before.RequestsAvailable, before.TokensAvailable));

        await cluster.LeaveAsync(cluster.Nodes[0]); // the singleton moves to the next-oldest node

        // Empty (not refilled to 100 and 1000) and still owing the 810: the newest debt a node heard of.
        var after = await StatusAsync(other, s => s is { Recovering: false, Agents: 2 });
        Assert.Equal((0L, -810L), (after.RequestsAvailable, after.TokensAvailable));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => other.AcquireAsync(1, waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
    }

    [Fact]
    public async Task Local_actors_acquire_tokens_and_settle_through_the_nodes_agent_with_the_checks_of_a_lease()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).ModelApiLimiter("actor-settles", new ModelApiLimiterOptions(8, 100, 100, Hour));
        var probe = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]); // not disposed: that would shut the node down

        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 1) { Tokens = 70 }, probe.TestActor);
        var granted = await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 2) { Tokens = 70 }, probe.TestActor);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Queued>(ClusterNodes.StepTimeout);

        limiter.Agent.Tell(new GatekeeperProtocol.Settle(granted.LeaseId, 20), probe.TestActor);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Settled>(ClusterNodes.StepTimeout);
        Assert.Equal(2, (await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout)).RequestId); // 50 back: 80 left

        limiter.Agent.Tell(new GatekeeperProtocol.Settle(granted.LeaseId, 20), probe.TestActor);
        Assert.Contains("settled already", (await probe.ExpectMsgAsync<Akka.Actor.Status.Failure>(ClusterNodes.StepTimeout)).Cause.Message);
        limiter.Agent.Tell(new GatekeeperProtocol.Release(granted.LeaseId), probe.TestActor);
        limiter.Agent.Tell(new GatekeeperProtocol.Settle(granted.LeaseId, 20), probe.TestActor);
        var released = Assert.IsType<InvalidOperationException>((await probe.ExpectMsgAsync<Akka.Actor.Status.Failure>(ClusterNodes.StepTimeout)).Cause);
        Assert.Contains("not held", released.Message);
        limiter.Agent.Tell(new GatekeeperProtocol.Settle(granted.LeaseId, -3), probe.TestActor);
        var negative = Assert.IsType<ArgumentOutOfRangeException>((await probe.ExpectMsgAsync<Akka.Actor.Status.Failure>(ClusterNodes.StepTimeout)).Cause);
        Assert.Equal("ActualTokens", negative.ParamName);
    }

    [Fact]
    public async Task Bad_arguments_name_the_parameter_and_the_value()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var limiter = node.ModelApiLimiter("bad-arguments", new ModelApiLimiterOptions(2, 10, 100, Hour));

        var tooMany = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AcquireAsync(101));
        Assert.Equal(("estimatedTokens", (object)101L), (tooMany.ParamName, tooMany.ActualValue));
        Assert.Equal("estimatedTokens", Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AcquireAsync(0)).ParamName);
        Assert.Equal("waitTimeout", Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromSeconds(-2))).ParamName);
        Assert.Equal("options", Assert.Throws<ArgumentException>(() => node.ModelApiLimiter("bad-arguments", new ModelApiLimiterOptions(2, 10, 200, Hour))).ParamName);
        node.Limiter("plain", maxRunning: 2);
        Assert.Equal("name", Assert.Throws<ArgumentException>(() => node.ModelApiLimiter("plain", new ModelApiLimiterOptions(2, 10, 100, Hour))).ParamName);
        Assert.Same(limiter, node.ModelApiLimiter("bad-arguments", new ModelApiLimiterOptions(2, 10, 100, Hour)));
    }

    /// <summary>A cluster model-API lease's errors name its limiter, plain and partitioned (they said "the limiter" for every one).</summary>
    [Fact]
    public async Task A_second_settle_of_a_cluster_lease_names_its_limiter()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var options = new ModelApiLimiterOptions(maxConcurrent: 2, requestsPerPeriod: 100, tokensPerPeriod: 1000, Hour);
        var plain = node.ModelApiLimiter("settle-named", options);
        var partitioned = node.PartitionedModelApiLimiter<string>("settle-named-keys", options, TimeSpan.FromMinutes(5));

        using var plainLease = await plain.AcquireAsync(10, source: "caller-p").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        using var keyLease = await partitioned.AcquireAsync("k", 10, source: "caller-k").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        plainLease.Settle(5);
        keyLease.Settle(5);

        Assert.Contains("of settle-named (source 'caller-p')", Assert.Throws<InvalidOperationException>(() => plainLease.Settle(6)).Message);
        Assert.Contains("of settle-named-keys (source 'caller-k')", Assert.Throws<InvalidOperationException>(() => keyLease.Settle(6)).Message);
    }
}

