using System.Collections;
using System.Collections.Concurrent;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review (helper 177) of batches on one queue (<c>WorkQueue.Batch.cs</c>): two <c>BatchProcessAsync</c> calls at the same
/// time, a disposal between a batch's successful join and its stop, and a stop's token against a later stop's grace
/// (<c>BoundedQueue.EndGraceOnCancel</c>).
/// </summary>
public sealed class BatchConcurrencyReviewTests : ActorQueueTestKit
{
    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(10));

    /// <summary>
    /// A second batch started on a queue while a first one runs (capacity 4, one worker, the first batch's item 0 held
    /// in its worker). Expected: the second batch (and a third, still during the first) is refused at once with an
    /// <see cref="InvalidOperationException"/> naming the queue, its sequence never enumerated and its worker never
    /// called; the first batch runs all of its items through its own worker and completes; once it has, batches run again
    /// one after another (after one that failed too). Failed before: the second batch was not refused ("Assert.IsType()
    /// Failure: Expected InvalidOperationException, Actual TimeoutException"): it restarted the queue's workers with its own
    /// worker, and its join waited for the first batch's held item.
    /// </summary>
    [Fact]
    public async Task A_second_batch_started_while_one_runs_is_refused_at_once_and_the_first_is_untouched()
    {
        await using var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 4, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: "h177-two-batches");
        var handled = new ConcurrentQueue<(string Batch, int Item)>();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = queue.BatchProcessAsync(Enumerable.Range(0, 10), async item =>
        {
            handled.Enqueue(("first", item));
            if (item == 0)
            {
                held.TrySetResult();
                await release.Task;
            }
        });
        await held.Task.WaitAsync(Bound);

        var second = new WatchedSequence([100, 101]);
        var refused = await Record.ExceptionAsync(() => queue.BatchProcessAsync(second, item =>
        {
            handled.Enqueue(("second", item));
            return Task.CompletedTask;
        }).WaitAsync(Bound));
        var third = new WatchedSequence([200]);
        var refusedAgain = await Record.ExceptionAsync(() => queue.BatchProcessAsync(third, (item, _) =>
        {
            handled.Enqueue(("third", item));
            return Task.CompletedTask;
        }, 1, (_, _) => Task.CompletedTask, CancellationToken.None).WaitAsync(Bound));
        release.SetResult();
        await first.WaitAsync(Bound);

        Assert.IsType<InvalidOperationException>(refused);
        Assert.Contains("h177-two-batches", refused.Message);
        Assert.Contains("already running", refused.Message);
        Assert.IsType<InvalidOperationException>(refusedAgain);
        Assert.False(second.Enumerated || third.Enumerated, "a refused batch's sequence was enumerated");
        Assert.Equal(Enumerable.Range(0, 10), handled.Where(h => h.Batch == "first").Select(h => h.Item).Order());
        Assert.Equal(10, handled.Count);
        Assert.Equal(QueueStatus.Stopped, queue.Status);

        // One after another: a batch whose sequence fails, then one that runs through.
        var failed = await Record.ExceptionAsync(() => queue.BatchProcessAsync(Failing(), _ => Task.CompletedTask).WaitAsync(Bound));
        Assert.Equal("the sequence failed", Assert.IsType<InvalidDataException>(failed).Message);
        var after = new ConcurrentQueue<int>();
        await queue.BatchProcessAsync([7, 8], item =>
        {
            after.Enqueue(item);
            return Task.CompletedTask;
        }).WaitAsync(Bound);
        Assert.Equal([7, 8], after.Order());
    }

    /// <summary>
    /// A disposal that lands between a batch's successful join and its stop (capacity 2, items 1 and 2, one worker, no
    /// error handler): item 2's worker waits until the batch's join waits at the router, disposes the queue (without
    /// waiting) and returns, so the join is answered (every item finished) and the disposal has stopped the queue by the
    /// time the batch stops it. Expected: the batch reports what its items did — it completes (every item processed), or,
    /// when item 1 failed, throws that failure alone — and completes once the queue has stopped. Failed before: the
    /// batch's own stop was refused as disposed and thrown ("Expected: no exception, Actual: ObjectDisposedException";
    /// with item 1 failed, an <see cref="AggregateException"/> that held the <see cref="ObjectDisposedException"/> first).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_disposal_between_a_batchs_join_and_its_stop_does_not_fail_a_batch_whose_items_all_finished(bool firstFails)
    {
        var queue = new WorkQueue<int>(new QueueConfig { QueueCapacity = 2, WorkerBatch = 1, ConcurrencyLimit = 1 }, system: Sys, name: $"h177-join-then-disposed-{firstFails}");
        var processed = new ConcurrentQueue<int>();
        var failure = new InvalidOperationException("item 1 failed");
        var batch = queue.BatchProcessAsync([1, 2], async item =>
        {
            if (item == 1 && firstFails)
            {
                throw failure;
            }

            if (item == 2)
            {
                await Poll.UntilAsync(() => RouterProbe.JoinsWaiting(queue) == 1, Bound, "the batch's join waits at the router");
                queue.Dispose();
            }

            processed.Enqueue(item);
        });

        await BatchDisposalOutcome.AssertItemsOnlyAsync(queue, batch, firstFails ? failure : null, processed, firstFails ? [2] : [1, 2], Bound);
    }

    /// <summary>
    /// A stop's token against other stops (<c>EndGraceOnCancel</c>, which tells the router <see cref="StopTimedOut"/>,
    /// not the zero-grace <see cref="StopQueue"/> a batch cancelled under a disposal sends): a stop that completed and whose
    /// token is cancelled after the queue was restarted changes nothing (the queue keeps processing, its worker keeps its
    /// item); a stop that joins another caller's stop (grace 1 h) ends the grace of the stop under way when its token is
    /// cancelled (the earliest deadline wins): the worker's token is cancelled, both stops complete, and the item goes back
    /// to the head. Passes (pins the mechanism: a zero-grace stop sent on a stale token would stop the restarted queue).
    /// </summary>
    [Fact]
    public async Task A_stops_token_ends_only_a_stop_under_way_and_never_stops_a_restarted_queue()
    {
        await using var queue = new BoundedQueue<string>(maxSize: 4, system: Sys, name: "h177-stop-token");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartWorkersAsync(async (_, token) =>
        {
            running.TrySetResult();
            await using (token.Register(() => cancelled.TrySetResult()))
            {
                await Task.Delay(Timeout.Infinite, token);
            }
        }, numWorkers: 1);
        await queue.StartAsync().WaitAsync(Bound);
        using var stale = new CancellationTokenSource();
        await queue.StopAsync(TimeSpan.FromHours(1), stale.Token).WaitAsync(Bound);
        await queue.StartAsync().WaitAsync(Bound);
        Assert.True(await queue.PutAsync("a"));
        await running.Task.WaitAsync(Bound);

        await stale.CancelAsync();
        var status = await queue.Router.Ask<QueueProtocol.Status>(QueueProtocol.GetStatus.Instance, Bound); // ordered after anything the cancellation sent
        Assert.Equal(QueueStatus.Processing, status.State);
        Assert.False(cancelled.Task.IsCompleted, "a completed stop's token cancelled the restarted queue's work");

        var underWay = queue.StopAsync(TimeSpan.FromHours(1));
        using var joining = new CancellationTokenSource();
        var joined = queue.StopAsync(TimeSpan.FromHours(1), joining.Token);
        await joining.CancelAsync();

        await cancelled.Task.WaitAsync(Bound);
        await Task.WhenAll(underWay, joined).WaitAsync(Bound);
        Assert.Equal(["a"], await queue.DrainAsync().WaitAsync(Bound));
    }

    /// <summary>A sequence that gives one item, then fails.</summary>
    private static IEnumerable<int> Failing()
    {
        yield return 1;
        throw new InvalidDataException("the sequence failed");
    }

    /// <summary>A sequence that records whether anyone asked for its enumerator.</summary>
    private sealed class WatchedSequence(int[] items) : IEnumerable<int>
    {
        private int _enumerated;

        /// <summary>Whether <see cref="GetEnumerator"/> was called.</summary>
        public bool Enumerated => Volatile.Read(ref _enumerated) != 0;

        public IEnumerator<int> GetEnumerator()
        {
            Interlocked.Exchange(ref _enumerated, 1);
            return ((IEnumerable<int>)items).GetEnumerator();
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
