using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A plain cluster limiter's <c>AttemptAcquire(1)</c> (its <see cref="RateLimiter"/> adapter): granted synchronously,
/// with no message, from the unused permits of the block this node's agent holds while nobody of this node waits;
/// refused otherwise. Before, it never granted, so a caller that tries or sheds shed everything on an idle cluster.
/// The tests guard the invariants: the cluster-wide limit holds, a claim never passes a request of its node on its
/// way, a recall gives back only the unused permits, and a claimed lease released after a recall or a dispose is
/// neither lost nor counted twice.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterAttemptReviewTests
{
    /// <summary>Blocks stay out until recalled.</summary>
    private const string KeepBlocks = "actorqueue.cluster.limiter-block-linger = 1h";

    [Fact]
    public async Task An_idle_nodes_attempt_is_granted_from_its_block_without_a_message()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, KeepBlocks);
        var limiter = TestAgent.Limiter(cluster.Nodes[1], "attempt-idle", maxRunning: 2);
        var adapter = limiter.AsRateLimiter();
        await LeaseBlockAsync(limiter);
        Assert.Equal(2, (await limiter.GetStatusAsync()).Running); // the only agent: the whole limit is its block, unused

        // The agent handles nothing from here on: a grant that needed a message (or waited for one) could not be made.
        await limiter.Agent.Ask<TestAgent.Done>(TestAgent.Freeze.Instance, ClusterNodes.StepTimeout);
        var first = adapter.AttemptAcquire(1);
        using var second = adapter.AttemptAcquire(1);
        Assert.True(first.IsAcquired, ReasonOf(first));
        Assert.True(second.IsAcquired, ReasonOf(second));
        Assert.Equal(2, limiter.LocalRunningCount); // counted at once, as this node's held permits
        using (var third = adapter.AttemptAcquire(1))
        {
            Assert.False(third.IsAcquired); // the block is used up: nothing more without the gatekeeper
        }

        first.Dispose(); // back into the block with no message: the next attempt finds it
        using (var again = adapter.AttemptAcquire(1))
        {
            Assert.True(again.IsAcquired, ReasonOf(again));
        }

        limiter.Agent.Tell(TestAgent.Thaw.Instance);
        var status = await limiter.GetStatusAsync();
        Assert.Equal((2, 0, 1), (status.Running, status.Waiting, limiter.LocalRunningCount)); // the block, not counted twice

        // The agent handled messages with a claimed lease out: it lends again only what is unused, one permit. Frozen
        // again, so that no message it takes (a hello tick) has the loan shut as the test attempts.
        await limiter.Agent.Ask<TestAgent.Done>(TestAgent.Freeze.Instance, ClusterNodes.StepTimeout);
        using var last = adapter.AttemptAcquire(1);
        Assert.True(last.IsAcquired, ReasonOf(last));
        using (var over = adapter.AttemptAcquire(1))
        {
            Assert.False(over.IsAcquired); // a third permit of a limit of two
        }
    }

    [Fact]
    public async Task A_node_whose_callers_only_try_is_leased_a_block_and_grants_from_it()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, KeepBlocks);
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("attempt-only", maxRunning: 2);
        var adapter = limiter.AsRateLimiter();

        // No AcquireAsync ever: a refused attempt asks the agent for a block (the first one only makes the gatekeeper
        // exist and the agent follow it), and a later attempt is granted from it.
        RateLimitLease? first = null;
        await Poll.UntilAsync(() =>
        {
            var lease = adapter.AttemptAcquire(1);
            if (lease.IsAcquired)
            {
                first = lease;
                return true;
            }

            lease.Dispose();
            return false;
        }, ClusterNodes.StepTimeout, "an attempt on an idle cluster is granted");
        using var pause = await AgentPause.BetweenMessagesAsync(limiter.Agent); // not inside a hello tick, its loan shut
        using var second = adapter.AttemptAcquire(1);
        Assert.True(second.IsAcquired, ReasonOf(second)); // the only agent: the whole limit is its block
        using (var third = adapter.AttemptAcquire(1))
        {
            Assert.False(third.IsAcquired); // the limit holds
        }

        pause.Dispose();
        var status = await limiter.GetStatusAsync();
        Assert.Equal((2, 0, 2), (status.Running, status.Waiting, limiter.LocalRunningCount));
        using (await AgentPause.BetweenMessagesAsync(limiter.Agent)) // back into the open loan, not by a message the agent has yet to take
        {
            first!.Dispose();
            Assert.Equal(1, limiter.LocalRunningCount);
        }
    }

    [Fact]
    public async Task An_attempt_is_refused_while_the_limit_is_used_on_another_node()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, KeepBlocks);
        var idle = TestAgent.Limiter(cluster.Nodes[1], "attempt-used", maxRunning: 2);
        await LeaseBlockAsync(idle); // the idle node held a block once
        var busy = ActorQueueCluster.Get(cluster.Nodes[2]).Limiter("attempt-used", maxRunning: 2);

        // The busy node's callers wait at the gatekeeper, which recalls the idle node's block for them.
        var first = busy.AcquireAsync(2, source: "busy").AsTask();
        await using var held = await first.WaitAsync(ClusterNodes.StepTimeout);
        await idle.Agent.Ask<TestAgent.Done>(TestAgent.Sync.Instance, ClusterNodes.StepTimeout);

        using var attempt = idle.AsRateLimiter().AttemptAcquire(1);
        Assert.False(attempt.IsAcquired);
        Assert.Contains("attempt-used", ReasonOf(attempt), StringComparison.Ordinal);
        var status = await busy.GetStatusAsync();
        Assert.Equal((2, 0), (status.Running, status.Waiting));
    }

    [Fact]
    public async Task An_attempt_does_not_pass_a_request_of_its_node_on_its_way_to_the_agent()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, KeepBlocks);
        var limiter = TestAgent.Limiter(cluster.Nodes[1], "attempt-fifo", maxRunning: 2);
        var adapter = limiter.AsRateLimiter();
        await LeaseBlockAsync(limiter);
        await limiter.Agent.Ask<TestAgent.Done>(TestAgent.Freeze.Instance, ClusterNodes.StepTimeout);

        // Two unused permits in the block; a request for both is in the agent's mailbox, its call returned: a later
        // attempt must not take one of them past it (it would then wait for the later caller).
        var heavy = limiter.AcquireAsync(2, source: "heavy").AsTask();
        using (var attempt = adapter.AttemptAcquire(1))
        {
            Assert.False(attempt.IsAcquired);
        }

        limiter.Agent.Tell(TestAgent.Thaw.Instance);
        await using (await heavy.WaitAsync(ClusterNodes.StepTimeout))
        {
            using var meanwhile = adapter.AttemptAcquire(1);
            Assert.False(meanwhile.IsAcquired); // the heavy lease holds the whole limit
        }

        // Afterwards the node leases a block again with its next plain acquire, and attempts are granted from it.
        await LeaseBlockAsync(limiter);
        await limiter.Agent.Ask<TestAgent.Done>(TestAgent.Freeze.Instance, ClusterNodes.StepTimeout); // no message under way has the loan shut
        using var later = adapter.AttemptAcquire(1);
        Assert.True(later.IsAcquired, ReasonOf(later));
    }

    [Fact]
    public async Task A_recall_after_a_claim_gives_back_only_the_unused_permits_and_the_claimed_one_on_its_release()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, KeepBlocks);
        var holder = TestAgent.Limiter(cluster.Nodes[1], "attempt-recall", maxRunning: 3);
        await LeaseBlockAsync(holder);
        Assert.Equal(3, (await holder.GetStatusAsync()).Running); // the only agent so far: the whole limit
        await holder.Agent.Ask<TestAgent.Done>(TestAgent.Freeze.Instance, ClusterNodes.StepTimeout); // no message under way has the loan shut
        var claimed = holder.AsRateLimiter().AttemptAcquire(1);
        Assert.True(claimed.IsAcquired, ReasonOf(claimed));
        holder.Agent.Tell(TestAgent.Thaw.Instance);

        // A request for the whole limit elsewhere recalls the block: the two unused permits come back, the claimed one
        // stays the holder's, so the heavy request waits.
        var other = ActorQueueCluster.Get(cluster.Nodes[2]).Limiter("attempt-recall", maxRunning: 3);
        var heavy = other.AcquireAsync(3, source: "heavy").AsTask();
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(other), s => s is { Waiting: 1, Running: < 3 }, ClusterNodes.StepTimeout))!;
        await holder.Agent.Ask<TestAgent.Done>(TestAgent.Sync.Instance, ClusterNodes.StepTimeout); // the recall was handled
        status = await other.GetStatusAsync();
        Assert.Equal((1, 1), (status.Running, status.Waiting));
        Assert.False(heavy.IsCompleted);
        Assert.Equal(1, holder.LocalRunningCount);

        claimed.Dispose(); // after the recall it goes back to the gatekeeper, and to the waiter
        await using (await heavy.WaitAsync(ClusterNodes.StepTimeout))
        {
            status = await other.GetStatusAsync();
            Assert.Equal((3, 0), (status.Running, status.Waiting));
            Assert.Equal(0, holder.LocalRunningCount);
        }

        status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(other), s => s?.Running == 0, ClusterNodes.StepTimeout))!;
        Assert.Equal(0, status.Waiting);
        await AssertExactlyTheLimitAsync(other, 3);
    }

    [Fact]
    public async Task A_lease_claimed_before_the_limiter_is_disposed_is_released_without_error_and_the_block_is_freed_once()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, KeepBlocks);
        var disposed = TestAgent.Limiter(cluster.Nodes[1], "attempt-dispose", maxRunning: 2);
        var adapter = disposed.AsRateLimiter();
        await LeaseBlockAsync(disposed);
        await disposed.Agent.Ask<TestAgent.Done>(TestAgent.Freeze.Instance, ClusterNodes.StepTimeout); // no message under way has the loan shut
        var claimed = adapter.AttemptAcquire(1);
        Assert.True(claimed.IsAcquired, ReasonOf(claimed));
        disposed.Agent.Tell(TestAgent.Thaw.Instance);

        await disposed.DisposeAsync();
        using (var late = adapter.AttemptAcquire(1))
        {
            Assert.False(late.IsAcquired); // the loan is closed with the limiter
        }

        claimed.Dispose(); // the agent is gone: nothing to give back to, and nothing throws

        // The gatekeeper freed the stopped agent's block with it, once: the limit is whole again, and no more.
        var survivor = ActorQueueCluster.Get(cluster.Nodes[2]).Limiter("attempt-dispose", maxRunning: 2);
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(survivor), s => s is { Running: 0, Waiting: 0 }, ClusterNodes.StepTimeout);
        await AssertExactlyTheLimitAsync(survivor, 2);
    }

    [Fact]
    public async Task Racing_attempts_and_acquires_on_two_nodes_never_exceed_the_limit_and_give_every_permit_back_once()
    {
        const int Limit = 3;
        await using var cluster = await ClusterNodes.StartAsync(3, "actorqueue.cluster.limiter-block-linger = 200ms");
        var limiters = cluster.Nodes.Skip(1).Select(node => TestAgent.Limiter(node, "attempt-race", maxRunning: Limit)).ToList();
        foreach (var limiter in limiters)
        {
            await LeaseBlockAsync(limiter);
        }

        var running = 0;
        var maxSeen = 0;
        var callers = limiters.SelectMany((limiter, node) => Enumerable.Range(0, 4).Select(caller => Task.Run(async () =>
        {
            var adapter = limiter.AsRateLimiter();
            for (var turn = 0; turn < 60; turn++)
            {
                RateLimitLease lease = (turn + caller) % 3 == 0
                    ? await limiter.AcquireAsync($"node{node}-caller{caller}")
                    : adapter.AttemptAcquire(1);
                using (lease)
                {
                    if (!lease.IsAcquired)
                    {
                        await Task.Yield();
                        continue;
                    }

                    Poll.InterlockedMax(ref maxSeen, Interlocked.Increment(ref running));
                    await Task.Yield();
                    Interlocked.Decrement(ref running);
                }
            }
        })));
        await Task.WhenAll(callers).WaitAsync(ClusterNodes.StepTimeout);

        Assert.InRange(maxSeen, 1, Limit); // never above the cluster-wide limit
        // A release by message is counted off when the agent takes it: every node comes back to holding nothing.
        await Poll.UntilAsync(() => limiters.TrueForAll(limiter => limiter.LocalRunningCount == 0), ClusterNodes.StepTimeout, "both nodes hold nothing");
        // Idle blocks go back after their linger: every permit, claimed or not, comes back once.
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiters[0]), s => s?.Running == 0, ClusterNodes.StepTimeout))!;
        Assert.Equal(0, status.Waiting);
        await AssertExactlyTheLimitAsync(limiters[1], Limit);
    }

    /// <summary>
    /// Exactly <paramref name="limit"/> permits can be had (none lost), and one more waits at the gatekeeper (none given
    /// back twice); everything is released afterwards.
    /// </summary>
    private static async Task AssertExactlyTheLimitAsync(ClusterConcurrencyLimiter limiter, int limit)
    {
        await using var all = await limiter.AcquireAsync(limit, source: "all").AsTask().WaitAsync(ClusterNodes.StepTimeout);
        var extra = limiter.AcquireAsync("extra").AsTask();
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Waiting == 1, ClusterNodes.StepTimeout))!;
        Assert.Equal(limit, status.Running);
        Assert.False(extra.IsCompleted);
        all.Dispose();
        (await extra.WaitAsync(ClusterNodes.StepTimeout)).Dispose();
    }

    /// <summary>
    /// Makes the gatekeeper exist and this node's agent follow it (a node's first request is granted a plain lease),
    /// then has one plain acquire lease the node a block and give its permit back into it; returns once the agent (a
    /// <see cref="TestAgent"/>) finished that work, its end-of-message lend included.
    /// </summary>
    private static async Task LeaseBlockAsync(ClusterConcurrencyLimiter limiter)
    {
        (await limiter.AcquireAsync("warm-up").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s is { Recovering: false, Waiting: 0 }, ClusterNodes.StepTimeout);
        (await limiter.AcquireAsync("block").AsTask().WaitAsync(ClusterNodes.StepTimeout)).Dispose();
        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s is { Running: > 0 }, ClusterNodes.StepTimeout);
        await limiter.Agent.Ask<TestAgent.Done>(TestAgent.Sync.Instance, ClusterNodes.StepTimeout);
    }

    private static string ReasonOf(RateLimitLease lease) =>
        lease.TryGetMetadata(MetadataName.ReasonPhrase, out var reason) ? reason ?? "" : "(no reason)";

    /// <summary>
    /// A node's limiter agent the test can synchronise with and freeze: the production agent in every other respect
    /// (the hooks sit in its own <c>AroundReceive</c>, around its behaviour).
    /// </summary>
    private sealed class TestAgent(LimiterAgentSetup setup) : LimiterAgentActor(setup), IWithUnboundedStash
    {
        private bool _frozen;

        /// <inheritdoc />
        public IStash Stash { get; set; } = null!;

        /// <summary>This node's handle on cluster limiter <paramref name="name"/>, with this agent.</summary>
        public static ClusterConcurrencyLimiter Limiter(ActorSystem node, string name, int maxRunning) =>
            ActorQueueCluster.Get(node).StartLimiter(name, new ClusterLimit(maxRunning, null, null, QueueFullMode.RejectNewcomer),
                agentSetup => Akka.Actor.Props.Create(() => new TestAgent(agentSetup)), _ => { }, register: true);

        /// <inheritdoc />
        protected override bool AroundReceive(Receive receive, object message)
        {
            switch (message)
            {
                case Sync or Freeze:
                    base.AroundReceive(receive, message); // a message the agent does not know: only its books' work around it
                    _frozen = message is Freeze;
                    Sender.Tell(Done.Instance); // after the agent's whole message
                    return true;
                case Thaw:
                    _frozen = false;
                    Stash.UnstashAll();
                    return true;
                case not Terminated when _frozen:
                    Stash.Stash();
                    return true;
                default:
                    return base.AroundReceive(receive, message);
            }
        }

        /// <summary>Answered with <see cref="Done"/> once the agent handled it as any message.</summary>
        public sealed record Sync
        {
            public static Sync Instance { get; } = new();
        }

        /// <summary>As <see cref="Sync"/>, then every later message is held until <see cref="Thaw"/>.</summary>
        public sealed record Freeze
        {
            public static Freeze Instance { get; } = new();
        }

        /// <summary>The held messages are handled, in order, and later ones at once.</summary>
        public sealed record Thaw
        {
            public static Thaw Instance { get; } = new();
        }

        public sealed record Done
        {
            public static Done Instance { get; } = new();
        }
    }
}
