using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The loan a gatekeeper with rates shares with callers that need not wait, on its own: racing claims and returns, the step's end, shut and closed.</summary>
public sealed class RateLoanTests
{
    private readonly FakeTimeProvider _clock = new();

    private RateLoan OpenLoan(long slots, long calls, long tokens, TimeSpan? step = null)
    {
        var loan = new RateLoan(_clock);
        loan.Lend(slots, calls, tokens, _clock.GetTimestamp() + (long)((step ?? TimeSpan.FromMinutes(1)).TotalSeconds * _clock.TimestampFrequency), capped: LoanCaps.None);
        return loan;
    }

    [Fact]
    public async Task Racing_claimers_never_take_more_than_was_lent_and_the_reclaim_accounts_for_every_claim()
    {
        const long slots = 300, calls = 500, tokens = 2000;
        var loan = OpenLoan(slots, calls, tokens);
        var claimedCalls = 0L;
        var claimedTokens = 0L;
        using var start = new Barrier(4);

        var racers = Enumerable.Range(0, 4).Select(racer => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 5000; i++)
            {
                var want = 1 + ((racer + i) % 7);
                if (loan.TryClaim(want))
                {
                    Interlocked.Increment(ref claimedCalls);
                    Interlocked.Add(ref claimedTokens, want);
                }
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(racers).WaitAsync(TimeSpan.FromSeconds(30));

        var (wasOpen, slotsLeft, callsLeft, tokensLeft) = loan.Reclaim();
        Assert.True(wasOpen);
        Assert.InRange(claimedCalls, 1, slots);
        Assert.InRange(claimedTokens, 1, tokens);
        Assert.Equal(slots - claimedCalls, slotsLeft);
        Assert.Equal(calls - claimedCalls, callsLeft);
        Assert.Equal(tokens - claimedTokens, tokensLeft);
        Assert.False(loan.TryClaim(1), "a reclaimed loan is shut");
    }

    [Fact]
    public async Task Slots_returned_while_others_claim_come_back_exactly_once()
    {
        const long slots = 3;
        var loan = OpenLoan(slots, RateLoan.MaxCalls, RateLoan.MaxTokens);
        var inside = 0;
        var most = 0;
        var granted = 0L;
        using var start = new Barrier(4);

        var racers = Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 20_000; i++)
            {
                if (!loan.TryClaim(1))
                {
                    continue;
                }

                Interlocked.Increment(ref granted);
                Poll.InterlockedMax(ref most, Interlocked.Increment(ref inside));
                Interlocked.Decrement(ref inside);
                Assert.True(loan.TryReturnSlot(), "an open loan takes a slot back");
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(racers).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.InRange(most, 1, (int)slots);
        Assert.Equal(0, loan.ClaimedSlots);
        var (_, slotsLeft, callsLeft, _) = loan.Reclaim();
        Assert.Equal(slots, slotsLeft);
        Assert.Equal(RateLoan.MaxCalls - granted, callsLeft);
    }

    [Fact]
    public void No_claim_succeeds_once_the_step_has_ended_and_the_first_refused_claimer_asks_for_a_renewal_once()
    {
        var loan = OpenLoan(8, 10, 100, step: TimeSpan.FromSeconds(10));
        Assert.True(loan.TryClaim(5));

        _clock.Advance(TimeSpan.FromSeconds(10));

        Assert.False(loan.TryClaim(5));
        Assert.False(loan.Covers(0));
        Assert.True(loan.ShouldAskRenewal());
        Assert.False(loan.ShouldAskRenewal());
        var (_, slots, calls, tokens) = loan.Reclaim();
        Assert.Equal((7L, 9L, 95L), (slots, calls, tokens));
    }

    [Fact]
    public void A_spent_loan_asks_for_a_renewal_only_when_the_gatekeeper_had_more_than_it_could_hold()
    {
        var loan = OpenLoan(8, 1, 100);
        Assert.True(loan.TryClaim(1));
        Assert.False(loan.TryClaim(1));
        Assert.False(loan.ShouldAskRenewal());

        loan.Reclaim();
        loan.Lend(8, 1, 100, long.MaxValue, capped: LoanCaps.Calls);
        Assert.True(loan.TryClaim(1));
        Assert.False(loan.TryClaim(1));
        Assert.True(loan.ShouldAskRenewal());
    }

    [Fact]
    public void A_claim_needs_a_slot_a_request_and_its_tokens_at_once()
    {
        Assert.False(OpenLoan(0, 10, 100).TryClaim(1));
        Assert.False(OpenLoan(10, 0, 100).TryClaim(1));
        Assert.False(OpenLoan(10, 10, 4).TryClaim(5));
        Assert.False(OpenLoan(10, 10, RateLoan.MaxTokens).TryClaim(RateLoan.MaxTokens + 1));
        var loan = OpenLoan(1, 1, 5);
        Assert.True(loan.TryClaim(5));
        Assert.Equal(1, loan.ClaimedSlots);
        Assert.Equal((true, 0L, 0L, 0L), loan.Reclaim());
    }

    [Fact]
    public void A_shut_or_closed_loan_refuses_claims_and_returned_slots()
    {
        var loan = new RateLoan(_clock);
        Assert.False(loan.TryClaim(1));
        Assert.False(loan.TryReturnSlot());
        Assert.False(loan.Reclaim().WasOpen);

        loan.Lend(4, 4, 4, long.MaxValue, capped: LoanCaps.None);
        loan.Close();
        Assert.False(loan.TryClaim(1));
        Assert.False(loan.TryReturnSlot());
        Assert.False(loan.IsOpen);
    }

    [Fact]
    public void A_slot_comes_back_by_message_when_the_loan_was_lent_beyond_the_pools_limit()
    {
        var loan = new RateLoan(_clock);
        loan.Lend(0, 4, 4, long.MaxValue, LoanCaps.None, withinLimit: false);
        Assert.False(loan.TryReturnSlot());

        loan.Reclaim();
        loan.Lend(0, 4, 4, long.MaxValue, LoanCaps.None, withinLimit: true);
        Assert.True(loan.TryReturnSlot());
    }

    [Fact]
    public void A_closed_loan_stays_closed_through_a_reclaim_and_a_lend()
    {
        var loan = new RateLoan(_clock);
        loan.Close();

        Assert.False(loan.Reclaim().WasOpen);
        loan.Lend(4, 4, 4, long.MaxValue, LoanCaps.None);

        Assert.False(loan.IsOpen);
        Assert.False(loan.TryClaim(1));
    }

    [Fact]
    public void Closing_an_open_loan_keeps_what_nobody_claimed_for_the_gatekeepers_last_reclaim()
    {
        var loan = OpenLoan(4, 4, 100);
        Assert.True(loan.TryClaim(30));

        loan.Close();

        Assert.Equal((true, 3L, 3L, 70L), loan.Reclaim());
        Assert.False(loan.Reclaim().WasOpen);
        Assert.False(loan.IsOpen);
    }
}
