using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 45 (helper 206): <c>BatchProcessAsync</c> WITHOUT an error handler on a durable queue that retries failing items
/// (in-memory queues try an item once: nothing to retry there). The batch throws only for items that finally failed
/// (dead letters after their last try), one exception each (the last try's); an item that failed a try and then
/// succeeded is no failure of the batch. An error handler, when given, still hears of every failed try
/// (<see cref="DurableBatchFinishRound43Tests"/> asserts that).
/// </summary>
public sealed class BatchRetriesRound45Tests : ActorQueueTestKit
{
    /// <summary>Three tries, one right after the other: no clock to move, no wait.</summary>
    private static readonly RetryPolicy Retries = new() { MaxAttempts = 3, InitialDelay = TimeSpan.Zero, Multiplier = 1, Jitter = 0 };

    private readonly DurableStore _store;

    public BatchRetriesRound45Tests()
    {
        _store = new DurableStore(Sys);
    }

    /// <summary>Turns a hang into a failure; not a timing assertion.</summary>
    private TimeSpan Bound => Dilated(TimeSpan.FromSeconds(15));

    /// <summary>
    /// Five items on a retrying durable queue (a SQLite file, or the in-memory journal); item 2 fails its first try and
    /// succeeds on its second. Expected: the batch completes without throwing, every item succeeded exactly once (2 on its
    /// second try), no error is counted and there is no dead letter.
    /// Failed before: Assert.Null() Failure: Value is not null — Actual: System.AggregateException: 1 items of the batch
    /// failed in queue h206-retried-… (item 2 try 1), although every item finished successfully.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_batch_whose_failed_try_succeeded_on_its_retry_completes(bool sqlite)
    {
        await using var queue = Open(sqlite, "h206-retried");
        var tries = new ConcurrentDictionary<int, int>();
        var succeeded = new ConcurrentQueue<int>();

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(Enumerable.Range(0, 5), item =>
        {
            if (tries.AddOrUpdate(item, 1, (_, n) => n + 1) == 1 && item == 2)
            {
                throw new InvalidOperationException("item 2 try 1");
            }

            succeeded.Enqueue(item);
            return Task.CompletedTask;
        }).WaitAsync(Bound));

        Assert.Null(error);
        Assert.Equal([0, 1, 2, 3, 4], succeeded.Order());
        Assert.Equal(2, tries[2]);
        Assert.Equal((5L, 5L, 0L), (queue.Metrics.Enqueued, queue.Metrics.Processed, queue.Metrics.Errors));
        Assert.Empty(await queue.Queue.DeadLettersAsync().WaitAsync(Bound));
    }

    /// <summary>
    /// Six items, three tries each: item 4 fails every try (a dead letter), item 1 fails its first try only. Expected: the
    /// batch throws an <see cref="AggregateException"/> holding exactly one exception, the very one item 4's third try
    /// threw; items 0, 1, 2, 3 and 5 succeeded once each; 4 is the only dead letter, after 3 tries.
    /// Failed before: Assert.Single() Failure: The collection contained 4 items — [item 1 try 1, …]: item 1's first
    /// try and each of item 4's three tries, although one item finally failed.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_batch_throws_one_exception_per_dead_letter_its_last_try(bool sqlite)
    {
        await using var queue = Open(sqlite, "h206-dead");
        var thrown = new ConcurrentDictionary<(int Item, int Try), Exception>();
        var tries = new ConcurrentDictionary<int, int>();
        var succeeded = new ConcurrentQueue<int>();

        var error = await Record.ExceptionAsync(() => queue.BatchProcessAsync(Enumerable.Range(0, 6), item =>
        {
            var attempt = tries.AddOrUpdate(item, 1, (_, n) => n + 1);
            if (item == 4 || (item == 1 && attempt == 1))
            {
                throw thrown.GetOrAdd((item, attempt), key => new InvalidOperationException($"item {key.Item} try {key.Try}"));
            }

            succeeded.Enqueue(item);
            return Task.CompletedTask;
        }).WaitAsync(Bound));

        var failures = Assert.IsType<AggregateException>(error);
        Assert.Same(thrown[(4, 3)], Assert.Single(failures.InnerExceptions));
        Assert.Equal([0, 1, 2, 3, 5], succeeded.Order());
        Assert.Equal(3, tries[4]);
        Assert.Equal((6L, 6L, 1L), (queue.Metrics.Enqueued, queue.Metrics.Processed, queue.Metrics.Errors));
        var dead = Assert.Single(await queue.Queue.DeadLettersAsync().WaitAsync(Bound));
        Assert.Equal((4, 3), (dead.Item, dead.Attempts));
    }

    /// <summary>
    /// A cancelled batch without a handler (h204's contract: its <see cref="OperationCanceledException"/>'s inner
    /// <see cref="AggregateException"/> holds the cause first, then the failures): item 0 fails every try (a dead letter),
    /// item 1 fails its first try and its second waits until the cancellation stops the queue (cancelled, it stays in the
    /// journal, unfinished). Expected: the failures in the inner exception are item 0's last try alone; item 1's failed
    /// try is no failure (it is left queued, as the cancellation's message says).
    /// Failed before: Assert.Equal() Failure: Collections differ — Expected ["item 0 try 3"], Actual ["item 1 try 1",
    /// "item 0 try 1", "item 0 try 2", "item 0 try 3"] (every failed try, in the order they were reported).
    /// </summary>
    [Fact]
    public async Task A_cancelled_batch_holds_only_its_final_failures()
    {
        await using var queue = Open(sqlite: true, "h206-cancelled");
        var tries = new ConcurrentDictionary<int, int>();
        var secondTryOfOne = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cancellation = new CancellationTokenSource();

        var batch = queue.BatchProcessAsync([0, 1], async (item, token) =>
        {
            var attempt = tries.AddOrUpdate(item, 1, (_, n) => n + 1);
            if (item == 1 && attempt == 2)
            {
                secondTryOfOne.TrySetResult();
                await Task.Delay(Timeout.Infinite, token);
            }

            throw new InvalidOperationException($"item {item} try {attempt}");
        }, numWorkers: 2, cancellationToken: cancellation.Token);

        await secondTryOfOne.Task.WaitAsync(Bound);
        await Poll.ValueAsync(() => queue.Queue.DeadLettersAsync(), letters => letters.Count == 1, Bound);
        await cancellation.CancelAsync();

        var error = await Assert.ThrowsAsync<OperationCanceledException>(() => batch.WaitAsync(Bound));
        var inner = Assert.IsType<AggregateException>(error.InnerException);
        Assert.Equal(["item 0 try 3"], inner.InnerExceptions.Where(e => e.GetType() == typeof(InvalidOperationException)).Select(e => e.Message));
        Assert.Equal(2, tries[1]);
    }

    private WorkQueue<int> Open(bool sqlite, string label) =>
        new(new QueueConfig
            {
                QueueCapacity = 10,
                ConcurrencyLimit = 2,
                Durability = sqlite ? _store.Durability(retry: Retries) : QueueDurability.InMemory with { Retry = Retries },
            },
            system: Sys, name: DurableStore.UniqueName(label));

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
