using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using Item = ActorQueue.Tests.Review.UnreadableItemsRound45Tests.WriteOnlyItem;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 45, second reading (helper 210) of the durable queue's unreadable items (reported to the error handler, in
/// flight until it has heard, then dead letters): a stop whose timeout runs out, a disposal, or a getter's hand-out while
/// the handler of such an item has not returned leaves each item one dead letter (or, after a disposal, waiting), counted
/// once, with nothing left in flight and the counters whole. Coverage of behaviour found correct (no defect found).
/// </summary>
public sealed class SecondReadingRound45Tests() : ActorQueueTestKit("actorqueue.queue.stop-timeout = 1s")
{
    private readonly ConcurrentQueue<Exception> _reported = new();

    /// <summary>The error handler's answer: it does not return until released.</summary>
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private DurableStore? _store;

    private DurableStore Store => _store ??= new DurableStore(Sys);

    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>
    /// A stop with a short timeout while the error handler of an unreadable item never returns. Expected: the stop
    /// completes (the timeout ends the wait for the handler), the item is one dead letter counted as one error, nothing
    /// is in flight, and <c>Enqueued == Processed + Drained + Discarded + Size + InFlight</c>.
    /// </summary>
    [Fact]
    public async Task A_stop_timing_out_under_an_unreadable_items_handler_dead_letters_it_once()
    {
        await using var queue = await OpenBlockedAsync("h210-stop", count: 1);
        Assert.Equal(1L, queue.Metrics.InFlight);

        await queue.StopAsync(TimeSpan.FromMilliseconds(100)).WaitAsync(Bound);

        var dead = Assert.Single(await queue.DeadLettersAsync().WaitAsync(Bound));
        AssertSettled(queue, errors: 1);
        Assert.Equal(1, dead.Attempts);
    }

    /// <summary>
    /// A disposal while the error handler of an unreadable item never returns. Expected: the disposal completes, nothing
    /// is in flight and the counters are whole; opened again, the queue holds the item as one dead letter or (its end not
    /// journaled) as one waiting item, never both.
    /// </summary>
    [Fact]
    public async Task A_disposal_under_an_unreadable_items_handler_leaves_the_counters_whole()
    {
        var queue = await OpenBlockedAsync("h210-dispose", count: 1);

        await queue.DisposeAsync().AsTask().WaitAsync(Bound);

        AssertSettled(queue, errors: queue.Metrics.Errors);
        await using var again = new BoundedQueue<Item>(10, Store.Durability(), queue.Name, system: Sys);
        var letters = await again.DeadLettersAsync().WaitAsync(Bound);
        Assert.Equal(1, letters.Count + again.Size);
    }

    /// <summary>
    /// A queue opened again over two items it cannot read, with one worker whose error handler has not returned from the
    /// first item's report, and a getter waiting: the second waits for the worker (round 46: the getter's hand-out no
    /// longer reports it beside the first, past the worker count; <see cref="UnreadableItemsRound46Tests"/>). Expected: the
    /// workers' handler hears of each once; once it returns, both are dead letters, two errors, nothing in flight, the
    /// counters whole, and the getter goes on waiting (it was handed nothing).
    /// </summary>
    [Fact]
    public async Task A_getters_unreadable_item_goes_to_the_workers_handler_once()
    {
        await using var queue = await OpenBlockedAsync("h210-getter", count: 2);
        using var stopGetting = new CancellationTokenSource();
        var get = queue.GetAsync(stopGetting.Token);
        Assert.Empty(await queue.DeadLettersAsync().WaitAsync(Bound)); // answered after the router handled the get
        Assert.Equal((1L, 1), (queue.Metrics.InFlight, queue.Size));
        Assert.Single(_reported);

        _release.TrySetResult();
        await Poll.UntilAsync(() => queue.Metrics.Errors == 2 && queue.Metrics.InFlight == 0, Bound, "both items are dead letters");
        Assert.Equal(2, (await queue.DeadLettersAsync().WaitAsync(Bound)).Count);
        Assert.All(_reported, error => Assert.IsType<QueueStorageException>(error));
        Assert.False(get.IsCompleted, get.Exception?.ToString());
        AssertSettled(queue, errors: 2);
        await stopGetting.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => get.WaitAsync(Bound));
    }

    private static void AssertSettled(BoundedQueue<Item> queue, long errors)
    {
        var metrics = queue.Metrics;
        Assert.Equal(0L, metrics.InFlight);
        Assert.Equal(errors, metrics.Errors);
        Assert.Equal(metrics.Enqueued, metrics.Processed + metrics.Drained + metrics.Discarded + queue.Size + metrics.InFlight);
    }

    /// <summary>
    /// Opens a queue over <paramref name="count"/> items it cannot read (written by an earlier run), started with one
    /// worker whose error handler does not return until <see cref="_release"/>; returns once it heard of the first.
    /// </summary>
    private async Task<BoundedQueue<Item>> OpenBlockedAsync(string label, int count)
    {
        var name = DurableStore.UniqueName(label);
        await using (var first = new BoundedQueue<Item>(10, Store.Durability(), name, system: Sys))
        {
            await first.StartAsync().WaitAsync(Bound);
            for (var i = 0; i < count; i++)
            {
                Assert.True(await first.PutAsync(new Item(i)).WaitAsync(Bound));
            }

            await first.StopAsync().WaitAsync(Bound);
        }

        var queue = new BoundedQueue<Item>(10, Store.Durability(), name, system: Sys);
        await queue.StartAsync().WaitAsync(Bound);
        await queue.StartWorkersAsync(_ => Task.CompletedTask, numWorkers: 1, errorHandler: (error, _) =>
        {
            _reported.Enqueue(error);
            return _release.Task;
        }).WaitAsync(Bound);
        await Poll.UntilAsync(() => !_reported.IsEmpty, Bound, "the handler heard of the first item");
        return queue;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        _release.TrySetResult();
        base.Dispose(disposing);
        if (disposing)
        {
            _store?.Dispose();
        }
    }
}
