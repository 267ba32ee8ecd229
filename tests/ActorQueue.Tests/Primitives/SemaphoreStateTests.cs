using ActorQueue.Coordination;
using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

/// <summary>
/// The semaphore's shared word driven directly, without actors: callers take and return permits on any thread while
/// nobody waits; a thread standing in for the coordinator serves announced waiters through a real gate, sweeping the
/// word before every message as the coordinator does.
/// </summary>
public class SemaphoreStateTests
{
    [Fact]
    public void A_newcomer_never_takes_a_permit_while_anyone_waits()
    {
        var state = new SemaphoreState(0);
        Assert.False(state.TryTakeOrAnnounce()); // nothing free: it waits

        Assert.True(state.TryRelease(out var someoneWaits));
        Assert.True(someoneWaits); // the releaser must tell the coordinator
        Assert.False(state.TryTakeOrAnnounce()); // a permit is free, but someone waits: the newcomer queues too

        Assert.Equal(1, state.Value);
        Assert.Equal(2, state.Announced);
    }

    [Fact]
    public void With_nobody_waiting_acquire_and_release_need_no_coordinator()
    {
        var state = new SemaphoreState(1);

        Assert.True(state.TryTakeOrAnnounce());
        Assert.Equal(0, state.Value);
        Assert.True(state.TryRelease(out var someoneWaits));
        Assert.False(someoneWaits);
        Assert.Equal(1, state.Value);
        Assert.Equal(0, state.Announced);
    }

    [Fact]
    public void A_release_that_finds_a_waiter_is_granted_by_the_sweep_of_the_message_it_sends()
    {
        var state = new SemaphoreState(0);
        var gate = new PermitGate(new Books(state), [state]);
        var waiter = new Coordination.TestWaiter("waiter");
        Assert.False(state.TryTakeOrAnnounce());
        Deliver(state, gate, waiter);
        Assert.False(waiter.IsGranted);

        Assert.True(state.TryRelease(out var someoneWaits));
        Assert.True(someoneWaits);
        Assert.False(waiter.IsGranted); // the gate has not heard yet
        state.Sweep(gate); // the release's message arrives

        Assert.True(waiter.IsGranted);
        Assert.Equal(0, state.Value);
        Assert.Equal(0, state.Announced); // it left: the fast path is open again
        Assert.True(state.TryRelease(out someoneWaits));
        Assert.False(someoneWaits);
        Assert.True(state.TryTakeOrAnnounce());
    }

    [Fact]
    public void A_waiter_granted_on_arrival_no_longer_blocks_the_fast_path()
    {
        var state = new SemaphoreState(0);
        var gate = new PermitGate(new Books(state), [state]);
        var waiter = new Coordination.TestWaiter("waiter");
        Assert.False(state.TryTakeOrAnnounce());
        Assert.True(state.TryRelease(out _)); // released before the waiter's message arrives

        Deliver(state, gate, waiter);

        Assert.True(waiter.IsGranted);
        Assert.Equal(0, state.Announced);
        Assert.True(state.TryRelease(out var someoneWaits));
        Assert.False(someoneWaits);
    }

    [Fact]
    public void A_permit_taken_on_the_fast_path_is_never_granted_again_by_the_gate()
    {
        var state = new SemaphoreState(0);
        var gate = new PermitGate(new Books(state), [state]);
        Assert.True(state.TryRelease(out _)); // an actor's release, handled by the coordinator: the gate copies the word
        gate.Release(PermitDemand.One);
        Assert.True(state.TryTakeOrAnnounce()); // nobody waits: a caller takes it without a message

        var waiter = new Coordination.TestWaiter("waiter");
        Assert.False(state.TryTakeOrAnnounce());
        Deliver(state, gate, waiter);

        Assert.False(waiter.IsGranted);
        Assert.Equal(0, state.Value);
        Assert.Equal(0, state.Available(TimeSpan.Zero));
    }

    [Fact]
    public void A_waiter_that_leaves_opens_the_fast_path_to_the_permits_it_did_not_take()
    {
        var state = new SemaphoreState(0);
        var gate = new PermitGate(new Books(state), [state]);
        var leaving = new Coordination.TestWaiter("leaving");
        Assert.False(state.TryTakeOrAnnounce());
        Deliver(state, gate, leaving);

        state.Sweep(gate);
        Assert.True(gate.Withdraw(leaving)); // cancelled
        state.Leave();

        Assert.True(state.TryRelease(out var someoneWaits));
        Assert.False(someoneWaits);
        Assert.True(state.TryTakeOrAnnounce());
    }

    [Fact]
    public void After_the_coordinator_stops_no_acquire_takes_a_permit()
    {
        var state = new SemaphoreState(3);
        state.Close();

        Assert.False(state.TryTakeOrAnnounce()); // it goes to the stopped coordinator, which fails it
        Assert.Equal(3, state.Value);
    }

