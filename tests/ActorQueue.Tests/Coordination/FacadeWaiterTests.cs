using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Tests.Coordination;

/// <summary>The facade waiter's completion from many threads: grant, failure and cancellation race, and one wins.</summary>
public class FacadeWaiterTests
{
    [ThreadStatic]
    private static bool _insideGrant;

    /// <summary>A facade waiter alone (no actor serves it): a grant completes it with the lease number (also for the review's tests).</summary>
    internal sealed class LeaseWaiter() : FacadeWaiter<long>(ActorRefs.Nobody)
    {
        public override void Undelivered() => Fail(new ObjectDisposedException("test"));

        protected override long ResultOf(in PermitGrant grant) => grant.LeaseId;
    }

    [Fact]
    public async Task Grant_failure_and_cancellation_race_and_exactly_one_wins()
    {
        const int rounds = 5_000;
        var waiters = Enumerable.Range(0, rounds).Select(_ => new LeaseWaiter()).ToArray();
        var granted = new bool[rounds];
        var cancelled = new bool[rounds];
        var failure = new InvalidOperationException("rejected");
        var thrown = new System.Collections.Concurrent.ConcurrentQueue<Exception>();

        void Caught(Action act)
        {
            try
            {
                act();
            }
            catch (Exception e)
            {
                thrown.Enqueue(e); // a second completion of one waiter throws: two winners
            }
        }

        Race(rounds,
            i => Caught(() => granted[i] = waiters[i].TryGrant(new PermitGrant(i + 1, PermitDemand.One, default, Waited: true))),
            i => Caught(() => cancelled[i] = waiters[i].TryCancel(CancellationToken.None)),
            i => Caught(() => waiters[i].Fail(failure)));

        Assert.Empty(thrown);
        for (var i = 0; i < rounds; i++)
        {
            var completion = waiters[i].Completion.AsTask();
            var outcome = await Task.WhenAny(completion);
            var failed = outcome.IsFaulted && ReferenceEquals(outcome.Exception!.InnerException, failure);
            Assert.Equal(1, (granted[i] ? 1 : 0) + (cancelled[i] ? 1 : 0) + (failed ? 1 : 0));
            Assert.True(waiters[i].IsWithdrawn);
            if (granted[i])
            {
                Assert.Equal(i + 1, await completion);
            }
            else if (cancelled[i])
            {
                Assert.True(outcome.IsCanceled);
            }
        }
    }

    [Fact]
    public async Task A_continuation_never_runs_on_the_thread_that_grants()
    {
        for (var i = 0; i < 200; i++)
        {
            var waiter = new LeaseWaiter();
            var ranInsideGrant = waiter.Completion.AsTask().ContinueWith(_ => _insideGrant, TaskContinuationOptions.ExecuteSynchronously);

            _insideGrant = true;
            try
            {
                Assert.True(waiter.TryGrant(new PermitGrant(1, PermitDemand.One, default, Waited: false)));
            }
            finally
            {
                _insideGrant = false;
            }

            Assert.False(await ranInsideGrant);
        }
    }

    [Fact]
    public void A_waiter_answered_once_ignores_every_later_answer()
    {
        var waiter = new LeaseWaiter();
        Assert.True(waiter.TryCancel(CancellationToken.None));

        Assert.False(waiter.TryGrant(new PermitGrant(7, PermitDemand.One, default, Waited: false)));
        waiter.Fail(new InvalidOperationException("late"));
        Assert.True(waiter.Completion.AsTask().IsCanceled);
    }

    [Fact]
    public async Task An_await_racing_the_grant_resumes_once_with_the_grant()
    {
        // The awaiter's continuation and the grant's completion swap the same slot from two threads: whichever comes
        // second must schedule the continuation, exactly once (a lost one leaves the task pending for ever).
        const int rounds = 5_000;
        var waiters = Enumerable.Range(0, rounds).Select(_ => new LeaseWaiter()).ToArray();
        var resumed = new int[rounds];
        var results = new long[rounds];
        var granted = new bool[rounds];
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pending = rounds;
        Race(rounds,
            i =>
            {
                var awaiter = waiters[i].Completion.GetAwaiter();
                awaiter.UnsafeOnCompleted(() =>
                {
                    results[i] = awaiter.GetResult();
                    Interlocked.Increment(ref resumed[i]);
                    if (Interlocked.Decrement(ref pending) == 0)
                    {
                        all.SetResult();
                    }
                });
            },
            i => granted[i] = waiters[i].TryGrant(new PermitGrant(i + 1, PermitDemand.One, default, Waited: true)));

        await all.Task.WaitAsync(TimeSpan.FromMinutes(1)); // a lost continuation never comes; the bound only ends the test
        Assert.All(granted, Assert.True);
        Assert.All(resumed, count => Assert.Equal(1, count));
        Assert.Equal(Enumerable.Range(1, rounds).Select(i => (long)i), results);
    }

