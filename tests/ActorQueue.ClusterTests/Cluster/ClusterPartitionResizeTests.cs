using ActorQueue.Actors;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>Issue 17 item 4 for cluster partitions: one key's limit changed at run time, across nodes and a hand-over, forgotten when the partition stops for idleness.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterPartitionResizeTests
{
    [Fact]
    public async Task A_resized_partition_keeps_its_size_across_a_hand_over_and_other_keys_keep_theirs()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var first = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("resized", maxRunning: 1, maxQueued: null, TimeSpan.FromMinutes(5));
        var second = ActorQueueCluster.Get(cluster.Nodes[2]).PartitionedLimiter("resized", maxRunning: 1, maxQueued: null, TimeSpan.FromMinutes(5));
        var heldA = await first.AcquireAsync("a").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var heldB = await second.AcquireAsync("b").AsTask().WaitAsync(ClusterNodes.StepTimeout);

        first.Resize("a", maxRunning: 2);
        await StatusAsync(second, "a", s => s.MaxRunning == 2);
        var heldA2 = await second.AcquireAsync("a", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => first.AcquireAsync("a", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => first.AcquireAsync("b", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));

        await cluster.LeaveAsync(cluster.Nodes[0]); // the singleton moves to the next-oldest node

        // The new gatekeeper of "a" takes the resize from the nodes' announcements; "b" keeps the size it was made with.
        var a = await StatusAsync(second, "a", s => s is { Recovering: false, Agents: 2 });
        Assert.Equal((2, 2), (a.MaxRunning, a.Running));
        heldA.Dispose();
        await StatusAsync(first, "a", s => s.Running == 1); // a release goes straight to the agent, a request through the parent
        await using (await first.AcquireAsync("a", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout))
        {
            await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => first.AcquireAsync("a", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        }

        var b = await StatusAsync(first, "b", s => !s.Recovering);
        Assert.Equal((1, 1), (b.MaxRunning, b.Running));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => first.AcquireAsync("b", waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        heldA2.Dispose();
        heldB.Dispose();
    }

    [Fact]
    public async Task An_idle_stop_forgets_a_partitions_resize_and_a_model_api_key_resizes_its_calls_in_flight()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var limiter = node.PartitionedLimiter("forgetting", maxRunning: 1, maxQueued: null, TimeSpan.FromMilliseconds(300));

        // The resize is made and seen while a call holds the partition: idle, it stops after 300 ms and forgets the
        // resize, so a slow machine's status ask after that met a fresh partition and waited for a resize in vain.
        await using (await limiter.AcquireAsync("k").AsTask().WaitAsync(ClusterNodes.StepTimeout))
        {
            limiter.Resize("k", maxRunning: 3, maxQueued: 5);
            var resized = await StatusAsync(limiter, "k", s => s.MaxRunning == 3);
            Assert.Equal((5, 1), (resized.MaxQueued, resized.Running));
        }

        await Poll.UntilAsync(() => limiter.PartitionCount == 0, ClusterNodes.StepTimeout, "the partition stopped on the node");
        await Poll.ValueAsync(() => ClusterPartitionedModelApiLimiterTests.AnyGatekeeperAsync(cluster.Nodes[0], "forgetting", "k"), any => !any, ClusterNodes.StepTimeout);
        var forgotten = await StatusAsync(limiter, "k", s => !s.Recovering);
        Assert.Equal((1, (int?)null), (forgotten.MaxRunning, forgotten.MaxQueued));
        Assert.Equal("maxRunning", Assert.Throws<ArgumentOutOfRangeException>(() => limiter.Resize("k", maxRunning: 0)).ParamName);
        Assert.Equal("key", Assert.Throws<ArgumentNullException>(() => limiter.Resize(null!, maxRunning: 2)).ParamName);

        var calls = node.PartitionedModelApiLimiter<string>("calls", new ModelApiLimiterOptions(2, 100, 1000, TimeSpan.FromHours(1)), TimeSpan.FromMinutes(5));
        calls.Resize("k", maxConcurrent: 1);
        await Poll.ValueAsync(() => calls.GetStatusAsync("k"), s => s.MaxRunning == 1, ClusterNodes.StepTimeout);
        await using var held = await calls.AcquireAsync("k", 1).AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => calls.AcquireAsync("k", 1, waitTimeout: TimeSpan.Zero).AsTask().WaitAsync(ClusterNodes.StepTimeout));
        await using var other = await calls.AcquireAsync("j", 1).AsTask().WaitAsync(ClusterNodes.StepTimeout);
    }

    /// <summary>A key's exact counts once <paramref name="until"/> holds (asks lost while the singleton moves are asked again).</summary>
    private static async Task<ClusterLimiterStatus> StatusAsync(ClusterPartitionedLimiter limiter, string key, Func<ClusterLimiterStatus, bool> until) =>
        (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter, key), s => s is not null && until(s), ClusterNodes.StepTimeout))!;
}
