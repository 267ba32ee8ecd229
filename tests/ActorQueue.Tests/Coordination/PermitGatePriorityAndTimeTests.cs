using ActorQueue.Coordination;

namespace ActorQueue.Tests.Coordination;

/// <summary>What the gate holds ready for weighted, prioritised and timed limits: priorities, eviction, deadlines, several policies.</summary>
public class PermitGatePriorityAndTimeTests
{
    private readonly RecordingListener _listener = new();
    private readonly ManualClock _clock = new();

    private static TestWaiter Offer(PermitGate gate, string name, int permits = 1, int priority = 0, TimeSpan? timeout = null)
    {
        var waiter = new TestWaiter(name, permits, priority, timeout);
        gate.Offer(waiter);
        return waiter;
    }

    private static List<string> GrantOrder(PermitGate gate, IReadOnlyList<TestWaiter> waiters)
    {
        var order = new List<string>();
        while (order.Count < waiters.Count)
        {
            gate.Release(PermitDemand.One);
            order.AddRange(waiters.Where(w => w.IsGranted && !order.Contains(w.Source)).Select(w => w.Source));
        }

        return order;
    }

    [Fact]
    public void Higher_priority_is_served_first_and_fifo_holds_within_a_priority()
    {
        var gate = new PermitGate(_listener, [new PermitPool(1)]);
        Offer(gate, "holder");
        TestWaiter[] waiters = [Offer(gate, "low-1", priority: 1), Offer(gate, "high-1", priority: 9), Offer(gate, "low-2", priority: 1),
                                Offer(gate, "none"), Offer(gate, "high-2", priority: 9)];

        Assert.Equal(["high-1", "high-2", "low-1", "low-2", "none"], GrantOrder(gate, waiters));
    }

    [Fact]
    public void A_higher_priority_newcomer_passes_lower_waiters_but_never_an_equal_one()
    {
        var gate = new PermitGate(_listener, [new PermitPool(3)]);
        Offer(gate, "holder", permits: 2);
        Offer(gate, "low-head", permits: 2, priority: 0);

        var higher = Offer(gate, "higher", priority: 1); // one permit is free and only lower priorities wait
        Assert.True(higher.IsGranted);

        gate.Release(PermitDemand.One); // one free again; the low head still needs two
        Offer(gate, "equal-head", permits: 2, priority: 1);
        var equal = Offer(gate, "equal", priority: 1);
        Assert.False(equal.IsGranted);
    }

    [Fact]
    public void Evict_removes_the_newest_waiter_of_the_lowest_priority()
    {
        var gate = new PermitGate(_listener, [new PermitPool(1)], maxQueued: 3, QueueFullPolicy.EvictLowestNewest);
        Offer(gate, "holder");
        var oldLow = Offer(gate, "old-low", priority: 0);
        var newLow = Offer(gate, "new-low", priority: 0);
        var mid = Offer(gate, "mid", priority: 1);

        var high = Offer(gate, "high", priority: 2);

        Assert.NotNull(high.QueuedWith);
        Assert.Equal(("new-low", PermitRejectionKind.Evicted), (_listener.Rejections.Single().Waiter, _listener.Rejections.Single().Rejection.Kind));
        Assert.Null(oldLow.Error);
        Assert.Null(mid.Error);
        Assert.Equal(3, gate.Waiting);
    }

    [Fact]
    public void Evict_never_removes_an_equal_or_higher_priority_waiter()
    {
        var gate = new PermitGate(_listener, [new PermitPool(1)], maxQueued: 2, QueueFullPolicy.EvictLowestNewest);
        Offer(gate, "holder");
        Offer(gate, "a", priority: 1);
        Offer(gate, "b", priority: 2);

        var equal = Offer(gate, "equal", priority: 1);
        var lower = Offer(gate, "lower", priority: 0);

        Assert.Equal(["equal", "lower"], _listener.Rejections.Select(r => r.Waiter));
        Assert.All(_listener.Rejections, r => Assert.Equal(PermitRejectionKind.QueueFull, r.Rejection.Kind));
        Assert.Equal(2, gate.Waiting);
    }

