using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// A model-API gatekeeper serving from its own open loan (<see cref="RateLender.TryServe"/>): a request that reaches it
/// while the loan is open is granted from the loan, which stays open and counts it against the rates; a withdrawn
/// request takes nothing; a lease the gate granted gives its slot back into an open loan; and the gatekeeper's own
/// claim, put back, restores the loan exactly.
/// </summary>
public sealed class GatekeeperServedLoanTests : ActorQueueTestKit
{
    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter(int maxConcurrent = 8, int requestsPerMinute = 500) =>
        new(new ModelApiLimiterOptions(maxConcurrent, requestsPerMinute, 10_000, TimeSpan.FromMinutes(1)) { TimeProvider = _clock }, "served", system: Sys);

    private static RateAcquireRequest Request(ModelApiLimiter limiter, long tokens = 10) =>
        new("test", limiter.Gatekeeper, signalQueued: false, tokens, priority: 0, timeout: null);

    private async Task<Status> StatusOf(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    [Fact]
    public async Task A_request_reaching_the_gatekeeper_while_the_loan_is_open_is_served_from_it_and_counted_against_the_rates()
    {
        using var limiter = Limiter(requestsPerMinute: 3);
        var adapter = await ModelApiLoanTests.Lending(limiter);
        var request = Request(limiter);

        limiter.Gatekeeper.Tell(request, Akka.Actor.ActorRefs.NoSender);
        var lease = await Within(request.WaitAsync(CancellationToken.None).AsTask());

        // Served from the loan: a claimed lease's number, and the slot counted as claimed from the loan, which is still open.
        Assert.True(lease.LeaseId < 0, $"lease {lease.LeaseId} is a claimed lease's");
        Assert.True(limiter.Loan.IsOpen, "serving the request left the loan open");
        Assert.Equal(1, limiter.Loan.ClaimedSlots);
        Assert.Equal(1, limiter.RunningCount);

        // The request it took counts: two more calls fit this minute, a third does not.
        using var second = adapter.AttemptAcquire(1);
        using var third = adapter.AttemptAcquire(1);
        using var fourth = adapter.AttemptAcquire(1);
        Assert.True(second.IsAcquired && third.IsAcquired);
        Assert.False(fourth.IsAcquired, "three requests per minute: the served request was the first");

        lease.Dispose();
        Assert.Equal(2, limiter.RunningCount);
        Assert.Equal(2, (await StatusOf(limiter)).Running);
    }

    [Fact]
    public async Task A_request_withdrawn_before_the_gatekeeper_reaches_it_takes_nothing()
    {
        using var limiter = Limiter(requestsPerMinute: 2);
        var adapter = await ModelApiLoanTests.Lending(limiter);
        var request = Request(limiter);
        using var cancel = new CancellationTokenSource();
        var wait = request.WaitAsync(cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(wait));

        limiter.Gatekeeper.Tell(request, Akka.Actor.ActorRefs.NoSender);
        // A message behind it: once answered, the withdrawn request was handled.
        Assert.Equal(0, (await StatusOf(limiter)).Running);

        await Poll.UntilAsync(() => limiter.Loan.IsOpen, TimeSpan.FromSeconds(10), "the gatekeeper lends again");
        using var first = adapter.AttemptAcquire(1);
        using var second = adapter.AttemptAcquire(1);
        Assert.True(first.IsAcquired && second.IsAcquired, "both requests of the minute are still there");
        Assert.Equal(2, limiter.RunningCount);
    }

    [Fact]
    public async Task A_lease_the_gate_granted_gives_its_slot_back_into_an_open_loan_once()
    {
        using var limiter = Limiter(maxConcurrent: 1);
        var adapter = await ModelApiLoanTests.Lending(limiter);
        var held = adapter.AttemptAcquire(1);
        Assert.True(held.IsAcquired);

        // Queued behind the held slot, so the gate grants it (a lease number of the gate's).
        var waiting = limiter.AcquireAsync(1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second call waits");
        held.Dispose();
        var granted = await Within(waiting);
        Assert.True(granted.LeaseId > 0, $"lease {granted.LeaseId} is the gate's");

        await Poll.UntilAsync(() => limiter.Loan.IsOpen, TimeSpan.FromSeconds(10), "the gatekeeper lends again, the slot held");
        Assert.False(adapter.AttemptAcquire(1).IsAcquired, "the only slot is held");
        granted.Dispose();
        granted.Dispose();

        // Back into the loan, without a message: claimable at once, and only once.
        using var next = adapter.AttemptAcquire(1);
        using var beyond = adapter.AttemptAcquire(1);
        Assert.True(next.IsAcquired);
        Assert.False(beyond.IsAcquired, "the slot came back once");
        Assert.Equal(1, limiter.RunningCount);
        Assert.Equal(1, (await StatusOf(limiter)).Running);
    }

    [Fact]
    public void A_claim_put_back_restores_the_loan_and_a_closed_loan_takes_nothing_back()
    {
        var loan = new RateLoan(_clock);
        loan.Lend(2, 5, 100, _clock.GetTimestamp() + _clock.TimestampFrequency * 60, LoanCaps.None);
        Assert.True(loan.TryClaim(30));
        Assert.True(loan.Unclaim(30));
        Assert.Equal((true, 2L, 5L, 100L), loan.Reclaim());

        loan.Lend(1, 5, 100, _clock.GetTimestamp() + _clock.TimestampFrequency * 60, LoanCaps.None);
        Assert.True(loan.TryClaim(30));
        loan.Close();
        Assert.False(loan.Unclaim(30), "a closed loan takes nothing back");
        Assert.Equal((true, 0L, 4L, 70L), loan.Reclaim());
    }

    [Fact]
    public void A_claim_put_back_into_a_loan_full_of_slots_restores_its_request_and_tokens_and_hands_the_slot_on()
    {
        var loan = new RateLoan(_clock);
        loan.Lend(RateLoan.MaxSlots, 5, 100, _clock.GetTimestamp() + _clock.TimestampFrequency * 60, LoanCaps.None);
        Assert.True(loan.TryClaim(30));
        Assert.True(loan.TryReturnSlot(), "a slot granted elsewhere fills the loan");

        Assert.False(loan.Unclaim(30), "no room for the slot");
        Assert.Equal((true, RateLoan.MaxSlots, 5L, 100L), loan.Reclaim());
    }
}
