using ActorQueue.Primitives;
using ActorQueue.Tests.Primitives;
using Xunit.Abstractions;

namespace ActorQueue.Tests.Review;

/// <summary>The primitives' half of review h151 (<see cref="HostingPrimitivesReviewTests.Primitives"/>).</summary>
public abstract class PrimitivesRacing(ITestOutputHelper output) : ActorQueueTestKit(output)
{
    /// <summary>Races per test: enough to land on both sides of each race many times, lean on a 2-core machine.</summary>
    private const int Rounds = 300;

    private TimeSpan Patience => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>
    /// FINDING: a semaphore's scope (<c>LockAsync</c>) threw <see cref="ObjectDisposedException"/> from its disposal once
    /// the semaphore had been disposed, so an <c>await using</c> body's own exception was lost behind it (the lock's and the
    /// capacity limiter's scopes give back quietly). A scope's disposal must not throw.
    /// </summary>
    [Fact]
    public async Task A_semaphore_scope_ended_after_its_semaphore_was_disposed_keeps_the_bodys_exception()
    {
        var semaphore = new AsyncSemaphore(1, Sys);
        var failure = await Record.ExceptionAsync(async () =>
        {
            await using (await semaphore.LockAsync())
            {
                await semaphore.DisposeAsync(); // the host stopping, say, while the body runs
                throw new InvalidOperationException("the body's own failure");
            }
        });

        Assert.Equal("the body's own failure", Assert.IsType<InvalidOperationException>(failure).Message);
        Assert.Throws<ObjectDisposedException>(() => semaphore.Release()); // a release by hand still says what is wrong
    }

