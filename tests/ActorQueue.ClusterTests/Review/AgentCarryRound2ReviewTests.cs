using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using static ActorQueue.Tests.Review.PartitionAgentLoanReviewTests;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 2 on a failed cluster agent's carried leases (helper 156, on helper 152's change): releases queued behind the
/// failure, a caller that stops across the restart, two restarts in a row, and a restarted partition agent's idle sweep.
/// Each ends with the limit held exactly and every permit back.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AgentCarryRound2ReviewTests
{
    /// <summary>How long each step may take.</summary>
    private static TimeSpan Step => ClusterNodes.StepTimeout;

    /// <summary>
    /// Node A holds the whole limit of 3 (two facade leases and a local actor's) when its agent fails twice in a row; the
    /// second time on the very release of one facade lease. That release frees one permit (a caller on B is granted),
    /// a later caller on A waits for the actor's release, and afterwards the limit is exactly 3 and all comes back to 0.
    /// </summary>
    [Fact]
    public async Task Two_restarts_in_a_row_with_a_release_as_the_failing_message_free_each_permit_once()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var a = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("carry-twice", maxRunning: 3);
        var b = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter("carry-twice", maxRunning: 3);
        var actor = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]); // not disposed: that would shut the node down

        var first = await a.AcquireAsync(source: "first").AsTask().WaitAsync(Step);
        var second = await a.AcquireAsync(source: "second").AsTask().WaitAsync(Step);
        a.Agent.Tell(new GatekeeperProtocol.Acquire("actor", 1), actor.TestActor);
        var actorLease = await actor.ExpectMsgAsync<GatekeeperProtocol.Granted>(Step);

        FailInItsBooks(a.Agent);
        await a.Agent.Ask<ActorIdentity>(new Identify(null), Step);
        BreakItsBooks(a.Agent);
        first.Dispose(); // the message the next instance fails on
        await a.Agent.Ask<ActorIdentity>(new Identify(null), Step);

        (await b.AcquireAsync(source: "on B").AsTask().WaitAsync(Step)).Dispose();
        await using (var onB = await b.AcquireAsync(source: "held on B").AsTask().WaitAsync(Step))
        {
            var late = a.AcquireAsync(source: "late on A").AsTask();
            var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s?.Waiting == 1 || late.IsCompleted, Step))!;
            Assert.False(late.IsCompleted, "a caller was granted past the limit after two restarts");
            Assert.Equal(3, status.Running);
            a.Agent.Tell(new GatekeeperProtocol.Release(actorLease.LeaseId), actor.TestActor);
            (await late.WaitAsync(Step)).Dispose();
        }

        second.Dispose();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s is { Running: 0, Waiting: 0 }, Step);
        await AssertLimitIsExactlyAsync(a, b, 3);
    }

    /// <summary>
    /// A local actor holding a lease stops as node A's agent fails: its <c>Terminated</c> is the message the agent fails
    /// on (<paramref name="terminatedFails"/>) or queued behind the one it fails on. The next instance must free the
    /// stopped caller's lease once: a caller on B is granted, one more waits, and the limit is exactly 2 afterwards.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_actor_caller_that_stops_across_the_restart_has_its_lease_freed_once(bool terminatedFails)
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var name = $"carry-stopped-{terminatedFails}";
        var a = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter(name, maxRunning: 2);
        var b = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter(name, maxRunning: 2);
        var kit = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]); // not disposed: that would shut the node down
        var caller = kit.CreateTestProbe();
        var held = await a.AcquireAsync(source: "held").AsTask().WaitAsync(Step);
        a.Agent.Tell(new GatekeeperProtocol.Acquire("caller", 1), caller.Ref);
        await caller.ExpectMsgAsync<GatekeeperProtocol.Granted>(Step);

        if (terminatedFails)
        {
            BreakItsBooks(a.Agent);
        }
        else
        {
            FailInItsBooks(a.Agent);
        }

        await kit.WatchAsync(caller.Ref);
        cluster.Nodes[1].Stop(caller.Ref);
        await kit.ExpectTerminatedAsync(caller.Ref, Step);

        await using (var onB = await b.AcquireAsync(source: "on B").AsTask().WaitAsync(Step))
        {
            var late = a.AcquireAsync(source: "late on A").AsTask();
            var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s?.Waiting == 1 || late.IsCompleted, Step))!;
            Assert.False(late.IsCompleted, "the stopped caller's permit was freed twice");
            Assert.Equal(2, status.Running);
            held.Dispose();
            (await late.WaitAsync(Step)).Dispose();
        }

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s is { Running: 0, Waiting: 0 }, Step);
        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>
    /// A partition agent that failed twice while its callers held the key's limit is restarted, not replaced: once they
    /// release, its idle sweep still stops it (its routed count agrees with its parent's), the key serves new callers on
    /// both nodes, and the key's limit is exactly 2.
    /// </summary>
    [Fact]
    public async Task A_restarted_partition_agent_idles_away_and_its_key_serves_again()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var idle = TimeSpan.FromSeconds(1);
        var a = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("carry-partition", maxRunning: 2, maxQueued: null, idle);
        var b = ActorQueueCluster.Get(cluster.Nodes[0]).PartitionedLimiter("carry-partition", maxRunning: 2, maxQueued: null, idle);
        var first = await a.AcquireAsync("tenant", source: "first").AsTask().WaitAsync(Step);
        var second = await a.AcquireAsync("tenant", source: "second").AsTask().WaitAsync(Step);

        var agent = await cluster.Nodes[1].ActorSelection("/system/actorqueue-partitions-*-carry-partition/*").ResolveOne(Step);
        FailInItsBooks(agent);
        await agent.Ask<ActorIdentity>(new Identify(null), Step);
        // Broken before the late request is sent, so it cannot wait at the broken instance (whose stop fails its waiters,
        // as documented): the broken instance fails on it (it is handed on) or on a message before it (it queues behind).
        // Broken after it, the test raced the agent: a late request already waiting there was failed ("failed (NullReferenceException)
        // and stopped; its waiters are failed", in CI on c3173d0).
        BreakItsBooks(agent);
        var late = a.AcquireAsync("tenant", source: "late on A").AsTask(); // to the restarted agent, which fails again
        first.Dispose();
        (await late.WaitAsync(Step)).Dispose();
        second.Dispose();

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b, "tenant"), s => s is { Running: 0, Waiting: 0 }, Step);
        await Poll.UntilAsync(() => !a.Partitions.Live.ContainsKey("tenant"), Step, "the restarted partition agent idles away");
        await AssertLimitIsExactlyAsync(n => b.AcquireAsync("tenant", n, source: "all").AsTask(), () => a.AcquireAsync("tenant", source: "extra").AsTask(),
            () => ClusterNodes.StatusAsync(b, "tenant"), 2);
    }

    /// <summary>
    /// A local actor asks for a permit and cancels at once; the agent fails on the ask before its handler runs. The ask,
    /// handed to the next instance, must stay ahead of the cancel, which withdraws or releases it; the permit must not stay held for a caller that cancelled. The whole limit of 2 is then granted
    /// on B, and it is exactly 2. DEFECT (fixed): the ask was re-sent behind the cancel, which found nothing, and then
    /// granted: the permit stayed held for good ("Timed out … Running = 1" once all was released, or "Running = 2, Waiting = 2").
    /// </summary>
    [Fact]
    public async Task An_actor_ask_the_agent_fails_on_does_not_outlive_the_cancel_queued_behind_it()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var a = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("carry-cancelled", maxRunning: 2);
        var b = ActorQueueCluster.Get(cluster.Nodes[0]).Limiter("carry-cancelled", maxRunning: 2);
        var kit = new Akka.TestKit.Xunit2.TestKit(cluster.Nodes[1]); // not disposed: that would shut the node down
        var caller = kit.CreateTestProbe();
        (await a.AcquireAsync(source: "first contact").AsTask().WaitAsync(Step)).Dispose();

        var cell = (ActorCell)((ActorRefWithCell)a.Agent).Underlying;
        for (var requestId = 1; ; requestId++)
        {
            // Both in its mailbox, first, before it takes any: suspended between two messages (AgentPause), its mailbox
            // then holding these two alone. A message of its own (its hello tick, every second) that came in meanwhile
            // would be the one it fails on ("Expected: 2, Actual: 3" with the test thread held 1.1 s after the suspend):
            // then the two are handled as any (the ask withdrawn) and the test tries again.
            Assert.True(requestId <= 5, "a message of the agent's own came in with the test's two each time");
            await Poll.UntilAsync(() => cell.Mailbox!.MessageQueue.Count == 0, Step, "the agent's mailbox is empty");
            using var pause = await AgentPause.BetweenMessagesAsync(a.Agent);
            a.Agent.Tell(new GatekeeperProtocol.Acquire("cancelled", requestId), caller.Ref); // fails before its handler
            a.Agent.Tell(new GatekeeperProtocol.CancelAcquire(requestId), caller.Ref); // queued behind it
            if (cell.Mailbox!.MessageQueue.Count == 2)
            {
                BreakItsBooks(a.Agent);
                break;
            }

            pause.Dispose();
            await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s is { Running: 0, Waiting: 0 }, Step); // the withdrawn ask settled
        }

        await a.Agent.Ask<ActorIdentity>(new Identify(null), Step);

        (await b.AcquireAsync(2, source: "all").AsTask().WaitAsync(Step)).Dispose(); // wrongly: held for the caller for good
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(b), s => s is { Running: 0, Waiting: 0 }, Step);
        await AssertLimitIsExactlyAsync(a, b, 2);
    }

    /// <summary>The whole limit is granted on B, one more on A waits, and it is granted once B releases.</summary>
    internal static Task AssertLimitIsExactlyAsync(ClusterConcurrencyLimiter a, ClusterConcurrencyLimiter b, int limit) =>
        AssertLimitIsExactlyAsync(n => b.AcquireAsync(n, source: "all").AsTask(), () => a.AcquireAsync(source: "extra").AsTask(), () => ClusterNodes.StatusAsync(b), limit);

    /// <summary>The whole limit is granted by <paramref name="acquireAll"/>, one more waits, and it is granted once the first are released.</summary>
    internal static async Task AssertLimitIsExactlyAsync(Func<int, Task<ConcurrencyLease>> acquireAll, Func<Task<ConcurrencyLease>> acquireOne,
                                                        Func<Task<ClusterLimiterStatus?>> status, int limit)
    {
        await using (var all = await acquireAll(limit).WaitAsync(Step))
        {
            var extra = acquireOne();
            var seen = (await Poll.ValueAsync(status, s => s?.Waiting == 1 || extra.IsCompleted, Step))!;
            Assert.False(extra.IsCompleted, "a permit was freed twice");
            Assert.Equal(limit, seen.Running);
            all.Dispose();
            (await extra.WaitAsync(Step)).Dispose();
        }

        await Poll.ValueAsync(status, s => s is { Running: 0, Waiting: 0 }, Step);
    }
}
