using ActorQueue.Coordination;
using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// The semaphore's value: releases counted by any thread, handed to the coordinator's gate by the coordinator alone.
/// Driven directly, without actors.
/// </summary>
public class SemaphoreStateTests
{
    private sealed class NoListener : IPermitGateListener
    {
        public void Publish(in PermitSnapshot now)
        {
        }

        public void Queued(PermitWaiter waiter)
        {
        }

        public void Granting(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public void GrantLost(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public void Granted(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection) => new InvalidOperationException();
    }

    [Fact]
    public void A_release_beyond_what_is_held_raises_the_value_and_the_gate_grants_only_once_it_hears()
    {
        var state = new SemaphoreState(0);
        var gate = new PermitGate(new NoListener(), [state]);
        var waiter = new Coordination.TestWaiter("waiter");
        gate.Offer(waiter);

        Assert.True(state.TryRelease());
        Assert.True(state.TryRelease());

        Assert.Equal(2, state.Value); // counted at once for the facade
        Assert.False(waiter.IsGranted); // but the gate has not heard of them yet
        gate.Release(PermitDemand.One);
        Assert.True(waiter.IsGranted);
        Assert.Equal(1, state.Value);
        gate.Release(PermitDemand.One);
        Assert.Equal(1, state.Value);
        Assert.Equal(1, state.Available(TimeSpan.Zero));
    }

    [Fact]
    public void A_release_the_gate_has_not_heard_of_is_granted_by_no_other_change()
    {
        var state = new SemaphoreState(0);
        var gate = new PermitGate(new NoListener(), [state]);
        var first = new Coordination.TestWaiter("first");
        var second = new Coordination.TestWaiter("second");
        var leaving = new Coordination.TestWaiter("leaving");
        gate.Offer(first);
        gate.Offer(second);
        gate.Offer(leaving);

        Assert.True(state.TryRelease()); // its message is on its way
        gate.Withdraw(leaving);

        Assert.Equal(0, state.Available(TimeSpan.Zero));
        Assert.False(first.IsGranted);
        gate.Release(PermitDemand.One); // the message arrives: one release, one grant
        Assert.True(first.IsGranted);
        Assert.False(second.IsGranted);
        Assert.Equal(0, state.Value);
    }

    [Fact]
    public void Releases_from_many_threads_and_the_coordinators_moves_and_takes_keep_one_exact_value()
    {
        const int releasesPerThread = 400_000;
        const int threads = 3;
        var state = new SemaphoreState(0);
        var released = 0;
        var taken = 0;
        var start = new Barrier(threads + 1);

        var releasers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < releasesPerThread; i++)
            {
                if (state.TryRelease())
                {
                    Interlocked.Increment(ref released);
                }
            }
        })).ToArray();
        var coordinator = new Thread(() =>
        {
            start.SignalAndWait();
            var handed = 0;
            while (handed < threads * releasesPerThread)
            {
                if (handed < Volatile.Read(ref released))
                {
                    state.Release(1, TimeSpan.Zero); // a release message arrives
                    handed++;
                }

                if (state.CanTake(1, TimeSpan.Zero))
                {
                    state.Take(1, TimeSpan.Zero);
                    taken++;
                }
            }
        });

        foreach (var thread in releasers.Append(coordinator))
        {
            thread.Start();
        }

        foreach (var thread in releasers.Append(coordinator))
        {
            thread.Join();
        }

        Assert.Equal(threads * releasesPerThread - taken, state.Value);
        Assert.Equal(state.Value, state.Available(TimeSpan.Zero)); // every release reached the gate
    }

    [Fact]
    public void Releases_near_the_maximum_stop_exactly_at_it_whichever_half_holds_the_permits()
    {
        var state = new SemaphoreState(int.MaxValue - 10);
        var gate = new PermitGate(new NoListener(), [state]);
        Assert.True(gate.TryAcquire(PermitDemand.One, out _));
        var succeeded = 0;

        Parallel.For(0, 40, _ =>
        {
            if (state.TryRelease())
            {
                Interlocked.Increment(ref succeeded);
            }
        });

        Assert.Equal(11, succeeded);
        Assert.Equal(int.MaxValue, state.Value);
        state.Refund(1, TimeSpan.Zero); // a grant lost at the maximum: the permit cannot exist, so it is dropped
        Assert.Equal(int.MaxValue, state.Value);
    }
}
