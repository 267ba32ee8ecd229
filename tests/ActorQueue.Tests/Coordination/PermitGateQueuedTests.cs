using ActorQueue.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Coordination;

/// <summary>
/// The gate's queued demand (<see cref="PermitGate.Queued"/>): the waiters' permits or tokens, summed, through every
/// way a waiter enters and leaves the queue, so the statistics that publish it cannot drift.
/// </summary>
public class PermitGateQueuedTests
{
    private readonly RecordingListener _listener = new();
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public void Queued_permits_follow_every_entry_and_exit_back_to_zero()
    {
        var pool = new PermitPool(4);
        var gate = new PermitGate(_listener, [pool], maxQueued: 3, QueueFullPolicy.EvictLowestNewest, _clock);
        Assert.True(Offer(gate, new TestWaiter("holder", permits: 4)).IsGranted);
        Assert.Equal(0, gate.Queued);

        var a = Offer(gate, new TestWaiter("a", permits: 3));
        var b = Offer(gate, new TestWaiter("b", permits: 2));
        var c = Offer(gate, new TestWaiter("c", permits: 1));
        Assert.Equal(6, gate.Queued);

        var e = Offer(gate, new TestWaiter("e", permits: 2, priority: 1)); // the full queue evicts c for it
        Assert.NotNull(c.Error);
        Assert.Equal(7, gate.Queued);

        b.Withdrawn = true;
        Assert.True(gate.Withdraw(b));
        Assert.Equal(5, gate.Queued);

        var f = Offer(gate, new TestWaiter("f", permits: 1, timeout: TimeSpan.FromSeconds(5)));
        Assert.Equal(6, gate.Queued);
        _clock.Advance(TimeSpan.FromSeconds(5));
        gate.Wake();
        Assert.NotNull(f.Error);
        Assert.Equal(5, gate.Queued);

        gate.Resize(pool, 2); // a's 3 permits can never fit now
        Assert.NotNull(a.Error);
        Assert.Equal(2, gate.Queued);

        gate.Release(new PermitDemand(4)); // e is granted
        Assert.True(e.IsGranted);
        Assert.Equal(0, gate.Queued);

        var g = Offer(gate, new TestWaiter("g", permits: 2));
        var h = Offer(gate, new TestWaiter("h", permits: 1));
        Assert.Equal(3, gate.Queued);
        Assert.Equal([g], gate.RemoveWhere(waiter => ReferenceEquals(waiter, g)));
        Assert.Equal(1, gate.Queued);
        gate.Requeue(g);
        Assert.Equal(3, gate.Queued);
        Assert.Single(gate.WithdrawWhere(waiter => ReferenceEquals(waiter, h)));
        Assert.Equal(2, gate.Queued);
        gate.RejectAll(PermitRejectionKind.Disposed);
        Assert.NotNull(g.Error);
        Assert.Equal(0, gate.Queued);
    }

    [Fact]
    public void A_gate_that_weighs_tokens_sums_the_waiters_token_estimates()
    {
        var gate = new PermitGate(_listener, [new PermitPool(1)], queuedIn: PermitMeasure.Tokens);
        Offer(gate, new TestWaiter("holder", tokens: 800));
        var first = Offer(gate, new TestWaiter("first", tokens: 300));
        var second = Offer(gate, new TestWaiter("second", tokens: 200));
        Assert.Equal(500, gate.Queued);

        second.Withdrawn = true;
        gate.Withdraw(second);
        Assert.Equal(300, gate.Queued);

        gate.Release(PermitDemand.One);
        Assert.True(first.IsGranted);
        Assert.Equal(0, gate.Queued);
    }

    private static TestWaiter Offer(PermitGate gate, TestWaiter waiter)
    {
        gate.Offer(waiter);
        return waiter;
    }
}
