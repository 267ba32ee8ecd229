using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>
/// A model-API limiter used only through <see cref="ModelApiLimiter.AcquireAsync"/> (no adapter ever made) claims from
/// its gatekeeper's loan from construction on, on a fake clock: a call the loan covers completes without a message, a
/// call never claims past a waiter, and nothing is claimed from a loan whose step has ended.
/// </summary>
public sealed class ModelApiAsyncClaimTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter(int maxConcurrent = 8, long tokensPerMinute = 1000, int? maxQueued = null, int? segments = null) =>
        new(new ModelApiLimiterOptions(maxConcurrent, 500, tokensPerMinute, Minute)
        {
            TimeProvider = _clock,
            MaxQueued = maxQueued,
            SlidingWindowSegments = segments,
        }, "model-api", system: Sys);

    private async Task<Status> StatusOf(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    [Fact]
    public async Task AcquireAsync_claims_without_a_message_from_construction_on_without_any_adapter()
    {
        using var limiter = Limiter();
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
        using var limiter = Limiter(tokensPerMinute: 1000, segments: segments);
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
        using var limiter = Limiter(tokensPerMinute: 1000, segments: segments);
        await Eventually(() => limiter.Loan.IsOpen, "the gatekeeper lends the whole minute's tokens");

        _clock.Advance(Minute);
        using var all = await Within(limiter.AcquireAsync(1000).AsTask());

        // A claim from the old loan would have been lost to the refill: the gatekeeper would then grant beyond the minute.
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(1, waitTimeout: TimeSpan.Zero).AsTask()));
        Assert.Equal(1, (await StatusOf(limiter)).Running);
    }
}
