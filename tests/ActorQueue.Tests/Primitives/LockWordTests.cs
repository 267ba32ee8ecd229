using System.Diagnostics;
using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// The lock's shared word driven directly, without actors: flows take and free the lock on any thread while nobody
/// waits; a stand-in for the coordinator (<see cref="LockCoordinatorStandIn"/>) serves announced waiters through a
/// real gate, sweeping the word before every message and freeing the lock for a release that found a waiter, as
/// <c>LockCoordinator</c> does. These waiters are not flows' lock waiters, so nothing is ever published for a hand-off.
/// </summary>
public class LockWordTests
{
    [Fact]
    public void With_nobody_waiting_a_flow_takes_and_frees_the_lock_without_the_coordinator()
    {
        var state = new LockState();
        var flow = new object();

        Assert.True(state.TryTakeOrAnnounce());
        state.Grant(flow, 1);
        Assert.True(state.IsHeld);
        Assert.True(state.TryClaimRelease(flow, out var remaining));
        Assert.Equal(0, remaining);
        Assert.True(state.TryFreeUnannounced(flow));

        Assert.False(state.IsHeld);
        Assert.Null(state.Owner);
        Assert.Equal(0, state.Announced);
    }

    [Fact]
    public void A_release_that_finds_a_waiter_leaves_the_lock_held_for_the_coordinator_to_hand_on()
    {
        var state = new LockState();
        var coordinator = new LockCoordinatorStandIn(state);
        var holder = new object();
        Assert.True(state.TryTakeOrAnnounce());
        state.Grant(holder, 1);
        var waiter = new Coordination.TestWaiter("waiter");
        Assert.False(state.TryTakeOrAnnounce());
        coordinator.Deliver(waiter);
        Assert.False(waiter.IsGranted);

        Assert.True(state.TryClaimRelease(holder, out _));
        Assert.False(state.TryPassOn(holder)); // someone waits, nothing published: the coordinator frees and hands on
        Assert.True(state.IsHeld);
        Assert.Same(holder, state.Owner); // the coordinator checks the holder of the release it is told of
        coordinator.Released(holder);
        Assert.Empty(coordinator.Failures);

        Assert.True(waiter.IsGranted);
        Assert.True(state.IsHeld);
        Assert.Equal(0, state.Announced); // it left: the fast path opens again once it frees the lock
    }

    [Fact]
    public void A_newcomer_never_takes_the_lock_while_anyone_waits()
    {
        var state = new LockState();
        var coordinator = new LockCoordinatorStandIn(state);
        var holder = new object();
        Assert.True(state.TryTakeOrAnnounce());
        state.Grant(holder, 1);
        Assert.False(state.TryTakeOrAnnounce()); // a waiter announced; its message is still on its way
        Assert.True(state.TryClaimRelease(holder, out _));
        Assert.False(state.TryPassOn(holder));
        coordinator.Released(holder); // the release arrives first: the lock is free, the waiter not yet queued

        Assert.False(state.IsHeld);
        Assert.False(state.TryTakeOrAnnounce()); // free, but someone waits: the newcomer queues too

        var first = new Coordination.TestWaiter("first");
        var second = new Coordination.TestWaiter("second");
        coordinator.Deliver(first);
        coordinator.Deliver(second);
        Assert.True(first.IsGranted);
        Assert.False(second.IsGranted);
        Assert.Equal(1, state.Announced);
    }

    [Fact]
    public void The_lock_taken_on_the_fast_path_is_never_granted_again_by_the_gate()
    {
        var state = new LockState();
        var coordinator = new LockCoordinatorStandIn(state);
        coordinator.Nothing(); // a message while the lock is free: the gate sees it free
        Assert.True(state.TryTakeOrAnnounce());
        state.Grant(new object(), 1);

        var waiter = new Coordination.TestWaiter("waiter");
        Assert.False(state.TryTakeOrAnnounce());
        coordinator.Deliver(waiter);

        Assert.False(waiter.IsGranted);
        Assert.Equal(0, state.Available(TimeSpan.Zero));
    }

