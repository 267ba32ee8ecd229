using System.Reflection;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Coordination;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using static ActorQueue.Tests.Review.ClusterPartitionAttemptReviewTests;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the partitioned cluster limiter's synchronous attempts (helper 128): a partition agent that fails or stops
/// without its parent stopping it, and the stripes that count requests on their way to the parent.
/// <list type="bullet">
/// <item><see cref="A_partition_agent_that_fails_is_restarted_and_its_key_serves_attempts_again_counting_every_permit_once"/>
/// FAILED before (timed out polling for a granted attempt): Akka's default supervision restarted the agent, whose
/// <c>PostStop</c> closed the loan its key's entry shares with the next instance, so the key served no attempt until
/// its agent idled out (and the failed instance's block stayed counted at the gatekeeper meanwhile). Helper 128 then
/// stopped and replaced a failed agent; helper 152 restarts it again, its loan only shut and its callers' leases and
/// block carried (<see cref="ClusterAgentLeasesReviewTests"/>).</item>
/// <item><see cref="A_partition_agent_stopped_by_a_routed_stop_message_is_replaced"/> FAILED before
/// (<see cref="ObjectDisposedException"/>): the parent never noticed its agent had stopped and routed every later
/// request of the key to dead letters, for good.</item>
/// <item><see cref="An_attempt_is_granted_while_a_request_of_another_live_key_of_its_stripe_is_on_its_way"/> FAILED before
/// (timed out polling for a granted attempt): an agent lent nothing while its stripe counted a request of any key.</item>
/// </list>
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionAgentLoanReviewTests
{
    private static readonly TimeSpan Step = ClusterNodes.StepTimeout;

    /// <summary>
    /// A partition agent fails outside its handlers (here its own books, broken by reflection: the agent catches what a
    /// handler throws, so only such a defect reaches its supervisor) while a lease claimed from its block is out. It is
    /// restarted, the same partition: the claimed lease stays counted (the block carried) and its release frees it once,
    /// its key serves attempts again, the partition has exactly its limit afterwards and nothing held at the end. Its
    /// waiter is failed with the cause (it was told the limiter was disposed before, though nobody disposed it).
    /// </summary>
    [Fact]
    public async Task A_partition_agent_that_fails_is_restarted_and_its_key_serves_attempts_again_counting_every_permit_once()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, "actorqueue.cluster.limiter-block-linger = 200ms");
        var node = cluster.Nodes[1];
        var limiter = ActorQueueCluster.Get(node).PartitionedLimiter("p-agent-fails", maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(5));
        using var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var claimed = await AttemptUntilGrantedAsync(adapter, "tenant");
        var failed = limiter.Partitions.Live["tenant"];
        var agent = await node.ActorSelection("/system/actorqueue-partitions-*-p-agent-fails/*").ResolveOne(Step);
        var waiter = limiter.AcquireAsync("tenant", 2, source: "waiter").AsTask();
        await Poll.UntilAsync(() => failed.Statistics.LocalWaiting == 1, Step, "the whole limit waits behind the claimed lease");

        FailInItsBooks(agent);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => waiter.WaitAsync(Step)); // not "disposed": nobody disposed the limiter
        Assert.IsType<NullReferenceException>(error.InnerException);
        Assert.Same(failed, limiter.Partitions.Live["tenant"]); // restarted: the same partition, its loan only shut
        Assert.False(failed.Local.Loan.IsClosed);
        Assert.Equal(1, failed.Statistics.LocalRunning); // the claimed lease, carried
        claimed.Dispose(); // freed once

        (await AttemptUntilGrantedAsync(adapter, "tenant")).Dispose();

        await using (var all = await limiter.AcquireAsync("tenant", 2, source: "all").AsTask().WaitAsync(Step)) // none leaked
        {
            var extra = limiter.AcquireAsync("tenant", source: "extra").AsTask();
            var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter, "tenant"), s => s?.Waiting == 1, Step))!;
            Assert.Equal(2, status.Running); // none freed twice
            Assert.False(extra.IsCompleted);
            all.Dispose();
            (await extra.WaitAsync(Step)).Dispose();
        }

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter, "tenant"), s => s is { Running: 0, Waiting: 0 }, Step); // every block lingered back
    }

    /// <summary>
    /// A model-API partition's agent stopped by a stop message a local actor routed to it (<see cref="ClusterPartitionMessage"/>
    /// forwards what it carries) is replaced: the key's next call is served by a new agent.
    /// </summary>
    [Fact]
    public async Task A_partition_agent_stopped_by_a_routed_stop_message_is_replaced()
    {
        await using var cluster = await ClusterNodes.StartAsync(2);
        var node = cluster.Nodes[1];
        var limiter = ActorQueueCluster.Get(node).PartitionedModelApiLimiter<string>("p-agent-stopped",
            new ModelApiLimiterOptions(maxConcurrent: 2, requestsPerPeriod: 100, tokensPerPeriod: 100_000, TimeSpan.FromMinutes(1)), TimeSpan.FromMinutes(5));
        (await limiter.AcquireAsync("tenant", 10).AsTask().WaitAsync(Step)).Dispose();
        var agent = await node.ActorSelection(limiter.Agent.Path / "*").ResolveOne(Step);
        var stopped = agent.WatchAsync();

        limiter.Agent.Tell(limiter.Message("tenant", PoisonPill.Instance));
        await stopped.WaitAsync(Step);
        await Poll.UntilAsync(() => limiter.PartitionCount == 0, Step, "the parent forgot the stopped agent"); // its mailbox may still route to it till then

        await using var lease = await limiter.AcquireAsync("tenant", 10).AsTask().WaitAsync(Step);
    }

    /// <summary>
    /// Key <c>tenant</c>'s attempts are served while a request of another key of its routing stripe, whose partition is
    /// live here, is on its way to the parent (held there for good: posted through a facade over the same partitions
    /// whose parent never routes). That request still holds its own key's loan (nothing is lent to its key meanwhile).
    /// </summary>
    [Fact]
    public async Task An_attempt_is_granted_while_a_request_of_another_live_key_of_its_stripe_is_on_its_way()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, "actorqueue.cluster.limiter-block-linger = 1h");
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).PartitionedLimiter("p-stripe-mate", maxRunning: 2, maxQueued: null, TimeSpan.FromMinutes(5));
        using var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        var partitions = limiter.Partitions;
        var mate = Enumerable.Range(0, 100_000).Select(i => $"mate-{i}").First(key => ReferenceEquals(partitions.Routing(key), partitions.Routing("tenant")));
        (await limiter.AcquireAsync(mate).AsTask().WaitAsync(Step)).Dispose();
        Assert.True(partitions.Live.ContainsKey(mate));

        var heldBack = new ClusterPartitionedLimiter(limiter.Name, limiter.Configured, limiter.IdleTimeout, ActorRefs.Nobody, partitions, _ => { });
        heldBack.Post(mate, PermitDemand.One, 0, null, "on its way");
        Assert.False(partitions.Live[mate].Local.Loan.IsOpen);

        using var granted = await AttemptUntilGrantedAsync(adapter, "tenant");
        Assert.False(partitions.Live[mate].Local.Loan.IsOpen);
    }

    /// <summary>Breaks the agent's books (its block settings) and sends it a message: its reclaim throws before any handler runs.</summary>
    internal static void FailInItsBooks(IActorRef agent)
    {
        BreakItsBooks(agent);
        agent.Tell(WantBlock.Instance);
    }

    /// <summary>Breaks the agent's books without sending it anything: the next message it takes fails before its handler.</summary>
    internal static void BreakItsBooks(IActorRef agent)
    {
        var cell = (ActorCell)((ActorRefWithCell)agent).Underlying;
        var actor = typeof(ActorCell).GetProperty("Actor", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.GetValue(cell);
        typeof(LimiterAgentActor).GetField("_blocks", BindingFlags.Instance | BindingFlags.NonPublic)!.SetValue(actor, null);
    }
}

