using ActorQueue.Coordination;

namespace ActorQueue.Tests.Coordination;

/// <summary>The gate's grant rule: FIFO, no barging, the head blocks, withdrawal, limits and resizing.</summary>
public class PermitGateTests
{
    private readonly RecordingListener _listener = new();

    private PermitGate NewGate(long permits, int? maxQueued = null, QueueFullPolicy whenFull = QueueFullPolicy.RejectNewcomer) =>
        new(_listener, [new PermitPool(permits)], maxQueued, whenFull);

    private static TestWaiter Offer(PermitGate gate, string name, int permits = 1, int priority = 0)
    {
        var waiter = new TestWaiter(name, permits, priority);
        gate.Offer(waiter);
        return waiter;
    }

    [Fact]
    public void A_free_permit_is_granted_at_once_and_published_before_the_waiter_hears()
    {
        var gate = NewGate(2);
        var waiter = new TestWaiter("a");
        waiter.OnGrant = () => _listener.Log.Add("a hears");

        Assert.Equal(OfferOutcome.Granted, gate.Offer(waiter));

        Assert.Equal(["publish 1/0", "granting a", "a hears", "granted a"], _listener.Log);
        Assert.False(waiter.Grant!.Value.Waited);
        Assert.Equal(new PermitSnapshot(1, 1, 0), waiter.Grant.Value.After);
    }

    [Fact]
    public void A_waiter_is_told_it_waits_only_once_the_published_count_includes_it()
    {
        var gate = NewGate(1);
        Offer(gate, "holder");
        var waiter = new TestWaiter("w");
        waiter.OnWait = () => _listener.Log.Add($"w hears it waits; published {_listener.Published.Waiting}");
        _listener.Log.Clear();

        Assert.Equal(OfferOutcome.Queued, gate.Offer(waiter));

        Assert.Equal(["publish 1/1", "queued w", "w hears it waits; published 1"], _listener.Log);
        Assert.Equal(new PermitSnapshot(1, 0, 1), waiter.QueuedWith);
    }

    [Fact]
    public void A_release_publishes_once_with_the_grant_it_makes_or_alone_when_it_grants_nobody()
    {
        var gate = NewGate(2);
        Offer(gate, "a", permits: 2);
        Offer(gate, "b", permits: 2);
        _listener.Log.Clear();

        gate.Release(new PermitDemand(2)); // b fits: the counts go out once, with its grant
        Assert.Equal(["publish 2/0", "granting b", "granted b"], _listener.Log);

        _listener.Log.Clear();
        gate.Release(new PermitDemand(2)); // nobody waits: the release is published alone
        Assert.Equal(["publish 0/0"], _listener.Log);
        Assert.Equal(new PermitSnapshot(0, 2, 0), _listener.Published);
    }

    [Fact]
    public void Waiters_are_granted_in_arrival_order_within_a_priority()
    {
        var gate = NewGate(1);
        Offer(gate, "holder");
        var waiters = Enumerable.Range(1, 4).Select(i => Offer(gate, $"w{i}")).ToArray();
        Assert.All(waiters, w => Assert.NotNull(w.QueuedWith));

        var order = new List<string>();
        for (var i = 0; i < waiters.Length; i++)
        {
            gate.Release(PermitDemand.One);
            order.AddRange(waiters.Where(w => w.IsGranted && !order.Contains(w.Source)).Select(w => w.Source));
        }

        Assert.Equal(["w1", "w2", "w3", "w4"], order);
        Assert.All(waiters, w => Assert.True(w.Grant!.Value.Waited));
    }

    [Fact]
    public void A_newcomer_that_fits_still_queues_behind_a_waiter()
    {
        var gate = NewGate(3);
        Offer(gate, "holder");
        var head = Offer(gate, "head", permits: 3);

        var newcomer = Offer(gate, "newcomer");

        Assert.False(newcomer.IsGranted);
        Assert.Equal(new PermitSnapshot(1, 2, 2), gate.Snapshot);
        Assert.Equal(2, newcomer.QueuedWith!.Value.Waiting);
    }

    [Fact]
    public void A_weighted_head_blocks_smaller_requests_until_it_fits()
    {
        var gate = NewGate(4);
        Offer(gate, "a", permits: 2);
        Offer(gate, "b", permits: 2);
        var head = Offer(gate, "head", permits: 3);
        var small = Offer(gate, "small");

        gate.Release(new PermitDemand(2)); // 2 free: enough for small, not for the head

        Assert.False(head.IsGranted);
        Assert.False(small.IsGranted);
        gate.Release(new PermitDemand(2));
        Assert.True(head.IsGranted);
        Assert.True(small.IsGranted);
        Assert.Equal(4, gate.Snapshot.InUse);
    }

