using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Tests.Coordination;

/// <summary>The facade waiter's completion from many threads: grant, failure and cancellation race, and one wins.</summary>
public class FacadeWaiterTests
{
    [ThreadStatic]
    private static bool _insideGrant;

    private sealed class LeaseWaiter() : FacadeWaiter<long>(ActorRefs.Nobody)
    {
        public override void Undelivered() => Fail(new ObjectDisposedException("test"));

        protected override long ResultOf(in PermitGrant grant) => grant.LeaseId;
    }

    [Fact]
    public async Task Grant_failure_and_cancellation_race_and_exactly_one_wins()
    {
        const int rounds = 5_000;
        var waiters = Enumerable.Range(0, rounds).Select(_ => new LeaseWaiter()).ToArray();
        var arrived = new int[rounds];
        var granted = new bool[rounds];
        var cancelled = new bool[rounds];
        var failure = new InvalidOperationException("rejected");
        var thrown = new System.Collections.Concurrent.ConcurrentQueue<Exception>();

        // Each round starts on a spinning barrier, so the three answers arrive within nanoseconds of each other.
        Thread Racer(Action<int> act) => new(() =>
        {
            for (var i = 0; i < rounds; i++)
            {
                Interlocked.Increment(ref arrived[i]);
                var spinner = default(SpinWait);
                while (Volatile.Read(ref arrived[i]) < 3)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                }

                try
                {
                    act(i);
                }
                catch (Exception e)
                {
                    thrown.Enqueue(e); // a second completion of one waiter throws: two winners
                }
            }
        });

        var threads = new[]
        {
            Racer(i => granted[i] = waiters[i].TryGrant(new PermitGrant(i + 1, PermitDemand.One, default, Waited: true))),
            Racer(i => cancelled[i] = waiters[i].TryCancel(CancellationToken.None)),
            Racer(i => waiters[i].Fail(failure)),
        };
        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

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
}