    [Fact]
    public void Racing_takers_and_releasers_keep_one_exact_value()
    {
        const int rounds = 200_000;
        const int threads = 4;
        var state = new SemaphoreState(2);
        var start = new Barrier(threads);
        var taken = new int[threads];

        var racers = Enumerable.Range(0, threads).Select(index => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < rounds; i++)
            {
                if (index % 2 == 0)
                {
                    if (state.TryTakeOrAnnounce())
                    {
                        taken[index]++;
                    }
                    else
                    {
                        state.Leave(); // nothing free: give the announcement up again, as a withdrawn waiter would
                    }
                }
                else if (state.TryRelease(out _))
                {
                    taken[index]--;
                }
            }
        })).ToArray();
        Racers.Run(racers);

        Assert.Equal(2 - taken.Sum(), state.Value);
        Assert.Equal(0, state.Announced);
    }

    [Fact]
    public void Racing_acquirers_cancellers_and_one_coordinator_never_exceed_the_permits_and_lose_no_wake_up()
    {
        const int permits = 3;
        const int threads = 6;
        const int rounds = 20_000;
        var state = new SemaphoreState(permits);
        var coordinator = new Coordinator(state);
        var holders = 0;
        var mostHolders = 0;
        var start = new Barrier(threads);

        var callers = Enumerable.Range(0, threads).Select(index => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < rounds; i++)
            {
                if (!state.TryTakeOrAnnounce())
                {
                    var waiter = new RacingWaiter();
                    coordinator.Post(waiter);
                    if (i % 5 == index % 5 && waiter.TryCancel())
                    {
                        coordinator.Post(new Withdraw(waiter));
                        continue;
                    }

                    Assert.True(waiter.Granted.Wait(TimeSpan.FromSeconds(60)), "a waiter was never granted: a wake-up was lost");
                }

                Poll.InterlockedMax(ref mostHolders, Interlocked.Increment(ref holders));
                Interlocked.Decrement(ref holders);
                Assert.True(state.TryRelease(out var someoneWaits));
                if (someoneWaits)
                {
                    coordinator.Post(Nudge.Instance);
                }
            }
        })).ToArray();
        Racers.Run(callers);
        coordinator.Stop();

        Assert.InRange(mostHolders, 1, permits);
        Assert.Equal(permits, state.Value);
        Assert.Equal(0, state.Announced);
        Assert.Equal(0, coordinator.Gate.Waiting);
    }

    [Fact]
    public void Releases_near_the_maximum_stop_exactly_at_it()
    {
        var state = new SemaphoreState(int.MaxValue - 10);
        Assert.True(state.TryTakeOrAnnounce());
        var succeeded = 0;

        Parallel.For(0, 40, release =>
        {
            if (state.TryRelease(out _))
            {
                Interlocked.Increment(ref succeeded);
            }
        });

        Assert.Equal(11, succeeded);
        Assert.Equal(int.MaxValue, state.Value);
        state.Refund(1, TimeSpan.Zero); // a grant lost at the maximum: the permit cannot exist, so it is dropped
        Assert.Equal(int.MaxValue, state.Value);
    }

    /// <summary>The coordinator's handling of one facade waiter's message: sweep, then offer.</summary>
    private static void Deliver(SemaphoreState state, PermitGate gate, PermitWaiter waiter)
    {
        state.Sweep(gate);
        state.Offer(gate, waiter);
    }

    /// <summary>The coordinator's books on the word: a waiter granted from the queue leaves it.</summary>
    private sealed class Books(SemaphoreState state) : IPermitGateListener
    {
        public void Publish(in PermitSnapshot now) => state.Waiting = now.Waiting;

        public void Queued(PermitWaiter waiter)
        {
        }

        public void Granting(PermitWaiter waiter, in PermitGrant grant)
        {
            if (grant.Waited)
            {
                state.Leave();
            }
        }

        public void GrantLost(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public void Granted(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection) => new InvalidOperationException();
    }

    /// <summary>The coordinator as the actor runs it: sweep, then handle.</summary>
    private sealed class Coordinator
    {
        private readonly SemaphoreState _state;
        private readonly CoordinatorThread _thread;

        public Coordinator(SemaphoreState state)
        {
            _state = state;
            Gate = new PermitGate(new Books(state), [state]);
            _thread = new CoordinatorThread(Handle);
        }

        public PermitGate Gate { get; }

        public void Post(object message) => _thread.Post(message);

        public void Stop() => _thread.Stop();

        private void Handle(object message)
        {
            _state.Sweep(Gate);
            switch (message)
            {
                case RacingWaiter waiter:
                    _state.Offer(Gate, waiter);
                    break;
                case Withdraw withdraw when Gate.Withdraw(withdraw.Waiter):
                    _state.Leave();
                    break;
            }
        }
    }

    private sealed class Nudge
    {
        public static readonly Nudge Instance = new();
    }
}
