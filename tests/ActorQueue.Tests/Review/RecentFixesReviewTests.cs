using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
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

/// <summary>The facade waiter's fallback to the thread pool when its caller's captured context throws (helper 129).</summary>
public sealed class RecentFixesWaiterReviewTests : ActorQueueTestKit
{
    /// <summary>A source nobody listens to: a traced acquire's ValueTask is a task's, which .NET resumes itself (see <see cref="WaiterSignalFaultsReviewTests"/>).</summary>
    private static readonly ActivitySource Untraced = new("review-recent-fixes-untraced");

    /// <summary>
    /// A caller's context whose <c>Post</c> keeps the continuation and then throws (its loop's wake-up failed after the
    /// enqueue; or, alike, a context that runs it inline and the continuation throws out of it): the grant stands and
    /// the caller resumes on the thread pool, and once the context's loop runs what it kept, the continuation does not
    /// run a second time. DEFECT (fixed): the fallback queued the very work the context had kept or run, so it ran twice
    /// ("Expected: 1, Actual: 2"): an async method resumed twice at one await.
    /// </summary>
    [Fact]
    public async Task A_continuation_a_context_kept_before_it_threw_runs_once()
    {
        using var limiter = new Actors.ConcurrencyLimiter(new ConcurrencyLimit(1) { WaitTimeout = Timeout.InfiniteTimeSpan }, $"review-recent-once-{Guid.NewGuid():N}",
                                                   tracer: Untraced, system: Sys);
        var holder = await Within(limiter.AcquireAsync(1).AsTask());
        var waiting = limiter.AcquireAsync(1);
        await Eventually(() => limiter.WaitingCount == 1, "the second caller waits");
        var context = new KeepingThenThrowingContext();
        var runs = 0;
        var resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(context); // captured by the waiter as its caller's context
        try
        {
            waiting.GetAwaiter().OnCompleted(() =>
            {
                Interlocked.Increment(ref runs);
                resumed.TrySetResult();
            });
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        holder.Dispose();
        await Within(resumed.Task); // on the thread pool, as the context threw
        Assert.Equal(1, context.Kept);

        context.RunKept(); // its loop runs what it kept
        Assert.Equal(1, Volatile.Read(ref runs));
        (await waiting).Dispose(); // granted (completed: read, not awaited again): the lease goes back
        await Eventually(() => limiter.RunningCount == 0, "the lease is back");
    }

    /// <summary>A synchronization context whose <c>Post</c> keeps the work for its loop and then throws.</summary>
    private sealed class KeepingThenThrowingContext : SynchronizationContext
    {
        private readonly ConcurrentQueue<(SendOrPostCallback Callback, object? State)> _kept = new();

        /// <summary>How many callbacks it kept.</summary>
        public int Kept => _kept.Count;

        public override void Post(SendOrPostCallback d, object? state)
        {
            _kept.Enqueue((d, state));
            throw new ObjectDisposedException("loop signal", "the loop's wake-up signal is disposed");
        }

        /// <summary>Runs what it kept, on the calling thread.</summary>
        public void RunKept()
        {
            while (_kept.TryDequeue(out var work))
            {
                work.Callback(work.State);
            }
        }
    }
}
