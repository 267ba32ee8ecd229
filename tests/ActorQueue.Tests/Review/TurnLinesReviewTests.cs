using System.Diagnostics;
using System.Threading.RateLimiting;
using ActorQueue.Actors;
using ActorQueue.Telemetry;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of issue 17's contended rows (3f19d81): what a turn writes moved off the lines every step reads, and a
/// RateLimiting view's waited lease counted in its partition's turn as it grants rather than by the adapter as its
/// caller resumes. None of it may change what a caller sees.
/// </summary>
public sealed class TurnLinesReviewTests : ActorQueueTestKit
{
    private readonly FakeTimeProvider _clock = new();

    /// <summary>
    /// DEFECT (fixed). A RateLimiting view's waited lease was counted in the key's successful leases after the partition's
    /// turn had handed the caller its grant (<c>TryGrant</c>, then the count): a caller resumed at once — here by a
    /// scheduling context that runs its continuation inline, as the waiter supports — read
    /// <c>GetStatistics(resource).TotalSuccessfulLeases</c> without its own lease (failed before: expected 2, actual 1),
    /// where RateLimiting's own partitioned limiter, and this adapter before 3f19d81, counted it before the caller saw it.
    /// It is now counted as the grant's result is made, in the turn, before the caller can resume.
    /// </summary>
    [Fact]
    public async Task A_waited_lease_is_counted_before_its_caller_resumes()
    {
        using var tracer = new ActivitySource($"review-turn-lines-{Guid.NewGuid():N}"); // unlistened: the untraced wait
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(1) { TimeProvider = _clock }, TimeSpan.FromMinutes(5),
                                                                             "review-turn-lines", tracer, Sys);
        using var keyed = limiter.AsPartitionedRateLimiter<string>(key => key);
        var held = keyed.AttemptAcquire("a");
        Assert.True(held.IsAcquired);
        Assert.Equal(1, keyed.GetStatistics("a")!.TotalSuccessfulLeases);

        var pending = keyed.AcquireAsync("a");
        Assert.False(pending.IsCompleted);
        var seen = new TaskCompletionSource<(RateLimitLease Lease, long Successful)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var awaiter = pending.GetAwaiter();
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(new InlineContext());
        try
        {
            awaiter.OnCompleted(() =>
            {
                var lease = awaiter.GetResult();
                seen.SetResult((lease, keyed.GetStatistics("a")!.TotalSuccessfulLeases));
            });
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        held.Dispose();
        var (lease, successful) = await Within(seen.Task);
        using (lease)
        {
            Assert.True(lease.IsAcquired);
            Assert.Equal(2, successful);
        }
    }

