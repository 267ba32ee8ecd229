using ActorQueue.Actors;
using ActorQueue.Telemetry;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The rates' metrics: tokens granted and settled, seconds until the next refill, rejections by reason. Each test has its own limiter name.</summary>
public sealed class RateTelemetryTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();
    private LimiterMetrics? _metrics;

    private readonly string _name = $"rates-{Guid.NewGuid():N}";

    private LimiterMetrics Listen() => _metrics = new LimiterMetrics(_name);

    private double Value(string key) => _metrics!.Value(key);

    /// <summary>
    /// Waits until the gatekeeper's first message has lent anew. The loan is open from construction, so waiting for an
    /// open loan alone passes at once, and a claim made while that message has it shut goes by message (or is refused):
    /// a status round trip comes after the first message; the lend that ends it is waited for.
    /// </summary>
    private async Task LendingAfterTheFirstMessage(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();
        await Eventually(() => limiter.Loan.IsOpen, "the gatekeeper lends again");
    }

    [Fact]
    public async Task Tokens_granted_and_settled_and_rejections_by_reason_are_counted()
    {
        using var listener = Listen();
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = _clock, MaxQueued = 0 }, _name, system: Sys);

        using var first = await Within(limiter.AcquireAsync(700).AsTask());
        first.Settle(650);
        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(limiter.AcquireAsync(400).AsTask()));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(400, waitTimeout: TimeSpan.Zero).AsTask()));

        await Eventually(() => Value(ActorQueueTelemetry.LimiterTokensSettled) == 650, "the settle was counted");
        Assert.Equal(700, Value(ActorQueueTelemetry.LimiterTokensGranted));
        Assert.Equal(1, Value($"{ActorQueueTelemetry.LimiterRejections}:queue_full"));
        Assert.Equal(1, Value($"{ActorQueueTelemetry.LimiterRejections}:would_wait"));
    }

    [Fact]
    public async Task The_next_refill_gauge_counts_down_on_the_limiters_clock_and_stops_at_rest()
    {
        using var listener = Listen();
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = _clock }, _name, system: Sys);
        listener.RecordObservableInstruments();
        Assert.Equal(0, Value(ActorQueueTelemetry.LimiterNextRefill)); // a full limiter reports nothing

        (await Within(limiter.AcquireAsync(10).AsTask())).Dispose();
        _clock.Advance(TimeSpan.FromSeconds(20));
        await Eventually(() => limiter.RunningCount == 0, "the release was handled");

        // The claim went into the loan and its slot back into it: the gauge moves with the gatekeeper's next message.
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();

        listener.RecordObservableInstruments();
        Assert.Equal(40d, Value(ActorQueueTelemetry.LimiterNextRefill));
    }

    [Fact]
    public async Task Tokens_claimed_from_the_last_loan_are_counted_when_the_limiter_is_disposed()
    {
        using var listener = Listen();
        var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = _clock, MaxQueued = 0 }, _name, system: Sys);
        var adapter = limiter.AsRateLimiter();
        await LendingAfterTheFirstMessage(limiter);
        using (var lease = adapter.AttemptAcquire(300))
        {
            Assert.True(lease.IsAcquired);
        }

        // No message reclaims the loan before the dispose: the claim is counted only if stopping reclaims it.
        await limiter.DisposeAsync();

        Assert.Equal(300, Value(ActorQueueTelemetry.LimiterTokensGranted));
    }

    [Fact]
    public async Task Slots_and_tokens_claimed_by_AcquireAsync_are_counted_once_the_gatekeeper_reclaims()
    {
        using var listener = Listen();
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = _clock }, _name, system: Sys);
        await LendingAfterTheFirstMessage(limiter);

        var pending = limiter.AcquireAsync(300);
        Assert.True(pending.IsCompletedSuccessfully, "claimed from the loan");
        using var lease = await pending;
        Assert.Equal(1, limiter.RunningCount);

        // Any message reclaims the loan: the claim then shows in the gatekeeper's counts and the tokens-granted counter.
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        Assert.Equal(1, (await probe.ExpectMsgAsync<GatekeeperProtocol.Status>()).Running);
        await Eventually(() => Value(ActorQueueTelemetry.LimiterTokensGranted) == 300, "the claimed tokens were counted");

        // The status's message publishes the counts at its end, after its reply: until then the reclaimed claim shows in
        // neither the loan nor the published count. A second status is answered after the first message ended.
        limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        await probe.ExpectMsgAsync<GatekeeperProtocol.Status>();
        Assert.Equal(1, limiter.RunningCount);
    }

    [Fact]
    public async Task Calls_claimed_from_the_loan_are_counted_as_acquired_without_a_wait()
    {
        using var listener = Listen();
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 500, 1000, Minute) { TimeProvider = _clock }, _name, system: Sys);
        var adapter = limiter.AsRateLimiter();
        await LendingAfterTheFirstMessage(limiter);

        var pending = limiter.AcquireAsync(10);
        Assert.True(pending.IsCompletedSuccessfully, "claimed from the loan");
        using var first = await pending;
        using var second = adapter.AttemptAcquire(10);
        using var third = await adapter.AcquireAsync(10);
        Assert.True(second.IsAcquired && third.IsAcquired);

        // Counted on the claimer's thread, as the gatekeeper counts a grant without a wait.
        Assert.Equal(3, Value(ActorQueueTelemetry.LimiterAcquired));
        Assert.Equal(3, Value(ActorQueueTelemetry.LimiterPermitsGranted));
    }
}
