using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// A cluster limiter's blocks: permits leased to a node's agent while nobody waits, granted there without a round trip,
/// recalled when someone waits, announced across a hand-over and freed with their node. Counts only: the gatekeeper's
/// status counts a block's permits as held, used or not.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterLimiterBlockTests
{
    /// <summary>Blocks stay out until recalled: only the tests of the linger itself let an idle block go back by time.</summary>
    private const string KeepBlocks = "actorqueue.cluster.limiter-block-linger = 1h";

    [Fact]
    public async Task The_limit_holds_across_three_nodes_while_they_grant_from_their_blocks()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, "actorqueue.cluster.limiter-block-linger = 200ms");
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("blocks-load", maxRunning: 6)).ToList();
        var running = 0;
        var maxSeen = 0;
        var completed = 0;

        // 3 nodes × 8 callers × 40 turns: blocks go out while a node's callers find permits free, and are recalled as
        // soon as a caller anywhere waits at the gatekeeper; most turns hold their permit across a yield only.
        var callers = limiters.SelectMany((limiter, node) => Enumerable.Range(0, 8).Select(caller => Task.Run(async () =>
        {
            for (var turn = 0; turn < 40; turn++)
            {
                await using var lease = await limiter.AcquireAsync($"node{node}-caller{caller}");
                Poll.InterlockedMax(ref maxSeen, Interlocked.Increment(ref running));
                if (turn % 8 == 0)
                {
                    await Task.Delay(1); // holds across a timer now and then (simulated work, not a wait for a state)
                }
                else
                {
                    await Task.Yield();
                }

                Interlocked.Decrement(ref running);
                Interlocked.Increment(ref completed);
            }
        })));
        await Task.WhenAll(callers).WaitAsync(ClusterNodes.StepTimeout);

        Assert.Equal(3 * 8 * 40, completed);
        Assert.InRange(maxSeen, 1, 6); // never above the cluster-wide limit
        // Idle blocks go back after their linger: in the end the gatekeeper counts nothing held.
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiters[1]), s => s?.Running == 0, ClusterNodes.StepTimeout))!;
        Assert.Equal((0, 3), (status.Waiting, status.Agents));
    }

    [Fact]
    public async Task A_node_that_took_the_whole_limit_in_blocks_makes_the_others_wait()
    {
        var (cluster, taker, other) = await HolderAndOtherAsync("blocks-count", maxRunning: 4);
        await using var nodes = cluster;
        var leases = new List<ConcurrencyLease>();
        for (var i = 0; i < 4; i++)
        {
            leases.Add(await taker.AcquireAsync($"taker-{i}").AsTask().WaitAsync(ClusterNodes.StepTimeout));
        }

        Assert.Equal((4, 0), ((await taker.GetStatusAsync()).Running, (await taker.GetStatusAsync()).Waiting)); // every block permit counted

        var waiting = other.AcquireAsync("other").AsTask();
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(other), s => s?.Waiting == 1, ClusterNodes.StepTimeout))!;
        Assert.Equal(4, status.Running);
        Assert.False(waiting.IsCompleted);

        leases[0].Dispose(); // recalled meanwhile: the block lease goes back to the gatekeeper, and to the waiter
        await using var lease = await waiting.WaitAsync(ClusterNodes.StepTimeout);
        leases.Skip(1).ToList().ForEach(held => held.Dispose());
    }

    [Fact]
    public async Task A_released_block_lease_stays_leased_to_its_node_and_is_granted_there_again()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, KeepBlocks);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("blocks-local", maxRunning: 1);
        await WarmUpAsync(limiter);
        (await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        // The status ask follows the release through the agent: without a block the gatekeeper would count 0.
        Assert.Equal(1, (await limiter.GetStatusAsync()).Running);

        await using var lease = await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var status = await limiter.GetStatusAsync();
        Assert.Equal((1, 0, 1), (status.Running, status.Waiting, limiter.LocalRunningCount)); // the block's one permit, not counted twice
    }

    [Fact]
    public async Task An_idle_nodes_block_is_recalled_when_another_node_waits()
    {
        var (cluster, holder, other) = await HolderAndOtherAsync("blocks-recall", maxRunning: 2);
        await using var nodes = cluster;
        var first = await holder.AcquireAsync("holder-1").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var second = await holder.AcquireAsync("holder-2").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        first.Dispose();
        second.Dispose();
        await Poll.UntilAsync(() => holder.LocalRunningCount == 0, ClusterNodes.StepTimeout, "the holder released both");
        Assert.Equal(2, (await holder.GetStatusAsync()).Running); // both permits stay leased to the holder's node

        // The other node's caller finds no free permit at the gatekeeper: the holder's unused block comes back to it.
        await using var lease = await other.AcquireAsync("other").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(other), s => s?.Running == 1, ClusterNodes.StepTimeout))!;
        Assert.Equal(0, status.Waiting);
    }

    [Fact]
    public async Task A_newcomer_gets_no_block_past_a_waiter()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, KeepBlocks);
        var holder = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter("blocks-fifo", maxRunning: 3);
        var heavyNode = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("blocks-fifo", maxRunning: 3);
        var newcomerNode = ActorQueueCluster.Get(cluster.Nodes[2]).Limiter("blocks-fifo", maxRunning: 3);
        await WarmUpAsync(holder);
        var held1 = await holder.AcquireAsync("holder-1").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var held2 = await holder.AcquireAsync("holder-2").AsTask().WaitAsync(ClusterNodes.StepTimeout);

        // Two permits cannot be had while the holder uses two of three: the heavy request waits at the gatekeeper,
        // which recalls the holder's unused permit; that one free permit must not go to a later newcomer as a block.
        var heavy = heavyNode.AcquireAsync(2, source: "heavy").AsTask();
        await Poll.UntilAsync(() => heavyNode.WaitingCount == 1, ClusterNodes.StepTimeout, "the heavy request waits at the gatekeeper");
        var newcomer = newcomerNode.AcquireAsync("newcomer").AsTask();
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(newcomerNode), s => s?.Waiting == 2, ClusterNodes.StepTimeout))!;
        Assert.Equal(2, status.Running); // the holder's two leases; an unused permit of its block came back
        Assert.False(heavy.IsCompleted);
        Assert.False(newcomer.IsCompleted);

        held1.Dispose(); // after a recall a block lease goes back to the gatekeeper: the heavy request fits, first in line
        await using var heavyLease = await heavy.WaitAsync(ClusterNodes.StepTimeout);
        Assert.False(newcomer.IsCompleted);
        held2.Dispose();
        await using var newcomerLease = await newcomer.WaitAsync(ClusterNodes.StepTimeout);
    }

    [Fact]
    public async Task A_plain_request_does_not_pass_an_older_request_of_its_node_through_the_block()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, KeepBlocks);
        var limiter = HoldingAgent.Limiter(cluster.Nodes[1], "blocks-local-fifo", maxRunning: 3, HoldingAgent.Recall, holding: true);
        await WarmUpAsync(limiter);
        var first = await limiter.AcquireAsync("first").AsTask().WaitAsync(ClusterNodes.StepTimeout); // brings the node a block
        Assert.Equal(3, (await limiter.GetStatusAsync()).Running); // the only agent: the whole limit, two permits unused

        // The heavy request waits at the gatekeeper; the recall it causes has not reached the node yet, so two permits
        // of the block are still unused there: a later plain request of the node must not take them past it.
        var heavy = limiter.AcquireAsync(3, source: "heavy").AsTask();
        await Poll.UntilAsync(() => limiter.WaitingCount == 1, ClusterNodes.StepTimeout, "the heavy request waits at the gatekeeper");
        var newcomer = limiter.AcquireAsync("newcomer").AsTask();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Waiting == 2, ClusterNodes.StepTimeout);
        Assert.False(newcomer.IsCompleted);

        limiter.Agent.Tell(HoldingAgent.Release.Instance);
        first.Dispose();
        await using (await heavy.WaitAsync(ClusterNodes.StepTimeout))
        {
            Assert.False(newcomer.IsCompleted);
        }

        await using var last = await newcomer.WaitAsync(ClusterNodes.StepTimeout);
    }

    [Fact]
    public async Task When_the_singleton_moves_a_nodes_block_is_announced_and_nothing_is_over_admitted()
    {
        var (cluster, holder, waiterNode) = await HolderAndOtherAsync("blocks-handover", maxRunning: 2);
        await using var nodes = cluster;
        await WarmUpAsync(waiterNode);
        var held1 = await holder.AcquireAsync("holder-1").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var held2 = await holder.AcquireAsync("holder-2").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiter = waiterNode.AcquireAsync("waiter").AsTask();
        await Poll.UntilAsync(() => waiterNode.WaitingCount == 1, ClusterNodes.StepTimeout, "the waiter was queued by the gatekeeper");

        await cluster.LeaveAsync(cluster.Nodes[0]); // the singleton moves to the holder's node

        // The new gatekeeper counts the holder's block (both permits in use) before it grants anything.
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(waiterNode), s => s is { Recovering: false, Agents: 2 }, ClusterNodes.StepTimeout))!;
        Assert.Equal((2, 1), (status.Running, status.Waiting));
        Assert.False(waiter.IsCompleted);
        var newcomer = holder.AcquireAsync("newcomer").AsTask(); // the holder's block has no unused permit: it waits too
        status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(holder), s => s?.Waiting == 2, ClusterNodes.StepTimeout))!;
        Assert.Equal(2, status.Running);
        Assert.False(waiter.IsCompleted);

        held1.Dispose();
        await using var granted = await waiter.WaitAsync(ClusterNodes.StepTimeout); // FIFO at the gatekeeper: the older waiter first
        Assert.False(newcomer.IsCompleted);
        held2.Dispose();
        await using var second = await newcomer.WaitAsync(ClusterNodes.StepTimeout);
        status = await holder.GetStatusAsync();
        Assert.Equal((2, 0), (status.Running, status.Waiting));
    }

    [Fact]
    public async Task A_node_that_leaves_with_a_block_frees_it()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, KeepBlocks);
        var leaving = cluster.Nodes[2];
        var holder = ActorQueueCluster.Get(leaving).Limiter("blocks-leave", maxRunning: 2);
        var survivor = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("blocks-leave", maxRunning: 2);
        await WarmUpAsync(holder);
        await holder.AcquireAsync("holder-1").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        await holder.AcquireAsync("holder-2").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiting = survivor.AcquireAsync("survivor").AsTask();
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(survivor), s => s?.Waiting == 1, ClusterNodes.StepTimeout))!;
        Assert.Equal(2, status.Running); // the recall frees nothing: both permits of the block are in use

        await cluster.LeaveAsync(leaving);

        await using var lease = await waiting.WaitAsync(ClusterNodes.StepTimeout);
        status = await survivor.GetStatusAsync();
        Assert.Equal((1, 0, 1), (status.Running, status.Waiting, status.Agents)); // the leaver's block is gone with it
    }

    [Fact]
    public async Task An_idle_block_goes_back_to_the_gatekeeper_after_its_linger()
    {
        var linger = TimeSpan.FromSeconds(3);
        await using var cluster = await ClusterNodes.StartAsync(2, $"actorqueue.cluster.limiter-block-linger = {linger.TotalSeconds}s");
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("blocks-linger", maxRunning: 4);
        await WarmUpAsync(limiter);
        var idle = Stopwatch.StartNew(); // the agent's linger starts after this, once it has the release
        (await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        var running = (await limiter.GetStatusAsync()).Running;
        // The block is still leased to the node — unless a loaded machine took the whole linger to answer (then it may
        // legitimately be back already): it must not go back before its linger.
        Assert.True(running is >= 1 and <= 4 || (running == 0 && idle.Elapsed >= linger),
                    $"the gatekeeper counts {running} after {idle.Elapsed.TotalSeconds:0.0} s: the block went back before its linger of {linger.TotalSeconds} s");

        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Running == 0, ClusterNodes.StepTimeout))!;
        Assert.Equal(0, status.Waiting);
    }

    [Fact]
    public async Task Without_blocks_every_acquire_is_counted_by_the_gatekeeper_alone()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, "actorqueue.cluster.limiter-blocks = off\n" + KeepBlocks);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("blocks-off", maxRunning: 4);
        await WarmUpAsync(limiter);
        (await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();

        var status = await limiter.GetStatusAsync(); // the ask follows the release through the agent
        Assert.Equal((0, 0), (status.Running, status.Waiting));
    }

    /// <summary>
    /// Three nodes keeping blocks until recalled; limiter <paramref name="name"/> on the second node (the holder, warmed
    /// up) and on the third (the other); the first hosts the singleton and does not use it.
    /// </summary>
    private static async Task<(ClusterNodes Cluster, ClusterConcurrencyLimiter Holder, ClusterConcurrencyLimiter Other)> HolderAndOtherAsync(
        string name, int maxRunning)
    {
        var cluster = await ClusterNodes.StartAsync(3, KeepBlocks);
        try
        {
            var holder = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter(name, maxRunning);
            var other = ActorQueueCluster.Get(cluster.Nodes[2]).Limiter(name, maxRunning);
            await WarmUpAsync(holder);
            return (cluster, holder, other);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// One acquire and release, so the gatekeeper exists and the node's agent follows it: a node's first request reaches
    /// a new incarnation only in the agent's announcement, and is granted a plain lease, never a block.
    /// </summary>
    private static async Task WarmUpAsync(ClusterConcurrencyLimiter limiter)
    {
        (await limiter.AcquireAsync("warm-up").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s is { Recovering: false }, ClusterNodes.StepTimeout);
    }
}
