using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Cluster;
using ActorQueue.Tests.Cluster;
using Akka.Actor;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>Adversarial review of the fixes of 6fc0f5f..8b352bd (helpers 127, 128, 129).</summary>
[Collection(ClusterCollection.Name)]
public sealed class RecentFixesReviewTests
{
    /// <summary>
    /// Helper 128 replaced a failed partition agent; a plain cluster limiter's agent that fails outside its handlers
    /// (its books broken by reflection, as <see cref="PartitionAgentLoanReviewTests"/> does) is restarted by Akka
    /// instead, the same actor. The limiter must go on: requests served, attempts granted once the agent holds a block,
    /// every permit counted once (the whole limit and no more; a lease claimed from the failed instance's block is still
    /// counted, the block carried to the next instance since helper 152, and freed once as it is released: see
    /// <see cref="ClusterAgentLeasesReviewTests"/>). DEFECT (fixed): every later acquire hung
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

        PartitionAgentLoanReviewTests.FailInItsBooks(limiter.Agent);
        var early = Enumerable.Range(1, 2).Select(i => limiter.AcquireAsync(1, source: $"early {i}").AsTask()).ToArray(); // numbered by the next instance
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => waiter.WaitAsync(Step));
        Assert.IsType<NullReferenceException>(error.InnerException);
        // Once the next instance announced itself, the failed instance's wait is no longer counted; its claimed lease
        // still is (carried): one early caller runs, the other waits.
        await Task.WhenAny(early).WaitAsync(Step);
        var status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Waiting == 1 || early.All(task => task.IsCompleted), Step))!;
        Assert.Equal(1, early.Count(task => task.IsCompleted));
        Assert.Equal(2, status.Running);
        claimed.Dispose(); // the carried claim, freed once
        foreach (var lease in await Task.WhenAll(early).WaitAsync(Step))
        {
            lease.Dispose();
        }

        using (var first = await AttemptUntilGrantedAsync(adapter))
        using (await AgentPause.BetweenMessagesAsync(limiter.Agent)) // not inside a tick, its loan shut: the second must be granted from the block
        using (var second = adapter.AttemptAcquire(1))
        {
            Assert.True(second.IsAcquired); // the only node: the whole limit is its block
            using var third = adapter.AttemptAcquire(1);
            Assert.False(third.IsAcquired); // no permit counted free twice
            Assert.Equal(2, limiter.LocalRunningCount);
        }

        await using (var all = await limiter.AcquireAsync(2, source: "all").AsTask().WaitAsync(Step))
        {
            var extra = limiter.AcquireAsync(1, source: "extra").AsTask();
            status = (await Poll.ValueAsync(() => ClusterNodes.StatusAsync(limiter), s => s?.Waiting == 1, Step))!;
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
}

/// <summary>The facade waiter's fallback to the thread pool when its caller's captured context throws (helper 129).</summary>
public sealed class RecentFixesWaiterReviewTests : ActorQueueTestKit
{
    /// <summary>A source nobody listens to: a traced acquire's ValueTask is a task's, which .NET resumes itself (see <c>WaiterSignalFaultsReviewTests</c>).</summary>
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

/// <summary>A limit's clock that breaks as the limiter sets its wake timer (helper 127's <see cref="UnsetWake"/>, helper 129's reads first).</summary>
public sealed class RecentFixesClockReviewTests : ActorQueueTestKit
{
    /// <summary>
    /// A model-API limiter's clock (a remote time source, say) that goes down as the limiter sets the timer a waiter's
    /// timeout needs: <c>CreateTimer</c> throws, and reads throw too from then on, until it is back. The waiter fails at
    /// once as API.md says (an <see cref="InvalidOperationException"/> naming the limiter, the clock's exception inside),
    /// not as if the limiter were disposed; and once the clock is back the limiter serves. DEFECT (fixed), two: taking the
    /// waiter out read the clock (it reads before it takes out since helper 129) and threw out of the message, so the
    /// actor restarted and failed it as disposed ("Expected: InvalidOperationException, Actual: ObjectDisposedException");
    /// and the rates' bookkeeping at the end of every message read it too, outside any handler's catch: the actor
    /// restarted, its next instance read the clock as it was made, threw, and was stopped — the limiter failed every
    /// later call as disposed for good (the acquire after the clock was back: ObjectDisposedException).
    /// </summary>
    [Fact]
    public async Task A_waiter_whose_timer_and_clock_break_together_is_told_the_timer_could_not_be_set()
    {
        var clock = new BreakingClock();
        var options = new ModelApiLimiterOptions(maxConcurrent: 1, requestsPerPeriod: 1_000, tokensPerPeriod: 1_000_000, TimeSpan.FromMinutes(1))
        {
            TimeProvider = clock,
            WaitTimeout = TimeSpan.FromMinutes(1),
        };
        await using var limiter = new ModelApiLimiter(options, $"review-recent-clock-{Guid.NewGuid():N}", system: Sys);
        var holder = await Within(limiter.AcquireAsync(1).AsTask());

        clock.BreakAtNextTimer();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Within(limiter.AcquireAsync(1).AsTask()));

        Assert.IsType<TimerFault>(error.InnerException);
        await limiter.Gatekeeper.Ask<ActorIdentity>(new Identify(null), Dilated(TimeSpan.FromSeconds(10))); // after that message's end, and a restart it caused
        clock.Mend();
        holder.Dispose();
        (await Within(limiter.AcquireAsync(1).AsTask())).Dispose();
    }

    /// <summary>What a <see cref="BreakingClock"/>'s <c>CreateTimer</c> throws.</summary>
    private sealed class TimerFault() : Exception("the clock cannot make a timer");

    /// <summary>What a broken <see cref="BreakingClock"/>'s reads throw.</summary>
    private sealed class ReadFault() : Exception("the clock cannot be read");

    /// <summary>A fake clock that, told to, breaks at its next <c>CreateTimer</c> (which throws): its reads throw from then on until it is mended.</summary>
    private sealed class BreakingClock : FakeTimeProvider
    {
        /// <summary>0 sound, 1 breaking at the next timer, 2 broken.</summary>
        private int _state;

        public void BreakAtNextTimer() => Volatile.Write(ref _state, 1);

        public void Mend() => Volatile.Write(ref _state, 0);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            Interlocked.CompareExchange(ref _state, 2, 1) == 1 ? throw new TimerFault() : base.CreateTimer(callback, state, dueTime, period);

        public override long GetTimestamp() => Volatile.Read(ref _state) == 2 ? throw new ReadFault() : base.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => Volatile.Read(ref _state) == 2 ? throw new ReadFault() : base.GetUtcNow();
    }
}
