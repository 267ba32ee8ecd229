using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using ActorQueue.Actors;
using ActorQueue.Telemetry;
using Microsoft.Extensions.Time.Testing;
using static ActorQueue.Actors.GatekeeperProtocol;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting;

/// <summary>Wait timeouts on a fake clock, and resizing a running limiter.</summary>
public sealed class WaitTimeoutAndResizeTests : ActorQueueTestKit, IDisposable
{
    private readonly FakeTimeProvider _clock = new();
    private readonly SpanRecorder _spans = new();

    void IDisposable.Dispose() => _spans.Dispose();

    private ConcurrencyLimiter TimedLimiter(int maxRunning, TimeSpan? waitTimeout, string name) =>
        new(new ConcurrencyLimit(maxRunning) { WaitTimeout = waitTimeout, TimeProvider = _clock }, name, _spans.Tracer, Sys);

    [Fact]
    public async Task An_expired_wait_withdraws_the_waiter_and_names_the_limiter()
    {
        using var limiter = TimedLimiter(1, TimeSpan.FromSeconds(10), "timed");
        var holder = await limiter.AcquireAsync();
        var waiting = limiter.AcquireAsync(permits: 1, source: "caller").AsTask();
        var behind = limiter.AcquireAsync(permits: 1, waitTimeout: Timeout.InfiniteTimeSpan).AsTask();
        Assert.Equal(2, (await this.StatusOf(limiter)).Waiting);

        _clock.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(2, (await this.StatusOf(limiter)).Waiting);
        _clock.Advance(TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting));
        Assert.Equal("timed", error.LimiterName);
        Assert.Equal(TimeSpan.FromSeconds(10), error.WaitTimeout);
        Assert.Contains("timed", error.Message, StringComparison.Ordinal);
        await Eventually(() => limiter.WaitingCount == 1, "the expired waiter left the queue");