    [Fact]
    public void Withdrawing_a_blocked_head_lets_the_next_through()
    {
        var gate = NewGate(3);
        Offer(gate, "holder", permits: 2);
        var head = Offer(gate, "head", permits: 2);
        var next = Offer(gate, "next");

        Assert.True(gate.Withdraw(head));

        Assert.True(next.IsGranted);
        Assert.Null(head.Error);
        Assert.Equal(new PermitSnapshot(3, 0, 0), gate.Snapshot);
        Assert.False(gate.Withdraw(head));
    }

    [Fact]
    public void A_request_larger_than_the_limit_is_rejected_at_once_and_never_queued()
    {
        var gate = NewGate(2);

        var tooLarge = Offer(gate, "big", permits: 3);

        Assert.NotNull(tooLarge.Error);
        Assert.Null(tooLarge.QueuedWith);
        var (_, rejection) = Assert.Single(_listener.Rejections);
        Assert.Equal((PermitRejectionKind.ExceedsLimit, 3L, 2L), (rejection.Kind, rejection.Requested, rejection.Limit));
        Assert.Equal(new PermitSnapshot(0, 2, 0), gate.Snapshot);
    }

    [Fact]
    public void Shrinking_fails_waiters_that_can_never_fit_and_revokes_no_held_permit()
    {
        var pool = new PermitPool(4);
        var gate = new PermitGate(_listener, [pool]);
        var holder = Offer(gate, "holder", permits: 3);
        var big = Offer(gate, "big", permits: 3);
        var small = Offer(gate, "small");

        gate.Resize(pool, 2);

        Assert.Equal(PermitRejectionKind.ExceedsLimit, Assert.Single(_listener.Rejections).Rejection.Kind);
        Assert.NotNull(big.Error);
        Assert.Null(small.Error);
        Assert.Equal(new PermitSnapshot(3, 0, 1), gate.Snapshot); // the holder keeps 3 of 2
        gate.Release(new PermitDemand(3));
        Assert.True(small.IsGranted);
    }

