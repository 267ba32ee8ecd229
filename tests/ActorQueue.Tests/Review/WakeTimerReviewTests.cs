using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Runtime;
using ActorQueue.Tests.Coordination;
using ActorQueue.Tests.Limiting;
using ActorQueue.Tests.Queues.Durable;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Adversarial review of the wake timer (commits 5c6547a, 6c38530, 4d268e4, by helper 66). Tests named <c>Finding_…</c>
/// failed on 4d268e4 and showed a defect (the first made by 4d268e4, the other five older), all fixed in the commit that
/// added this file; the rest held up and are kept as coverage.
/// </summary>
public sealed class WakeTimerReviewTests : WakeTimerReviewBase, IDisposable
{
    // ---------------------------------------------------------------- findings

    /// <summary>
    /// 4d268e4 sets again only when the clock moved 1 ms or more between the read and the set. On a fake clock any move
    /// is a test's move: one of half a millisecond still sets the wake late by that half, and a test that then moves the
    /// clock exactly to the deadline (as WaitTimeoutWakeTests does with its 9.5 + 0.5 ms) never sees the wake.
    /// </summary>
    [Fact]
    public async Task Finding_a_clock_moved_less_than_a_millisecond_between_the_read_and_the_set_does_not_make_the_wake_late()
    {
        var clock = new MovedAfterReadClock();
        var gate = new PermitGate(new RecordingListener(), [new PermitPool(1)], time: clock);
        var actor = CreateTestProbe();
        using var timer = new WakeTimer(clock, actor.Ref, () => gate.Now);
        var deadline = TimeSpan.FromMilliseconds(10);

        clock.MoveAfterNextRead(TimeSpan.FromMilliseconds(0.5)); // the timer reads 0; the clock is at 0.5 ms when it sets
        timer.Arm(deadline);
        clock.Advance(deadline - gate.Now); // exactly to the deadline

        Assert.Equal(deadline, gate.Now);
        await actor.ExpectMsgAsync<GateWake>(TimeSpan.FromSeconds(3));
    }

    /// <summary>
    /// A wait timeout of 60 days is valid (LimitValidation.WaitTimeout has no upper bound), but a system timer takes at
    /// most 0xFFFFFFFE ms (about 49.7 days): WakeTimer.Arm throws ArgumentOutOfRangeException from ITimer.Change. In a
    /// gatekeeper with rates the exception leaves the message, the actor restarts, and the restart fails every waiter
    /// (and restarts the rates full). Here a caller waiting without a timeout is failed by another caller's long timeout.
    /// </summary>
    [Fact]
    public async Task Finding_a_wait_timeout_beyond_the_system_timer_range_does_not_fail_the_other_waiters()
    {
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(1, 1000, 1_000_000, TimeSpan.FromMinutes(1)), "review-long-timeout", system: Sys);
        var held = await Within(limiter.AcquireAsync(1).AsTask());
        var patient = limiter.AcquireAsync(1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second caller waits");

        var longWait = limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromDays(60)).AsTask();
        await Eventually(() => limiter.WaitingCount == 2 || patient.IsCompleted, "the third caller waits (or the gatekeeper failed)");
        await StatusOf(limiter.Gatekeeper); // after the message that queued it (and any restart it caused)
        Assert.False(patient.IsFaulted, $"the caller that waits for ever was failed: {patient.Exception?.InnerException?.GetType().Name}: {patient.Exception?.InnerException?.Message}");

