using ActorQueue.Coordination;
using ActorQueue.Tests.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// A gate over concurrency, requests per minute and tokens per minute at once (the model-API limit), on a fake clock:
/// all limits granted together, FIFO across all, head-of-line, wake-ups at the refill, timeouts, retry-after, settle.
/// </summary>
public class RateGateTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly RecordingListener _listener = new();
    private readonly FakeTimeProvider _clock = new();
    private readonly PermitPool _slots = new(8);
    private readonly TokenBucketPolicy _requests = new(5, 5, Minute, PermitMeasure.Calls);
    private readonly TokenBucketPolicy _tokens = new(1000, 1000, Minute, PermitMeasure.Tokens);

    private PermitGate ModelGate(int? maxQueued = null) => new(_listener, [_slots, _requests, _tokens], maxQueued, time: _clock);

    private static TestWaiter Offer(PermitGate gate, string name, long tokens, TimeSpan? timeout = null)
    {
        var waiter = new TestWaiter(name, timeout: timeout, tokens: tokens);
        gate.Offer(waiter);
        return waiter;
    }

    [Fact]
    public void Concurrency_requests_and_tokens_are_taken_together_on_a_grant()
    {
        var gate = ModelGate();
        var call = Offer(gate, "call", tokens: 300);

        Assert.True(call.IsGranted);
        Assert.Equal((1L, 1L, 300L), (_slots.InUse, _requests.InUse, _tokens.InUse));
    }

    [Fact]
    public void A_call_waiting_for_tokens_holds_no_slot_and_no_request()
    {
        var gate = ModelGate();
        Offer(gate, "big", tokens: 900);
        var waiting = Offer(gate, "waiting", tokens: 200);

        Assert.False(waiting.IsGranted);
        Assert.Equal((1L, 1L, 900L), (_slots.InUse, _requests.InUse, _tokens.InUse));

        _clock.Advance(Minute);
        gate.Wake();
        Assert.True(waiting.IsGranted);
        Assert.Equal((2L, 1L), (_slots.InUse, _requests.InUse)); // the minute's requests refilled, then it took one
    }

    [Fact]
    public void The_gate_wakes_at_the_refill_the_head_needs()
    {
        var gate = ModelGate();
        _clock.Advance(TimeSpan.FromSeconds(20));
        Offer(gate, "big", tokens: 1000);
        Assert.Equal(TimeSpan.MaxValue, gate.NextWakeAt);

        Offer(gate, "next", tokens: 10);
        Assert.Equal(Minute, gate.NextWakeAt); // refills count from the gate's start, so the first is at one minute
    }

    [Fact]
    public void A_small_newcomer_does_not_pass_a_head_waiting_for_tokens()
    {
        var gate = ModelGate();
        Offer(gate, "first", tokens: 700);
        var head = Offer(gate, "head", tokens: 400);
        var small = Offer(gate, "small", tokens: 10); // 300 tokens are free, but the head came first

        Assert.False(small.IsGranted);
        _clock.Advance(Minute);
        gate.Wake();
        Assert.True(head.IsGranted);
        Assert.True(small.IsGranted);
        Assert.Equal(["first", "head", "small"], _listener.Log.Where(line => line.StartsWith("granted", StringComparison.Ordinal)).Select(line => line[8..]));
    }

    [Fact]
    public void The_requests_rate_blocks_the_sixth_call_of_a_minute_though_slots_and_tokens_are_free()
    {
        var gate = ModelGate();
        for (var i = 0; i < 5; i++)
        {
            Offer(gate, $"call{i}", tokens: 1);
            gate.Release(new PermitDemand(1, 1));
        }

        var sixth = Offer(gate, "sixth", tokens: 1);
        Assert.False(sixth.IsGranted);
        Assert.Equal(0, _slots.InUse);

        _clock.Advance(Minute - TimeSpan.FromTicks(1));
        gate.Wake();
        Assert.False(sixth.IsGranted);
        _clock.Advance(TimeSpan.FromTicks(1));
        gate.Wake();
        Assert.True(sixth.IsGranted);
    }

    [Fact]
    public void Settling_below_the_estimate_lets_the_waiter_behind_through_at_once()
    {
        var gate = ModelGate();
        var call = Offer(gate, "call", tokens: 900);
        var waiting = Offer(gate, "waiting", tokens: 500);

        gate.Settle(call.Grant!.Value.Demand, actualTokens: 350);

        Assert.True(waiting.IsGranted);
        Assert.Equal(850, _tokens.InUse);
    }

    [Fact]
    public void Settling_above_the_estimate_is_owed_by_the_next_window()
    {
        var gate = ModelGate();
        var call = Offer(gate, "call", tokens: 500);
        gate.Settle(call.Grant!.Value.Demand, actualTokens: 1800); // 800 over what the bucket held
        var next = Offer(gate, "next", tokens: 500);

        _clock.Advance(Minute);
        gate.Wake();
        Assert.False(next.IsGranted); // the refill paid the debt: 200 left
        Assert.Equal(2 * Minute, gate.NextWakeAt);

        _clock.Advance(Minute);
        gate.Wake();
        Assert.True(next.IsGranted);
    }

    [Fact]
    public void A_wait_for_a_refill_that_comes_after_the_deadline_times_out()
    {
        var gate = ModelGate();
        Offer(gate, "big", tokens: 1000);
        var impatient = Offer(gate, "impatient", tokens: 10, timeout: TimeSpan.FromSeconds(30));
        var patient = Offer(gate, "patient", tokens: 10);

        Assert.Equal(TimeSpan.FromSeconds(30), gate.NextWakeAt);
        _clock.Advance(TimeSpan.FromSeconds(30));
        gate.Wake();

        Assert.Equal(PermitRejectionKind.TimedOut, _listener.Rejections.Single().Rejection.Kind);
        Assert.False(patient.IsGranted);
        Assert.Equal(Minute, gate.NextWakeAt);
        _clock.Advance(TimeSpan.FromSeconds(30));
        gate.Wake();
        Assert.True(patient.IsGranted);
        Assert.Null(impatient.Grant);
    }

    [Fact]
    public void Retry_after_is_the_refill_that_serves_the_caller_after_the_demand_queued_ahead()
    {
        var slowTokens = new TokenBucketPolicy(1000, 100, Minute, PermitMeasure.Tokens);
        var gate = new PermitGate(_listener, [_slots, _requests, slowTokens], time: _clock);
        _clock.Advance(TimeSpan.FromSeconds(15));
        Offer(gate, "big", tokens: 950);
        Offer(gate, "queued", tokens: 100); // 50 left: served at 1:00, leaving 50

        Offer(gate, "would-wait", tokens: 100, timeout: TimeSpan.Zero);

        var rejection = _listener.Rejections.Single().Rejection;
        Assert.Equal(PermitRejectionKind.WouldWait, rejection.Kind);
        Assert.Equal(TimeSpan.FromSeconds(105), rejection.RetryAfter); // at 2:00, not at 1:00 as it would be alone
    }

    [Fact]
    public void An_evicted_or_timed_out_waiter_learns_when_the_rates_would_serve_a_retry()
    {
        var gate = new PermitGate(_listener, [_slots, _requests, _tokens], maxQueued: 1, QueueFullPolicy.EvictLowestNewest, time: _clock);
        Offer(gate, "big", tokens: 1000);
        Offer(gate, "low", tokens: 100);
        var high = new TestWaiter("high", priority: 1, timeout: TimeSpan.FromSeconds(10), tokens: 100);
        gate.Offer(high);

        var evicted = _listener.Rejections.Single().Rejection;
        Assert.Equal(PermitRejectionKind.Evicted, evicted.Kind);
        Assert.Equal(Minute, evicted.RetryAfter); // behind "high": the next refill serves both

        _clock.Advance(TimeSpan.FromSeconds(10));
        gate.Wake();

        var timedOut = _listener.Rejections.Last().Rejection;
        Assert.Equal(PermitRejectionKind.TimedOut, timedOut.Kind);
        Assert.Equal(TimeSpan.FromSeconds(50), timedOut.RetryAfter);
    }

    [Fact]
    public void A_full_queue_rejects_with_the_retry_after_of_the_rates()
    {
        var gate = ModelGate(maxQueued: 1);
        Offer(gate, "big", tokens: 1000);
        Offer(gate, "queued", tokens: 100);
        Offer(gate, "rejected", tokens: 100);

        var rejection = _listener.Rejections.Single().Rejection;
        Assert.Equal(PermitRejectionKind.QueueFull, rejection.Kind);
        Assert.Equal(Minute, rejection.RetryAfter);
    }

    [Fact]
    public void A_grant_lost_to_a_withdrawal_refunds_the_slot_the_request_and_the_tokens()
    {
        var gate = ModelGate();
        Offer(gate, "big", tokens: 1000);
        var withdrawing = Offer(gate, "withdrawing", tokens: 600);
        withdrawing.Withdrawn = true;

        _clock.Advance(Minute);
        gate.Wake();

        Assert.Contains("lost withdrawing", _listener.Log);
        Assert.Equal((1L, 0L, 0L), (_slots.InUse, _requests.InUse, _tokens.InUse)); // refilled, and nothing kept for the withdrawn
    }
}
