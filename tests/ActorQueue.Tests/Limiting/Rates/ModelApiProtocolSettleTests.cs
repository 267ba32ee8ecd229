using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>Actor callers of a model-API gatekeeper: an acquire carries its token estimate and a settle reports the real count, checked as a lease's.</summary>
public sealed class ModelApiProtocolSettleTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter() =>
        new(new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = _clock }, "model-api", system: Sys);

    [Fact]
    public async Task An_actor_settling_below_its_estimate_gives_the_unused_tokens_to_the_next_waiter()
    {
        using var limiter = Limiter();
        var first = CreateTestProbe();
        var second = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("first", 1) { Tokens = 600 }, first.Ref);
        var granted = await first.ExpectMsgAsync<Granted>();
        limiter.Gatekeeper.Tell(new Acquire("second", 1) { Tokens = 600 }, second.Ref);
        await second.ExpectMsgAsync<Queued>(); // 400 tokens left: the estimate counts

        limiter.Gatekeeper.Tell(new Settle(granted.LeaseId, 100), first.Ref);
        Assert.Equal(new Settled(granted.LeaseId, 100), await first.ExpectMsgAsync<Settled>());
        await second.ExpectMsgAsync<Granted>(); // 500 came back, no refill needed
    }

    [Fact]
    public async Task An_actor_settling_above_its_estimate_leaves_a_debt_the_next_refill_pays_first()
    {
        using var limiter = Limiter();
        var caller = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("caller", 1) { Tokens = 500 }, caller.Ref);
        var granted = await caller.ExpectMsgAsync<Granted>();
        limiter.Gatekeeper.Tell(new Settle(granted.LeaseId, 1500), caller.Ref);
        await caller.ExpectMsgAsync<Settled>();
        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), caller.Ref);

        _clock.Advance(Minute); // -500 + 1000: 500 left after the debt is paid
        limiter.Gatekeeper.Tell(new Acquire("caller", 2) { Tokens = 600 }, caller.Ref);
        await caller.ExpectMsgAsync<Queued>();
        limiter.Gatekeeper.Tell(new Acquire("caller", 3) { Tokens = 1 }, caller.Ref);
        await caller.ExpectMsgAsync<Queued>(); // behind the head, no barging
        limiter.Gatekeeper.Tell(new CancelAcquire(2), caller.Ref);
        var replies = await caller.ReceiveNAsync(2).ToListAsync();
        Assert.Contains(new Cancelled(2), replies);
        Assert.Equal(3, Assert.Single(replies.OfType<Granted>()).RequestId); // 1 token fits the 500 left
    }

    [Fact]
    public async Task A_settle_twice_after_release_by_another_actor_or_negative_is_refused_with_a_clear_error()
    {
        using var limiter = Limiter();
        var caller = CreateTestProbe();
        var stranger = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("caller", 1) { Tokens = 10 }, caller.Ref);
        var lease = (await caller.ExpectMsgAsync<Granted>()).LeaseId;

        limiter.Gatekeeper.Tell(new Settle(lease, -1), caller.Ref);
        var negative = Assert.IsType<ArgumentOutOfRangeException>((await caller.ExpectMsgAsync<Akka.Actor.Status.Failure>()).Cause);
        Assert.Equal(("ActualTokens", (object)-1L), (negative.ParamName, negative.ActualValue));

        limiter.Gatekeeper.Tell(new Settle(lease, 5), stranger.Ref);
        Assert.Contains("not held by the sender", (await stranger.ExpectMsgAsync<Akka.Actor.Status.Failure>()).Cause.Message);

        limiter.Gatekeeper.Tell(new Settle(lease, 5), caller.Ref);
        await caller.ExpectMsgAsync<Settled>();
        limiter.Gatekeeper.Tell(new Settle(lease, 5), caller.Ref);
        var twice = Assert.IsType<InvalidOperationException>((await caller.ExpectMsgAsync<Akka.Actor.Status.Failure>()).Cause);
        Assert.Contains("settled already", twice.Message);

        limiter.Gatekeeper.Tell(new Release(lease), caller.Ref);
        limiter.Gatekeeper.Tell(new Settle(lease, 5), caller.Ref);
        var released = Assert.IsType<InvalidOperationException>((await caller.ExpectMsgAsync<Akka.Actor.Status.Failure>()).Cause);
        Assert.Contains($"Lease {lease} of model-api is not held", released.Message);
    }

    [Fact]
    public async Task Negative_tokens_in_an_acquire_are_rejected_as_an_invalid_request()
    {
        using var limiter = Limiter();
        var caller = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("caller", 1) { Tokens = -5 }, caller.Ref);
        var rejected = await caller.ExpectMsgAsync<Rejected>();
        Assert.Equal((RejectionReason.InvalidRequest, "tokens must be >= 0, got -5"), (rejected.Kind, rejected.Reason));
    }
}
