using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Tests.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// A rate loan's claims checked against a cheap tick before the clock: no clock read while the tick is before the
/// loan's tick deadline, and no claim past the step's end from a tick that lags the clock by its granularity or runs
/// slow within the drift allowance.
/// </summary>
public sealed class RateLoanTickTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _fake = new();
    private readonly CountingClock _clock;

    /// <summary>The tick the loan reads, in milliseconds: moved by hand, with or apart from the fake clock.</summary>
    private long _tick = 1_000_000;

    public RateLoanTickTests() => _clock = new CountingClock(_fake);

    private RateLoan Loan() => new(_clock, new CheapTick(() => Volatile.Read(ref _tick)));

    /// <summary>Lends as the lender does: the tick read before the clock, the step <paramref name="step"/> long.</summary>
    private void Lend(RateLoan loan, TimeSpan step, long calls = 1000)
    {
        var tick = loan.ReadTick()!.Value;
        var stamp = _clock.GetTimestamp();
        loan.Lend(100, calls, 100_000, stamp + (long)(step.TotalSeconds * _clock.TimestampFrequency), LoanCaps.None,
                  tickExpiresAt: CheapTick.DeadlineAfter(tick, step));
    }

    /// <summary>Moves the clock and, by <paramref name="tickShare"/> of it (1: in step, below 1: running slow), the tick.</summary>
    private void Advance(TimeSpan by, double tickShare = 1)
    {
        _fake.Advance(by);
        _tick += (long)(by.TotalMilliseconds * tickShare);
    }

    [Fact]
    public void Claims_while_the_tick_is_before_its_deadline_never_read_the_clock()
    {
        var loan = Loan();
        Lend(loan, Minute);
        var reads = _clock.Reads;

        Advance(TimeSpan.FromSeconds(30));
        for (var i = 0; i < 10; i++)
        {
            Assert.True(loan.TryClaim(1));
        }

        Assert.True(loan.Covers(1));
        Assert.Equal(reads, _clock.Reads);
    }

    [Fact]
    public void Past_the_ticks_deadline_a_claim_asks_the_clock_and_is_served_until_the_step_ends()
    {
        var loan = Loan();
        Lend(loan, Minute);

        Advance(Minute - TimeSpan.FromMilliseconds(5));
        var reads = _clock.Reads;
        Assert.True(loan.TryClaim(1), "the step has 5 ms left: the clock says so");
        Assert.True(_clock.Reads > reads, "the tick's deadline passed, so the clock was read");

        Advance(TimeSpan.FromMilliseconds(5));
        Assert.False(loan.TryClaim(1), "the step ended");
    }

    [Fact]
    public void A_tick_that_lags_the_clock_by_its_granularity_never_admits_past_the_steps_end()
    {
        var loan = Loan();
        Lend(loan, TimeSpan.FromSeconds(1));

        // The step has ended on the clock; the tick has not seen the last 20 ms (a coarse tick's last interrupt).
        Advance(TimeSpan.FromSeconds(1));
        _tick -= 20;

        Assert.False(loan.TryClaim(1));
        Assert.False(loan.Covers(1));
    }

    [Fact]
    public void A_tick_that_runs_slow_within_the_drift_allowance_never_admits_past_the_steps_end()
    {
        var loan = Loan();
        var step = TimeSpan.FromSeconds(256);
        Lend(loan, step);

        // 0.3 % slow: 0.77 s behind when the step ends, inside the 1/256 (3.9 %o) allowance.
        Advance(step, tickShare: 0.997);

        Assert.False(loan.TryClaim(1));
    }

    [Fact]
    public void A_step_shorter_than_the_ticks_lag_is_never_trusted_to_the_tick()
    {
        Assert.Equal(long.MinValue, CheapTick.DeadlineAfter(5_000, CheapTick.Lag));
        Assert.Equal(long.MinValue, CheapTick.DeadlineAfter(5_000, TimeSpan.Zero));
        Assert.Equal(long.MaxValue, CheapTick.DeadlineAfter(long.MaxValue - 10, TimeSpan.FromDays(1)));
    }

    [Fact]
    public void Only_the_system_clock_on_linux_has_a_cheap_tick()
    {
        Assert.Equal(OperatingSystem.IsLinux(), CheapTick.For(TimeProvider.System) is not null);
        Assert.Null(CheapTick.For(_fake));
        Assert.Null(new RateLoan(_fake).ReadTick());
    }

    [Fact]
    public void The_lender_trusts_the_tick_for_the_rest_of_the_step_it_lends_in()
    {
        var slots = new PermitPool(8);
        var requests = new TokenBucketPolicy(100, 100, Minute, PermitMeasure.Calls);
        var gate = new PermitGate(new RecordingListener(), [slots, requests], time: _clock);
        var loan = Loan();
        var lender = RateLender.For(loan, slots, [requests], _clock, telemetry: null)!;
        lender.Start();

        // Lent 40 s into the bucket's step: 20 s are left of it, not a whole period.
        Advance(TimeSpan.FromSeconds(40));
        lender.Lend(gate, new LimiterCounts());
        var reads = _clock.Reads;
        Advance(TimeSpan.FromSeconds(10));
        Assert.True(loan.TryClaim(1));
        Assert.Equal(reads, _clock.Reads);

        Advance(TimeSpan.FromSeconds(10));
        Assert.False(loan.TryClaim(1), "the bucket's step ended 60 s after the gate started");
    }

    [Fact]
    public async Task Racing_claims_across_renewed_loans_each_count_once_with_the_tick_trusted()
    {
        var loan = Loan();
        Lend(loan, Minute, calls: 500);
        var claimed = 0L;
        var reclaimed = 0L;
        var lent = 500L;
        using var start = new Barrier(3);
        using var stop = new CancellationTokenSource();

        var claimers = Enumerable.Range(0, 2).Select(_ => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            var spins = 0; // a spent loan: spin hot, yielding now and then (on one free core the claimers starve the lender)
            while (!stop.IsCancellationRequested)
            {
                if (loan.TryClaim(1))
                {
                    Interlocked.Increment(ref claimed);
                    loan.TryReturnSlot();
                    spins = 0;
                }
                else
                {
                    Poll.SpinStep(ref spins);
                }
            }
        }, TaskCreationOptions.LongRunning)).ToArray();

        var lender = Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            // Renewed until the claimers took many loans' worth, whatever the scheduler gives them.
            while (Interlocked.Read(ref claimed) < 20_000)
            {
                var (wasOpen, _, calls, _) = loan.Reclaim();
                Assert.True(wasOpen);
                reclaimed += calls;
                Advance(TimeSpan.FromMilliseconds(1));
                Lend(loan, Minute, calls: 500);
                lent += 500;
            }

            stop.Cancel();
        }, TaskCreationOptions.LongRunning);

        await Task.WhenAll([lender, .. claimers]).WaitAsync(TimeSpan.FromSeconds(60));
        reclaimed += loan.Reclaim().Calls;
        Assert.Equal(lent - reclaimed, claimed);
    }

    /// <summary>A clock that counts its stamp reads.</summary>
    private sealed class CountingClock(TimeProvider inner) : TimeProvider
    {
        private long _reads;

        public long Reads => Interlocked.Read(ref _reads);

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long GetTimestamp()
        {
            Interlocked.Increment(ref _reads);
            return inner.GetTimestamp();
        }
    }
}
