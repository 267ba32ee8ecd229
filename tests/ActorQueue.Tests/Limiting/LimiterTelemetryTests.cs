using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using ActorQueue.Actors;
using ActorQueue.Telemetry;

namespace ActorQueue.Tests.Limiting;

/// <summary>Wait spans and metrics. Each test uses its own ActivitySource or limiter name, so parallel tests do not see each other.</summary>
public sealed class LimiterTelemetryTests : ActorQueueTestKit, IDisposable
{
    private readonly SpanRecorder _spans = new();

    void IDisposable.Dispose() => _spans.Dispose();

    [Fact]
    public async Task A_named_limiter_opens_a_wait_span_with_the_pydantic_attributes()
    {
        using var limiter = new ConcurrencyLimiter(1, name: "test-pool", tracer: _spans.Tracer, system: Sys);
        var holder = await limiter.AcquireAsync("test-source");
        using var parent = _spans.Tracer.StartActivity("caller");
        var waiting = limiter.AcquireAsync("test-source").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second caller waits");

        holder.Dispose();
        (await Within(waiting)).Dispose();

        var span = Assert.Single(_spans.Stopped, a => a.DisplayName.StartsWith("waiting", StringComparison.Ordinal));
        Assert.Equal("waiting for test-pool concurrency", span.DisplayName);
        Assert.Equal("test-source", span.GetTagItem("source"));
        Assert.Equal("test-pool", span.GetTagItem("limiter_name"));
        Assert.Equal(1, span.GetTagItem("max_running"));
        Assert.Equal(1, span.GetTagItem("waiting_count"));
        Assert.Null(span.GetTagItem("max_queued"));
        Assert.Equal(parent!.SpanId, span.ParentSpanId);
    }

    [Fact]
    public async Task An_unnamed_limiter_names_the_span_after_the_source_and_tags_max_queued()
    {
        using var limiter = new ConcurrencyLimiter(1, maxQueued: 4, tracer: _spans.Tracer, system: Sys);
        var holder = await limiter.AcquireAsync("model:gpt");
        var waiting = limiter.AcquireAsync("model:gpt").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second caller waits");
        holder.Dispose();
        (await Within(waiting)).Dispose();

        var span = Assert.Single(_spans.Stopped);
        Assert.Equal("waiting for model:gpt concurrency", span.DisplayName);
        Assert.Equal(4, span.GetTagItem("max_queued"));
        Assert.Null(span.GetTagItem("limiter_name"));
    }

    [Fact]
    public async Task No_span_is_opened_when_no_wait_happens()
    {
        using var limiter = new ConcurrencyLimiter(2, name: "idle", tracer: _spans.Tracer, system: Sys);

        (await limiter.AcquireAsync("a")).Dispose();
        (await limiter.AcquireAsync("b")).Dispose();

        Assert.Empty(_spans.Stopped);
    }

    [Fact]
    public void A_custom_tracer_is_kept_and_the_library_source_is_the_default()
    {
        using var custom = new ConcurrencyLimiter(5, tracer: _spans.Tracer, system: Sys);
        using var fromLimit = ConcurrencyLimiter.FromLimit(5, tracer: _spans.Tracer, system: Sys);
        using var plain = new ConcurrencyLimiter(5, system: Sys);

        Assert.Same(_spans.Tracer, custom.Tracer);
        Assert.Same(_spans.Tracer, fromLimit.Tracer);
        Assert.Same(ActorQueueTelemetry.Source, plain.Tracer);
        Assert.Equal("ActorQueue", plain.Tracer.Name);
    }

    [Fact]
    public async Task Metrics_count_acquisitions_rejections_waits_and_running_per_limiter()
    {
        var name = $"metrics-{Guid.NewGuid():N}";
        var longs = new ConcurrentDictionary<string, long>();
        var waits = new ConcurrentQueue<double>();
        using var meterListener = ListenToLimiter(name, longs, waits);

        using var limiter = new ConcurrencyLimiter(1, maxQueued: 1, name: name, system: Sys);
        var holder = await limiter.AcquireAsync("a");
        var waiter = limiter.AcquireAsync("b").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "b waits");
        await Assert.ThrowsAsync<ConcurrencyLimitExceededException>(() => limiter.AcquireAsync("c").AsTask());
        await Eventually(() => longs.GetValueOrDefault(ActorQueueTelemetry.LimiterWaiting) == 1, "waiting gauge is 1");
        holder.Dispose();
        using var second = await Within(waiter);
        await Eventually(() => longs.GetValueOrDefault(ActorQueueTelemetry.LimiterAcquired) == 2, "two grants counted");

