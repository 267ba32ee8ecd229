using System.Reflection;
using System.Threading.RateLimiting;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>Adversarial review of the fixes of 6fc0f5f..8b352bd (helpers 127, 128, 129).</summary>
[Collection(ClusterCollection.Name)]
public sealed class RecentFixesReviewTests
{
    /// <summary>
    /// Helper 128 replaced a failed partition agent; a plain cluster limiter's agent that fails outside its handlers
    /// (its books broken by reflection, as <see cref="PartitionAgentLoanReviewTests"/> does) is restarted by Akka
    /// instead, the same actor. The limiter must go on: requests served, attempts granted once the agent holds a block,
    /// every permit counted once (the whole limit and no more; a lease claimed from the failed instance's block, which
    /// the gatekeeper frees, is not returned into the next instance's loan). DEFECT (fixed): every later acquire hung
    /// (TimeoutException at the two acquires sent as it failed: the restarted instance's hello with epoch 0 changed
    /// nothing at a gatekeeper that took the agent as announced), and every attempt was refused (the loan closed for
    /// good by the failed instance's stop).
    /// </summary>
    [Fact]
    public async Task A_plain_limiters_agent_that_fails_serves_attempts_again_counting_every_permit_once()
    {
        await using var cluster = await ClusterNodes.StartAsync(2, "actorqueue.cluster.limiter-block-linger = 200ms");
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("plain-agent-fails", maxRunning: 2);
        var adapter = limiter.AsRateLimiter();
        var claimed = await AttemptUntilGrantedAsync(adapter);
        var waiter = limiter.AcquireAsync(2, source: "waiter").AsTask(); // the whole limit, behind the claimed lease
        await Poll.UntilAsync(() => limiter.LocalWaitingCount == 1, Step, "the waiter waits on its node");

        FailInItsBooks(limiter.Agent);
        var early = Enumerable.Range(1, 2).Select(i => limiter.AcquireAsync(1, source: $"early {i}").AsTask()).ToArray(); // numbered by the next instance
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => waiter.WaitAsync(Step));
        Assert.IsType<NullReferenceException>(error.InnerException);
        foreach (var lease in await Task.WhenAll(early).WaitAsync(Step)) // the failed instance's block and wait no longer counted
        {
            lease.Dispose();
        }

        using (var first = await AttemptUntilGrantedAsync(adapter))
        using (var second = adapter.AttemptAcquire(1))
        {
            Assert.True(second.IsAcquired); // the only node: the whole limit is its block
            claimed.Dispose(); // claimed from the failed instance's block, which the gatekeeper freed: it goes nowhere
            using var third = adapter.AttemptAcquire(1);
            Assert.False(third.IsAcquired); // not back in the next instance's loan, as a permit counted free twice
            Assert.Equal(2, limiter.LocalRunningCount);
        }

        await using (var all = await limiter.AcquireAsync(2, source: "all").AsTask().WaitAsync(Step))
        {
            var extra = limiter.AcquireAsync(1, source: "extra").AsTask();
            var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Waiting == 1, Step))!;
            Assert.Equal(2, status.Running);
            Assert.False(extra.IsCompleted);
            all.Dispose();
            (await extra.WaitAsync(Step)).Dispose();
        }

        await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s is { Running: 0, Waiting: 0 }, Step);
    }

    /// <summary>How long each step may take.</summary>
    private static readonly TimeSpan Step = ClusterNodes.StepTimeout;

    /// <summary>Attempts until one is granted (a refused attempt asks the agent for a block).</summary>
    private static Task<RateLimitLease> AttemptUntilGrantedAsync(RateLimiter adapter) =>
        Poll.ValueAsync(() => Task.FromResult(adapter.AttemptAcquire(1)), lease => lease.IsAcquired, Step);

    /// <summary>Breaks the agent's books (its block settings) and sends it a message: its reclaim throws before any handler runs.</summary>
    private static void FailInItsBooks(IActorRef agent)
    {
        var cell = (ActorCell)((ActorRefWithCell)agent).Underlying;
        var actor = typeof(ActorCell).GetProperty("Actor", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)!.GetValue(cell);
        typeof(LimiterAgentActor).GetField("_blocks", BindingFlags.Instance | BindingFlags.NonPublic)!.SetValue(actor, null);
        agent.Tell(WantBlock.Instance);
    }
}