    [Fact]
    public void An_expired_waiter_fails_TimedOut_and_may_unblock_the_next()
    {
        var gate = new PermitGate(_listener, [new PermitPool(2)], time: _clock);
        Offer(gate, "holder");
        var head = Offer(gate, "head", permits: 2, timeout: TimeSpan.FromSeconds(5));
        var next = Offer(gate, "next", timeout: TimeSpan.FromSeconds(60));
        Assert.Equal(TimeSpan.FromSeconds(5), gate.NextWakeAt);

        _clock.Advance(TimeSpan.FromSeconds(4));
        gate.Wake();
        Assert.Null(head.Error);

        _clock.Advance(TimeSpan.FromSeconds(1));
        gate.Wake();

        Assert.Equal(PermitRejectionKind.TimedOut, _listener.Rejections.Single().Rejection.Kind);
        Assert.NotNull(head.Error);
        Assert.True(next.IsGranted);
        Assert.Equal(TimeSpan.MaxValue, gate.NextWakeAt);
    }

    [Fact]
    public void Next_wake_is_the_earliest_deadline_or_the_refill_the_head_needs()
    {
        var rate = new WindowPolicy(2, TimeSpan.FromSeconds(10));
        var gate = new PermitGate(_listener, [rate], time: _clock);
        Offer(gate, "a", permits: 2);
        Assert.Equal(TimeSpan.MaxValue, gate.NextWakeAt);

        Offer(gate, "b", timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(TimeSpan.FromSeconds(10), gate.NextWakeAt); // the window refills before b's deadline

        _clock.Advance(TimeSpan.FromSeconds(10));
        gate.Wake();
        Assert.Equal(TimeSpan.MaxValue, gate.NextWakeAt);

        var gate2 = new PermitGate(new RecordingListener(), [new WindowPolicy(1, TimeSpan.FromMinutes(10))], time: _clock);
        Offer(gate2, "c");
        Offer(gate2, "d", timeout: TimeSpan.FromSeconds(3));
        Assert.Equal(gate2.Now + TimeSpan.FromSeconds(3), gate2.NextWakeAt); // the deadline comes before the refill
    }

    [Fact]
    public void Several_policies_are_granted_all_or_nothing()
    {
        var pool = new PermitPool(4);
        var tokens = new WindowPolicy(100, TimeSpan.FromMinutes(1), PermitMeasure.Tokens);
        var gate = new PermitGate(_listener, [pool, tokens], time: _clock);

        var first = new TestWaiter("first", tokens: 80);
        gate.Offer(first);
        var second = new TestWaiter("second", tokens: 30);
        gate.Offer(second);

        Assert.True(first.IsGranted);
        Assert.False(second.IsGranted); // a slot is free, the tokens are not: it takes neither
        Assert.Equal((1L, 80L), (pool.InUse, tokens.InUse));
    }

    [Fact]
    public void A_caller_never_holds_one_limit_while_waiting_for_another()
    {
        var pool = new PermitPool(8);
        var requests = new WindowPolicy(1, TimeSpan.FromSeconds(60), PermitMeasure.Calls);
        var gate = new PermitGate(_listener, [pool, requests], time: _clock);
        var first = new TestWaiter("first");
        gate.Offer(first);
        gate.Release(PermitDemand.One);

        var waiting = new TestWaiter("waiting");
        gate.Offer(waiting);

        Assert.Equal(0, pool.InUse); // it waits for the rate while holding no concurrency slot
        _clock.Advance(TimeSpan.FromSeconds(60));
        gate.Wake();
        Assert.True(waiting.IsGranted);
        Assert.Equal(1, pool.InUse);
    }

    [Fact]
    public void Retry_after_counts_the_demand_queued_ahead()
    {
        var rate = new WindowPolicy(2, TimeSpan.FromSeconds(10));
        var gate = new PermitGate(_listener, [rate], maxQueued: 2, time: _clock);
        Offer(gate, "a", permits: 2);
        Offer(gate, "b", permits: 2); // needs the next window
        Offer(gate, "c", permits: 2); // needs the one after

        var impatient = new TestWaiter("impatient", permits: 1, timeout: TimeSpan.Zero);
        gate.Offer(impatient);
        Offer(gate, "full");

        var rejections = _listener.Rejections.ToDictionary(r => r.Waiter, r => r.Rejection);
        Assert.Equal((PermitRejectionKind.WouldWait, (TimeSpan?)TimeSpan.FromSeconds(30)), (rejections["impatient"].Kind, rejections["impatient"].RetryAfter));
        Assert.Equal((PermitRejectionKind.QueueFull, (TimeSpan?)TimeSpan.FromSeconds(30)), (rejections["full"].Kind, rejections["full"].RetryAfter));
    }
}