    [Fact]
    public void After_the_coordinator_stops_no_acquire_takes_the_lock_and_a_holder_still_frees_it()
    {
        var state = new LockState();
        var holder = new object();
        Assert.True(state.TryTakeOrAnnounce());
        state.Grant(holder, 1);
        state.Close(new LockCoordinatorStandIn(state).Gate); // nothing published: no waiter to move back

        Assert.False(state.TryTakeOrAnnounce()); // it goes to the stopped coordinator, which fails it
        Assert.True(state.TryClaimRelease(holder, out _));
        Assert.True(state.TryFreeUnannounced(holder));
        Assert.False(state.IsHeld);
        Assert.False(state.TryTakeOrAnnounce());
    }

    [Fact]
    public void Racing_takers_never_hold_the_lock_together_and_keep_the_word_exact()
    {
        const int rounds = 200_000;
        const int threads = 4;
        var state = new LockState();
        var start = new Barrier(threads);
        var inside = 0;
        var mostInside = 0;
        var counter = 0L;
        var takes = 0L;
        var stuck = 0;

        var racers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            var flow = new object();
            start.SignalAndWait();
            for (var i = 0; i < rounds; i++)
            {
                if (!state.TryTakeOrAnnounce())
                {
                    state.Leave(); // held: give the announcement up again, as a withdrawn waiter would
                    continue;
                }

                state.Grant(flow, 1);
                Poll.InterlockedMax(ref mostInside, Interlocked.Increment(ref inside));
                counter++; // not atomic: exact only if the holders never overlap
                Interlocked.Increment(ref takes);
                Interlocked.Decrement(ref inside);
                state.TryClaimRelease(flow, out _);

                // A racer announced at this instant; it gives the announcement up at once — once it runs: on a loaded
                // machine it may be descheduled for a while (a spin count alone once read that as stuck, in CI), so
                // spin politely and call it stuck only after a liveness bound no healthy run comes near.
                var spin = default(SpinWait);
                var since = Stopwatch.StartNew();
                while (!state.TryFreeUnannounced(flow))
                {
                    if (since.Elapsed > TimeSpan.FromSeconds(30))
                    {
                        Interlocked.Increment(ref stuck);
                        return;
                    }

                    spin.SpinOnce();
                }
            }
        })).ToArray();
        Racers.Run(racers);

        Assert.Equal(0, stuck);
        Assert.Equal(1, mostInside);
        Assert.Equal(takes, counter);
        Assert.Equal(0, state.Announced);
        Assert.False(state.IsHeld);
    }

    [Fact]
    public void Racing_flows_cancellers_and_one_coordinator_hold_the_lock_one_at_a_time_and_lose_no_wake_up()
    {
        const int threads = 6;
        const int rounds = 20_000;
        var state = new LockState();
        var coordinator = new LockCoordinatorStandIn(state);
        var holders = new RacingHolders(coordinator, new CoordinatorThread(message => ((Action)message)()));
        var counter = 0L;
        var holds = 0L;
        var fast = 0;
        var start = new Barrier(threads);

        var flows = Enumerable.Range(0, threads).Select(index => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < rounds; i++)
            {
                var flow = new object();
                if (state.TryTakeOrAnnounce())
                {
                    state.Grant(flow, 1);
                    Interlocked.Increment(ref fast);
                }
                else
                {
                    var waiter = new RacingWaiter(flow);
                    holders.Thread.Post(() => coordinator.Deliver(waiter));
                    if (i % 5 == index % 5 && waiter.TryCancel())
                    {
                        holders.Thread.Post(() => coordinator.Withdraw(waiter));
                        continue;
                    }

                    if (!waiter.Granted.Wait(TimeSpan.FromSeconds(60)))
                    {
                        holders.Failures.Enqueue("a waiter was never granted: a wake-up was lost");
                        return;
                    }
                }

                var held = holders.HoldThenRelease(flow, () =>
                {
                    counter++; // not atomic: exact only if the holders never overlap
                    Interlocked.Increment(ref holds);
                });
                if (!held)
                {
                    return;
                }
            }
        })).ToArray();
        holders.Run(flows);

        Assert.Equal(holds, counter);
        Assert.True(fast > 0, "no flow ever took the lock on the fast path");
        Assert.Equal(0, coordinator.Gate.Waiting);
        Assert.Equal(0, state.Announced);
        Assert.False(state.IsHeld);
    }
}
