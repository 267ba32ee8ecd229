using ActorQueue.Actors;
using ActorQueue.Tests.Hosting;
using Microsoft.Extensions.Logging;
using Item = ActorQueue.Tests.Review.UnreadableItemsRound45Tests.WriteOnlyItem;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 46 (helper 213), the reports of a durable queue's items it cannot read back as their type, each on a SQLite
/// file and on Akka's in-memory journal: a drain's such item after a batch is logged once, by its id; a report holds a
/// lease of the workers' limiter, as a try's report does; a drain's reports run one after another.
/// </summary>
public sealed class UnreadableReportsRound46Tests : UnreadableQueueTestKit
{
    /// <summary>
    /// A <c>BatchProcessAsync</c> without an error handler throws an item it cannot read back; requeued, the item is found
    /// by a drain, whose report goes to the batch's collector after the batch returned. Expected: from the drain on, one
    /// error log of the item, which names it by its id ("Item N of durable queue ... cannot be read back"), none showing it
    /// as "(null)"; the counters add up.
    /// Failed before: Assert.Single() Failure: The collection contained 2 items — the queue's log, then the collector's
    /// "Item (null) of queue ... failed after the batch that last started its workers had returned ...".
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_drains_unreadable_item_after_a_batch_is_logged_once_by_its_id(bool sqlite)
    {
        var name = await PutUnreadableAsync(sqlite, "h213-once", count: 1);
        var logs = new CapturingLoggerProvider();
        await using var queue = new WorkQueue<Item>(new QueueConfig { QueueCapacity = 10, ConcurrencyLimit = 1, Durability = Durability(sqlite) },
            logs.CreateLogger("h213"), Sys, name);
        var batch = await Record.ExceptionAsync(() => queue.BatchProcessAsync([new Item(1)], _ => Task.CompletedTask).WaitAsync(Bound));
        Assert.IsType<QueueStorageException>(Assert.Single(Assert.IsType<AggregateException>(batch).InnerExceptions));
        Assert.Equal(1, await queue.Queue.RequeueDeadLettersAsync().WaitAsync(Bound));
        var heard = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        queue.Queue.Telemetry.UnreadableReportEnded = () => heard.TrySetResult();
        var before = logs.Events.Count;

        Assert.Empty(await queue.DrainAsync().WaitAsync(Bound));
        await heard.Task.WaitAsync(Bound);

        var errors = logs.Events.Skip(before).Where(e => e.Level == LogLevel.Error).Select(e => e.Message).ToList();
        var only = Assert.Single(errors);
        Assert.Matches(@"^Item \d+ of durable queue .* cannot be read back", only);
        Assert.DoesNotContain("(null)", only, StringComparison.Ordinal);
        Assert.Single(await queue.Queue.DeadLettersAsync().WaitAsync(Bound));
        AssertWhole(queue.Queue);
    }

    /// <summary>
    /// Workers sharing a limiter of one permit, which the test holds, start on a queue opened again over an item it
    /// cannot read back. Expected: the report waits for a lease (the limiter has one waiter) and the handler has not heard;
    /// the item is in flight meanwhile; once the test lets its lease go, the handler hears, the item is a dead letter, and
    /// the counters add up.
    /// Failed before: Assert.Empty() Failure: Collection was not empty — the handler heard of the item while the test held
    /// the limiter's only permit (its report took no lease).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_workers_report_of_an_unreadable_item_holds_a_lease_of_their_limiter(bool sqlite)
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var held = await limiter.AcquireAsync("test").AsTask().WaitAsync(Bound);
        await using var queue = await ReopenAsync(sqlite, "h213-lease", count: 1);
        await queue.StartAsync().WaitAsync(Bound);
        await queue.StartWorkersAsync((_, _) => Task.CompletedTask, 1, Handler, limiter).WaitAsync(Bound);

        await Poll.UntilAsync(() => limiter.WaitingCount == 1 || !Reported.IsEmpty, Bound, "the report waits for a lease, or the handler heard");

        Assert.Empty(Reported);
        Assert.Equal((0, 1L), (queue.Size, queue.Metrics.InFlight));
        AssertWhole(queue);
        held.Dispose();
        await Poll.UntilAsync(() => Reported.Count == 1 && queue.Metrics.InFlight == 0, Bound, () => $"heard and ended: {queue.Metrics}");
        Assert.Single(await queue.DeadLettersAsync().WaitAsync(Bound));
        AssertWhole(queue);
    }

    /// <summary>
    /// As above for a drain's report: workers (not running the queue) share a limiter of one permit, which the test holds,
    /// and a drain finds an item it cannot read back. Expected: the drain answers at once (its report is not awaited), the
    /// item is a dead letter, and the handler hears only once the test lets its lease go.
    /// Failed before: Assert.Empty() Failure: Collection was not empty — the handler heard of the drain's item while the
    /// test held the limiter's only permit.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_drains_report_of_an_unreadable_item_holds_a_lease_of_the_workers_limiter(bool sqlite)
    {
        using var limiter = new ConcurrencyLimiter(1, system: Sys);
        var held = await limiter.AcquireAsync("test").AsTask().WaitAsync(Bound);
        await using var queue = await ReopenAsync(sqlite, "h213-drain-lease", count: 1);
        await queue.StartWorkersAsync((_, _) => Task.CompletedTask, 1, Handler, limiter).WaitAsync(Bound);

        Assert.Empty(await queue.DrainAsync().WaitAsync(Bound));
        await Poll.UntilAsync(() => limiter.WaitingCount == 1 || !Reported.IsEmpty, Bound, "the report waits for a lease, or the handler heard");

        Assert.Empty(Reported);
        Assert.Single(await queue.DeadLettersAsync().WaitAsync(Bound));
        held.Dispose();
        await Poll.UntilAsync(() => Reported.Count == 1, Bound, "the handler heard");
        AssertWhole(queue);
    }

    /// <summary>
    /// A drain finds three items it cannot read back, with workers whose error handler does not return until released.
    /// Expected: the drain answers at once; the handler hears of the first, and of the next only once it returned: never
    /// two calls at once; in the end all three are dead letters, each heard of once, and the counters add up.
    /// Failed before: Assert.Equal() Failure: Values differ — Expected: 1, Actual: 3 (each item's report on its own task:
    /// three handler calls at once).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_drains_reports_run_one_after_another(bool sqlite)
    {
        await using var queue = await ReopenAsync(sqlite, "h213-serial", count: 3);
        await queue.StartWorkersAsync((_, _) => Task.CompletedTask, 1, BlockingHandler).WaitAsync(Bound);

        Assert.Empty(await queue.DrainAsync().WaitAsync(Bound));
        await Poll.UntilAsync(() => !Reported.IsEmpty, Bound, "the handler heard of the first item");
        Assert.Equal(3, (await queue.DeadLettersAsync().WaitAsync(Bound)).Count); // a round trip through the router meanwhile

        Assert.Equal(1, AtOnce);
        Release.TrySetResult();
        await Poll.UntilAsync(() => Reported.Count == 3 && AtOnce == 0, Bound, () => $"{Reported.Count} heard of");
        Assert.Equal(1, MostAtOnce);
        Assert.Equal(3, Reported.Select(error => error.Message).Distinct().Count());
        AssertWhole(queue);
    }

    private Task Handler(Exception error, Item? item)
    {
        Reported.Enqueue(error);
        return Task.CompletedTask;
    }
}
