using System.Globalization;
using System.Text.RegularExpressions;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues;

namespace ActorQueue.Tests.Hosting;

public class BatchProcessTests : ActorQueueTestKit
{
    [Fact]
    public async Task BatchProcessAsync_without_a_handler_throws_every_worker_failure_after_the_whole_batch_ran()
    {
        await using var queue = new WorkQueue<int>(maxSize: 4, concurrencyLimit: 2, system: Sys);
        var ran = 0;

        var error = await Assert.ThrowsAsync<AggregateException>(() => Within(queue.BatchProcessAsync(Enumerable.Range(0, 10), item =>
        {
            Interlocked.Increment(ref ran);
            return item % 4 == 1 ? throw new InvalidOperationException($"item {item}") : Task.CompletedTask;
        })));

        Assert.Equal(10, Volatile.Read(ref ran));
        Assert.Equal(["item 1", "item 5", "item 9"], error.InnerExceptions.Select(e => e.Message).Order());
        Assert.Equal(QueueStatus.Stopped, queue.Status);
        Assert.Equal((10, 3), (queue.Metrics.Processed, queue.Metrics.Errors));
    }

    [Fact]
    public async Task BatchProcessAsync_with_a_handler_reports_failures_there_and_returns_normally()
    {
        await using var queue = new WorkQueue<int>(maxSize: 4, system: Sys);
        var reported = new List<int>();

        await Within(queue.BatchProcessAsync(Enumerable.Range(0, 5), item => item == 3 ? throw new InvalidOperationException() : Task.CompletedTask,
            errorHandler: (_, item) =>
            {
                lock (reported)
                {
                    reported.Add(item);
                }

                return Task.CompletedTask;
            }));

        Assert.Equal([3], reported);
    }

    [Fact]
    public async Task A_cancelled_batch_stops_at_once_and_leaves_every_unprocessed_item_queued()
    {
        await using var queue = new WorkQueue<int>(maxSize: 4, concurrencyLimit: 1, system: Sys);
        using var cancel = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sequence = new CountedSequence();

        var batch = queue.BatchProcessAsync(sequence.Items(), async (item, ct) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct); // only the batch's cancellation ends it
        }, cancellationToken: cancel.Token);
        await Within(started.Task);
        cancel.Cancel();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(batch));
        Assert.Equal(QueueStatus.Stopped, queue.Status);
        var left = await queue.DrainAsync(CancellationToken.None);
        Assert.Equal(0, queue.Metrics.Processed);

        // Every item read is either handed back, in order with the cancelled one first, or was in the chunk still waiting
        // for space that the stop refused, which the message counts: none vanishes unreported.
        var refused = Regex.Match(error.Message, @"the last (\d+) items read from the sequence were refused") is { Success: true } match
            ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
            : 0;
        Assert.Equal(Enumerable.Range(0, sequence.Read - refused), left);
        Assert.NotEmpty(left);
    }

    [Fact]
    public async Task A_cancelled_batch_reports_each_item_the_stop_refused_to_the_error_handler()
    {
        await using var queue = new WorkQueue<int>(maxSize: 4, concurrencyLimit: 1, system: Sys);
        using var cancel = new CancellationTokenSource();
        var reported = new System.Collections.Concurrent.ConcurrentQueue<(Exception Error, int Item)>();
        var sequence = new CountedSequence();

        var batch = queue.BatchProcessAsync(sequence.Items(), (_, ct) => Task.Delay(Timeout.Infinite, ct), errorHandler: (error, item) =>
        {
            reported.Enqueue((error, item));
            return Task.CompletedTask;
        }, cancellationToken: cancel.Token);
        // A chunk read from the sequence and not accepted: its put waits for space (or is on its way) when the stop comes.
        await Poll.UntilAsync(() => queue.IsFull && sequence.Read - queue.Metrics.Enqueued == 4, TimeSpan.FromSeconds(10),
            () => $"a chunk waits for space (read {sequence.Read}, enqueued {queue.Metrics.Enqueued})");
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(batch));
        var left = await queue.DrainAsync(CancellationToken.None);

        var total = sequence.Read;
        Assert.Equal(Enumerable.Range(total - 4, 4), reported.Select(r => r.Item));
        Assert.All(reported, r => Assert.IsAssignableFrom<OperationCanceledException>(r.Error));
        Assert.Equal(Enumerable.Range(0, total - 4), left);
    }

    [Fact]
    public async Task A_stop_token_cancels_work_in_flight_before_the_stop_timeout_and_the_item_goes_back_to_the_head()
    {
        await using var queue = new BoundedQueue<string>(maxSize: 4, system: Sys);
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartAsync();
        await queue.StartWorkersAsync(async (_, ct) =>
        {
            running.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }, numWorkers: 1);
        await queue.PutAsync("a");
        await queue.PutAsync("b");
        await Within(running.Task);
        using var cancel = new CancellationTokenSource();

        var stop = queue.StopAsync(Timeout.InfiniteTimeSpan, cancel.Token);
        Assert.False(stop.IsCompleted);
        cancel.Cancel();
        await Within(stop);

        Assert.Equal(["a", "b"], await queue.DrainAsync());
    }
}
