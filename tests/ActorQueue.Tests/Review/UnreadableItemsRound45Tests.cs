using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 45 (helper 208): a durable queue's item whose JSON cannot be read back as its type (the type changed since it
/// was written, or never round-trips) becomes a dead letter the moment it would run, and is now a final failure like any
/// other: the error handler hears of it (a <see cref="QueueStorageException"/> naming the queue, the item's id and the
/// reason, with the default item, as <c>DeadLettersAsync</c> lists it), and a batch without a handler throws it. Before,
/// it was only logged: a batch completed as if every item it ran had been processed.
/// </summary>
public sealed class UnreadableItemsRound45Tests : ActorQueueTestKit
{
    private readonly DurableStore _store;

    public UnreadableItemsRound45Tests()
    {
        _store = new DurableStore(Sys);
    }

    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(20));

    /// <summary>An item System.Text.Json writes but cannot read back: its one constructor's parameter matches no property.</summary>
    public sealed class WriteOnlyItem(int value)
    {
        public int Number { get; } = value;
    }

    /// <summary>
    /// A batch without an error handler on a queue opened again with an item it cannot read (left by an earlier run).
    /// Expected: the batch's two items run, the unreadable one is the only dead letter, and the batch throws an
    /// <see cref="AggregateException"/> holding one <see cref="QueueStorageException"/> that names the queue, the item's
    /// id and why it cannot be read back (the decoder's exception is its inner exception).
    /// Failed before: Assert.IsType() Failure: Value is null — the batch completed normally, though the item was never
    /// processed (only logged).
    /// </summary>
    [Fact]
    public async Task A_batch_without_a_handler_throws_an_item_it_cannot_read_back()
    {
        var name = await PutUnreadableAsync("h208-batch");

        await using var queue = new WorkQueue<WriteOnlyItem>(Config(), system: Sys, name: name);
        var ran = new ConcurrentQueue<int>();
        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync([new WriteOnlyItem(1), new WriteOnlyItem(2)], item =>
        {
            ran.Enqueue(item.Number);
            return Task.CompletedTask;
        }).WaitAsync(Bound));

        var failures = Assert.IsType<AggregateException>(error);
        var failure = Assert.IsType<QueueStorageException>(Assert.Single(failures.InnerExceptions));
        var dead = Assert.Single(await queue.Queue.DeadLettersAsync().WaitAsync(Bound));
        Assert.Equal([1, 2], ran.Order());
        AssertReported(failure, name, dead, queue.Metrics);
    }

    /// <summary>
    /// Workers with an error handler on a queue opened again with an item it cannot read. Expected: the handler hears of
    /// it once, with the default item and a <see cref="QueueStorageException"/> naming the queue, the item's id and the
    /// reason; the item is a dead letter after its one try, and the queue goes on (a later item runs).
    /// Failed before: the handler was never called (the wait for it timed out) — the router only logged the item.
    /// </summary>
    [Fact]
    public async Task A_workers_error_handler_hears_of_an_item_it_cannot_read_back()
    {
        var name = await PutUnreadableAsync("h208-handler");

        await using var queue = new BoundedQueue<WriteOnlyItem>(10, _store.Durability(), name, system: Sys);
        var reported = new ConcurrentQueue<(Exception Error, WriteOnlyItem? Item)>();
        var heard = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ran = new ConcurrentQueue<int>();
        await queue.StartAsync().WaitAsync(Bound);
        await queue.StartWorkersAsync(item =>
        {
            ran.Enqueue(item.Number);
            return Task.CompletedTask;
        }, numWorkers: 1, errorHandler: (error, item) =>
        {
            reported.Enqueue((error, item));
            heard.TrySetResult();
            return Task.CompletedTask;
        }).WaitAsync(Bound);

        await heard.Task.WaitAsync(Bound);
        var dead = Assert.Single(await Poll.ValueAsync(() => queue.DeadLettersAsync(), letters => letters.Count == 1, Bound));
        Assert.True(await queue.PutAsync(new WriteOnlyItem(8)).WaitAsync(Bound));
        await Poll.UntilAsync(() => ran.Contains(8), Bound, "a later item ran");

        var (error, item) = Assert.Single(reported);
        Assert.Null(item);
        Assert.Equal(1, dead.Attempts);
        AssertReported(Assert.IsType<QueueStorageException>(error), name, dead, queue.Metrics);
    }

    /// <summary>
    /// A drain over an item it cannot read back, on a queue whose workers have an error handler: the drain hands back
    /// only what it can read and the rest become dead letters; the handler hears of each (off the router's thread, not
    /// awaited by the drain: a handler that never returns must not hold a drain).
    /// Expected: the drain hands back nothing, the item is a dead letter, and the handler hears of it as in a run.
    /// Failed before: the handler was never called (the wait for it timed out).
    /// </summary>
    [Fact]
    public async Task A_drain_reports_an_item_it_cannot_hand_back_to_the_error_handler()
    {
        var name = await PutUnreadableAsync("h208-drain");

        await using var queue = new BoundedQueue<WriteOnlyItem>(10, _store.Durability(), name, system: Sys);
        var heard = new TaskCompletionSource<(Exception Error, WriteOnlyItem? Item)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartWorkersAsync(_ => Task.CompletedTask, numWorkers: 1, errorHandler: (error, item) =>
        {
            heard.TrySetResult((error, item));
            return Task.CompletedTask;
        }).WaitAsync(Bound);

        Assert.Empty(await queue.DrainAsync().WaitAsync(Bound));

        var (error, item) = await heard.Task.WaitAsync(Bound);
        var dead = Assert.Single(await queue.DeadLettersAsync().WaitAsync(Bound));
        Assert.Null(item);
        AssertReported(Assert.IsType<QueueStorageException>(error), name, dead, queue.Metrics);
    }

    /// <summary>The failure names the queue, the item's id and the reason its dead letter keeps; the item counts as one error.</summary>
    private static void AssertReported(QueueStorageException failure, string name, DeadLetter<WriteOnlyItem> dead, QueueMetrics metrics)
    {
        Assert.Equal(1L, metrics.Errors);
        Assert.Null(dead.Item);
        Assert.Contains($"Item {dead.Id} of durable queue {name} cannot be read back as {typeof(WriteOnlyItem).FullName}", failure.Message);
        Assert.NotNull(failure.InnerException);
        Assert.Contains(failure.InnerException.Message, failure.Message);
        Assert.Contains(failure.InnerException.Message, dead.LastError);
    }

    private QueueConfig Config() => new() { QueueCapacity = 10, ConcurrencyLimit = 2, Durability = _store.Durability() };

    /// <summary>Writes one <see cref="WriteOnlyItem"/> to a new durable queue and closes it; returns its name: opened again, it holds an item it cannot read.</summary>
    private async Task<string> PutUnreadableAsync(string label)
    {
        var name = DurableStore.UniqueName(label);
        await using var first = new BoundedQueue<WriteOnlyItem>(10, _store.Durability(), name, system: Sys);
        await first.StartAsync().WaitAsync(Bound);
        Assert.True(await first.PutAsync(new WriteOnlyItem(7)).WaitAsync(Bound));
        await first.StopAsync().WaitAsync(Bound);
        return name;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _store.Dispose();
        }
    }
}
