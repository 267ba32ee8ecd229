using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The model-API limit through its gatekeeper actor, on a fake clock: grants, refills, settle, timeouts, bad input.</summary>
public sealed class ModelApiLimiterTests : ActorQueueTestKit
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly FakeTimeProvider _clock = new();

    private ModelApiLimiter Limiter(int maxConcurrent = 8, int requestsPerMinute = 500, long tokensPerMinute = 1000, TimeSpan? waitTimeout = null, int? maxQueued = null) =>
        new(new ModelApiLimiterOptions(maxConcurrent, requestsPerMinute, tokensPerMinute, Minute)
        {
            TimeProvider = _clock,
            WaitTimeout = waitTimeout,
            MaxQueued = maxQueued,
        }, "model-api", system: Sys);

    /// <summary>The gatekeeper's counts once it has handled everything sent before (and armed its timer for it).</summary>
    private async Task<Status> StatusOf(ModelApiLimiter limiter)
    {
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    [Fact]
    public async Task A_call_waits_for_tokens_holding_no_slot_and_the_refill_grants_it()
    {
        using var limiter = Limiter();
        using var big = await Within(limiter.AcquireAsync(900).AsTask());
        var waiting = limiter.AcquireAsync(200).AsTask();

        Assert.Equal(new Status(1, 1, 8, null, "model-api"), await StatusOf(limiter));
        Assert.False(waiting.IsCompleted);

        _clock.Advance(Minute);
        using var lease = await Within(waiting);
        Assert.Equal(200, lease.EstimatedTokens);
        Assert.Equal(2, limiter.RunningCount);
    }

    [Fact]
    public async Task The_requests_rate_holds_a_call_back_until_the_next_minute()
    {
        using var limiter = Limiter(requestsPerMinute: 2);
        (await Within(limiter.AcquireAsync(1).AsTask())).Dispose();
        (await Within(limiter.AcquireAsync(1).AsTask())).Dispose();
        var third = limiter.AcquireAsync(1).AsTask();

        Assert.Equal(1, (await StatusOf(limiter)).Waiting);
        _clock.Advance(Minute - TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        _clock.Advance(TimeSpan.FromMilliseconds(1));
        (await Within(third)).Dispose();
    }

    [Fact]
    public async Task As_sliding_windows_a_request_comes_back_exactly_one_period_after_its_segment_began()
    {
        using var limiter = new ModelApiLimiter(new ModelApiLimiterOptions(8, 2, 1000, Minute) { TimeProvider = _clock, SlidingWindowSegments = 6 }, "windowed", system: Sys);
        (await Within(limiter.AcquireAsync(1).AsTask())).Dispose();          // segment [0 s, 10 s)
        _clock.Advance(TimeSpan.FromSeconds(25));
        (await Within(limiter.AcquireAsync(1).AsTask())).Dispose();          // segment [20 s, 30 s)
        var third = limiter.AcquireAsync(1).AsTask();
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        _clock.Advance(TimeSpan.FromSeconds(35) - TimeSpan.FromTicks(1));
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);
        _clock.Advance(TimeSpan.FromTicks(1));
        (await Within(third)).Dispose();
    }

    [Fact]
    public void Sliding_window_segments_that_do_not_split_the_period_are_refused()
    {
        var options = new ModelApiLimiterOptions(8, 2, 1000, Minute) { SlidingWindowSegments = 7 };

        var error = Assert.Throws<ArgumentException>(() => new ModelApiLimiter(options, system: Sys));
        Assert.Contains("SlidingWindowSegments (7)", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => options with { SlidingWindowSegments = 0 });
    }

    [Fact]
    public async Task Settling_below_the_estimate_gives_the_rest_back_to_the_next_caller_at_once()
    {
        using var limiter = Limiter();
        using var first = await Within(limiter.AcquireAsync(900).AsTask());
        var second = limiter.AcquireAsync(600).AsTask();
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        first.Settle(300);

        using var granted = await Within(second);
        Assert.Equal(300, first.SettledTokens);
    }

    [Fact]
    public async Task Settling_above_the_estimate_is_owed_by_the_next_window()
    {
        using var limiter = Limiter();
        using (var first = await Within(limiter.AcquireAsync(500).AsTask()))
        {
            first.Settle(1800); // 800 more than the minute had
        }

        var next = limiter.AcquireAsync(500).AsTask();
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        _clock.Advance(Minute); // pays the debt; 200 left
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        _clock.Advance(Minute);
        (await Within(next)).Dispose();
    }

    [Fact]
    public async Task A_wait_for_tokens_times_out_on_the_limiters_clock()
    {
        using var limiter = Limiter(waitTimeout: TimeSpan.FromSeconds(10));
        using var big = await Within(limiter.AcquireAsync(1000).AsTask());
        var waiting = limiter.AcquireAsync(1, source: "caller").AsTask();
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        _clock.Advance(TimeSpan.FromSeconds(10));

        var error = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting));
        Assert.Equal("model-api", error.LimiterName);
        Assert.Equal(new Status(1, 0, 8, null, "model-api"), await StatusOf(limiter));
    }

    [Fact]
    public async Task A_caller_that_cancels_while_waiting_for_tokens_takes_nothing()
    {
        using var limiter = Limiter();
        using var big = await Within(limiter.AcquireAsync(1000).AsTask());
        using var cancel = new CancellationTokenSource();
        var waiting = limiter.AcquireAsync(500, cancellationToken: cancel.Token).AsTask();
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(waiting));

        var next = limiter.AcquireAsync(1000).AsTask();
        _clock.Advance(Minute);
        (await Within(next)).Dispose(); // the whole refill was left for it
    }

    [Fact]
    public async Task A_lease_settles_once_and_only_before_it_is_released()
    {
        using var limiter = Limiter();
        var lease = await Within(limiter.AcquireAsync(100).AsTask());
        lease.Settle(80);

        var twice = Assert.Throws<InvalidOperationException>(() => lease.Settle(90));
        Assert.Contains("settled already with 80", twice.Message, StringComparison.Ordinal);

        var other = await Within(limiter.AcquireAsync(100).AsTask());
        other.Dispose();
        var released = Assert.Throws<InvalidOperationException>(() => other.Settle(10));
        Assert.Contains($"Lease {other.LeaseId}", released.Message, StringComparison.Ordinal);
        Assert.Contains("released before it was settled", released.Message, StringComparison.Ordinal);

        lease.Dispose();
        lease.Dispose();
        await Eventually(() => limiter.RunningCount == 0, "both slots came back, once each");
    }

    [Theory]
    [InlineData(0, 500, 1000, 60, "MaxConcurrent", 0)]
    [InlineData(8, -1, 1000, 60, "RequestsPerPeriod", -1)]
    [InlineData(8, 500, 0, 60, "TokensPerPeriod", 0)]
    public void Zero_or_negative_limits_are_refused_naming_the_option_and_value(int maxConcurrent, int requests, long tokens, int seconds, string name, long value)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ModelApiLimiterOptions(maxConcurrent, requests, tokens, TimeSpan.FromSeconds(seconds)));

        Assert.Equal(name, error.ParamName);
        Assert.Equal(value, Convert.ToInt64(error.ActualValue, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains($"got {value}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void A_zero_or_negative_period_is_refused_naming_it(int seconds)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ModelApiLimiterOptions(8, 500, 1000, TimeSpan.FromSeconds(seconds)));

        Assert.Equal("Period", error.ParamName);
        Assert.Equal(TimeSpan.FromSeconds(seconds), error.ActualValue);
    }

    [Fact]
    public async Task Bad_token_counts_are_refused_naming_the_parameter_and_value()
    {
        using var limiter = Limiter();

        var zero = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AcquireAsync(0));
        Assert.Equal(("estimatedTokens", 0L), (zero.ParamName, (long)zero.ActualValue!));

        var tooMany = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.AcquireAsync(1001));
        Assert.Equal(("estimatedTokens", 1001L), (tooMany.ParamName, (long)tooMany.ActualValue!));
        Assert.Contains("could never be granted", tooMany.Message, StringComparison.Ordinal);

        using var lease = await Within(limiter.AcquireAsync(10).AsTask());
        var negative = Assert.Throws<ArgumentOutOfRangeException>(() => lease.Settle(-1));
        Assert.Equal(("actualTokens", -1L), (negative.ParamName, (long)negative.ActualValue!));
        lease.Settle(0); // a failed call used nothing: allowed, once
    }

    [Fact]
    public async Task Disposing_fails_the_waiters_and_later_calls()
    {
        var limiter = Limiter();
        using var big = await Within(limiter.AcquireAsync(1000).AsTask());
        var waiting = limiter.AcquireAsync(1).AsTask();
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        await limiter.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Within(waiting));
        Assert.Throws<ObjectDisposedException>(() => limiter.AcquireAsync(1));
    }

    [Fact]
    public async Task Actors_share_the_slots_and_the_requests_rate_through_the_protocol()
    {
        using var limiter = Limiter(maxConcurrent: 1, requestsPerMinute: 2);
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("actor", 1), probe.Ref);
        var granted = await probe.ExpectMsgAsync<Granted>();
        var facade = limiter.AcquireAsync(10).AsTask();
        Assert.Equal(1, (await StatusOf(limiter)).Waiting);

        limiter.Gatekeeper.Tell(new Release(granted.LeaseId), probe.Ref);
        (await Within(facade)).Dispose();

        limiter.Gatekeeper.Tell(new Acquire("actor", 2), probe.Ref);
        await probe.ExpectMsgAsync<Queued>(); // both requests of the minute are spent
        await StatusOf(limiter); // its wake-up is armed only after the Queued reply went out
        _clock.Advance(Minute);
        await probe.ExpectMsgAsync<Granted>();
    }
}