        held.Dispose();
        using var granted = await Within(patient);
        _ = longWait.ContinueWith(task => _ = task.Exception, TaskScheduler.Default); // failed when the limiter is disposed
    }

    /// <summary>
    /// The same for a rate wake: a model-API limiter with a 90-day budget (a valid period: LimitValidation.Period wants
    /// only finite) whose request is spent makes the next caller wait for the refill 90 days ahead; arming that wake
    /// throws, the gatekeeper restarts, and the restart fails the waiter (and starts the rates full again).
    /// </summary>
    [Fact]
    public async Task Finding_a_rate_refill_beyond_the_system_timer_range_keeps_its_waiter_waiting()
    {
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 1, 1_000_000, TimeSpan.FromDays(90)), "review-long-period", system: Sys);
        using (await Within(limiter.AcquireAsync(1).AsTask()))
        {
            // the period's one request, spent
        }

        var waiter = limiter.AcquireAsync(1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1 || waiter.IsCompleted, "the caller waits for the refill (or the gatekeeper failed)");
        await StatusOf(limiter.Gatekeeper); // after the message that queued it (and any restart it caused)

        Assert.False(waiter.IsCompleted, $"the waiter was answered before the refill: {waiter.Status} {waiter.Exception?.InnerException?.GetType().Name}: {waiter.Exception?.InnerException?.Message}");
        _ = waiter.ContinueWith(task => _ = task.Exception, TaskScheduler.Default);
    }

    /// <summary>
    /// The same on the durable queue's delayed items (system clock): an item put 60 days ahead makes ScheduleDue throw
    /// in the router; an item put for now behind it must still run.
    /// </summary>
    [Fact]
    public async Task Finding_an_item_delayed_beyond_the_system_timer_range_does_not_stop_the_queue()
    {
        _store = new DurableStore(Sys);
        await using var queue = new BoundedQueue<int>(100, _store.Durability(), DurableStore.UniqueName("review-far-delay"), system: Sys);
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(item =>
        {
            ran.TrySetResult(item);
            return Task.CompletedTask;
        }, numWorkers: 1);

        Assert.True(await Within(queue.PutAsync(1, priority: 0, notBefore: DateTimeOffset.UtcNow.AddDays(60))));
        Assert.True(await Within(queue.PutAsync(2)));

        Assert.Equal(2, await Within(ran.Task));
    }

    /// <summary>
    /// A delayed item that is due while every worker is busy is not promoted (only TryTake promotes, and Pump does not call
    /// it without a free worker or a getter), so NextDueTicks stays in the past: each DueTick calls Fired, Pump finds
    /// nothing to do, and ScheduleDue arms the same past due, which fires at once. The router spins on DueTicks (a core
    /// at 100 %) for as long as the workers stay busy. (The code before 6c38530 spun as well: it disposed the timer on
    /// every tick and made a new one due at once.) A quiet router must not set its timer again and again.
    /// </summary>
    [Fact]
    public async Task Finding_a_due_item_waiting_for_a_busy_worker_does_not_spin_the_router_on_due_ticks()
    {
        _store = new DurableStore(Sys);
        var clock = new EarlyTimersClock(TimeSpan.Zero);
        await using var queue = new BoundedQueue<int>(100, _store.Durability(clock), DurableStore.UniqueName("review-due-spin"), system: Sys);
        var started = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ran = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(async item =>
        {
            if (item == 0)
            {
                started.TrySetResult(item);
                await release.Task;
            }
            else
            {
                ran.TrySetResult(item);
            }
        }, numWorkers: 1);
        Assert.True(await Within(queue.PutAsync(0)));
        await Within(started.Task); // the only worker is busy
        Assert.True(await Within(queue.PutAsync(1, priority: 0, notBefore: clock.GetUtcNow().AddMinutes(1))));
        await QueueStatusOf(queue);

        clock.Fake.Advance(TimeSpan.FromMinutes(1)); // item 1 is due; nobody can take it
        await QueueStatusOf(queue); // the router handled its due tick
        var sets = clock.OneShotSets;
        for (var i = 0; i < 5; i++)
        {
            await QueueStatusOf(queue); // nothing happens meanwhile: no worker finished, the clock stood still
        }

        var spun = clock.OneShotSets - sets;
        release.TrySetResult();
        Assert.Equal(1, await Within(ran.Task));
        Assert.True(spun == 0, $"the router set its due timer {spun} more times while nothing happened");
    }

    private static readonly AsyncLocal<object?> Ambient = new();

    /// <summary>
    /// WakeTimer makes its timer on the first Arm (<c>_timer ??= time.CreateTimer(…)</c>). A gatekeeper without rates
    /// arms in the turn, which a facade caller runs on its own thread: TimeProvider.System's timer then captures that
    /// caller's ExecutionContext (its AsyncLocals: an ASP.NET request's Activity, HttpContext, logging scopes) and keeps
    /// it until the limiter is disposed. Here the first waiter's AsyncLocal outlives it.
    /// </summary>
    [Fact]
    public async Task Finding_the_wake_timer_does_not_keep_the_first_waiters_execution_context()
    {
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1), "review-context", system: Sys);
        using var held = await Within(limiter.AcquireAsync(1).AsTask());
        var ambient = await TimeOutWithAmbient(limiter);

        await CollectedAsync(ambient, "the first waiter's execution context is kept by the wake timer");
    }

    /// <summary>Control for the finding above: once the timer exists (made from a clean context), a later waiter's context is not kept.</summary>
    [Fact]
    public async Task A_later_waiters_execution_context_is_not_kept_once_the_timer_exists()
    {
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1), "review-context-control", system: Sys);
        using var held = await Within(limiter.AcquireAsync(1).AsTask());
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(5)).AsTask()));
        var ambient = await TimeOutWithAmbient(limiter);

        await CollectedAsync(ambient, "a later waiter's execution context is kept");
    }

    /// <summary>A waiter that times out, called with an AsyncLocal set (in a context of its own, left before the wait ends).</summary>
    private async Task<WeakReference> TimeOutWithAmbient(ConcurrencyLimiter limiter)
    {
        var weak = QueueWithAmbient(limiter, out var waiting);
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting));
        return weak;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference QueueWithAmbient(ConcurrencyLimiter limiter, out Task waiting)
    {
        WeakReference? weak = null;
        Task? task = null;
        ExecutionContext.Run(ExecutionContext.Capture()!, _ =>
        {
            var value = new object();
            Ambient.Value = value;
            weak = new WeakReference(value);
            task = limiter.AcquireAsync(1, waitTimeout: TimeSpan.FromMilliseconds(5)).AsTask(); // the turn runs here: it arms the wake
        }, null);
        waiting = task!;
        return weak!;
    }

    /// <summary>
    /// Collects until <paramref name="ambient"/> is gone, for a few seconds: a work item the caller's turn queued may still
    /// hold its context for a moment under load (it failed once in a whole-suite run), but a timer that keeps it for the
    /// limiter's life never lets go.
    /// </summary>
    private static Task CollectedAsync(WeakReference ambient, string because) => Poll.UntilAsync(() =>
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        return !ambient.IsAlive;
    }, TimeSpan.FromSeconds(5), because);
}
