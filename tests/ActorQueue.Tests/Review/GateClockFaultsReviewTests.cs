using ActorQueue.Coordination;
using ActorQueue.Tests.Coordination;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of a gate with a timed limit whose clock (the application's <see cref="TimeProvider"/>) throws as its owner
/// takes waiters out (<c>fix/waiter-signal-faults</c>): nothing is taken out before the one reading, so no waiter is
/// lost with the throw.
/// </summary>
public sealed class GateClockFaultsReviewTests : ActorQueueTestKit
{
    /// <summary>The three ways an owner takes waiters out of a gate, by name.</summary>
    public static TheoryData<string> Removals => new(nameof(PermitGate.RemoveWhere), nameof(PermitGate.WithdrawWhere), nameof(PermitGate.RemoveWithTimeLeft));

    /// <summary>
    /// A gate with a timed limit, two waiters queued, its clock throwing as its owner takes them
    /// out: the call throws what the clock threw and both waiters are still queued, so the owner's handling (a retry, a
    /// close that rejects every waiter) still finds them; once the clock reads again the same call takes both out.
    /// DEFECT (fixed): the gate read the clock after taking the waiters out of the queue, so the throw lost them —
    /// neither queued nor handed to the owner, never answered ("Assert.Equal() Failure: Expected: 2, Actual: 0").
    /// </summary>
    [Theory]
    [MemberData(nameof(Removals))]
    public void A_clock_that_throws_as_waiters_are_taken_out_of_a_gate_leaves_them_queued(string removal)
    {
        var (gate, clock, waiters) = TimedGateWithTwoWaiting();
        clock.Broken = true;
        Assert.Throws<ClockFault>(() => TakeOut(gate, removal));

        Assert.Equal(2, gate.Waiting);
        clock.Broken = false;
        Assert.Equal(["first", "second"], TakeOut(gate, removal));
        Assert.Equal(0, gate.Waiting);
        Assert.All(waiters, waiter => Assert.False(waiter.IsGranted || waiter.Error is not null, "the owner answers what it takes out"));
    }

    /// <summary>
    /// As above, the owner taking out only the first waiter, the clock able to give one reading and throwing from the next
    /// on: the gate reads it once, before it takes the waiter out, and the call hands it over. DEFECT (fixed): the gate
    /// read it once after taking the waiter out and again to find when the waiter left at the head fits, which threw: the
    /// first waiter was lost (the call threw the ClockFault).
    /// </summary>
    [Theory]
    [MemberData(nameof(Removals))]
    public void A_gate_that_takes_waiters_out_reads_the_clock_once_before(string removal)
    {
        var (gate, clock, _) = TimedGateWithTwoWaiting();
        clock.ReadsLeft = 1;
        Assert.Equal(["first"], TakeOut(gate, removal, static waiter => waiter.Source == "first"));

        Assert.Equal(1, gate.Waiting);
    }

    /// <summary>
    /// A gate with a timed limit woken past a waiter's deadline, its clock able to give one reading and throwing from the
    /// next on: the waiter is taken out and fails as timed out at that one reading (the wake then throws what the clock
    /// threw, as it grants nobody). DEFECT (fixed): the gate read the clock again after taking the due waiter out, which
    /// threw: the waiter was neither queued nor told ("Assert.NotNull() Failure: Value is null").
    /// </summary>
    [Fact]
    public void A_waiter_past_its_deadline_is_told_though_the_clock_throws_after_the_reading_that_found_it_due()
    {
        var clock = new BrokenClock();
        var gate = new PermitGate(new RecordingListener(), [new PermitPool(1), new WindowPolicy(100, TimeSpan.FromMinutes(1))], time: clock);
        gate.Offer(new TestWaiter("holder"));
        var due = new TestWaiter("due", timeout: TimeSpan.FromSeconds(1));
        gate.Offer(due);
        clock.Now = TimeSpan.FromMinutes(1);

        clock.ReadsLeft = 1;
        Assert.Throws<ClockFault>(gate.Wake);

        Assert.NotNull(due.Error);
        Assert.Equal(0, gate.Waiting);
    }

    private static List<string> TakeOut(PermitGate gate, string removal, Predicate<PermitWaiter>? match = null)
    {
        match ??= static _ => true;
        return removal switch
        {
            nameof(PermitGate.RemoveWhere) => gate.RemoveWhere(match).ConvertAll(waiter => waiter.Source),
            nameof(PermitGate.WithdrawWhere) => gate.WithdrawWhere(match).ConvertAll(waiter => waiter.Source),
            _ => gate.RemoveWithTimeLeft(match).ConvertAll(taken => taken.Waiter.Source),
        };
    }

    /// <summary>
    /// A gate with a timed limit on a <see cref="BrokenClock"/>, its one permit held, and two waiters queued, "first" and
    /// "second", without timeouts (the gate keeps no deadline it would read the clock for first).
    /// </summary>
    private static (PermitGate Gate, BrokenClock Clock, TestWaiter[] Waiters) TimedGateWithTwoWaiting()
    {
        var clock = new BrokenClock();
        var gate = new PermitGate(new RecordingListener(), [new PermitPool(1), new WindowPolicy(100, TimeSpan.FromMinutes(1))], time: clock);
        gate.Offer(new TestWaiter("holder"));
        TestWaiter[] waiters = [new("first"), new("second")];
        foreach (var waiter in waiters)
        {
            gate.Offer(waiter);
        }

        return (gate, clock, waiters);
    }

    /// <summary>What a <see cref="BrokenClock"/> throws.</summary>
    private sealed class ClockFault() : Exception("the clock cannot be read");

    /// <summary>A clock that moves only when told, and throws from every read while <see cref="Broken"/> is set or once <see cref="ReadsLeft"/> are used up.</summary>
    private sealed class BrokenClock : TimeProvider
    {
        /// <summary>How many more reads it gives before it throws; negative: no end.</summary>
        public int ReadsLeft { get; set; } = -1;

        public bool Broken { get => ReadsLeft == 0; set => ReadsLeft = value ? 0 : -1; }

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp()
        {
            if (ReadsLeft == 0)
            {
                throw new ClockFault();
            }

            if (ReadsLeft > 0)
            {
                ReadsLeft--;
            }

            return Now.Ticks;
        }

        /// <summary>What it reads (timestamps in ticks from zero).</summary>
        public TimeSpan Now { get; set; }
    }
}
