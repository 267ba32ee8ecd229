using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Tests.Coordination;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// The gatekeeper's side of a rate loan, driven as the gatekeeper drives it (reclaim at the start of a message, lend at
/// its end) over the model-API gate on a fake clock: claims and grants together never exceed a rate, nothing is lent
/// while someone waits, and a claim counts in the step it was made in.
/// </summary>
public sealed class RateLenderTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly RecordingListener _listener = new();
    private readonly FakeTimeProvider _clock = new();
    private readonly PermitPool _slots = new(8);
    private readonly LimiterCounts _counts = new();
    private readonly RateLoan _loan;

    public RateLenderTests() => _loan = new RateLoan(_clock);

    /// <summary>A gate over the slots and <paramref name="rates"/>, and its lender, lending already (the end of a first message).</summary>
    private (PermitGate Gate, RateLender Lender) Lending(params IRestingPolicy[] rates)
    {
        var gate = new PermitGate(_listener, [_slots, .. rates], time: _clock);
        var lender = RateLender.For(_loan, _slots, rates, _clock, telemetry: null)!;
        lender.Start();
        lender.Lend(gate, _counts);
        return (gate, lender);
    }

    /// <summary>One gatekeeper message: reclaim, <paramref name="handle"/>, lend.</summary>
    private void Message(PermitGate gate, RateLender lender, Action? handle = null)
    {
        lender.Reclaim();
        handle?.Invoke();
        lender.Lend(gate, _counts);
    }

    private static int ClaimAll(RateLoan loan, long tokens)
    {
        var claimed = 0;
        while (loan.TryClaim(tokens))
        {
            claimed++;
        }

        return claimed;
    }

    [Fact]
    public void Claims_and_the_gates_grants_together_never_take_more_than_a_rate_holds()
    {
        var requests = new TokenBucketPolicy(3, 3, Minute, PermitMeasure.Calls);
        var tokens = new TokenBucketPolicy(1000, 1000, Minute, PermitMeasure.Tokens);
        var (gate, lender) = Lending(requests, tokens);

        Assert.True(_loan.TryClaim(100));
        Assert.True(_loan.TryClaim(100));
        var granted = false;
        Message(gate, lender, () => granted = gate.TryAcquire(new PermitDemand(1, 100), out _));

        Assert.True(granted, "the third request of the minute goes to the gate");
        Assert.False(_loan.TryClaim(1), "and the loan has none left");
        Message(gate, lender, () => granted = gate.TryAcquire(new PermitDemand(1, 1), out _));
        Assert.False(granted);
        lender.Reclaim();
        Assert.Equal((3L, 3L, 300L), (_slots.InUse, requests.InUse, tokens.InUse));

        _clock.Advance(Minute);
        Message(gate, lender);
        Assert.Equal(3, ClaimAll(_loan, 1));
    }

    [Fact]
    public void Nothing_is_lent_while_someone_waits_and_the_queue_is_served_first()
    {
        var tokens = new TokenBucketPolicy(10, 10, Minute, PermitMeasure.Tokens);
        var (gate, lender) = Lending(tokens);
        Assert.True(_loan.TryClaim(4));

        var waiter = new TestWaiter("big", tokens: 8);
        Message(gate, lender, () => gate.Offer(waiter));

        Assert.Equal(1, gate.Waiting);
        Assert.False(_loan.IsOpen, "six tokens are free, but a waiter is first");
        Assert.False(_loan.TryClaim(1));

        _clock.Advance(Minute);
        Message(gate, lender, gate.Wake);
        Assert.True(waiter.IsGranted);
        Assert.Equal(2, ClaimAll(_loan, 1));
    }

    [Fact]
    public void A_bucket_counts_a_claim_before_its_refill_and_lends_the_refill_once()
    {
        var tokens = new TokenBucketPolicy(5, 5, Minute, PermitMeasure.Tokens);
        var (gate, lender) = Lending(tokens);
        Assert.Equal(3, Enumerable.Range(0, 3).Count(_ => _loan.TryClaim(1)));

        _clock.Advance(Minute);
        Assert.False(_loan.TryClaim(1), "the loan ended with the minute");
        Message(gate, lender);

        // Two left at the refill, refilled to the burst of five: not seven.
        Assert.Equal(5, ClaimAll(_loan, 1));
        Message(gate, lender);
        Assert.Equal(0, ClaimAll(_loan, 1));
        lender.Reclaim();
        Assert.Equal(5, tokens.InUse);
    }

    [Fact]
    public void A_window_counts_a_claim_in_the_segment_it_was_made_in()
    {
        var window = new SlidingWindowPolicy(2, Minute, 6, PermitMeasure.Calls);
        var (gate, lender) = Lending(window);

        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.False(_loan.TryClaim(1), "the loan ended with the first segment");
        Message(gate, lender);
        Assert.True(_loan.TryClaim(1)); // made in the second segment

        _clock.Advance(TimeSpan.FromSeconds(50)); // the first segment slid out, the second has not
        Message(gate, lender);
        Assert.Equal(1, ClaimAll(_loan, 1));
    }

    [Fact]
    public void Claimed_slots_stay_held_until_they_come_back_through_the_loan()
    {
        var requests = new TokenBucketPolicy(100, 100, Minute, PermitMeasure.Calls);
        var (gate, lender) = Lending(requests);
        Assert.Equal(8, ClaimAll(_loan, 0));

        Message(gate, lender);
        Assert.Equal(8, _slots.InUse);
        Assert.True(_loan.TryReturnSlot());
        Assert.True(_loan.TryReturnSlot());
        Assert.Equal(-2, _loan.ClaimedSlots);

        lender.Reclaim();
        Assert.Equal(6, _slots.InUse);
        lender.Lend(gate, _counts);
        Assert.Equal(2, ClaimAll(_loan, 0));
        lender.Reclaim();
        Assert.Equal((8L, 10L), (_slots.InUse, requests.InUse));
    }
}