    [Fact]
    public void Growing_grants_waiters_at_once_in_order()
    {
        var pool = new PermitPool(1);
        var gate = new PermitGate(_listener, [pool]);
        Offer(gate, "holder");
        var first = Offer(gate, "first");
        var second = Offer(gate, "second");
        var third = Offer(gate, "third");
        _listener.Log.Clear();

        gate.Resize(pool, 3);

        Assert.True(first.IsGranted && second.IsGranted);
        Assert.False(third.IsGranted);
        Assert.Equal(["granting first", "granting second"], _listener.Log.Where(l => l.StartsWith("granting", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_full_queue_rejects_the_newcomer_and_changes_no_count()
    {
        var gate = NewGate(1, maxQueued: 2);
        Offer(gate, "holder");
        Offer(gate, "w1");
        Offer(gate, "w2");
        var before = gate.Snapshot;
        _listener.Log.Clear();

        var rejected = new TestWaiter("w3");
        Assert.Equal(OfferOutcome.Rejected, gate.Offer(rejected));

        Assert.Equal(before, gate.Snapshot);
        Assert.Equal(["rejecting w3 QueueFull"], _listener.Log);
        var rejection = _listener.Rejections.Single().Rejection;
        Assert.Equal((3, (int?)2), (rejection.QueueDepth, rejection.MaxQueued));
    }

    [Fact]
    public void Max_queued_zero_grants_a_free_permit_and_rejects_a_wait()
    {
        var gate = NewGate(1, maxQueued: 0);

        var first = Offer(gate, "first");
        var second = Offer(gate, "second");

        Assert.True(first.IsGranted);
        Assert.NotNull(second.Error);
        Assert.Equal(PermitRejectionKind.QueueFull, _listener.Rejections.Single().Rejection.Kind);
        Assert.Equal(0, gate.Waiting);
    }

    [Fact]
    public void A_waiter_that_may_not_wait_is_rejected_when_nothing_is_free()
    {
        var gate = NewGate(1);
        Offer(gate, "holder");

        var impatient = new TestWaiter("impatient", timeout: TimeSpan.Zero);
        Assert.Equal(OfferOutcome.Rejected, gate.Offer(impatient));

        Assert.Equal(PermitRejectionKind.WouldWait, _listener.Rejections.Single().Rejection.Kind);
        Assert.Equal(0, gate.Waiting);
    }

    [Fact]
    public void A_waiter_withdrawn_before_its_offer_takes_nothing_and_is_never_queued()
    {
        var gate = NewGate(1);
        var late = new TestWaiter("late") { Withdrawn = true };

        Assert.Equal(OfferOutcome.Withdrawn, gate.Offer(late));

        Assert.Empty(_listener.Log);
        Assert.Equal(new PermitSnapshot(0, 1, 0), gate.Snapshot);
    }

    [Fact]
    public void A_grant_lost_to_a_withdrawal_refunds_every_policy_and_passes_to_the_next()
    {
        var pool = new PermitPool(1);
        var window = new WindowPolicy(10, TimeSpan.FromMinutes(1));
        var gate = new PermitGate(_listener, [pool, window], time: new ManualClock());
        Offer(gate, "holder");
        var cancelling = Offer(gate, "cancelling");
        var next = Offer(gate, "next");
        cancelling.Withdrawn = true; // its token fired; its withdrawal message has not arrived yet
        _listener.Log.Clear();

        gate.Release(PermitDemand.One);

        Assert.False(cancelling.IsGranted);
        Assert.True(next.IsGranted);
        Assert.Equal((1L, 2L), (pool.InUse, window.InUse)); // holder and next in the window; the lost grant gave its share back
        Assert.Equal(["publish 1/1", "granting cancelling", "lost cancelling", "publish 0/1", "publish 1/0", "granting next", "granted next"], _listener.Log);
    }

    [Fact]
    public void Reject_all_fails_every_waiter_in_queue_order_and_empties_the_gate()
    {
        var gate = NewGate(1);
        Offer(gate, "holder");
        Offer(gate, "low", priority: 0);
        Offer(gate, "high", priority: 5);
        Offer(gate, "low2", priority: 0);

        gate.RejectAll(PermitRejectionKind.Disposed);

        Assert.Equal(["high", "low", "low2"], _listener.Rejections.Select(r => r.Waiter));
        Assert.All(_listener.Rejections, r => Assert.Equal(PermitRejectionKind.Disposed, r.Rejection.Kind));
        Assert.Equal(0, gate.Waiting);
    }

    [Fact]
    public void A_closed_gate_queues_but_grants_nothing_and_opening_grants_in_order()
    {
        var gate = NewGate(2);
        gate.Close();
        var first = Offer(gate, "first");
        var second = Offer(gate, "second");
        var third = Offer(gate, "third");

        Assert.Equal(3, gate.Waiting);
        Assert.False(first.IsGranted);

        gate.Open();

        Assert.True(first.IsGranted && second.IsGranted);
        Assert.False(third.IsGranted);
    }

    [Fact]
    public void Adopted_holds_count_even_above_the_limit()
    {
        var gate = NewGate(2);
        gate.Close();
        var waiting = Offer(gate, "waiting");
        gate.Adopt(new PermitDemand(2));
        gate.Adopt(PermitDemand.One);

        gate.Open();

        Assert.Equal(3, gate.Snapshot.InUse);
        Assert.False(waiting.IsGranted);
        gate.Release(PermitDemand.One);
        Assert.False(waiting.IsGranted);
        gate.Release(PermitDemand.One);
        Assert.True(waiting.IsGranted);
    }

    [Fact]
    public void Try_acquire_never_passes_a_waiter()
    {
        var gate = NewGate(3);
        Offer(gate, "holder", permits: 2);
        Offer(gate, "head", permits: 2);

        Assert.False(gate.TryAcquire(PermitDemand.One, out _));
        Assert.Equal(2, gate.Snapshot.InUse);

        gate.Release(new PermitDemand(2)); // the head takes 2 of 3
        Assert.True(gate.TryAcquire(PermitDemand.One, out var grant));
        Assert.Equal(3, grant.After.InUse);
    }

    [Fact]
    public void Withdraw_where_removes_the_matching_waiters_and_keeps_the_others_in_order()
    {
        var gate = NewGate(1);
        Offer(gate, "holder");
        var mine = new[] { Offer(gate, "mine-1"), Offer(gate, "mine-2") };
        var other = Offer(gate, "other");

        var removed = gate.WithdrawWhere(w => w.Source.StartsWith("mine", StringComparison.Ordinal));

        Assert.Equal(mine, removed);
        Assert.Equal(1, gate.Waiting);
        gate.Release(PermitDemand.One);
        Assert.True(other.IsGranted);
    }

    [Fact]
    public void A_requeued_waiter_goes_to_the_tail_and_is_granted_when_it_fits()
    {
        var gate = NewGate(1);
        Offer(gate, "holder");
        var first = Offer(gate, "first");
        var notified = new TestWaiter("notified");

        gate.Requeue(notified);
        Assert.Equal(2, gate.Waiting);
        gate.Release(PermitDemand.One);
        gate.Release(PermitDemand.One);

        Assert.True(first.IsGranted && notified.IsGranted);
        Assert.True(first.Grant!.Value.LeaseId < notified.Grant!.Value.LeaseId);
    }
}
