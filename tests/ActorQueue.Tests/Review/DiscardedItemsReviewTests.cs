using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Hosting;
using ActorQueue.Tests.Queues;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of 3f48457..4c4b2f8 (strict configuration reader, reports of items discarded at disposal, cancelled batch
/// reports, RetryAfter for timed-out and evicted waiters): each test fails on the reviewed code for a defect.
/// </summary>
public class DiscardedItemsReviewTests() : ActorQueueTestKit(ShortStopTimeout)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private Task<WorkQueue<int>> StoppedWithFourQueued(Func<Exception, int, Task>? errorHandler, ILogger? logger = null) =>
        StoppedQueues.WithFourQueuedAsync(Sys, errorHandler, logger);

    /// <summary>
    /// A cancelled batch whose chunk was partly admitted before the stop refused the rest: the admitted items stay queued
    /// (DrainAsync hands them back) and yet are also reported to the error handler as "cancelled before this item was
    /// queued" — the same item is given back twice. PutAllAsync returns the whole chunk on the refusal, not the
    /// unadmitted tail (PutAdmission.RefuseAll itself says "N of the batch's M items were accepted").
    /// </summary>
    [Fact]
    public async Task A_cancelled_batch_does_not_report_as_refused_the_items_of_its_chunk_that_were_admitted()
    {
        // One item per worker run, so a single freed slot admits one item of the waiting chunk.
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "batch");
        using var cancel = new CancellationTokenSource();
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var sequence = new CountedSequence();

        var batch = queue.BatchProcessAsync(sequence.Items(), (_, ct) => Task.Delay(Timeout.Infinite, ct), numWorkers: 1, errorHandler: (error, item) =>
        {
            reported.Enqueue((error, item));
            return Task.CompletedTask;
        }, cancellationToken: cancel.Token);
        // Chunk [0..3] admitted, the worker holds item 0, chunk [4..7] is read and one of its items (4) admitted.
        await Poll.UntilAsync(() => queue.IsFull && sequence.Read == 8 && queue.Metrics.Enqueued == 5, Bound,
            () => $"the second chunk is partly admitted (read {sequence.Read}, enqueued {queue.Metrics.Enqueued}, size {queue.Size})");
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(batch));
        var left = await queue.DrainAsync(CancellationToken.None);

        var reportedItems = reported.Select(r => r.Item).ToList();
        Assert.True(!reportedItems.Intersect(left).Any(),
            $"items both handed back by DrainAsync and reported as refused: drained [{string.Join(",", left)}], reported [{string.Join(",", reportedItems)}]");
    }

    /// <summary>
    /// The stop before a disposal has a timeout so user code cannot hold it for ever; the new reports of discarded
    /// items have none: an error handler that never completes makes DisposeAsync (and so a host's shutdown) hang.
    /// </summary>
    [Fact]
    public async Task DisposeAsync_is_not_held_for_ever_by_an_error_handler_that_never_completes()
    {
        var never = new TaskCompletionSource();
        var queue = await StoppedWithFourQueued((_, _) => never.Task);

        var dispose = queue.DisposeAsync().AsTask();
        var finished = await Poll.CompletesWithin(dispose, Bound);

        never.SetResult();
        Assert.True(finished, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout is 1 s here): an error handler that never completes holds it for ever");
    }

    /// <summary>
    /// Dispose, then DisposeAsync (a <c>using</c> inside an <c>await using</c>, or a container disposing twice): the
    /// second call completes at once, before the items are reported, though its documentation says it completes once
    /// every item still queued has been reported.
    /// </summary>
    [Fact]
    public async Task DisposeAsync_after_Dispose_completes_only_after_the_items_are_reported()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reported = new ConcurrentQueue<int>();
        var queue = await StoppedWithFourQueued(async (_, item) =>
        {
            entered.TrySetResult();
            await release.Task;
            reported.Enqueue(item);
        });

        queue.Dispose();
        var disposeAsync = queue.DisposeAsync().AsTask();
        await entered.Task.WaitAsync(Bound); // the reports have begun, and are held in the handler
        var completedEarly = disposeAsync.IsCompleted;
        release.SetResult();

        Assert.False(completedEarly, $"DisposeAsync completed while the error handler still had {4 - reported.Count} of 4 items to report");
    }

    /// <summary>
    /// BatchProcessAsync without an error handler installs its own collector as the workers' handler. After the batch
    /// is cancelled its items stay queued; disposing the queue then sends them to that collector of a call that has
    /// already returned: no error log ("without a handler one error log"), only a warning that they "go to the error
    /// handler" — the items vanish.
    /// </summary>
    [Fact]
    public async Task Items_left_by_a_cancelled_batch_without_a_handler_are_logged_as_an_error_at_dispose()
    {
        var logs = new CapturingLoggerProvider();
        var queue = new WorkQueue<int>(4, null, 1, logs.CreateLogger("batch"), Sys, "batch");
        using var cancel = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var batch = queue.BatchProcessAsync(Enumerable.Range(0, 4), (_, ct) =>
        {
            started.TrySetResult();
            return Task.Delay(Timeout.Infinite, ct);
        }, cancellationToken: cancel.Token);
        await started.Task.WaitAsync(Bound);
        await Poll.UntilAsync(() => queue.Metrics.Enqueued == 4, Bound, "the batch is queued");
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(batch));
        Assert.Equal(4, queue.Size); // they stay queued, as documented

        await queue.DisposeAsync().AsTask().WaitAsync(Bound);

        Assert.Equal(4, queue.Metrics.Discarded);
        Assert.True(logs.Events.Any(e => e.Level == LogLevel.Error && e.Message.Contains("not processed", StringComparison.Ordinal)),
            "no error names the 4 items discarded at dispose; logged: " + string.Join(" | ", logs.Events.Select(e => $"{e.Level}: {e.Message}")));
    }
    /// <summary>
    /// The actor system terminates with items queued in a stopped queue (the router's PostStop path reports them), then
    /// the queue is disposed: the items are each reported once, DisposeAsync completes, and the counters keep the
    /// invariant with the items as Discarded.
    /// </summary>
    [Fact]
    public async Task A_system_terminating_with_items_queued_reports_each_once_and_DisposeAsync_completes()
    {
        var system = Akka.Actor.ActorSystem.Create("review-terminating", ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig);
        var reported = new ConcurrentQueue<int>();
        var queue = new WorkQueue<int>(maxSize: 10, system: system, name: "orders");
        var inFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.ProcessAsync(async (item, _) =>
        {
            if (item == 1)
            {
                inFirst.SetResult();
                await gate.Task;
            }
        }, numWorkers: 1, errorHandler: (_, item) =>
        {
            reported.Enqueue(item);
            return Task.CompletedTask;
        });
        Assert.True(await queue.PutAsync(1));
        await inFirst.Task.WaitAsync(Bound);
        for (var item = 2; item <= 5; item++)
        {
            Assert.True(await queue.PutAsync(item));
        }

        var stop = queue.StopAsync();
        await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");
        gate.SetResult();
        await stop.WaitAsync(Bound);

        await system.Terminate().WaitAsync(Bound);
        await Poll.UntilAsync(() => reported.Count >= 4, Bound, () => $"4 items reported, got {reported.Count}");
        var dispose = queue.DisposeAsync().AsTask();
        var disposed = await Poll.CompletesWithin(dispose, Bound);

        Assert.Equal([2, 3, 4, 5], reported);
        Assert.True(disposed, "DisposeAsync after the system terminated did not complete");
        var metrics = queue.Metrics;
        Assert.Equal(4, metrics.Discarded);
        Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
    }
    /// <summary>
    /// A batch running when its queue is disposed: the items queued reach the error handler as discarded, but the
    /// items of the chunk the disposal's stop refused (read from the caller's sequence, in no queue) reach nobody —
    /// the case 73983de fixed for a cancellation, missed for a disposal.
    /// </summary>
    [Fact]
    public async Task A_batch_whose_queue_is_disposed_reports_the_items_of_the_chunk_the_stop_refused()
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "batch");
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var sequence = new CountedSequence();

        var batch = queue.BatchProcessAsync(sequence.Items(), (_, ct) => Task.Delay(Timeout.Infinite, ct), numWorkers: 1, errorHandler: (error, item) =>
        {
            reported.Enqueue((error, item));
            return Task.CompletedTask;
        });
        await Poll.UntilAsync(() => queue.IsFull && sequence.Read == 8 && queue.Metrics.Enqueued == 5, Bound,
            () => $"the second chunk is partly admitted (read {sequence.Read}, enqueued {queue.Metrics.Enqueued}, size {queue.Size})");

        await queue.DisposeAsync().AsTask().WaitAsync(Bound);
        await Assert.ThrowsAnyAsync<Exception>(() => Within(batch));

        var items = reported.Select(r => r.Item).Order().ToList();
        Assert.True(items.SequenceEqual(Enumerable.Range(0, 8)),
            $"of the 8 items read from the sequence, only [{string.Join(",", items)}] were processed or reported; metrics {queue.Metrics}");
    }
}
