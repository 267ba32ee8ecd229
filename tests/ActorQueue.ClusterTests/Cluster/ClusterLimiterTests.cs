using ActorQueue.Actors;
using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

[Collection(ClusterCollection.Name)]
public sealed class ClusterLimiterTests
{
    [Fact]
    public async Task The_limit_holds_across_three_nodes_under_load()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var limiters = cluster.Nodes.Select(node => ActorQueueCluster.Get(node).Limiter("shared", maxRunning: 3)).ToList();
        var running = 0;
        var maxSeen = 0;
        var completed = 0;

        // 3 nodes × 6 callers × 15 turns, each holding its slot across a yield and a short delay.
        var callers = limiters.SelectMany((limiter, node) => Enumerable.Range(0, 6).Select(caller => Task.Run(async () =>
        {
            for (var turn = 0; turn < 15; turn++)
            {
                await using var lease = await limiter.AcquireAsync($"node{node}-caller{caller}");
                Poll.InterlockedMax(ref maxSeen, Interlocked.Increment(ref running));
                await Task.Delay(1);
                Interlocked.Decrement(ref running);
                Interlocked.Increment(ref completed);
            }
        })));
        await Task.WhenAll(callers).WaitAsync(ClusterNodes.StepTimeout);

        Assert.Equal(3 * 6 * 15, completed);
        Assert.Equal(3, maxSeen); // never above the cluster-wide limit, and the limit was actually reached
        // Releases are one-way messages from three nodes: the gatekeeper ends with every slot back.
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiters[1]), s => s?.Running == 0, ClusterNodes.StepTimeout))!;
        Assert.Equal((0, false, 3), (status.Waiting, status.Recovering, status.Agents));
    }

    [Fact]
    public async Task Leases_of_a_crashed_node_are_released_to_the_waiters_of_the_others()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var victim = cluster.Nodes[2];
        var victimLimiter = ActorQueueCluster.Get(victim).Limiter("crash", maxRunning: 2);
        var held = new[]
        {
            await victimLimiter.AcquireAsync("victim-1").AsTask().WaitAsync(ClusterNodes.StepTimeout),
            await victimLimiter.AcquireAsync("victim-2").AsTask().WaitAsync(ClusterNodes.StepTimeout),
        };
        Assert.All(held, lease => Assert.False(lease.IsReleased));

        var survivor = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("crash", maxRunning: 2);
        var waiting = survivor.AcquireAsync("survivor").AsTask();
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(survivor), s => s?.Waiting == 1, ClusterNodes.StepTimeout))!;
        Assert.Equal(2, status.Running); // the survivor really waits behind the victim's leases
        Assert.False(waiting.IsCompleted);

        await cluster.CrashAsync(victim);

        await using var lease = await waiting.WaitAsync(ClusterNodes.StepTimeout);
        status = await survivor.GetStatusAsync();
        Assert.Equal(1, status.Running); // the victim's two leases are gone, the survivor holds one
    }

    [Fact]
    public async Task When_the_singletons_node_leaves_the_new_gatekeeper_does_not_over_admit()
    {
        await using var cluster = await ClusterNodes.StartAsync(3);
        var oldest = cluster.Nodes[0];
        var holderNode = HoldingAgent.Limiter(cluster.Nodes[1], "handover", maxRunning: 2, HoldingAgent.Recovery);
        var waiterNode = ActorQueueCluster.Get(cluster.Nodes[2]).Limiter("handover", maxRunning: 2);
        ActorQueueCluster.Get(oldest).Limiter("handover", maxRunning: 2); // the singleton's node uses it too

        var held1 = await holderNode.AcquireAsync("holder-1").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var held2 = await holderNode.AcquireAsync("holder-2").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var waiter = waiterNode.AcquireAsync("waiter").AsTask();
        await Poll.UntilAsync(() => waiterNode.WaitingCount == 1, ClusterNodes.StepTimeout, "the waiter was queued by the gatekeeper");

        // The holder's node is slow to answer the new gatekeeper: until it has, nothing may be granted.
        holderNode.Agent.Tell(HoldingAgent.Hold.Instance);
        await cluster.LeaveAsync(oldest); // the singleton moves to the next-oldest node
        var recovering = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(waiterNode), s => s?.Agents >= 1, ClusterNodes.StepTimeout))!;
        Assert.True(recovering.Recovering);
        Assert.Equal((0, 1), (recovering.Running, recovering.Waiting)); // the waiter re-announced itself...
        Assert.False(waiter.IsCompleted); // ...and was not granted a slot the holder still has
        holderNode.Agent.Tell(HoldingAgent.Release.Instance);

        // The new gatekeeper learned the holder's two leases: the waiter is still waiting, and so is a newcomer.
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(holderNode), s => s is { Recovering: false }, ClusterNodes.StepTimeout))!;
        Assert.Equal((2, 1), (status.Running, status.Waiting));
        var newcomer = holderNode.AcquireAsync("newcomer").AsTask();
        status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(holderNode), s => s?.Waiting == 2, ClusterNodes.StepTimeout))!;
        Assert.Equal(2, status.Running);
        Assert.False(waiter.IsCompleted);
        Assert.False(newcomer.IsCompleted);

        held1.Dispose();
        await using var granted = await waiter.WaitAsync(ClusterNodes.StepTimeout); // FIFO: the older waiter first
        Assert.False(newcomer.IsCompleted);
        held2.Dispose();
        await using var second = await newcomer.WaitAsync(ClusterNodes.StepTimeout);
    }

    [Fact]
    public async Task A_member_without_actorqueue_does_not_keep_a_gatekeeper_from_granting()
    {
        await using var cluster = await ClusterNodes.StartAsync(1);
        var seed = Akka.Cluster.Cluster.Get(cluster.Nodes[0]).SelfAddress;

        // A plain Akka cluster node: same system name, same transport and certificates, but no ActorQueue extension.
        var plainConfig = Akka.Configuration.ConfigurationFactory.ParseString("akka.extensions = []").WithFallback(ClusterNodes.FastCluster);
        var plain = ActorQueueClusterRuntime.Create(TestCertificates.MemberOptions("plain"), plainConfig);
        try
        {
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Akka.Cluster.Cluster.Get(plain).RegisterOnMemberUp(() => up.TrySetResult());
            Akka.Cluster.Cluster.Get(plain).Join(seed);
            await up.Task.WaitAsync(ClusterNodes.StepTimeout);

            var limiter = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter("mixed", maxRunning: 1);
            await using var lease = await limiter.AcquireAsync().AsTask().WaitAsync(ClusterNodes.StepTimeout);
            var status = await limiter.GetStatusAsync();
            Assert.Equal((1, false), (status.Running, status.Recovering));
        }
        finally
        {
            await plain.Terminate();
        }
    }

    [Fact]
    public async Task Local_actors_use_the_gatekeeper_protocol_with_the_nodes_agent()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("actors", maxRunning: 1);
        var probe = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]); // not disposed: that would shut the node down
        {
            limiter.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 1), probe.TestActor);
            var granted = await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
            limiter.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 2), probe.TestActor);
            Assert.Equal(2, (await probe.ExpectMsgAsync<GatekeeperProtocol.Queued>(ClusterNodes.StepTimeout)).RequestId);
            limiter.Agent.Tell(new GatekeeperProtocol.Release(granted.LeaseId), probe.TestActor);
            Assert.Equal(2, (await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout)).RequestId);

            // An Ask's temporary actor cannot hold a lease: refused, not queued.
            var asked = Assert.IsType<GatekeeperProtocol.Rejected>(await limiter.Agent.Ask<object>(new GatekeeperProtocol.Acquire("asked", 9), ClusterNodes.StepTimeout));
            Assert.Equal(RejectionReason.InvalidRequest, asked.Kind);
        }
    }

    [Fact]
    public async Task Local_actors_ask_weights_priorities_and_timeouts_of_the_nodes_agent_as_of_a_local_gatekeeper()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("weighted-actors", maxRunning: 2);
        var probe = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]); // not disposed: that would shut the node down

        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("heavy", 1) { Permits = 2 }, probe.TestActor);
        var heavy = await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout);
        Assert.Equal((1L, 2), (heavy.RequestId, heavy.Permits));

        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("low", 2), probe.TestActor);
        Assert.Equal(2, (await probe.ExpectMsgAsync<GatekeeperProtocol.Queued>(ClusterNodes.StepTimeout)).RequestId);
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("high", 3) { Priority = 5 }, probe.TestActor);
        Assert.Equal(3, (await probe.ExpectMsgAsync<GatekeeperProtocol.Queued>(ClusterNodes.StepTimeout)).RequestId);
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("impatient", 4) { WaitTimeout = TimeSpan.Zero }, probe.TestActor);
        var impatient = await probe.ExpectMsgAsync<GatekeeperProtocol.Rejected>(ClusterNodes.StepTimeout);
        Assert.Equal((4L, RejectionReason.TimedOut), (impatient.RequestId, impatient.Kind));
        limiter.Agent.Tell(new GatekeeperProtocol.Acquire("nothing", 5) { Permits = 0 }, probe.TestActor);
        var nothing = await probe.ExpectMsgAsync<GatekeeperProtocol.Rejected>(ClusterNodes.StepTimeout);
        Assert.Equal((5L, RejectionReason.InvalidRequest), (nothing.RequestId, nothing.Kind));

        limiter.Agent.Tell(new GatekeeperProtocol.Release(heavy.LeaseId), probe.TestActor);

        // Both fit once the two permits are back; the higher priority is served first although it came later.
        Assert.Equal(3, (await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout)).RequestId);
        Assert.Equal(2, (await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(ClusterNodes.StepTimeout)).RequestId);
    }
}