    [Fact]
    public async Task A_continuation_runs_in_the_synchronization_context_it_was_awaited_in()
    {
        var waiter = new LeaseWaiter();
        var context = new RecordingContext();
        var ranIn = new TaskCompletionSource<SynchronizationContext?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(context);
        try
        {
            waiter.Completion.GetAwaiter().OnCompleted(() => ranIn.SetResult(RecordingContext.Running));
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        await Task.Run(() => waiter.TryGrant(new PermitGrant(3, PermitDemand.One, default, Waited: true)));

        Assert.Same(context, await ranIn.Task);
        Assert.Equal(1, context.Posts);
    }

    [Fact]
    public async Task The_execution_context_flows_to_a_continuation_that_asked_for_it_and_not_to_one_that_did_not()
    {
        var local = new AsyncLocal<string?>();
        var flowed = new LeaseWaiter();
        var unflowed = new LeaseWaiter();
        var seenByFlowed = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var seenByUnflowed = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await Task.Run(() =>
        {
            local.Value = "caller";
            flowed.Completion.GetAwaiter().OnCompleted(() => seenByFlowed.SetResult(local.Value));
            unflowed.Completion.GetAwaiter().UnsafeOnCompleted(() => seenByUnflowed.SetResult(local.Value));
        });

        await Task.Run(() =>
        {
            local.Value = "granter";
            flowed.TryGrant(new PermitGrant(1, PermitDemand.One, default, Waited: true));
            unflowed.TryGrant(new PermitGrant(2, PermitDemand.One, default, Waited: true));
        });

        Assert.Equal("caller", await seenByFlowed.Task);
        Assert.Null(await seenByUnflowed.Task);
    }

    [Fact]
    public async Task A_failed_wait_reports_its_failure_and_a_cancelled_one_its_cancellation()
    {
        var failed = new LeaseWaiter();
        var cancelled = new LeaseWaiter();
        var error = new InvalidOperationException("rejected");

        failed.Fail(error);
        using var source = new CancellationTokenSource();
        await source.CancelAsync();
        Assert.True(cancelled.TryCancel(source.Token));

        Assert.Equal(System.Threading.Tasks.Sources.ValueTaskSourceStatus.Faulted, failed.GetStatus(0));
        Assert.Same(error, await Assert.ThrowsAsync<InvalidOperationException>(async () => await failed.Completion));
        Assert.Equal(System.Threading.Tasks.Sources.ValueTaskSourceStatus.Canceled, cancelled.GetStatus(0));
        var cancellation = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await cancelled.Completion);
        Assert.Equal(source.Token, cancellation.CancellationToken);
    }

    [Fact]
    public void A_waiter_awaited_twice_or_read_before_it_completed_says_so()
    {
        var waiter = new LeaseWaiter();
        Assert.Throws<InvalidOperationException>(() => waiter.GetResult(0));
        waiter.OnCompleted(_ => { }, null, 0, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags.None);

        Assert.Throws<InvalidOperationException>(() => waiter.OnCompleted(_ => { }, null, 0, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags.None));
        Assert.Throws<InvalidOperationException>(() => waiter.GetStatus(1));
    }

    /// <summary>
    /// Runs each of <paramref name="racers"/> on its own thread for <paramref name="rounds"/> rounds; each round starts on
    /// a spinning barrier, so the racers' calls for one round arrive within nanoseconds of each other.
    /// </summary>
    private static void Race(int rounds, params Action<int>[] racers)
    {
        var arrived = new int[rounds];
        var threads = racers.Select(act => new Thread(() =>
        {
            for (var i = 0; i < rounds; i++)
            {
                Interlocked.Increment(ref arrived[i]);
                var spinner = default(SpinWait);
                while (Volatile.Read(ref arrived[i]) < racers.Length)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                }

                act(i);
            }
        })).ToList();
        threads.ForEach(thread => thread.Start());
        threads.ForEach(thread => thread.Join());
    }

    /// <summary>Runs what is posted to it on the thread pool, as itself, and counts the posts.</summary>
    private sealed class RecordingContext : SynchronizationContext
    {
        [ThreadStatic]
        private static SynchronizationContext? _running;

        private int _posts;

        public static SynchronizationContext? Running => _running;

        public int Posts => Volatile.Read(ref _posts);

        public override void Post(SendOrPostCallback d, object? state)
        {
            Interlocked.Increment(ref _posts);
            ThreadPool.UnsafeQueueUserWorkItem(_ =>
            {
                _running = this;
                try
                {
                    d(state);
                }
                finally
                {
                    _running = null;
                }
            }, null);
        }
    }
}