        // The per-call infinite timeout overrode the default: it is still there, and served next.
        holder.Dispose();
        (await Within(behind)).Dispose();
        await Eventually(() => limiter.RunningCount == 0, "nothing leaked");
    }

    /// <summary>
    /// A caller waits 8 s of its 10 when the gatekeeper restarts (a clock fault in a wake: a request whose handler throws no
    /// longer restarts it, since 53a9822): the next instance has it waiting, and it times out 2 s later. Mutant killed: no
    /// time left carried over (<c>CarryTimeLeft</c> skipped in <c>HandOver</c>) → its whole 10 s again, no timeout.
    /// </summary>
    [Fact]
    public async Task A_gatekeeper_restart_keeps_a_waiting_callers_deadline()
    {
        var clock = new Review.RestartActorCallersReviewTests.FaultyClock();
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(1) { WaitTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock }, "restart-deadline", _spans.Tracer, Sys);
        var holder = await limiter.AcquireAsync();
        var waiting = limiter.AcquireAsync(permits: 1, source: "caller").AsTask();
        Assert.Equal(1, (await this.StatusOf(limiter)).Waiting);
        clock.Advance(TimeSpan.FromSeconds(8));

        // The restarted gatekeeper serves the carried caller, which has 2 s of its 10 left.
        await EventFilter.Exception<Review.LocalSuspectsReviewTests.ClockFault>().ExpectOneAsync(
            () => clock.RestartGatekeeper(limiter.Gatekeeper, Dilated(TimeSpan.FromSeconds(10))));
        Assert.Equal(1, (await this.StatusOf(limiter)).Waiting);
        Assert.False(waiting.IsCompleted, "the caller was answered at the restart");
        clock.Advance(TimeSpan.FromSeconds(2));

        var error = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting)); // not 10 s more
        Assert.Equal(TimeSpan.FromSeconds(10), error.WaitTimeout);
        holder.Dispose();
        await Eventually(() => limiter.RunningCount == 0 && limiter.WaitingCount == 0, "nothing leaked");
    }

    [Fact]
    public async Task A_zero_wait_timeout_is_rejected_if_it_would_wait_and_granted_if_a_permit_is_free()
    {
        using var limiter = TimedLimiter(1, null, "no-wait");
        var lease = await Within(limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.Zero).AsTask());

        var error = await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(limiter.AcquireAsync(permits: 1, waitTimeout: TimeSpan.Zero).AsTask()));

        Assert.Equal(TimeSpan.Zero, error.WaitTimeout);
        Assert.Equal(new Status(1, 0, 1, null, "no-wait"), await this.StatusOf(limiter));
        lease.Dispose();
    }

    [Fact]
    public async Task The_wait_span_records_a_timeout()
    {
        using var limiter = TimedLimiter(1, TimeSpan.FromSeconds(1), "span-timeout");
        var holder = await limiter.AcquireAsync();
        var waiting = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "it waits");

        await this.StatusOf(limiter); // the queuing message has ended and armed the wake timer before the clock moves
        _clock.Advance(TimeSpan.FromSeconds(1));

        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(waiting));
        await Eventually(() => _spans.Stopped.Count == 1, "the wait span ended");
        var span = Assert.Single(_spans.Stopped);
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal("timed_out", span.GetTagItem("outcome"));
        Assert.Equal(1000d, span.GetTagItem("wait_timeout_ms"));
        holder.Dispose();
    }

    [Fact]
    public async Task An_actor_waiter_times_out_with_its_kind_and_the_limiter_default_applies()
    {
        using var limiter = TimedLimiter(1, TimeSpan.FromSeconds(5), "actor-timeout");
        var holder = await limiter.AcquireAsync();
        var probe = CreateTestProbe();
        limiter.Gatekeeper.Tell(new Acquire("probe", 1), probe.Ref);
        limiter.Gatekeeper.Tell(new Acquire("probe", 2) { WaitTimeout = TimeSpan.FromSeconds(1) }, probe.Ref);
        await probe.ExpectMsgAsync<Queued>();
        await probe.ExpectMsgAsync<Queued>();

        await this.StatusOf(limiter); // the queuing message has ended and armed the wake timer before the clock moves
        _clock.Advance(TimeSpan.FromSeconds(1));
        var first = await probe.ExpectMsgAsync<Rejected>();
        Assert.Equal((2L, RejectionReason.TimedOut), (first.RequestId, first.Kind));

        _clock.Advance(TimeSpan.FromSeconds(4));
        var second = await probe.ExpectMsgAsync<Rejected>();
        Assert.Equal((1L, RejectionReason.TimedOut), (second.RequestId, second.Kind));
        Assert.Contains("actor-timeout", second.Reason, StringComparison.Ordinal);
        Assert.Equal(0, (await this.StatusOf(limiter)).Waiting);
        holder.Dispose();
    }

    [Fact]
    public async Task A_granted_waiter_never_times_out_afterwards()
    {
        using var limiter = TimedLimiter(1, TimeSpan.FromSeconds(1), "granted-then-expired");
        var holder = await limiter.AcquireAsync();
        var waiting = limiter.AcquireAsync(permits: 1).AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "it waits");
        holder.Dispose();
        var lease = await Within(waiting);

        _clock.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(new Status(1, 0, 1, null, "granted-then-expired"), await this.StatusOf(limiter));
        Assert.False(lease.IsReleased);
        lease.Dispose();
    }

    [Fact]
    public void A_full_queue_mode_that_is_not_one_of_the_enum_is_rejected_naming_the_parameter_and_value()
    {
        var ctor = Assert.Throws<ArgumentOutOfRangeException>(() => new ConcurrencyLimiter(1, whenFull: (QueueFullMode)99, system: Sys));
        var limit = Assert.Throws<ArgumentOutOfRangeException>(() => new ConcurrencyLimit(1) { WhenFull = (QueueFullMode)(-1) });

        Assert.Equal(("whenFull", (object?)(QueueFullMode)99), (ctor.ParamName, ctor.ActualValue));
        Assert.Contains("99", ctor.Message, StringComparison.Ordinal);
        Assert.Equal("WhenFull", limit.ParamName);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(-5000)]
    public void A_negative_wait_timeout_is_rejected_naming_the_parameter_and_value(int milliseconds)
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var value = TimeSpan.FromMilliseconds(milliseconds) - TimeSpan.FromTicks(1);

        var call = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = limiter.AcquireAsync(permits: 1, waitTimeout: value); });
        var ctor = Assert.Throws<ArgumentOutOfRangeException>(() => new ConcurrencyLimiter(1, waitTimeout: value, system: Sys));

        Assert.Equal(("waitTimeout", (object?)value), (call.ParamName, call.ActualValue));
        Assert.Equal("waitTimeout", ctor.ParamName);
        Assert.Contains(value.ToString(), call.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Growing_grants_waiters_at_once_in_order()
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var holder = await limiter.AcquireAsync();
        var first = limiter.AcquireAsync(permits: 1).AsTask();
        var second = limiter.AcquireAsync(permits: 1).AsTask();
        Assert.Equal(2, (await this.StatusOf(limiter)).Waiting);

        limiter.Resize(maxRunning: 4);

        Assert.Equal(4, limiter.MaxRunning);
        await Within(Task.WhenAll(first, second));
        Assert.Equal(new Status(3, 0, 4, null, null), await this.StatusOf(limiter));
        (await Within(first)).Dispose();
        (await Within(second)).Dispose();
        Assert.Equal(4, (await this.StatusOf(limiter)).MaxRunning);
        holder.Dispose();
    }

    [Fact]
    public async Task Shrinking_revokes_no_held_permit_and_fails_waiters_that_can_never_fit()
    {
        using var limiter = new ConcurrencyLimiter(3, name: "shrinking", system: Sys);
        var leases = new[] { await limiter.AcquireAsync(), await limiter.AcquireAsync(), await limiter.AcquireAsync() };
        var three = limiter.AcquireAsync(permits: 3).AsTask();
        var one = limiter.AcquireAsync(permits: 1).AsTask();

        limiter.Resize(maxRunning: 1);

        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Within(three));
        Assert.Equal("permits", error.ParamName);
        Assert.Equal(new Status(3, 1, 1, null, "shrinking"), await this.StatusOf(limiter));
        Assert.True(leases.All(lease => !lease.IsReleased));

        leases[0].Dispose();
        leases[1].Dispose();
        Assert.Equal(new Status(1, 1, 1, null, "shrinking"), await this.StatusOf(limiter));
        Assert.False(one.IsCompleted, "one permit is still held, and only one exists now");

        leases[2].Dispose();
        (await Within(one)).Dispose();
    }

    [Fact]
    public async Task A_smaller_max_queued_keeps_the_waiters_and_turns_newcomers_away()
    {
        using var limiter = new ConcurrencyLimiter(1, maxQueued: 5, system: Sys);
        var holder = await limiter.AcquireAsync();
        var waits = Enumerable.Range(0, 3).Select(_ => limiter.AcquireAsync().AsTask()).ToList();

        limiter.Resize(maxQueued: 1);

        Assert.Equal(1, limiter.MaxQueued);
        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(limiter.AcquireAsync().AsTask()));
        Assert.Equal(3, (await this.StatusOf(limiter)).Waiting);
        holder.Dispose();
        foreach (var wait in waits)
        {
            (await Within(wait)).Dispose();
        }
    }

    [Fact]
    public async Task An_actor_resizes_with_a_message()
    {
        using var limiter = new ConcurrencyLimiter(1, name: "resized", system: Sys);
        var probe = CreateTestProbe();

        limiter.Gatekeeper.Tell(new Resize(3, 7), probe.Ref);
        limiter.Gatekeeper.Tell(new Resize(0, null), probe.Ref);

        Assert.Equal(new Status(0, 0, 3, 7, "resized"), await this.StatusOf(limiter));
        await Eventually(() => limiter.MaxRunning == 3 && limiter.MaxQueued == 7, "the facade reflects the new limits");
    }

    [Fact]
    public void Resizing_to_an_invalid_value_names_the_parameter_and_value()
    {
        using var limiter = new ConcurrencyLimiter(2, system: Sys);

        var running = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.Resize(maxRunning: 0));
        var queued = Assert.Throws<ArgumentOutOfRangeException>(() => limiter.Resize(maxQueued: -1));

        Assert.Equal(("maxRunning", (object?)0), (running.ParamName, running.ActualValue));
        Assert.Equal(("maxQueued", (object?)-1), (queued.ParamName, queued.ActualValue));
        Assert.Equal(2, limiter.MaxRunning);
    }

    [Fact]
    public async Task Metrics_count_permits_granted_wait_timeouts_and_evictions()
    {
        var name = $"metrics-{Guid.NewGuid():N}";
        var sums = new ConcurrentDictionary<string, long>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == ActorQueueTelemetry.Name)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == ActorQueueTelemetry.LimiterNameTag && Equals(tag.Value, name))
                {
                    sums.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value);
                }
            }
        });
        meters.Start();
        using var limiter = new ConcurrencyLimiter(new ConcurrencyLimit(3) { MaxQueued = 1, WhenFull = QueueFullMode.EvictLowestPriorityNewest, TimeProvider = _clock }, name, system: Sys);

        var held = await limiter.AcquireAsync(permits: 3);
        var evicted = limiter.AcquireAsync(permits: 1).AsTask();
        var timed = limiter.AcquireAsync(permits: 2, priority: 1, waitTimeout: TimeSpan.FromSeconds(1)).AsTask();
        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => Within(evicted));
        await Eventually(() => limiter.WaitingCount == 1, "the higher-priority caller waits");
        await this.StatusOf(limiter); // the queuing message has ended and armed the wake timer before the clock moves
        _clock.Advance(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAsync<ConcurrencyWaitTimeoutException>(() => Within(timed));
        held.Dispose();

        await Eventually(() => sums.GetValueOrDefault(ActorQueueTelemetry.LimiterWaitTimeouts) == 1, "one wait timed out");
        Assert.Equal(3, sums.GetValueOrDefault(ActorQueueTelemetry.LimiterPermitsGranted));
        Assert.Equal(1, sums.GetValueOrDefault(ActorQueueTelemetry.LimiterAcquired));
        Assert.Equal(1, sums.GetValueOrDefault(ActorQueueTelemetry.LimiterEvicted));
    }
}
