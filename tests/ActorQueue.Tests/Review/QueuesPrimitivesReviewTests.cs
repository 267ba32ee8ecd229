using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Tests.Hosting;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Review;

/// <summary>Review of the in-memory queues, the primitives and hosting by helper 137.</summary>
public class QueuesPrimitivesReviewTests : ActorQueueTestKit
{
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>An actor system of the test's own whose queues' stop timeout (a disposal's) is 1 s.</summary>
    private static ActorSystem OwnSystem(string name) =>
        ActorSystem.Create(name, ConfigurationFactory.ParseString("actorqueue.queue.stop-timeout = 1s").WithFallback(ActorQueueRuntime.DefaultConfig));

    private static Func<Exception, int, Task> Collect(ConcurrentQueue<(Exception Error, int Item)> reported) => (error, item) =>
    {
        reported.Enqueue((error, item));
        return Task.CompletedTask;
    };

    /// <summary>A sequence that gives the items 1 to <paramref name="count"/> and then fails, as a cursor over a broken source does.</summary>
    private static IEnumerable<int> FailingAfter(int count)
    {
        for (var item = 1; item <= count; item++)
        {
            yield return item;
        }

        throw new InvalidOperationException("the source broke");
    }

    /// <summary>
    /// Failed before: the items the sequence gave before it failed were dropped (processed 0 of 10, nothing reported)
    /// and the queue was left processing. <c>BatchProcessAsync</c> reads the sequence into chunks of at most the
    /// queue's capacity and puts a chunk once it is full (WorkQueue.Batch.cs PutAllAsync); when the sequence's
    /// <c>MoveNext</c> threw, the exception left PutAllAsync with the partial chunk unsent: items taken from the caller
    /// that were never processed, reported or counted (with a lazy source, a cursor, a message stream, gone), while the
    /// queue stayed processing with its workers, and the caller could not tell which items had run. Expected: the items
    /// the sequence gave are processed as any other, the queue stops as at a batch's end, and the batch throws the
    /// sequence's exception.
    /// </summary>
    [Fact]
    public async Task A_batch_whose_sequence_fails_processes_the_items_it_gave_before_and_throws_its_exception()
    {
        await using var queue = new WorkQueue<int>(maxSize: 4, system: Sys, name: "r137-broken-source");
        var processed = new ConcurrentQueue<int>();
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(FailingAfter(10), (item, _) =>
        {
            processed.Enqueue(item);
            return Task.CompletedTask;
        }, errorHandler: Collect(reported)).WaitAsync(Bound));

        Assert.Equal("the source broke", Assert.IsType<InvalidOperationException>(error).Message);
        Assert.Equal(Enumerable.Range(1, 10), processed.Order());
        Assert.Empty(reported);
        Assert.Equal(QueueStatus.Stopped, queue.Status);
        Assert.Equal((10, 10), (queue.Metrics.Enqueued, queue.Metrics.Processed));
    }

    /// <summary>
    /// Failed before: the failure of item 2, collected to be thrown at the batch's end, was dropped with the
    /// sequence's exception (it was neither thrown nor logged), and items 1 to 3 were never put. Without an error
    /// handler a batch collects its items' failures and throws them at its end; a failing sequence must not make them
    /// vanish: both are thrown, the sequence's exception first.
    /// </summary>
    [Fact]
    public async Task Without_a_handler_a_batch_whose_sequence_fails_throws_the_items_failures_with_it()
    {
        await using var queue = new WorkQueue<int>(maxSize: 100, system: Sys, name: "r137-broken-source-no-handler");

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(FailingAfter(3),
            (item, _) => item == 2 ? throw new ArgumentException($"item {item} is bad") : Task.CompletedTask).WaitAsync(Bound));

