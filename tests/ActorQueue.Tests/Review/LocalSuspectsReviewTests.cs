using System.Collections.Concurrent;
using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of defects the last sessions suspected in the local limiters (<c>fix/local-suspects</c>).
/// <list type="bullet">
/// <item><see cref="A_rate_gatekeeper_restarted_by_a_clock_fault_grants_no_more_in_the_period_than_its_rates"/>: FAILED
/// before (buckets and windows alike): the restarted gatekeeper made its rates anew, full, and granted the period's
/// requests a second time.</item>
/// <item><see cref="A_partitioned_limiter_whose_clock_makes_no_working_timer_still_drops_idle_partitions"/>: FAILED before (4
/// of 4): with no sweep timer firing, nothing was ever swept and every key stayed live.</item>
/// <item><see cref="A_continuation_that_throws_inside_a_contexts_inline_post_is_reported_not_swallowed"/>: FAILED before:
/// the continuation's exception, out of the context's inline <c>Post</c>, was swallowed as a refusal.</item>
/// </list>
/// </summary>
public sealed class LocalSuspectsReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A model-API limiter's gatekeeper restarted by a clock read that throws where no catch is (a settle's), half a
    /// period after the period's two requests were spent: the restarted gatekeeper grants nothing more until the period
    /// ends, and then grants again — its rates go on from what they had spent, on the same gate time. DEFECT (fixed):
    /// each instance made its rates anew, full, so a restart granted a whole period again ("the restarted gatekeeper
    /// granted a third request within the period": the zero-timeout acquire was granted).
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(4)]
    public async Task A_rate_gatekeeper_restarted_by_a_clock_fault_grants_no_more_in_the_period_than_its_rates(int? segments)
    {
        var clock = new OnceFailingClock();
        var options = new ModelApiLimiterOptions(maxConcurrent: 4, requestsPerPeriod: 2, tokensPerPeriod: 1_000, Minute)
        {
            TimeProvider = clock,
            SlidingWindowSegments = segments,
        };
        using var limiter = new ModelApiLimiter(options, "review-suspects-restart", system: Sys);
        var adapter = limiter.AsRateLimiter();
        var first = await Within(limiter.AcquireAsync(1).AsTask());
        (await Within(limiter.AcquireAsync(1).AsTask())).Dispose(); // the period's two requests are spent
        clock.Advance(Minute / 2);

        clock.FailNextSettleRead();
        await EventFilter.Exception<ClockFault>().ExpectOneAsync(() =>
        {
            first.Settle(1); // its handler reads the clock outside any catch: the actor is restarted
            return Task.CompletedTask;
        });
        first.Dispose();
        await Eventually(() => limiter.Loan.IsOpen, "the restarted gatekeeper lends again");

        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(1, waitTimeout: TimeSpan.Zero).AsTask()));
        using (var attempt = adapter.AttemptAcquire(1))
        {
            Assert.False(attempt.IsAcquired, "the restarted gatekeeper lent a third request within the period");
        }

        clock.Advance(Minute / 2); // the period ends on the gate time the rates were spent in
        (await Within(limiter.AcquireAsync(1, waitTimeout: TimeSpan.Zero).AsTask())).Dispose();
    }

    /// <summary>
    /// A partitioned limiter whose clock makes no working timer (its timers never fire, or <c>CreateTimer</c> throws), so
    /// the actor's sweep never comes by itself: a partition left idle is still dropped, by sweeps asked for as new
    /// partitions are made once the sweeps are two periods late (a new key by message, or by a caller that will not
    /// wait) — memory stays bounded by the keys of the last few idle timeouts. DEFECT (fixed): nothing swept, every key
    /// ever used stayed live for good ("the idle partition was dropped": its idle sweeps stayed 0).
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task A_partitioned_limiter_whose_clock_makes_no_working_timer_still_drops_idle_partitions(bool timersThrow, bool newKeysByAttempt)
    {
        var idleTimeout = TimeSpan.FromMinutes(2);
        var clock = new DeadTimersClock(timersThrow);
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(2) { TimeProvider = clock }, idleTimeout, "review-suspects-sweep", system: Sys);
        var adapter = limiter.AsPartitionedRateLimiter<string>(key => key);
        (await Within(limiter.AcquireAsync("idle").AsTask())).Dispose();
        var partitions = ((IPartitionedLimiter<string>)limiter).Partitions;
        var idle = partitions.PartitionOf("idle");
        Assert.NotNull(idle);

        for (var sweeps = 1; sweeps <= PartitionTable<Partition>.SweepsToDrop; sweeps++)
        {
            clock.Advance(idleTimeout); // two sweep periods: the sweeps are late
            var key = $"new-{sweeps}";
            if (newKeysByAttempt)
            {
                using var lease = adapter.AttemptAcquire(key);
                Assert.True(lease.IsAcquired);
            }
            else
            {
                (await Within(limiter.AcquireAsync(key).AsTask())).Dispose();
            }

            var swept = sweeps;
            await Eventually(() => idle.IdleSweeps >= swept || partitions.PartitionOf("idle") is null, $"sweep {swept} found the idle partition idle");
        }

        await Eventually(() => partitions.PartitionOf("idle") is null, "the idle partition was dropped");
    }

    /// <summary>
    /// A waiter's continuation posted to its caller's context, which runs it inline inside <c>Post</c>, and which throws
    /// (an <c>async void</c> method's failure, posted back to the same context; an awaiter's own action): the exception is
    /// reported as unhandled — by default rethrown on the thread pool, as a continuation the thread pool runs, or .NET's
    /// own await, reports it — once, and nothing throws into whoever answered. DEFECT (fixed): it was taken for the
    /// context's refusal and swallowed ("Assert.Single() Failure: The collection was empty").
    /// </summary>
    [Fact]
    public void A_continuation_that_throws_inside_a_contexts_inline_post_is_reported_not_swallowed()
    {
        var reported = new ConcurrentQueue<Exception>();
        var fault = new InvalidOperationException("the caller's continuation failed (review test)");
        var runs = 0;

        WaiterContinuations.ScheduleReportingTo(error => reported.Enqueue(error.SourceException), _ =>
        {
            Interlocked.Increment(ref runs);
            throw fault;
        }, state: null, ExecutionContext.Capture(), new InlineContext());

        Assert.Same(fault, Assert.Single(reported));
        Assert.Equal(1, Volatile.Read(ref runs));
    }

    /// <summary>
    /// The other side of the test above: a context that refuses the continuation (its <c>Post</c> throws without running
    /// it) is no continuation's fault: the thread pool runs the continuation, once, and nothing is reported.
    /// </summary>
    [Fact]
    public async Task A_context_that_refuses_a_continuation_is_not_reported_and_the_thread_pool_runs_it()
    {
        var reported = new ConcurrentQueue<Exception>();
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        WaiterContinuations.ScheduleReportingTo(error => reported.Enqueue(error.SourceException), _ => ran.SetResult(), state: null,
                                                ExecutionContext.Capture(), new InlineContext { Refuses = true });

        await Within(ran.Task);
        Assert.Empty(reported);
    }

    /// <summary>What a <see cref="OnceFailingClock"/> throws (also for <see cref="RateRestartWaitersReviewTests"/>).</summary>
    internal sealed class ClockFault() : Exception("the clock failed once (review test)");

    /// <summary>A synchronization context that runs what is posted to it inline, inside <c>Post</c>; or, refusing, throws without running it.</summary>
    private sealed class InlineContext : SynchronizationContext
    {
        public bool Refuses { get; init; }

        public override void Post(SendOrPostCallback d, object? state)
        {
            if (Refuses)
            {
                throw new InvalidOperationException("the loop has shut down (review test)");
            }

            d(state);
        }
    }

    /// <summary>A fake clock whose timers never fire, or cannot be made at all (<c>CreateTimer</c> throws).</summary>
    private sealed class DeadTimersClock(bool timersThrow) : FakeTimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            timersThrow ? throw new InvalidOperationException("this clock makes no timer (review test)") : new SilentTimer();

        private sealed class SilentTimer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => default;
        }
    }

    /// <summary>
    /// A fake clock whose next timestamp read inside a gate's <c>Settle</c>, once armed, throws: only there, as another
    /// read of the gatekeeper's (the lend at a message's end) may still be under way as the test arms it. Also for
    /// <see cref="RateRestartWaitersReviewTests"/>.
    /// </summary>
    internal sealed class OnceFailingClock : FakeTimeProvider
    {
        private int _armed;

        public void FailNextSettleRead() => Volatile.Write(ref _armed, 1);

        public override long GetTimestamp()
        {
            if (Volatile.Read(ref _armed) == 1
                && new StackTrace().GetFrames().Any(frame => frame.GetMethod() is { Name: nameof(PermitGate.Settle) } method && method.DeclaringType == typeof(PermitGate))
                && Interlocked.Exchange(ref _armed, 0) == 1)
            {
                throw new ClockFault();
            }

            return base.GetTimestamp();
        }
    }
}
