using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// Disposing a queue with items still queued never drops them silently: each reaches the error handler of the last
/// <c>ProcessAsync</c> as failed (an <see cref="ObjectDisposedException"/> naming the queue), in queue order, before
/// <c>DisposeAsync</c> completes; without a handler an error names the count; and every one is counted in
/// <see cref="QueueMetrics.Discarded"/>. (They were logged as a warning with their count, and nothing else.)
/// </summary>
public class QueueDisposeTests : ActorQueueTestKit
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private Task<WorkQueue<int>> StoppedWithFourQueued(ConcurrentQueue<(Exception Error, int Item)> reported, ILogger? logger = null) =>
        StoppedQueues.WithFourQueuedAsync(Sys, logger is null ? (error, item) => { reported.Enqueue((error, item)); return Task.CompletedTask; } : null, logger);

    [Fact]
    public async Task Items_still_queued_at_dispose_reach_the_error_handler_in_order_before_DisposeAsync_completes_and_are_counted()
    {
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var queue = await StoppedWithFourQueued(reported);

        await queue.DisposeAsync().AsTask().WaitAsync(Bound);

        Assert.Equal([2, 3, 4, 5], reported.Select(r => r.Item));
        Assert.All(reported, r =>
        {
            var error = Assert.IsType<ObjectDisposedException>(r.Error);
            Assert.Contains("orders", error.Message);
            Assert.Contains("not processed", error.Message);
        });
        var metrics = queue.Metrics;
        Assert.Equal(4, metrics.Discarded);
        Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
    }

    [Fact]
    public async Task Without_an_error_handler_dispose_logs_an_error_naming_the_count_and_counts_them()
    {
        var logs = new CapturingLoggerProvider();
        var queue = await StoppedWithFourQueued(new(), logs.CreateLogger("orders"));

        await queue.DisposeAsync().AsTask().WaitAsync(Bound);

        Assert.Contains(logs.Events, e => e.Level == LogLevel.Error && e.Message.Contains("4 items", StringComparison.Ordinal)
                                                                    && e.Message.Contains("not processed", StringComparison.Ordinal));
        Assert.Equal(4, queue.Metrics.Discarded);
    }

    [Fact]
    public async Task A_queue_disposed_without_waiting_reports_them_too()
    {
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var queue = await StoppedWithFourQueued(reported);

        queue.Dispose();

        await Poll.UntilAsync(() => reported.Count == 4, Bound, () => $"4 items reported, got {reported.Count}");
        Assert.Equal([2, 3, 4, 5], reported.Select(r => r.Item));
    }

    [Fact]
    public async Task A_queue_drained_before_dispose_reports_nothing()
    {
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var queue = await StoppedWithFourQueued(reported);

        Assert.Equal([2, 3, 4, 5], await queue.DrainAsync());
        await queue.DisposeAsync().AsTask().WaitAsync(Bound);

        Assert.Empty(reported);
        Assert.Equal((4L, 0L), (queue.Metrics.Drained, queue.Metrics.Discarded));
    }
    /// <summary>
    /// A put that took its credit before the stop and added its item after the router was gone (a race of a few
    /// instructions): its signal is undelivered, and the item is reported and counted as a discarded one.
    /// </summary>
    [Fact]
    public async Task An_item_a_put_added_after_the_router_was_gone_is_reported_and_counted_as_discarded()
    {
        var counters = new QueueCounters();
        var inbox = new PutInbox<int>(QueueParts.Telemetry(), counters);
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        inbox.ErrorHandler = (error, item) => { reported.Enqueue((error, item)); return Task.CompletedTask; };
        inbox.Grant(2);
        Assert.True(inbox.TryPut(7, Akka.Actor.ActorRefs.Nobody));

        inbox.Signal.Undelivered();

        await Poll.UntilAsync(() => !reported.IsEmpty, Bound, "the item is reported");
        Assert.Equal(7, Assert.Single(reported).Item);
        Assert.IsType<ObjectDisposedException>(reported.Single().Error);
        var metrics = counters.MetricsWith(inbox);
        Assert.Equal((1L, 1L), (metrics.Enqueued, metrics.Discarded));
    }
}
