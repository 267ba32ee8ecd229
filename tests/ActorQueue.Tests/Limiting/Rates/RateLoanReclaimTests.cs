using ActorQueue.Actors;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// What callers did not claim from a rate loan goes back into the step it was taken from, even when a message the
/// gatekeeper served from the open loan came as that step ended: before the fix, a request served from the loan moved
/// the rates on to the clock's time (to publish the next-refill gauge), and if the step ended between the claim and
/// that reading, the next reclaim gave the unclaimed requests back to the new window, which granted them twice.
/// </summary>
public sealed class RateLoanReclaimTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly MovedAfterReadClock _clock = new();

    /// <summary>Ten requests a minute, as a bucket or a window of <paramref name="segments"/>; nothing queues.</summary>
    private ModelApiLimiter Limiter(int? segments, string name) =>
        new(new ModelApiLimiterOptions(8, 10, 1000, Minute) { TimeProvider = _clock, MaxQueued = 0, SlidingWindowSegments = segments }, name, system: Sys);

    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task Requests_lent_and_not_claimed_before_a_window_ended_are_not_granted_again_in_the_next(int? segments)
    {
        using var limiter = Limiter(segments, "reclaim");
        var adapter = await ModelApiLoanTests.Lending(limiter);
        var claimed = adapter.AttemptAcquire(1); // one request of ten claimed; nine lent and not claimed
        Assert.True(claimed.IsAcquired);

        _clock.Advance(Minute);

        // Its slot comes back by message (its releaser found the loan shut), and the loan is open again: served from it.
        limiter.Gatekeeper.Tell(new ReleaseSlot(1), Akka.Actor.ActorRefs.NoSender);
        await StatusOf(limiter); // a message the loan does not serve: the nine unclaimed requests are reclaimed

        Assert.Equal(10, await GrantedNow(limiter));
    }

    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task A_request_served_from_the_loan_as_its_window_ends_leaves_the_unclaimed_requests_to_that_window(int? segments)
    {
        using var limiter = Limiter(segments, "reclaim-served");
        _ = await ModelApiLoanTests.Lending(limiter);

        // The gatekeeper serves it from the loan (ten lent, none claimed): its claim reads the clock in the minute, and
        // the minute ends right after that reading.
        var request = new RateAcquireRequest("test", limiter.Gatekeeper, signalQueued: false, estimatedTokens: 1, priority: 0, timeout: null);
        _clock.MoveAfterNextRead(Minute);
        limiter.Gatekeeper.Tell(request, Akka.Actor.ActorRefs.NoSender);
        using var served = await Within(request.WaitAsync(CancellationToken.None).AsTask());
        Assert.True(served.LeaseId < 0, "served from the loan");
        await StatusOf(limiter); // a message the loan does not serve: the nine unclaimed requests are reclaimed

        Assert.Equal(10, await GrantedNow(limiter)); // the new minute's ten, not the old minute's unclaimed nine on top
    }

    /// <summary>How many calls that will not wait are granted now, one after another, each given back at once.</summary>
    private async Task<int> GrantedNow(ModelApiLimiter limiter)
    {
        var granted = 0;
        for (var i = 0; i < 30; i++)
        {
            try
            {
                using var lease = await Within(limiter.AcquireAsync(1, waitTimeout: TimeSpan.Zero).AsTask());
                granted++;
            }
            catch (Exception error) when (error is ConcurrencyWaitTimeoutException or ConcurrencyLimitExceededException)
            {
                break;
            }
        }

        return granted;
    }

    private async Task<Status> StatusOf(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }
}