        Assert.Equal(1, longs.GetValueOrDefault(ActorQueueTelemetry.LimiterRejected));
        Assert.Equal(1, longs.GetValueOrDefault(ActorQueueTelemetry.LimiterRunning));
        Assert.Equal(0, longs.GetValueOrDefault(ActorQueueTelemetry.LimiterWaiting));
        Assert.Equal(2, waits.Count);
        Assert.Contains(waits, w => w > 0);
    }

    /// <summary>
    /// The duration histograms are in seconds, as OpenTelemetry's conventions and .NET's own instruments have them, with
    /// bucket boundaries advised for seconds (an exporter's defaults are made for milliseconds); a recorded wait is at most
    /// the wait the test measured around it. Failed before: the unit was <c>ms</c>, no advice, a wait 1,000 times larger.
    /// </summary>
    [Fact]
    public async Task Wait_and_processing_times_are_recorded_in_seconds_with_boundaries_advised_for_seconds()
    {
        var published = new ConcurrentDictionary<string, Instrument>();
        using (var names = new MeterListener { InstrumentPublished = (instrument, _) => published.TryAdd(instrument.Name, instrument) })
        {
            // The instruments are made with the type (its constants alone do not make it); a listener started after that
            // hears each made one at once.
            RuntimeHelpers.RunClassConstructor(typeof(ActorQueueTelemetry).TypeHandle);
            names.Start();
            foreach (var histogram in new[] { ActorQueueTelemetry.LimiterWaitTime, ActorQueueTelemetry.QueueProcessingTime })
            {
                var instrument = Assert.IsType<Histogram<double>>(published.GetValueOrDefault(histogram), exactMatch: false);
                Assert.Equal("s", instrument.Unit);
                var boundaries = Assert.IsAssignableFrom<IReadOnlyList<double>>(instrument.Advice?.HistogramBucketBoundaries);
                Assert.Equal(0d, boundaries[0]);
                Assert.Equal(boundaries.Order(), boundaries);
                Assert.InRange(boundaries[^1], 60d, 3600d);
            }
        }

        var name = $"metrics-{Guid.NewGuid():N}";
        var waits = new ConcurrentQueue<double>();
        using var meterListener = ListenToLimiter(name, new ConcurrentDictionary<string, long>(), waits);
        using var limiter = new ConcurrencyLimiter(1, name: name, system: Sys);
        var holder = await limiter.AcquireAsync("holder");
        var measured = Stopwatch.StartNew();
        var waiter = limiter.AcquireAsync("waiter").AsTask();
        await Eventually(() => limiter.WaitingCount == 1, "the second caller waits");
        holder.Dispose();
        using var second = await Within(waiter);
        await Eventually(() => waits.Count == 2, "both grants' waits recorded");
        var waited = measured.Elapsed.TotalSeconds;

        Assert.Equal(0d, waits.Min()); // the holder's immediate grant
        Assert.InRange(waits.Max(), double.Epsilon, waited);
    }

    [Fact]
    public async Task Disposing_a_limiter_with_waiters_brings_its_running_and_waiting_gauges_back_to_zero()
    {
        var name = $"metrics-{Guid.NewGuid():N}";
        var gauges = new ConcurrentDictionary<string, long>();
        using var meterListener = ListenToLimiter(name, gauges, new ConcurrentQueue<double>());

        var limiter = new ConcurrencyLimiter(1, name: name, system: Sys);
        _ = await limiter.AcquireAsync("holder");
        var waiters = new[] { limiter.AcquireAsync("a").AsTask(), limiter.AcquireAsync("b").AsTask() };
        await Eventually(() => gauges.GetValueOrDefault(ActorQueueTelemetry.LimiterWaiting) == 2, "two wait");

        await limiter.DisposeAsync();

        foreach (var waiter in waiters)
        {
            await Assert.ThrowsAsync<ObjectDisposedException>(() => waiter);
        }

        Assert.Equal(0, gauges.GetValueOrDefault(ActorQueueTelemetry.LimiterRunning));
        Assert.Equal(0, gauges.GetValueOrDefault(ActorQueueTelemetry.LimiterWaiting));
    }

    /// <summary>Sums the integer instruments tagged with <paramref name="name"/> into <paramref name="sums"/> and collects its wait times.</summary>
    private static MeterListener ListenToLimiter(string name, ConcurrentDictionary<string, long> sums, ConcurrentQueue<double> waits)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == ActorQueueTelemetry.Name)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((i, value, tags, _) => { if (HasName(tags, name)) { sums.AddOrUpdate(i.Name, value, (_, v) => v + value); } });
        listener.SetMeasurementEventCallback<int>((i, value, tags, _) => { if (HasName(tags, name)) { sums.AddOrUpdate(i.Name, value, (_, v) => v + value); } });
        listener.SetMeasurementEventCallback<double>((i, value, tags, _) => { if (HasName(tags, name)) { waits.Enqueue(value); } });
        listener.Start();
        return listener;
    }

    private static bool HasName(ReadOnlySpan<KeyValuePair<string, object?>> tags, string name)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == ActorQueueTelemetry.LimiterNameTag && Equals(tag.Value, name))
            {
                return true;
            }
        }

        return false;
    }
}