        var aggregate = Assert.IsType<AggregateException>(error);
        Assert.Collection(aggregate.InnerExceptions,
            first => Assert.Equal("the source broke", Assert.IsType<InvalidOperationException>(first).Message),
            second => Assert.Equal("item 2 is bad", Assert.IsType<ArgumentException>(second).Message));
        Assert.Equal((3, 3, 1), (queue.Metrics.Enqueued, queue.Metrics.Processed, queue.Metrics.Errors));
    }

    /// <summary>
    /// Failed before: DisposeAsync had not completed 60 s (the dilated bound) after it was called (the worker honours its token; the stop
    /// timeout is 1 s), for both cases. A stop already under way (<c>StopAsync(Timeout.InfiniteTimeSpan)</c>, or an hour) when
    /// the queue is disposed: the disposal's StopQueue reached the Stopping behaviour, which only added it to the stops
    /// waiting (QueueRouterActor.Lifecycle.cs Stopping) and started no timer: the disposal waited for the work in flight
    /// to end by itself, for ever here. And once stopped, the disposal waited for the reports of the discarded items as
    /// long as the longest stop's timeout (LifecycleWaiters.CompleteStopsAfter), an hour with the hour's stop (with only
    /// the first part fixed, that case still failed), so an error handler that never returns held it too. README: a handler that never returns "cannot hold a disposal", and
    /// every dispose completes promptly. Expected: the disposal's own timeout bounds it: the work in flight is cancelled
    /// after it (and goes back to the head, then, as every item still queued, is discarded and reported), and the stop
    /// that was under way completes with it.
    /// </summary>
    [Theory]
    [InlineData(-1)] // Timeout.InfiniteTimeSpan
    [InlineData(3_600_000)] // an hour
    public async Task A_disposal_during_a_long_stop_cancels_the_work_after_its_own_timeout(int stopTimeoutMs)
    {
        var system = OwnSystem("r137-dispose-during-stop");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reported = new ConcurrentQueue<int>();
        try
        {
            var queue = new BoundedQueue<int>(maxSize: 10, system: system, name: "r137-long-stop", workerBatch: 1);
            await queue.StartAsync();
            await queue.StartWorkersAsync(async (_, ct) =>
            {
                running.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
            }, numWorkers: 1, errorHandler: (_, item) =>
            {
                reported.Enqueue(item);
                return never.Task; // a handler that never returns
            });
            Assert.True(await queue.PutAsync(1));
            await running.Task.WaitAsync(Bound);
            Assert.True(await queue.PutAsync(2));
            var stop = queue.StopAsync(TimeSpan.FromMilliseconds(stopTimeoutMs));
            await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");

            var dispose = queue.DisposeAsync().AsTask();
            var disposed = await Poll.CompletesWithin(dispose, Bound);

            Assert.True(disposed, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout 1 s) during StopAsync({stopTimeoutMs} ms): {queue.Metrics}");
            await stop.WaitAsync(Bound);
            Assert.Equal((0, 2), (queue.Metrics.Processed, queue.Metrics.Discarded));
            await Poll.UntilAsync(() => !reported.IsEmpty, Bound, "the first item is reported");
            Assert.Equal([1], reported); // the reports go in order, and the handler has not returned from the first
        }
        finally
        {
            never.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>
    /// Failed before: the second stop did not complete within 60 s (the dilated bound); only the first stop's timeout (none) counted. A
    /// stop with a short timeout while a stop without one is under way, the usual "graceful, then forced" shutdown:
    /// the later, shorter deadline must end the grace period (the earliest deadline of the stops wins).
    /// </summary>
    [Fact]
    public async Task A_second_stop_with_a_shorter_timeout_ends_the_grace_period_sooner()
    {
        var system = OwnSystem("r137-forced-stop");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            var queue = new BoundedQueue<int>(maxSize: 10, system: system, name: "r137-forced-stop");
            await queue.StartAsync();
            await queue.StartWorkersAsync(async (_, ct) =>
            {
                running.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
            }, numWorkers: 1);
            Assert.True(await queue.PutAsync(1));
            await running.Task.WaitAsync(Bound);
            var graceful = queue.StopAsync(Timeout.InfiniteTimeSpan);
            await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the queue is stopping");

            var forced = queue.StopAsync(TimeSpan.Zero);

            Assert.True(await Poll.CompletesWithin(forced, Bound),
                $"StopAsync(TimeSpan.Zero) during StopAsync(Infinite) had not completed after {Bound.TotalSeconds} s");
            await graceful.WaitAsync(Bound);
            Assert.Equal((QueueStatus.Stopped, 1, 0), (queue.Status, queue.Size, queue.Metrics.Processed)); // the cancelled item went back to the head
            Assert.Equal([1], await queue.DrainAsync().WaitAsync(Bound));
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// Failed before: DisposeAsync had not completed 60 s (the dilated bound) after it was called (stop timeout 1 s), nor would it ever
    /// while the worker ran. A worker that ignores its token (a blocking client call, an SDK without a token): the
    /// disposal's stop timeout cancelled the token to no effect and the router waited for the worker's report for ever
    /// (QueueRouterActor CheckStopped waits for the pool to empty), so <c>await using</c> never ended, outside a host
    /// (inside one, only the actor system's termination ended it). README promises that a handler that never returns
    /// cannot hold a disposal; a worker that never returns held it. Expected: once the grace period is over, a disposal
    /// waits for the cancelled work at most its own timeout, then stops without the worker and reports the item it
    /// held as discarded (as when the actor system terminates under it), and the item queued behind it too.
    /// </summary>
    [Fact]
    public async Task A_disposal_is_not_held_for_ever_by_a_worker_that_ignores_its_token()
    {
        var system = OwnSystem("r137-ignoring-worker");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        var logs = new CapturingLoggerProvider();
        try
        {
            var queue = new BoundedQueue<int>(10, null, logs.CreateLogger("deaf"), system, "r137-deaf-worker", workerBatch: 1);
            await queue.StartAsync();
            await queue.StartWorkersAsync(async (_, _) =>
            {
                running.TrySetResult();
                await hold.Task; // never looks at its token
            }, numWorkers: 1, errorHandler: Collect(reported));
            Assert.True(await queue.PutAsync(1));
            await running.Task.WaitAsync(Bound);
            Assert.True(await queue.PutAsync(2));

            var dispose = queue.DisposeAsync().AsTask();
            var disposed = await Poll.CompletesWithin(dispose, Bound);

            Assert.True(disposed, $"DisposeAsync had not completed {Bound.TotalSeconds} s after it was called (stop timeout 1 s): a worker ignoring its token holds it ({queue.Metrics})");
            await Poll.UntilAsync(() => reported.Count == 2, Bound, () => $"both items are reported (reported [{string.Join(", ", reported.Select(r => r.Item))}])");
            Assert.Equal([1, 2], reported.Select(r => r.Item));
            Assert.All(reported, r => Assert.IsType<ObjectDisposedException>(r.Error));
            var metrics = queue.Metrics;
            Assert.Equal((0, 2, 0), (metrics.Processed, metrics.Discarded, metrics.InFlight));
            Assert.Contains(logs.Events, e => e.Level == LogLevel.Warning && e.Message.Contains("1 workers still running", StringComparison.Ordinal));
        }
        finally
        {
            hold.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>A join of the router's books whose caller cancelled it, as <c>JoinAsync</c> now does; only a weak reference to it is kept.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference JoinAndGiveUp(LifecycleWaiters waiters)
    {
        var join = new JoinQueue();
        waiters.Join(join, unfinished: 1);
        join.Completion.TrySetCanceled();
        return new WeakReference(join);
    }

    /// <summary>
    /// Failed before: the cancelled join was still alive after the next join and a full collection (it stayed in the
    /// router's list of joins until the queue emptied or stopped). <c>JoinAsync(token)</c> stopped waiting when its
    /// token fired (<c>Task.WaitAsync</c>) but its JoinQueue stayed in <c>LifecycleWaiters._joiners</c>: a caller that
    /// joins with a timeout again and again on a queue that is never empty (a progress log, a readiness probe) piled one
    /// up per call, for as long as the queue ran. Now a cancelled <c>JoinAsync</c> cancels its join, and a join drops
    /// the answered ones before it waits.
    /// </summary>
    [Fact]
    public void A_join_whose_caller_gave_up_is_dropped_at_the_next_join()
    {
        var waiters = new LifecycleWaiters();
        var abandoned = JoinAndGiveUp(waiters);
        var next = new JoinQueue();

        waiters.Join(next, unfinished: 1);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.False(abandoned.IsAlive, "a join whose caller cancelled it is still held by the router's books");
        waiters.Settled(unfinished: 0);
        Assert.True(next.Completion.Task.IsCompletedSuccessfully);
    }

    /// <summary>A cancelled <c>JoinAsync</c> throws as before, and a later one completes when the queue empties.</summary>
    [Fact]
    public async Task A_cancelled_JoinAsync_throws_and_a_later_one_completes_when_the_queue_empties()
    {
        await using var queue = new BoundedQueue<int>(maxSize: 10, system: Sys, name: "r137-join-again");
        await queue.StartAsync();
        Assert.True(await queue.PutAsync(1));
        using var giveUp = new CancellationTokenSource();
        var first = queue.JoinAsync(giveUp.Token);

        await giveUp.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.WaitAsync(Bound));
        var second = queue.JoinAsync(CancellationToken.None);
        Assert.Equal(1, await queue.GetAsync().WaitAsync(Bound));
        queue.TaskDone();
        await second.WaitAsync(Bound);
    }

    /// <summary>
    /// Failed before: item 2, which never ran, was reported with the limiter's "The concurrency limiter has been
    /// disposed" and counted as processed with an error (Processed 1, Errors 1, Discarded 1). A work queue whose own
    /// limiter has fewer permits than it has workers: a worker holding item 2 waits for the permit. The synchronous
    /// <c>WorkQueue.Dispose</c> disposed the queue (which only starts its stop) and then the limiter at once: the
    /// waiting worker's acquire failed with the limiter's disposal, which WorkerTask reports as the worker function's
    /// failure. Expected, as <c>DisposeAsync</c> does (the limiter after the queue): the item is discarded with the
    /// queue's own reason, and nothing counts as processed.
    /// </summary>
    [Fact]
    public async Task A_work_queue_disposed_without_waiting_discards_an_item_waiting_for_its_limiter_instead_of_failing_it()
    {
        var system = OwnSystem("r137-limiter-after-queue");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reported = new ConcurrentQueue<(Exception Error, int Item)>();
        try
        {
            var queue = new WorkQueue<int>(maxSize: 10, concurrencyLimit: 1, system: system, name: "r137-limiter-after-queue");
            await queue.StartAsync();
            await queue.ProcessAsync(async (_, ct) =>
            {
                running.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
            }, numWorkers: 2, errorHandler: Collect(reported));
            Assert.True(await queue.PutAsync(1));
            await running.Task.WaitAsync(Bound);
            Assert.True(await queue.PutAsync(2));
            await Poll.UntilAsync(() => queue.Limiter!.WaitingCount == 1, Bound, "the worker holding item 2 waits for the permit");

            queue.Dispose();

            await Poll.UntilAsync(() => reported.Count == 2, Bound, () => $"both items are reported (reported [{string.Join(", ", reported.Select(r => r.Item))}])");
            Assert.All(reported, r => Assert.Contains("was disposed with this item still queued", r.Error.Message, StringComparison.Ordinal));
            Assert.Equal((0, 0, 2), (queue.Metrics.Processed, queue.Metrics.Errors, queue.Metrics.Discarded));
        }
        finally
        {
            await system.Terminate();
        }
    }
}
