using ActorQueue.Coordination;
using ActorQueue.Primitives;
using Akka.Actor;

namespace ActorQueue.Tests.Primitives;

/// <summary>A release while flows wait hands the lock on without a message, from racing threads: flows, cancellers, line joiners and take-backs hold one at a time, in FIFO order, and lose no wake-up.</summary>
public class LockHandOffRacingTests
{
    [Fact]
    public void Racing_flows_cancellers_and_one_coordinator_hand_the_lock_on_in_fifo_order_and_lose_no_wake_up()
    {
        const int threads = 6;
        const int rounds = 20_000;
        var state = new LockState();
        var coordinator = new LockCoordinatorStandIn(state);
        var holders = new RacingHolders(coordinator, new CoordinatorThread(message => ((Action)message)()));
        var grantOrder = new List<PermitWaiter>();
        var start = new Barrier(threads);

        var flows = Enumerable.Range(0, threads).Select(index => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < rounds; i++)
            {
                var flow = new object();
                LockWaiter? waiter = null;
                if (state.TryTakeOrAnnounce())
                {
                    state.Grant(flow, 1);
                }
                else
                {
                    waiter = new LockWaiter(ActorRefs.Nobody, flow);
                    var granted = waiter.WaitAsTaskAsync(CancellationToken.None);
                    var sent = waiter;
                    holders.Thread.Post(() => coordinator.Deliver(sent));
                    if (i % 7 == index % 7 && waiter.TryCancel(CancellationToken.None))
                    {
                        holders.Thread.Post(() => coordinator.Withdraw(sent));
                        continue;
                    }

                    if (!granted.Wait(TimeSpan.FromSeconds(60)))
                    {
                        holders.Failures.Enqueue("a waiter was never granted: a wake-up was lost");
                        return;
                    }
                }

                var held = holders.HoldThenRelease(flow, () =>
                {
                    if (waiter is not null)
                    {
                        grantOrder.Add(waiter); // not thread-safe: exact only if the holders never overlap
                    }

                    Thread.SpinWait(20); // work while held, so that others queue and releases find a head to hand on to
                });
                if (!held)
                {
                    return;
                }
            }
        })).ToArray();
        holders.Run(flows);

        Assert.True(grantOrder.Count > coordinator.GateGrants, "no release ever handed the lock to a published head");
        var granted = grantOrder.ToHashSet();
        var queued = coordinator.QueuedOrder.Where(granted.Contains).ToList();
        Assert.Equal(queued, grantOrder.Where(coordinator.QueuedOrder.ToHashSet().Contains).ToList()); // FIFO
        coordinator.Nothing();
        Assert.Equal(0, coordinator.Gate.Waiting);
        Assert.Equal(0, state.Announced);
        Assert.False(state.IsHeld);
    }

    [Fact]
    public void Racing_flows_that_join_the_line_cancellers_and_take_backs_hold_one_at_a_time_in_real_time_order()
    {
        const int threads = 6;
        const int rounds = 20_000;
        var state = new LockState();
        var coordinator = new LockCoordinatorStandIn(state);
        var holders = new RacingHolders(coordinator, new CoordinatorThread(message => ((Action)message)()));
        var holds = new List<(long Started, long Returned)>(); // in the order the lock was held
        var clock = 0L;
        var joins = 0;
        var start = new Barrier(threads);

        var flows = Enumerable.Range(0, threads).Select(index => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < rounds; i++)
            {
                var flow = new object();
                var started = Interlocked.Increment(ref clock);
                long returned;
                if (state.TryTakeOrAnnounce())
                {
                    state.Grant(flow, 1);
                    returned = Interlocked.Increment(ref clock);
                }
                else
                {
                    var waiter = new LockWaiter(ActorRefs.Nobody, flow);
                    var granted = waiter.WaitAsTaskAsync(CancellationToken.None);
                    if (state.TryJoinLine(waiter))
                    {
                        Interlocked.Increment(ref joins);
                    }
                    else
                    {
                        state.Sending();
                        holders.Thread.Post(() => coordinator.Deliver(waiter));
                    }

                    returned = Interlocked.Increment(ref clock);
                    if (i % 5 == index % 5 && waiter.TryCancel(CancellationToken.None))
                    {
                        holders.Thread.Post(() => coordinator.Withdraw(waiter)); // a take-back, too, when a line is published
                        continue;
                    }

                    if (!granted.Wait(TimeSpan.FromSeconds(60)))
                    {
                        holders.Failures.Enqueue("a waiter was never granted: a wake-up was lost");
                        return;
                    }
                }

                var held = holders.HoldThenRelease(flow, () =>
                {
                    holds.Add((started, returned)); // not thread-safe: exact only if the holders never overlap
                    Thread.SpinWait(20); // work while held, so that others queue and releases find the line
                });
                if (!held)
                {
                    return;
                }
            }
        })).ToArray();
        holders.Run(flows);

        Assert.True(joins > 0, "no flow ever joined the line");
        Assert.True(holds.Count > coordinator.GateGrants, "no release ever served the line");

        // FIFO in real time: no acquire that returned (queued or holding) is passed by one that started after it.
        var latestStart = 0L;
        foreach (var (started, returned) in holds)
        {
            Assert.False(returned < latestStart, "a flow held the lock after one whose acquire started after this one's returned");
            latestStart = Math.Max(latestStart, started);
        }

        coordinator.Nothing();
        Assert.Equal(0, coordinator.Gate.Waiting);
        Assert.Equal(0, state.InLine);
        Assert.Equal(0, state.Announced);
        Assert.False(state.IsHeld);
    }
}
