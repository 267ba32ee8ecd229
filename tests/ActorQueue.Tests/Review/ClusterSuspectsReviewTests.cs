using System.Reflection;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Suspected cluster-limiter defects left by earlier sessions (helper 134): a plain limiter's attempt claimed just as
/// its node agent restarts.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterSuspectsReviewTests
{
    /// <summary>
    /// An <c>AttemptAcquire</c> claims the last lent permit of the node's block (the loan's compare-and-swap) and loses
    /// the processor before it numbers its lease; meanwhile the agent fails outside its handlers and is restarted, which
    /// forgets the claims made so far (the gatekeeper frees the failed block) by their numbers. The lease, numbered only
    /// after that, was claimed from the failed block all the same: its release must go nowhere, not into the next
    /// instance's loan. DEFECT (fixed): it went into that loan, so a third attempt was granted on a limit of two
    /// ("Assert.False() Failure"), one permit counted free twice.
    /// </summary>
    [Fact]
    public async Task A_lease_claimed_before_a_restart_and_numbered_after_it_does_not_go_back_into_the_next_instances_loan()
    {
        var step = ClusterNodes.StepTimeout;
        await using var cluster = await ClusterNodes.StartAsync(2, "actorqueue.cluster.limiter-block-linger = 1h");
        var limiter = ActorQueueCluster.Get(cluster.Nodes[1]).Limiter("restart-racer", maxRunning: 2);
        var adapter = limiter.AsRateLimiter();
        using var claimed = await Poll.ValueAsync(() => Task.FromResult(adapter.AttemptAcquire(1)), lease => lease.IsAcquired, step); // the only node: the whole limit is its block
        var loan = Field<LimiterCounts>(limiter, "_localCounts").Loan;

        // The racing claimer's two steps (ClaimedLeaseReleaser.TryClaim), with the restart between them.
        await Poll.UntilAsync(() => loan.TryClaim(1), step, "the block's other permit is claimed"); // the agent may be inside a message (its hello tick)
        PartitionAgentLoanReviewTests.FailInItsBooks(limiter.Agent);
        await limiter.Agent.Ask<ActorIdentity>(new Identify(null), step); // after the failing message and the restart it caused
        var racer = new ConcurrencyLease(Field<ILeaseReleaser>(limiter, "_claims"), loan.NextLeaseId(), "racer", 1);

        using (var first = await Poll.ValueAsync(() => Task.FromResult(adapter.AttemptAcquire(1)), lease => lease.IsAcquired, step)) // the next instance's block: the whole limit again
        using (var second = adapter.AttemptAcquire(1))
        {
            Assert.True(second.IsAcquired);
            racer.Dispose();
            using var third = adapter.AttemptAcquire(1);
            Assert.False(third.IsAcquired); // not a permit counted free twice
            Assert.Equal(2, limiter.LocalRunningCount);
        }

        await using (var all = await limiter.AcquireAsync(2, source: "all").AsTask().WaitAsync(step)) // none leaked either
        {
            var status = await limiter.GetStatusAsync();
            Assert.Equal((2, 0), (status.Running, status.Waiting));
        }
    }

    /// <summary>A private field of a plain cluster limiter's facade.</summary>
    private static T Field<T>(ClusterConcurrencyLimiter limiter, string name) =>
        (T)typeof(ClusterConcurrencyLimiter).GetField(name, BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(limiter)!;
}
