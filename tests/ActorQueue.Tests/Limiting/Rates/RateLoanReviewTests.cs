using ActorQueue.Actors;
using Akka.Actor;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// Review of the rate loan (branch review/rates): defects found in the lending of slots, requests and tokens. Each test
/// states the behaviour the contract asks for; on the merged code they fail.
/// </summary>
public sealed class RateLoanReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter(int maxConcurrent, int requestsPerMinute = 500, long tokensPerMinute = 1000) =>
        new(new ModelApiLimiterOptions(maxConcurrent, requestsPerMinute, tokensPerMinute, Minute)
        {
            TimeProvider = _clock,
            MaxQueued = 0,
        }, "model-api-review", system: Sys);

    private async Task<Status> StatusOf(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    [Fact]
    public async Task A_slot_returned_into_the_loan_after_a_shrink_is_not_lent_beyond_the_new_limit()
    {
        using var limiter = Limiter(maxConcurrent: 4);
        var adapter = await ModelApiLoanTests.Lending(limiter);
        var held = Enumerable.Range(0, 4).Select(_ => adapter.AttemptAcquire(1)).ToList();
        Assert.All(held, lease => Assert.True(lease.IsAcquired));

        limiter.Gatekeeper.Tell(new Resize(MaxRunning: 1, MaxQueued: null), ActorRefs.NoSender);
        var status = await StatusOf(limiter);
        Assert.Equal((4, 1), (status.Running, status.MaxRunning));
        await Poll.UntilAsync(() => limiter.Loan.IsOpen, TimeSpan.FromSeconds(10), "the gatekeeper lends after the status");

        // Two of four come back: two still run, one more than the new limit allows.
        held[0].Dispose();
        held[1].Dispose();
        using var extra = adapter.AttemptAcquire(1);

        Assert.False(extra.IsAcquired, "a third call in flight while the limit is 1 and two still run");
        held.ForEach(lease => lease.Dispose());
    }

    [Fact]
    public async Task A_claim_refused_for_want_of_a_slot_asks_no_renewal_because_the_tokens_were_capped()
    {
        // More tokens per minute than the loan's 31 bits hold: every loan is capped on tokens.
        using var limiter = Limiter(maxConcurrent: 1, tokensPerMinute: 5_000_000_000);
        var adapter = await ModelApiLoanTests.Lending(limiter);
        using var held = adapter.AttemptAcquire(1);
        Assert.True(held.IsAcquired);

        Assert.False(limiter.Loan.TryClaim(1));

        // The gatekeeper has no free slot; a renewal lends the same nothing and resets the flag, so each refused attempt
        // would cost the gatekeeper a message and a reclaim-and-lend.
        Assert.False(limiter.Loan.ShouldAskRenewal(), "renewing cannot help a claim that failed on slots, which were not capped");
    }
    [Fact]
    public async Task A_limiter_with_more_slots_and_requests_than_a_loan_holds_lends_them_all_a_loan_at_a_time()
    {
        // 40,000 in flight (a loan holds 32,767 slots) out of 70,000 requests a minute (a loan holds 65,535): a claim
        // that finds a capped field spent asks a renewal, which lends the rest.
        const int InFlight = 40_000, Requests = 70_000;
        using var limiter = Limiter(maxConcurrent: InFlight, requestsPerMinute: Requests, tokensPerMinute: Requests);
        var adapter = await ModelApiLoanTests.Lending(limiter);

        var held = new List<System.Threading.RateLimiting.RateLimitLease>();
        for (var i = 0; i < Requests; i++)
        {
            // Calls are held until all but one slot are; the rest come and go through that one, so the last loans are capped on requests.
            await Poll.UntilAsync(() =>
            {
                var lease = adapter.AttemptAcquire(1);
                if (!lease.IsAcquired)
                {
                    return false;
                }

                if (held.Count < InFlight - 1)
                {
                    held.Add(lease);
                }
                else
                {
                    lease.Dispose();
                }

                return true;
            }, TimeSpan.FromSeconds(10), $"call {i + 1} of {Requests}, each slot and request free");
        }

        using var beyond = adapter.AttemptAcquire(1);
        Assert.False(beyond.IsAcquired, "a call beyond the minute's requests");
        Assert.Equal(InFlight - 1, (await StatusOf(limiter)).Running);
        held.ForEach(lease => lease.Dispose());
    }
}
