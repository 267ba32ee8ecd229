using ActorQueue.Actors;
using ActorQueue.Cluster;

namespace ActorQueue.Tests.Cluster;

/// <summary>Issue 17 on the cluster: weights, priorities, wait timeouts, eviction and resizing across nodes and a singleton hand-over.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterWeightedLimiterTests
{
    [Fact]
    public async Task A_weighted_prioritised_limit_holds_across_three_nodes_and_serves_higher_priority_first()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("weighted", maxRunning: 4)).ToList();
        var held = 0;
        var maxHeld = 0;
        var completed = 0;

        // 3 nodes × 4 callers × 10 turns, asking 1, 2 or 3 permits at priority 0 or 1.
        var callers = limiters.SelectMany((limiter, node) => Enumerable.Range(0, 4).Select(caller => Task.Run(async () =>
        {
            var permits = 1 + ((node + caller) % 3);
            for (var turn = 0; turn < 10; turn++)
            {
                await using var lease = await limiter.AcquireAsync(permits, priority: caller % 2, source: $"node{node}-caller{caller}");
                Poll.InterlockedMax(ref maxHeld, Interlocked.Add(ref held, permits));
                await Task.Delay(1);
                Interlocked.Add(ref held, -permits);
                Interlocked.Increment(ref completed);
            }
        })));
        await Task.WhenAll(callers).WaitAsync(ClusterNodes.StepTimeout);
        Assert.Equal(3 * 4 * 10, completed);
        Assert.InRange(maxHeld, 1, 4); // never more permits held cluster-wide than the limit
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiters[0]), s => s is { Running: 0, Waiting: 0 }, ClusterNodes.StepTimeout);

        // Requests for every permit queue from three nodes; each grant shuts the others out, so the order is exact.
        var blocker = await limiters[0].AcquireAsync(4, source: "blocker").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var low1 = await QueuedAsync(limiters[1], limiters[1].AcquireAsync(4, priority: 0, source: "low-1").AsTask(), waiting: 1);
        var high = await QueuedAsync(limiters[2], limiters[2].AcquireAsync(4, priority: 5, source: "high").AsTask(), waiting: 2);
        var low2 = await QueuedAsync(limiters[0], limiters[0].AcquireAsync(4, priority: 0, source: "low-2").AsTask(), waiting: 3);

        blocker.Dispose();
        var first = await high.WaitAsync(ClusterNodes.StepTimeout);
        Assert.False(low1.IsCompleted || low2.IsCompleted);
        first.Dispose();
        var second = await low1.WaitAsync(ClusterNodes.StepTimeout); // FIFO within a priority, across nodes
        Assert.False(low2.IsCompleted);
        second.Dispose();
        (await low2.WaitAsync(ClusterNodes.StepTimeout)).Dispose();
    }

    [Fact]
    public async Task After_a_singleton_hand_over_weighted_leases_count_with_their_permits_waiters_are_kept_and_a_resize_holds()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var oldest = cluster.Nodes[0];
        ActorQueueCluster.Get(oldest).Limiter("handover-weights", maxRunning: 4); // the singleton's node uses it too
        var holderNode = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("handover-weights", maxRunning: 4);
        var waiterNode = ActorQueueCluster.Get(cluster.Nodes[2]).Limiter("handover-weights", maxRunning: 4);

        var holder = await holderNode.AcquireAsync(3, source: "holder").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        waiterNode.Resize(maxRunning: 3);
        await Poll.UntilAsync(() => holderNode.MaxRunning == 3 && waiterNode.MaxRunning == 3, ClusterNodes.StepTimeout, "every node heard of the resize");
        var waiter = await QueuedAsync(waiterNode, waiterNode.AcquireAsync(2, source: "waiter").AsTask(), waiting: 1);

        await cluster.LeaveAsync(oldest); // the singleton moves to the next-oldest node

        // The new gatekeeper counts the holder's lease as 3 permits (as 1 it would grant the waiter) under the resized limit of 3.
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(waiterNode), s => s is { Recovering: false, Agents: 2 }, ClusterNodes.StepTimeout))!;
        Assert.Equal((3, 1, 3), (status.Running, status.Waiting, status.MaxRunning));
        Assert.False(waiter.IsCompleted);

        holder.Dispose();
        await using var granted = await waiter.WaitAsync(ClusterNodes.StepTimeout); // the waiter was kept, not failed
        status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(holderNode), s => s?.Waiting == 0, ClusterNodes.StepTimeout))!;
        Assert.Equal(2, status.Running);
    }

    [Fact]
    public async Task Wait_timeouts_and_evictions_reach_callers_on_nodes_other_than_the_singletons()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var first = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("remote-policies", 1, 1, whenFull: QueueFullMode.EvictLowestPriorityNewest);
        var second = ActorQueueCluster.Get(cluster.Nodes[2]).Limiter("remote-policies", 1, 1, whenFull: QueueFullMode.EvictLowestPriorityNewest);
        var holder = await first.AcquireAsync("holder").AsTask().WaitAsync(ClusterNodes.StepTimeout);

        var timedOut = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(
            () => second.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(200), source: "patient").AsTask().WaitAsync(ClusterNodes.StepTimeout));
        Assert.Equal(("remote-policies", TimeSpan.FromMilliseconds(200)), (timedOut.LimiterName, timedOut.WaitTimeout));
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(second), s => s is { Running: 1, Waiting: 0 }, ClusterNodes.StepTimeout); // withdrawn at the gatekeeper

        var low = await QueuedAsync(second, second.AcquireAsync(1, priority: 0, source: "low").AsTask(), waiting: 1);
        var high = first.AcquireAsync(1, priority: 2, source: "high").AsTask();
        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => low.WaitAsync(ClusterNodes.StepTimeout));
        Assert.False(high.IsCompleted);
        holder.Dispose();
        (await high.WaitAsync(ClusterNodes.StepTimeout)).Dispose();
    }

    [Fact]
    public async Task Bad_arguments_are_refused_naming_the_parameter_and_the_value()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var node = ActorQueueCluster.Get(cluster.Nodes[0]);
        var limiter = node.Limiter("arguments", maxRunning: 2);

        AssertRefused("permits", 0, () => limiter.AcquireAsync(0));
        Assert.Contains("max_running (2)", AssertRefused("permits", 3, () => limiter.AcquireAsync(3)).Message, StringComparison.Ordinal);
        AssertRefused("waitTimeout", TimeSpan.FromMilliseconds(-2), () => limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(-2)));
        AssertRefused("maxRunning", 0, () => limiter.Resize(maxRunning: 0));
        AssertRefused("maxQueued", -1, () => limiter.Resize(maxQueued: -1));
        AssertRefused("waitTimeout", TimeSpan.FromSeconds(-1), () => node.Limiter("other", 1, waitTimeout: TimeSpan.FromSeconds(-1)));
        AssertRefused("whenFull", (QueueFullMode)7, () => node.Limiter("other", 1, whenFull: (QueueFullMode)7));
        var clash = Assert.Throws<ArgumentException>(() => node.Limiter("arguments", maxRunning: 2, waitTimeout: TimeSpan.FromSeconds(1)));
        Assert.Equal("name", clash.ParamName);
        Assert.Contains("waitTimeout=00:00:01", clash.Message, StringComparison.Ordinal);
    }

    private static ArgumentOutOfRangeException AssertRefused(string parameter, object value, Func<object> call)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(call);
        Assert.Equal((parameter, value), (error.ParamName, error.ActualValue));
        Assert.Contains(value.ToString()!, error.Message, StringComparison.Ordinal);
        return error;
    }

    private static void AssertRefused(string parameter, object value, Action call) => AssertRefused(parameter, value, () =>
    {
        call();
        return new object();
    });

    /// <summary>Returns <paramref name="acquire"/> once the gatekeeper counts <paramref name="waiting"/> waiters, so arrival order is fixed.</summary>
    private static async Task<Task<ConcurrencyLease>> QueuedAsync(ClusterConcurrencyLimiter limiter, Task<ConcurrencyLease> acquire, int waiting)
    {
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Waiting == waiting, ClusterNodes.StepTimeout);
        Assert.False(acquire.IsCompleted);
        return acquire;
    }
}
