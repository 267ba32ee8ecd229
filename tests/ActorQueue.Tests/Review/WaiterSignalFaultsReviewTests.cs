using System.Diagnostics;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of a facade waiter whose caller awaited it in a <see cref="SynchronizationContext"/> or on a
/// <see cref="TaskScheduler"/> that refuses the continuation (<c>fix/waiter-signal-faults</c>): a context whose
/// <c>Post</c> throws (a UI loop already shut down), a scheduler whose <c>QueueTask</c> throws. The grant or failure
/// stands, the caller resumes on the thread pool (it is never left suspended, so it gets its lease and gives it back),
/// and the limiter's other waiters are served in the same step. A gate whose clock throws as its owner takes waiters
/// out: <see cref="GateClockFaultsReviewTests"/>.
/// </summary>
public sealed class WaiterSignalFaultsReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A source nobody listens to. With the library's own one, a test tracing it in parallel made these acquires traced:
    /// their ValueTask is then a task's, whose await .NET resumes through the refusing context itself — its throw went
    /// unhandled on the thread pool and crashed the test host (CI, 09:41), and no refusal reached the waiter.
    /// </summary>
    private static readonly ActivitySource Untraced = new("review-waiter-signal-untraced");

    /// <summary>A kind whose callers pass a token that can fire (and never does).</summary>
    private const string WithToken = " with a token";

    /// <summary>
    /// The limiters whose acquire hands the caller the waiter's own completion, by the way the caller's continuation is
    /// refused; with and without a token. DEFECT (fixed) with a token: the wait was an async method around the waiter, so
    /// the caller awaited .NET's task, whose refused continuation went unhandled on the thread pool: the test host crashed.
    /// </summary>
    public static TheoryData<string, string> Cases => new()
    {
        { nameof(ConcurrencyLimiter), nameof(RefusingContext) },
        { nameof(ConcurrencyLimiter), nameof(RefusingScheduler) },
        { "PartitionedConcurrencyLimiter", nameof(RefusingContext) },
        { "PartitionedConcurrencyLimiter", nameof(RefusingScheduler) },
        { nameof(ConcurrencyLimiter) + WithToken, nameof(RefusingContext) },
        { nameof(ConcurrencyLimiter) + WithToken, nameof(RefusingScheduler) },
        { "PartitionedConcurrencyLimiter" + WithToken, nameof(RefusingContext) },
        { "PartitionedConcurrencyLimiter" + WithToken, nameof(RefusingScheduler) },
        { nameof(ConcurrencyLimiter) + WhileTraced, nameof(RefusingContext) },
        { nameof(ConcurrencyLimiter) + WhileTraced, nameof(RefusingScheduler) },
        { "PartitionedConcurrencyLimiter" + WhileTraced, nameof(RefusingContext) },
        { "PartitionedConcurrencyLimiter" + WhileTraced, nameof(RefusingScheduler) },
    };

    /// <summary>
    /// A kind whose limiter traces to <see cref="Traced"/>, which <see cref="TracedListener"/> listens to: a waiting
    /// call's wait span runs beside it. DEFECT (fixed): the caller awaited the tracing's async method, so .NET posted its
    /// continuation to the refusing context and the refusal went unhandled on the thread pool: the test host crashed.
    /// </summary>
    private const string WhileTraced = " while traced";

    /// <summary>A source only this class's traced kinds use, so no other test's listener changes what they test.</summary>
    private static readonly ActivitySource Traced = new("review-waiter-signal-traced");

    /// <summary>Listens to <see cref="Traced"/> alone, for the life of the test run.</summary>
    private static readonly ActivityListener TracedListener = Listen(Traced);

    /// <summary>The token of the callers of a kind <see cref="WithToken"/>: one that can fire, and never does.</summary>
    private readonly CancellationTokenSource _neverFired = new();

    /// <summary>
    /// Two waiters granted by one release, the first awaited where its continuation is refused: the first resumes on the
    /// thread pool with its lease, the second is granted too, and once both give their leases back the limiter counts
    /// none running and none waiting and lends its whole limit again. DEFECT (fixed): the refusal escaped the grant inside
    /// the gate's loop, so the first caller never resumed (its permit held for good) and the second was never granted.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_granted_waiter_whose_context_refuses_its_continuation_resumes_and_the_others_are_granted(string kind, string refusal)
    {
        var limiter = Make(kind, $"review-signal-grant-{kind}-{refusal}-{Guid.NewGuid():N}");
        await using var _ = limiter.Facade;
        var refusing = new Refusal(refusal);
        var (holder, stranded, plain) = await TwoWaiting(limiter, refusing);

        holder.Dispose(); // one release: both are granted in the same step

        var (lease, inRefusing) = await Within(stranded);
        Assert.Equal(1, refusing.Refusals);
        Assert.False(inRefusing, "the refused continuation runs on the thread pool, outside the refusing context");
        Assert.NotNull(lease);
        var second = await Within(plain);
        lease.Dispose();
        second.Dispose();
        await Eventually(() => limiter.Running() == 0 && limiter.Waiting() == 0, "nothing runs or waits once both leases are back");
        (await Within(limiter.Acquire(2).AsTask())).Dispose(); // no permit orphaned: the whole limit is lent again
    }

    /// <summary>
    /// Two waiters failed by the limiter's dispose, the first awaited where its continuation is refused: both callers
    /// fail as disposed (the first resumed on the thread pool), the dispose completes, and nothing is left waiting.
    /// DEFECT (fixed): the refusal escaped the failure inside the close, so the first caller never resumed and the
    /// waiters after it were never answered.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_waiter_failed_by_a_dispose_whose_context_refuses_its_continuation_resumes_and_the_others_fail(string kind, string refusal)
    {
        var limiter = Make(kind, $"review-signal-dispose-{kind}-{refusal}-{Guid.NewGuid():N}");
        var refusing = new Refusal(refusal);
        var (holder, stranded, plain) = await TwoWaiting(limiter, refusing);

        await Within(limiter.Facade.DisposeAsync().AsTask());

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(stranded));
        Assert.Equal(1, refusing.Refusals);
        Assert.False(refusing.ResumedInside, "the refused continuation runs on the thread pool, outside the refusing context");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(plain));
        Assert.Equal(0, limiter.Waiting());
        holder.Dispose();
    }

    /// <summary>The model-API limiter's callers, untraced and traced, by the way the caller's continuation is refused.</summary>
    public static TheoryData<bool, string> ModelApiCases => new()
    {
        { false, nameof(RefusingContext) },
        { false, nameof(RefusingScheduler) },
        { true, nameof(RefusingContext) },
        { true, nameof(RefusingScheduler) },
    };

    /// <summary>
    /// A model-API limiter's waiter (its lease made once the slot is granted) awaited where its continuation is refused:
    /// it resumes on the thread pool with its lease, and the caller behind it is granted too. DEFECT (fixed): the lease
    /// was made in an async method the caller awaited, so .NET posted its continuation to the refusing context and the
    /// refusal went unhandled on the thread pool: the test host crashed.
    /// </summary>
    [Theory]
    [MemberData(nameof(ModelApiCases))]
    public async Task A_model_API_waiter_whose_context_refuses_its_continuation_resumes_with_its_lease(bool traced, string refusal)
    {
        await using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(1, 1_000, 1_000_000, TimeSpan.FromMinutes(1)),
            $"review-signal-model-api-{traced}-{refusal}-{Guid.NewGuid():N}", tracer: traced && TracedListener is not null ? Traced : Untraced, system: Sys);
        var refusing = new Refusal(refusal);
        var holder = await Within(limiter.AcquireAsync(1).AsTask());
        var stranded = refusing.Await(() => limiter.AcquireAsync(1));
        await Eventually(() => limiter.WaitingCount == 1, "the caller in the refusing context waits");
        var plain = limiter.AcquireAsync(1).AsTask();
        await Eventually(() => limiter.WaitingCount == 2, "the second caller waits");

        holder.Dispose();

        var (lease, inRefusing) = await Within(stranded);
        Assert.Equal(1, refusing.Refusals);
        Assert.False(inRefusing, "the refused continuation runs on the thread pool, outside the refusing context");
        lease.Dispose();
        (await Within(plain)).Dispose();
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "nothing runs or waits once both leases are back");
    }
    /// <summary>The limit held whole by one lease, then two callers waiting: the first in the refusing context, the second after it.</summary>
    private async Task<(IDisposable Holder, Task<(ConcurrencyLease Lease, bool Inside)> Stranded, Task<ConcurrencyLease> Plain)> TwoWaiting(Limiter limiter, Refusal refusing)
    {
        var holder = await Within(limiter.Acquire(2).AsTask());
        var stranded = refusing.Await(() => limiter.Acquire(1));
        await Eventually(() => limiter.Waiting() == 1, "the caller in the refusing context waits");
        var plain = limiter.Acquire(1).AsTask();
        await Eventually(() => limiter.Waiting() == 2, "the second caller waits");
        return (holder, stranded, plain);
    }

    /// <summary>One limiter of <paramref name="kind"/>, two permits, on the system clock: its facade and its counts.</summary>
    private Limiter Make(string kind, string name)
    {
        var limit = new ConcurrencyLimit(2) { WaitTimeout = Timeout.InfiniteTimeSpan };
        var token = kind.EndsWith(WithToken, StringComparison.Ordinal) ? _neverFired.Token : CancellationToken.None;
        var tracer = kind.EndsWith(WhileTraced, StringComparison.Ordinal) && TracedListener is not null ? Traced : Untraced;
        if (kind.StartsWith(nameof(ConcurrencyLimiter), StringComparison.Ordinal))
        {
            var limiter = new ConcurrencyLimiter(limit, name, tracer: tracer, system: Sys);
            return new(limiter, permits => limiter.AcquireAsync(permits, cancellationToken: token), () => limiter.RunningCount, () => limiter.WaitingCount);
        }

        var partitioned = new PartitionedConcurrencyLimiter<string>(limit, IdleTimeout, name, tracer: tracer, system: Sys);
        return new(partitioned, permits => partitioned.AcquireAsync("k", permits, cancellationToken: token),
                   () => partitioned.StatisticsOf("k")?.Running ?? 0, () => partitioned.StatisticsOf("k")?.Waiting ?? 0);
    }

    /// <summary>A listener that records every activity of <paramref name="source"/>, registered for good.</summary>
    private static ActivityListener Listen(ActivitySource source)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = candidate => ReferenceEquals(candidate, source),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    /// <summary>A limiter under test: its facade, an acquire of so many permits (token or not, the caller awaits the waiter itself), its counts.</summary>
    private sealed record Limiter(IAsyncDisposable Facade, Func<int, ValueTask<ConcurrencyLease>> Acquire, Func<int> Running, Func<int> Waiting);

    /// <summary>
    /// Awaits an acquire (with <c>ConfigureAwait(true)</c>) inside a <see cref="RefusingContext"/> or on a
    /// <see cref="RefusingScheduler"/>, and tells whether the caller resumed inside it.
    /// </summary>
    private sealed class Refusal(string kind)
    {
        private readonly RefusingContext _context = new();
        private readonly RefusingScheduler _scheduler = new();
        private volatile bool _resumedInside;

        /// <summary>How many continuations it refused.</summary>
        public int Refusals => _context.Refusals + _scheduler.Refusals;

        /// <summary>Whether the caller resumed inside the refusing context or scheduler (set once it resumed).</summary>
        public bool ResumedInside => _resumedInside;

        /// <summary>The caller's lease and whether it resumed inside; or the caller's failure.</summary>
        public Task<(T Lease, bool Inside)> Await<T>(Func<ValueTask<T>> acquire)
        {
            if (kind == nameof(RefusingContext))
            {
                return AwaitIn(acquire);
            }

            // Run inline on the scheduler (it refuses only queued work), so that the await sees it as TaskScheduler.Current.
            var start = new Task<Task<(T, bool)>>(() => AwaitOn(acquire));
            start.RunSynchronously(_scheduler);
            return start.Result;
        }

        private async Task<(T, bool)> AwaitIn<T>(Func<ValueTask<T>> acquire)
        {
            SynchronizationContext.SetSynchronizationContext(_context); // the async method's start puts the caller's back
            try
            {
                var lease = await acquire();
                return (lease, SynchronizationContext.Current == _context);
            }
            finally
            {
                _resumedInside = SynchronizationContext.Current == _context;
            }
        }

        private async Task<(T, bool)> AwaitOn<T>(Func<ValueTask<T>> acquire)
        {
            SynchronizationContext.SetSynchronizationContext(null); // no test framework's context: the waiter captures the scheduler
            try
            {
                var lease = await acquire();
                return (lease, TaskScheduler.Current == _scheduler);
            }
            finally
            {
                _resumedInside = TaskScheduler.Current == _scheduler;
            }
        }
    }
    /// <summary>A synchronization context whose loop has shut down: every <c>Post</c> throws.</summary>
    private sealed class RefusingContext : SynchronizationContext
    {
        private int _refusals;

        public int Refusals => Volatile.Read(ref _refusals);

        public override void Post(SendOrPostCallback d, object? state)
        {
            Interlocked.Increment(ref _refusals);
            throw new InvalidOperationException("the UI loop has shut down");
        }
    }

    /// <summary>A task scheduler that runs work inline but refuses to queue any: every <c>QueueTask</c> throws.</summary>
    private sealed class RefusingScheduler : TaskScheduler
    {
        private int _refusals;

        public int Refusals => Volatile.Read(ref _refusals);

        protected override void QueueTask(Task task)
        {
            Interlocked.Increment(ref _refusals);
            throw new InvalidOperationException("the scheduler has shut down");
        }

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => TryExecuteTask(task);

        protected override IEnumerable<Task> GetScheduledTasks() => [];
    }
}
