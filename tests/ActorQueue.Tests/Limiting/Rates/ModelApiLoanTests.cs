using System.Threading.RateLimiting;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// The model-API limiter lending to callers that need not wait, through its gatekeeper on a fake clock: synchronous and
/// asynchronous claims take from the rates like any grant, a claim after a refill is served once the gatekeeper has
/// counted it, a claimed call settles, and racing callers never exceed a limit. The limiter's own AcquireAsync claims
/// from construction on (no adapter made), never past a waiter and never from a loan whose step has ended.
/// </summary>
public sealed class ModelApiLoanTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter(int maxConcurrent = 8, int requestsPerMinute = 500, long tokensPerMinute = 1000, int? maxQueued = 0, int? segments = null) =>
        new(new ModelApiLimiterOptions(maxConcurrent, requestsPerMinute, tokensPerMinute, Minute)
        {
            TimeProvider = _clock,
            MaxQueued = maxQueued,
            SlidingWindowSegments = segments,
        }, "model-api", system: Sys);

    /// <summary>The adapter, once the gatekeeper lends.</summary>
    internal static async Task<RateLimiter> Lending(ModelApiLimiter limiter)
    {
        var adapter = limiter.AsRateLimiter();
        // A limiter lends from its construction, and its gatekeeper lends anew after its first message: a round trip
        // waits for that, so whatever the test does to the clock next comes after it.
        await Akka.Actor.Futures.Ask<Status>(limiter.Gatekeeper, GetStatus.Instance, TimeSpan.FromSeconds(10));
        await Poll.UntilAsync(() => limiter.Loan.IsOpen, TimeSpan.FromSeconds(10), "the gatekeeper lends");
        return adapter;
    }

    private async Task<Status> StatusOf(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    [Fact]
    public async Task Synchronous_claims_take_from_the_rates_and_the_gatekeeper_refuses_what_they_spent()
    {
        using var limiter = Limiter(requestsPerMinute: 3);
        var adapter = await Lending(limiter);

        var claims = Enumerable.Range(0, 3).Select(_ => adapter.AttemptAcquire(100)).ToList();
        using var fourth = adapter.AttemptAcquire(100);
        using var refused = await Within(adapter.AcquireAsync(1).AsTask());

        Assert.All(claims, claim => Assert.True(claim.IsAcquired));
        Assert.False(fourth.IsAcquired);
        Assert.True(fourth.TryGetMetadata(MetadataName.ReasonPhrase, out _));
        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.Equal(Minute, retryAfter);
        Assert.Equal(3, limiter.RunningCount);
        Assert.Equal(3, (await StatusOf(limiter)).Running);

        claims.ForEach(claim => claim.Dispose());
        await Eventually(() => limiter.RunningCount == 0, "every claimed slot came back");
        Assert.Equal(0, (await StatusOf(limiter)).Running);
        Assert.Equal(3, adapter.GetStatistics()!.TotalSuccessfulLeases);
    }

    [Fact]
    public async Task A_claimed_lease_disposed_twice_gives_its_slot_back_once()
    {
        using var limiter = Limiter(maxConcurrent: 2);
        var adapter = await Lending(limiter);
        var first = adapter.AttemptAcquire(1);
        using var second = adapter.AttemptAcquire(1);
        Assert.True(first.IsAcquired && second.IsAcquired);

        first.Dispose();
        first.Dispose();

        Assert.Equal(1, limiter.RunningCount);
        using var third = adapter.AttemptAcquire(1);
        using var fourth = adapter.AttemptAcquire(1);
        Assert.True(third.IsAcquired);
        Assert.False(fourth.IsAcquired, "the second dispose gave nothing back: one slot was free, not two");
        Assert.Equal(3, adapter.GetStatistics()!.TotalSuccessfulLeases);
    }

    [Fact]
    public async Task A_synchronous_attempt_after_the_refill_gets_the_gatekeeper_to_lend_the_refill_once()
    {
        using var limiter = Limiter(requestsPerMinute: 2);
        var adapter = await Lending(limiter);
        adapter.AttemptAcquire(1).Dispose();
        adapter.AttemptAcquire(1).Dispose();
        Assert.False(adapter.AttemptAcquire(1).IsAcquired);

        _clock.Advance(Minute);
        Assert.False(adapter.AttemptAcquire(1).IsAcquired, "the loan ended with the minute");
        await Poll.UntilAsync(() => limiter.Loan.Covers(1), TimeSpan.FromSeconds(10), "the refused attempt asked for the refill");

        Assert.True(adapter.AttemptAcquire(1).IsAcquired);
        Assert.True(adapter.AttemptAcquire(1).IsAcquired);
        Assert.False(adapter.AttemptAcquire(1).IsAcquired);
    }

    [Fact]
    public async Task A_call_claimed_without_waiting_settles_like_any_other()
    {
        using var limiter = Limiter(tokensPerMinute: 1000);
        var adapter = await Lending(limiter);

        var pending = limiter.AcquireAsync(800);
        Assert.True(pending.IsCompletedSuccessfully, "claimed from the loan: no round trip");
        using var lease = await pending;
        Assert.True(lease.LeaseId < 0);
        Assert.False(adapter.AttemptAcquire(300).IsAcquired);

        lease.Settle(100);
        await StatusOf(limiter);
        await Poll.UntilAsync(() => limiter.Loan.Covers(900), TimeSpan.FromSeconds(10), "the unused 700 tokens are lent again");
        using var rest = adapter.AttemptAcquire(900);
        Assert.True(rest.IsAcquired);
        Assert.False(adapter.AttemptAcquire(1).IsAcquired);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task Racing_synchronous_and_asynchronous_callers_never_exceed_the_slots_or_the_minutes_requests(int? segments)
    {
        const int maxConcurrent = 3, requests = 400;
        using var limiter = Limiter(maxConcurrent, requestsPerMinute: requests, tokensPerMinute: 100_000, maxQueued: null, segments: segments);
        var adapter = await Lending(limiter);
        var inside = 0;
        var most = 0;
        var granted = 0;
        var synchronous = 0;

        async Task Caller(int caller)
        {
            for (var i = 0; i < 150; i++)
            {
                using var lease = caller % 2 == 0 ? adapter.AttemptAcquire(1 + (i % 5)) : await adapter.AcquireAsync(1 + (i % 5));
                if (!lease.IsAcquired)
                {
                    await Task.Yield();
                    continue;
                }

                Interlocked.Increment(ref granted);
                if (caller % 2 == 0)
                {
                    Interlocked.Increment(ref synchronous);
                }

                Poll.InterlockedMax(ref most, Interlocked.Increment(ref inside));
                await Task.Yield();
                Interlocked.Decrement(ref inside);
            }
        }

        // The clock stands still, so each minute grants its requests exactly: the asynchronous callers alone ask for more.
        var callers = Task.WhenAll(Enumerable.Range(0, 6).Select(caller => InAnotherFlow(() => Caller(caller))));
        for (var minute = 1; !callers.IsCompleted; minute++)
        {
            await Poll.UntilAsync(() => callers.IsCompleted || Volatile.Read(ref granted) >= minute * requests, TimeSpan.FromSeconds(20),
                                  () => $"minute {minute}'s requests are spent or the callers are done ({granted} granted)");
            Assert.True(Volatile.Read(ref granted) <= minute * requests, $"granted {granted} in {minute} minute(s) of {requests} requests");
            _clock.Advance(Minute);
        }

        await callers;
        Assert.InRange(most, 1, maxConcurrent);
        Assert.True(synchronous > 0, "some synchronous attempts were granted");
        await Eventually(() => limiter.RunningCount == 0, "every slot came back");
    }

    [Fact]
    public async Task AcquireAsync_claims_without_a_message_from_construction_on_without_any_adapter()
    {
        using var limiter = Limiter(maxQueued: null);
        // The loan is open from construction, and the gatekeeper's first message shuts it while it reclaims and lends
        // anew: a claim in that instant goes by message. A status round trip comes after that first message; wait for
        // the lend that ends it (no adapter is made, so it is the limiter's own lending that is waited for).
        await StatusOf(limiter);
        await Eventually(() => limiter.Loan.IsOpen, "the gatekeeper lends without being asked by an adapter");

        var pending = limiter.AcquireAsync(100);

        Assert.True(pending.IsCompletedSuccessfully, "claimed from the loan: no round trip");
        using var lease = await pending;
        Assert.True(lease.LeaseId < 0, "a claimed lease is numbered apart from the gate's");
        Assert.Equal(1, limiter.RunningCount);
        Assert.Equal(1, (await StatusOf(limiter)).Running);
        lease.Dispose();
        await Eventually(() => limiter.RunningCount == 0, "the claimed slot came back");
    }

    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task A_call_the_loan_would_cover_does_not_pass_a_waiter(int? segments)
    {
        using var limiter = Limiter(tokensPerMinute: 1000, maxQueued: null, segments: segments);
        await Eventually(() => limiter.Loan.IsOpen, "the gatekeeper lends");
        using var first = await limiter.AcquireAsync(600);
        var second = limiter.AcquireAsync(600);
        await Eventually(() => limiter.WaitingCount == 1, "the second call waits for tokens");

        // 400 tokens and seven slots are free, but someone waits: nothing may be lent, so the third waits behind it.
        var third = limiter.AcquireAsync(100);

        Assert.False(third.IsCompleted, "the third call passed the waiter");
        Assert.Equal(2, (await StatusOf(limiter)).Waiting);
        _clock.Advance(Minute);
        using var secondLease = await Within(second.AsTask());
        using var thirdLease = await Within(third.AsTask());
        Assert.True(secondLease.LeaseId < thirdLease.LeaseId, "granted in arrival order");
    }

    [Theory]
    [InlineData(null)]
    [InlineData(6)]
    public async Task Nothing_is_claimed_from_a_loan_whose_step_has_ended(int? segments)
    {
        using var limiter = Limiter(tokensPerMinute: 1000, maxQueued: null, segments: segments);
        await Eventually(() => limiter.Loan.IsOpen, "the gatekeeper lends the whole minute's tokens");

        _clock.Advance(Minute);
        using var all = await Within(limiter.AcquireAsync(1000).AsTask());

        // A claim from the old loan would have been lost to the refill: the gatekeeper would then grant beyond the minute.
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(1, waitTimeout: TimeSpan.Zero).AsTask()));
        Assert.Equal(1, (await StatusOf(limiter)).Running);
    }
}