    /// <summary>
    /// Pins (holds after 3f19d81): the running and waiting up-down counters, whose last metered values moved into the
    /// gatekeeper's <c>TurnCounts</c> and are now stored only when they change, read the limiter's true counts through
    /// leases claimed from the loan (metered on the callers' threads, absorbed at the reclaim), a resize up that grants a
    /// waiter, a resize down below what is held, and a dispose with leases still held (both back to 0).
    /// </summary>
    [Fact]
    public async Task The_running_and_waiting_counters_follow_the_true_counts_through_resizes_and_a_dispose()
    {
        var name = $"review-turn-lines-meter-{Guid.NewGuid():N}";
        int meteredRunning = 0, meteredWaiting = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = static (instrument, l) =>
            {
                if (instrument.Meter.Name == ActorQueueTelemetry.Name && instrument.Name is ActorQueueTelemetry.LimiterRunning or ActorQueueTelemetry.LimiterWaiting)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
        {
            var mine = tags.ToArray().Contains(new KeyValuePair<string, object?>(ActorQueueTelemetry.LimiterNameTag, name));
            _ = !mine ? 0
                : instrument.Name == ActorQueueTelemetry.LimiterRunning ? Interlocked.Add(ref meteredRunning, value)
                : instrument.Name == ActorQueueTelemetry.LimiterWaiting ? Interlocked.Add(ref meteredWaiting, value) : 0;
        });
        listener.Start();
        string Metered() => $"running {Volatile.Read(ref meteredRunning)}, waiting {Volatile.Read(ref meteredWaiting)}";
        Task Reads(string expected, string when) =>
            Poll.UntilAsync(() => Metered() == expected, Dilated(TimeSpan.FromSeconds(10)), () => $"{when}: {expected} (read {Metered()})");

        var limiter = new ActorQueue.Actors.ConcurrencyLimiter(new ConcurrencyLimit(2) { TimeProvider = _clock }, name, system: Sys);
        var first = await Within(limiter.AcquireAsync().AsTask());
        var second = await Within(limiter.AcquireAsync().AsTask());
        var waiting = limiter.AcquireAsync().AsTask();
        await Reads("running 2, waiting 1", "two held, one waits");

        limiter.Resize(maxRunning: 3);
        var third = await Within(waiting);
        await Reads("running 3, waiting 0", "a resize up granted the waiter");

        limiter.Resize(maxRunning: 1);
        first.Dispose();
        await Reads("running 2, waiting 0", "resized below what is held, one given back");
        var refused = limiter.AcquireAsync().AsTask();
        await Reads("running 2, waiting 1", "a caller waits behind the smaller limit");

        await limiter.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => Within(refused));
        await Reads("running 0, waiting 0", "disposed with two leases held");
        second.Dispose();
        third.Dispose();
        await Reads("running 0, waiting 0", "the leases held across the dispose given back");
    }

    /// <summary>
    /// Pins (holds after 3f19d81): a partition stores its published running, waiting and queued counts only when they
    /// change; a hand-over (a release granting the waiter behind it) leaves running unchanged and unstored while waiting
    /// and queued drop, and every reader — the RateLimiting view's statistics and the limiter's — reads each count true.
    /// </summary>
    [Fact]
    public async Task A_hand_over_that_leaves_running_unchanged_publishes_the_waiting_and_queued_counts_it_changed()
    {
        using var tracer = new ActivitySource($"review-turn-lines-{Guid.NewGuid():N}");
        await using var limiter = new PartitionedConcurrencyLimiter<string>(new ConcurrencyLimit(2) { TimeProvider = _clock }, TimeSpan.FromMinutes(5),
                                                                             "review-turn-lines-publish", tracer, Sys);
        using var keyed = limiter.AsPartitionedRateLimiter<string>(key => key);
        string Read()
        {
            var view = keyed.GetStatistics("a")!;
            return $"avail={view.CurrentAvailablePermits} q={view.CurrentQueuedCount} ok={view.TotalSuccessfulLeases}";
        }

        async Task Reads(string expected, (int Running, int Waiting) counts, string when)
        {
            await Poll.UntilAsync(() => Read() == expected, Dilated(TimeSpan.FromSeconds(10)), () => $"{when}: {expected} (read {Read()})");
            var statistics = (await Within(limiter.GetStatisticsAsync()))["a"];
            Assert.True((statistics.Running, statistics.Waiting) == counts, $"{when}: running {statistics.Running}, waiting {statistics.Waiting}");
        }

        var held = await Within(keyed.AcquireAsync("a", 2).AsTask());
        var waiting = keyed.AcquireAsync("a", 2, CancellationToken.None).AsTask();
        await Reads("avail=0 q=2 ok=1", (2, 1), "two held, a caller waits for two");

        held.Dispose();
        using var handed = await Within(waiting);
        Assert.True(handed.IsAcquired);
        await Reads("avail=0 q=0 ok=2", (2, 0), "the release handed both permits to the waiter");
    }

    /// <summary>A scheduling context that runs what is posted to it at once, on the posting thread.</summary>
    private sealed class InlineContext : SynchronizationContext
    {
        public override void Post(SendOrPostCallback d, object? state) => d(state);
    }
}