/// <summary>
/// The partitions' parent on its own (a probe for the hub): a request counted on its way in a live partition whose agent
/// is removed before the request reaches the parent keeps the key's next agent from lending (helper 128's per-key counts).
/// </summary>
public sealed class PartitionAgentLoanReviewUnitTests : ActorQueueTestKit
{
    /// <summary>
    /// The key's agent stops (an idle report that saw every routed message) while a request counted in its partition is
    /// on its way to the parent; the agent made next for the key shares that count, so it lends nothing before the
    /// request is announced in its loan. A parent that dropped the count with the partition let the next agent lend past
    /// the request (its stripe no longer counts it).
    /// </summary>
    [Fact]
    public async Task A_request_counted_in_a_removed_partition_holds_the_keys_next_agent()
    {
        var count = new PartitionCount();
        var template = new LimiterAgentSetup("tenants", new ClusterLimit(2, null, null, QueueFullMode.RejectNewcomer), CreateTestProbe(),
            new Address("akka.tcp", "actorqueue", "127.0.0.1", 1), new LimiterCounts(), new LimiterCounts(), new LimitMirror(2, null),
            HelloInterval: TimeSpan.FromHours(1)) { IdleTimeout = TimeSpan.FromHours(1) };
        var parent = Sys.ActorOf(PartitionAgentsActor.Props(template, CreateTestProbe().Ref, count));
        parent.Tell(new PartitionWantBlock("tenant", Opened: null));
        await parent.Ask<Dictionary<string, ClusterPartitionStatistics>>(AllPartitionStatistics.Instance, TimeSpan.FromSeconds(10));
        var removed = count.Live["tenant"];
        var agent = await Sys.ActorSelection(parent.Path / "*").ResolveOne(TimeSpan.FromSeconds(10));

        var heldBack = new ClusterPartitionedLimiter("tenants", template.Limit, template.IdleTimeout, ActorRefs.Nobody, count, _ => { });
        heldBack.Post("tenant", PermitDemand.One, 0, null, "on its way");
        Assert.True(removed.OnTheWay.Any);
        Assert.False(count.Routing("tenant").Any);
        var stopped = agent.WatchAsync();
        parent.Tell(new PartitionIdle("tenant", 1), agent); // it saw the one routed message (the wish)
        await Within(stopped);

        parent.Tell(new PartitionWantBlock("tenant", Opened: null)); // the key's next agent
        await parent.Ask<Dictionary<string, ClusterPartitionStatistics>>(AllPartitionStatistics.Instance, TimeSpan.FromSeconds(10));
        Assert.NotSame(removed, count.Live["tenant"]);
        Assert.True(count.Live["tenant"].OnTheWay.Any); // its agent lends nothing before the request is routed to it
    }
}