    /// <summary>
    /// The lock's hand-off: a holder's release serves the published line on its own thread while the waiter's token
    /// fires on another. The waiter is granted (and holds it) or cancelled (and the releaser frees the lock) — never both,
    /// never neither; and its continuation never runs on the releasing thread.
    /// </summary>
    [Fact]
    public async Task A_lock_waiter_cancelled_as_the_holder_hands_it_the_lock_either_holds_it_or_leaves_it_free()
    {
        using var @lock = new AsyncLock(Sys);
        var (granted, cancelled) = (0, 0);
        for (var round = 0; round < Rounds; round++)
        {
            using var cts = new CancellationTokenSource();
            var holder = new Flow(@lock);
            Assert.True(holder.Acquire().IsCompletedSuccessfully); // free, nobody waiting: the fast path
            var waiter = new Flow(@lock);
            var waited = waiter.Acquire(cts.Token);
            var resumedOn = waited.ContinueWith(_ => Environment.CurrentManagedThreadId,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            await Eventually(() => @lock.State.IsHeadPublished, "the waiter is published for the holder's release");

            var releasedOn = 0;
            Race(() =>
            {
                releasedOn = Environment.CurrentManagedThreadId;
                holder.Release();
            }, cts.Cancel, Jitter(round));

            if (await Outcome(waited))
            {
                granted++;
                Assert.True(@lock.IsLocked);
                waiter.Release();
            }
            else
            {
                cancelled++;
            }

            // Freed by the last release, whichever side won: at once, or by the coordinator when the release found the line
            // taken back for the cancelled waiter's withdrawal.
            await Eventually(() => !@lock.IsLocked, $"the lock is free again (round {round})");
            Assert.NotEqual(releasedOn, await resumedOn.WaitAsync(Patience)); // the hand-off grants on the releasing thread; the caller resumes elsewhere
        }

        Output!.WriteLine($"granted {granted}, cancelled {cancelled}");
        Assert.True(await Flow.FreshAcquireAndRelease(@lock).WaitAsync(Patience));
    }

    /// <summary>
    /// A semaphore waiter's token fires as a permit is released on another thread: granted (it gives the permit back)
    /// or cancelled (the permit stays free, or comes back if the coordinator had taken it for the waiter): the value is
    /// one permit again either way.
    /// </summary>
    [Fact]
    public async Task A_semaphore_waiter_cancelled_as_a_permit_is_released_never_loses_the_permit()
    {
        using var semaphore = new AsyncSemaphore(0, Sys);
        var (granted, cancelled) = (0, 0);
        for (var round = 0; round < Rounds; round++)
        {
            using var cts = new CancellationTokenSource();
            var waited = semaphore.AcquireAsync(cts.Token);
            await Eventually(() => semaphore.WaitingCount == 1, "the waiter waits in the coordinator");
            Race(semaphore.Release, cts.Cancel, Jitter(round) * 4); // the grant is a message hop away: the cancel waits longer
            if (await Outcome(waited))
            {
                granted++;
                semaphore.Release();
            }
            else
            {
                cancelled++;
            }

            await Eventually(() => semaphore.Value == 1 && semaphore.WaitingCount == 0, $"one permit is free again (round {round}: {semaphore.Value} free)");
            await semaphore.AcquireAsync().WaitAsync(Patience); // back to none for the next round
        }

        Output!.WriteLine($"granted {granted}, cancelled {cancelled}");
        Assert.Equal(0, semaphore.Value);
    }

    /// <summary>
    /// The capacity limiter's version: a borrower cancelled as the one token comes back either borrows it or leaves it.
    /// FINDING: a cancelled borrower could release a token it never got, without the documented
    /// <see cref="InvalidOperationException"/>: the coordinator wrote it among the holders before its grant was decided
    /// (and took it out again once the grant was lost to the cancellation), so a release in between found it there. The
    /// cancelling thread tries that release at once, over and over, while the coordinator may be granting.
    /// </summary>
    [Fact]
    public async Task A_borrower_cancelled_as_the_token_comes_back_never_loses_the_token_nor_releases_one_it_never_got()
    {
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        var (granted, cancelled, releasedUngranted) = (0, 0, 0);
        for (var round = 0; round < 2 * Rounds; round++) // twice: the window is a few instructions of the coordinator's
        {
            using var cts = new CancellationTokenSource();
            var (holder, borrower) = (new object(), new object());
            await limiter.AcquireOnBehalfOfAsync(holder).WaitAsync(Patience);
            var waited = limiter.AcquireOnBehalfOfAsync(borrower, cts.Token);
            await Eventually(() => limiter.WaitingCount == 1, "the borrower waits in the coordinator");
            var released = false;
            Race(() => limiter.ReleaseOnBehalfOf(holder), () =>
            {
                cts.Cancel();
                for (var probe = 0; probe < 100 && !released; probe++)
                {
                    released = TryRelease(limiter, borrower);
                }
            }, Jitter(round) * 4);

            if (await Outcome(waited))
            {
                granted++;
                if (!released)
                {
                    limiter.ReleaseOnBehalfOf(borrower);
                }
            }
            else
            {
                cancelled++;
                releasedUngranted += released ? 1 : 0;
                Assert.False(TryRelease(limiter, borrower)); // it holds nothing
            }

            await Eventually(() => limiter.BorrowedTokens == 0 && limiter.WaitingCount == 0, $"the token is free again (round {round})");
        }

        Output!.WriteLine($"granted {granted}, cancelled {cancelled}, released though cancelled {releasedUngranted}");
        Assert.Equal(0, releasedUngranted);
        await limiter.AcquireOnBehalfOfAsync(new object()).WaitAsync(Patience);
    }

    /// <summary>Whether <paramref name="borrower"/>'s release is taken (<c>false</c>: refused as holding no token).</summary>
    private static bool TryRelease(AsyncCapacityLimiter limiter, object borrower)
    {
        try
        {
            limiter.ReleaseOnBehalfOf(borrower);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// A disposal racing a release, with waiters queued: every waiter is answered (at most one granted, the others
    /// <see cref="ObjectDisposedException"/>) and the disposal completes; for the lock, whose release may serve its line
    /// on the releasing thread as the coordinator stops, and for the semaphore.
    /// </summary>
    [Fact]
    public async Task A_disposal_racing_a_release_answers_every_waiter_and_completes()
    {
        for (var round = 0; round < Rounds / 3; round++)
        {
            var @lock = new AsyncLock(Sys);
            var holder = new Flow(@lock);
            Assert.True(holder.Acquire().IsCompletedSuccessfully);
            var waiters = Enumerable.Range(0, 3).Select(_ => new Flow(@lock)).ToList();
            var lockWaits = waiters.Select(flow => flow.Acquire()).ToList();
            await Eventually(() => @lock.WaitingCount == 3, "three flows wait for the lock");
            Task disposed = Task.CompletedTask;
            Race(holder.Release, () => disposed = @lock.DisposeAsync().AsTask());
            await AllAnswered(lockWaits, disposed, "lock");

            var semaphore = new AsyncSemaphore(0, Sys);
            var semaphoreWaits = Enumerable.Range(0, 3).Select(_ => semaphore.AcquireAsync()).ToList();
            await Eventually(() => semaphore.WaitingCount == 3, "three callers wait for a permit");
            Race(() => ReleaseUnlessDisposed(semaphore), () => disposed = semaphore.DisposeAsync().AsTask());
            await AllAnswered(semaphoreWaits, disposed, "semaphore");
        }
    }

    /// <summary>Setting an event (which completes the shared wait on the setting thread) resumes its waiter elsewhere.</summary>
    [Fact]
    public async Task An_event_set_never_resumes_a_waiter_on_the_setting_thread()
    {
        for (var round = 0; round < 20; round++)
        {
            using var @event = new AsyncEvent(Sys);
            var waited = @event.WaitAsync();
            var resumedOn = waited.ContinueWith(_ => Environment.CurrentManagedThreadId, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            var setter = new Thread(@event.Set) { IsBackground = true }; // a dedicated thread: nothing else runs on it
            Racers.Run([setter]);
            Assert.NotEqual(setter.ManagedThreadId, await resumedOn.WaitAsync(Patience));
        }
    }

    /// <summary>Bad input is refused before anything is made or sent, naming the parameter and the value.</summary>
    [Fact]
    public async Task Bad_input_is_refused_naming_the_parameter_and_the_value()
    {
        var semaphore = Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncSemaphore(-3, Sys));
        Assert.Equal(("initialValue", -3), (semaphore.ParamName, semaphore.ActualValue));
        Assert.Contains("-3", semaphore.Message);

        var total = Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncCapacityLimiter(2.5, Sys));
        Assert.Equal(("totalTokens", 2.5), (total.ParamName, total.ActualValue));
        using var limiter = new AsyncCapacityLimiter(1, Sys);
        var set = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.TotalTokens = double.NaN);
        Assert.Equal(double.NaN, set.ActualValue);
        Assert.Equal(1, limiter.TotalTokens); // nothing changed
        Assert.Equal("borrower", Assert.Throws<ArgumentNullException>(() => { _ = limiter.AcquireOnBehalfOfAsync(null!); }).ParamName);

        using var condition = new AsyncCondition(system: Sys);
        await condition.AcquireAsync().WaitAsync(Patience);
        var notify = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = condition.NotifyAsync(0); }); // thrown, not a faulted task
        Assert.Equal(("n", 0), (notify.ParamName, notify.ActualValue));
        condition.Release();
    }

    /// <summary>
    /// Reentrancy misuse: a flow releases once more than it acquired, another flow releases a lock it does not hold: each
    /// is refused and changes nothing; the lock is free once the holder's levels are matched, and usable.
    /// </summary>
    [Fact]
    public async Task Unmatched_and_foreign_releases_of_a_lock_are_refused_and_change_nothing()
    {
        using var @lock = new AsyncLock(Sys);
        var (holder, stranger) = (new Flow(@lock), new Flow(@lock));
        Assert.True(await holder.Acquire().WaitAsync(Patience));
        Assert.True(await holder.Acquire().WaitAsync(Patience)); // a reentry: depth 2
        Assert.Throws<SynchronizationLockException>(stranger.Release);
        holder.Release();
        Assert.True(@lock.IsLocked); // one level left
        Assert.Throws<SynchronizationLockException>(stranger.Release);
        holder.Release();
        await Eventually(() => !@lock.IsLocked, "the holder's last level frees the lock");
        Assert.Throws<SynchronizationLockException>(holder.Release); // one more than it acquired
        Assert.True(await Flow.FreshAcquireAndRelease(@lock).WaitAsync(Patience));
        Assert.False(@lock.IsLocked);
    }

    /// <summary>A release that may come after the disposal: that one is refused, as documented, and adds nothing.</summary>
    private static void ReleaseUnlessDisposed(AsyncSemaphore semaphore)
    {
        try
        {
            semaphore.Release();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Awaits a racing waiter: <c>true</c> granted, <c>false</c> cancelled; anything else fails the test.</summary>
    private async Task<bool> Outcome(Task waited)
    {
        try
        {
            await waited.WaitAsync(Patience);
            return true;
        }
        catch (OperationCanceledException) when (waited.IsCanceled)
        {
            return false;
        }
    }

    private async Task AllAnswered(List<Task<bool>> waits, Task disposed, string what) =>
        await AllAnswered(waits.Cast<Task>().ToList(), disposed, what);

    private async Task AllAnswered(List<Task> waits, Task disposed, string what)
    {
        await disposed.WaitAsync(Patience);
        await Poll.CompletesWithin(Task.WhenAll(waits), Patience);
        Assert.All(waits, wait => Assert.True(wait.IsCompleted, $"a {what} waiter was never answered"));
        Assert.True(waits.Count(wait => wait.IsCompletedSuccessfully) <= 1, $"more than one {what} waiter was granted");
        Assert.All(waits.Where(wait => !wait.IsCompletedSuccessfully), wait => Assert.IsType<ObjectDisposedException>(wait.Exception!.InnerException));
    }

    /// <summary>How long the second racer spins after the barrier in <paramref name="round"/>: rounds spread over both sides of a race (no round waits for time).</summary>
    private static int Jitter(int round) => round * 397 % 20_000;

    /// <summary>
    /// Runs <paramref name="first"/> and <paramref name="second"/> on two dedicated threads released together by a
    /// barrier (the second after <paramref name="spinsBeforeSecond"/> spins); what either threw is rethrown here (the first's first).
    /// </summary>
    private static void Race(Action first, Action second, int spinsBeforeSecond = 0)
    {
        using var barrier = new Barrier(2);
        var failures = new Exception?[2];
        Racers.Run([Racer(0, first), Racer(1, () =>
        {
            Thread.SpinWait(spinsBeforeSecond);
            second();
        })]);
        if (failures.FirstOrDefault(failure => failure is not null) is { } thrown)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(thrown);
        }

        Thread Racer(int index, Action act) => new(() =>
        {
            barrier.SignalAndWait();
            try
            {
                act();
            }
            catch (Exception failure)
            {
                failures[index] = failure;
            }
        }) { IsBackground = true };
    }

    /// <summary>A logical flow of its own (a lock identity of its own), whose acquires and releases run in it, one at a time.</summary>
    private sealed class Flow(AsyncLock @lock)
    {
        /// <summary>The flow's context as its last step left it (the test's, which has never touched this lock, at first).</summary>
        private ExecutionContext _context = ExecutionContext.Capture()!;

        public Task<bool> Acquire(CancellationToken cancellationToken = default)
        {
            Task<bool>? acquired = null;
            InFlow(() => acquired = @lock.AcquireAsync(cancellationToken));
            return acquired!;
        }

        public void Release() => InFlow(@lock.Release);

        /// <summary>Whether a new flow takes the lock and frees it.</summary>
        public static async Task<bool> FreshAcquireAndRelease(AsyncLock @lock)
        {
            var flow = new Flow(@lock);
            var taken = await flow.Acquire();
            flow.Release();
            return taken;
        }

        private void InFlow(Action step) => ExecutionContext.Run(_context, _ =>
        {
            step();
            _context = ExecutionContext.Capture()!; // what the step set (the flow's token) stays the flow's
        }, null);
    }
}
