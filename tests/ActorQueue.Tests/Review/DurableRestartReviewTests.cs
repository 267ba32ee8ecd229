using System.Collections.Concurrent;
using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Serilog;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review 97 of the durable queue: its router restarting while a journal write is under way (<see cref="WriteGatedJournal"/>
/// holds the write; a clock that throws on its next reading makes the router fail, as only the router reads it), the
/// name guard across actor systems sharing one SQLite file, and the producers' trace contexts of a batch put.
/// </summary>
[Collection(WriteGatedJournal.Collection)]
public sealed class DurableRestartReviewTests : ActorQueueTestKit, IDisposable
{
    private const string Producer = "durable-review-producer";

    private readonly DurableStore _store;

    public DurableRestartReviewTests()
    {
        _store = new DurableStore(Sys);
    }

    /// <summary>
    /// Item 1's write is at the journal when a getter's arrival makes the router fail; the write ends after that. The
    /// router must not recover its book while the write is under way: the recovery would miss item 1 (stored all the
    /// same), and its next write would take item 1's sequence number and id. The write is let go once the router has
    /// logged its restart (the next instance's take-over, or that the restart waits for the write). Now the restart waits
    /// for the write: the put is answered (its item is stored), a put sent meanwhile waits for the next instance, the
    /// getter gets item 1 from it, the queue goes on, and the journal recovers every item once.
    /// Failed before: QueueStorageException "restarted after an internal error while the item's write was under way: it
    /// may have been stored, and then runs" for put 1 — and it never ran: the next instance had recovered without it, the
    /// getter got item 2, journaled under item 1's id and sequence number, and the reopened queue recovered one item.
    /// </summary>
    [Fact]
    public async Task A_restart_while_a_put_is_written_waits_for_the_write_and_the_item_runs()
    {
        var system = WriteGatedJournal.System("restart-during-write");
        var clock = new FailingClock();
        var durability = WriteGatedJournal.Durability with { Clock = clock };
        var logs = new CapturingSink();
        try
        {
            var queue = new BoundedQueue<int>(10, durability, "restart-during-write", logger: new LoggerConfiguration().WriteTo.Sink(logs).CreateLogger(), system: system);
            await Within(queue.StartAsync());

            WriteGatedJournal.Close();
            var put = queue.PutAsync(1);
            await Within(WriteGatedJournal.WriteArrived.Task);
            clock.FailNext(1);
            var get = queue.GetAsync();
            await Eventually(() => logs.Events.Any(log => log.MessageTemplate.Text.Contains("restart", StringComparison.Ordinal)), "the router logged its restart");
            var meanwhile = queue.PutAsync(3); // kept for the next instance while the failed one waits for its write
            WriteGatedJournal.Open.SetResult();

            Assert.True(await Within(put));
            Assert.Equal(1, await Within(get));
            Assert.True(await Within(meanwhile));
            Assert.True(await Within(queue.PutAsync(2)));
            Assert.Equal(3, await Within(queue.GetAsync()));
            Assert.Equal(2, await Within(queue.GetAsync()));
            queue.TaskDone();
            queue.TaskDone();
            queue.TaskDone();
            await Within(queue.JoinAsync());
            Assert.Equal((3L, 3L, 0), (queue.Metrics.Enqueued, queue.Metrics.Processed, queue.Size));
            await queue.DisposeAsync();

            await using var reopened = new BoundedQueue<int>(10, WriteGatedJournal.Durability, "restart-during-write", system: system);
            await Within(reopened.StartAsync());
            Assert.Equal((3L, 3L, 0), (reopened.Metrics.Enqueued, reopened.Metrics.Processed, reopened.Size));
        }
        finally
        {
            WriteGatedJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>
    /// A full queue refuses a put (one backpressure event), then a getter's arrival makes the router restart. The count
    /// of backpressure events is the queue's, not the instance's: it stays 1 once the next instance has handed the getter
    /// its item, as the journaled counts do.
    /// Failed before: Metrics.BackpressureEvents went back to 0 (kept by the failed instance only).
    /// </summary>
    [Fact]
    public async Task A_restart_keeps_the_count_of_backpressure_events()
    {
        var clock = new FailingClock();
        await using var queue = new BoundedQueue<int>(1, _store.Durability(clock), DurableStore.UniqueName("restart-backpressure"), system: Sys);
        await Within(queue.StartAsync());
        Assert.True(await Within(queue.PutAsync(1)));
        Assert.False(await Within(queue.PutAsync(2, TimeSpan.Zero)));
        Assert.Equal(1, queue.Metrics.BackpressureEvents);

        clock.FailNext(1);
        Assert.Equal(1, await Within(queue.GetAsync()));

        Assert.Equal((1L, 1L, QueueStatus.Processing), (queue.Metrics.Enqueued, queue.Metrics.BackpressureEvents, queue.Status));
        queue.TaskDone();
        await Within(queue.JoinAsync());
    }

    /// <summary>
    /// DisposeAsync races a restart: the queue is stopping for the dispose, waiting for item 1's try, when the try fails
    /// and the router restarts reading the clock for the retry's due time. The next instance ends the stop (the dispose
    /// returns, and frees the name), and the item, whose failed try was not journaled, waits in the reopened queue with
    /// the book's counts whole.
    /// </summary>
    [Fact]
    public async Task A_restart_while_disposing_ends_the_dispose_and_keeps_the_item()
    {
        var clock = new FailingClock();
        var name = DurableStore.UniqueName("restart-disposing");
        var retry = new RetryPolicy { MaxAttempts = 3, InitialDelay = TimeSpan.Zero, Jitter = 0 };
        var queue = new BoundedQueue<int>(10, _store.Durability(clock, retry), name, system: Sys);
        await Within(queue.StartAsync());
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fail = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await queue.StartWorkersAsync(async _ =>
        {
            running.TrySetResult();
            await fail.Task;
            throw new InvalidOperationException("the try fails (review test)");
        }, numWorkers: 1);
        Assert.True(await Within(queue.PutAsync(1)));
        await Within(running.Task);

        var dispose = queue.DisposeAsync().AsTask(); // its stop is in the router's mailbox before the try's end
        clock.FailNext(1);
        fail.TrySetResult();
        await Within(dispose);
        Assert.False(clock.Armed); // the router read it for the retry, and restarted

        await using var reopened = new BoundedQueue<int>(10, _store.Durability(), name, system: Sys);
        await Within(reopened.StartAsync());
        Assert.Equal((1L, 0L, 1), (reopened.Metrics.Enqueued, reopened.Metrics.Processed, reopened.Size));
        Assert.Equal(1, await Within(reopened.GetAsync()));
        reopened.TaskDone();
        await Within(reopened.JoinAsync());
    }

    /// <summary>
    /// Two actor systems in one process open a durable queue of the same name on the same SQLite file: both would journal
    /// under one persistence id, each recovering and overwriting the other's items. The second open is refused, naming
    /// the queue and the file, and the name is free again once the first queue's DisposeAsync returns.
    /// Failed before: the second queue opened (the guard was kept per actor system).
    /// </summary>
    [Fact]
    public async Task A_queue_name_on_one_SQLite_file_is_taken_across_actor_systems()
    {
        var path = Path.Combine(_store.Folder, "shared.db");
        var name = DurableStore.UniqueName("shared");
        var other = ActorSystem.Create("second-system", ActorQueueRuntime.DefaultConfig);
        try
        {
            var first = new BoundedQueue<int>(10, new QueueDurability { StoragePath = path }, name, system: Sys);
            await Within(first.StartAsync());

            var refused = Assert.Throws<InvalidOperationException>(() =>
                new BoundedQueue<int>(10, new QueueDurability { StoragePath = Path.Combine(_store.Folder, ".", "shared.db") }, name, system: other));

            Assert.Contains($"'{name}'", refused.Message, StringComparison.Ordinal);
            Assert.Contains(Path.GetFullPath(path), refused.Message, StringComparison.Ordinal);
            await first.DisposeAsync();
            await using var second = new BoundedQueue<int>(10, new QueueDurability { StoragePath = path }, name, system: other);
            await Within(second.StartAsync());
        }
        finally
        {
            await other.Terminate();
        }
    }

    /// <summary>
    /// A batch put inside a producer's activity: each of its items runs under a consumer span that is a child of that
    /// activity, as a single put's item does.
    /// Failed before: the batch's items ran under spans of no parent (the durable router dropped the batch's trace).
    /// </summary>
    [Fact]
    public async Task A_batch_puts_items_run_under_children_of_the_producers_activity()
    {
        var spans = new ExportedSpans();
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(ActorQueueTelemetry.Name).AddSource(Producer)
            .AddInMemoryExporter(spans).Build();
        using var producer = new ActivitySource(Producer);
        var seen = new ConcurrentQueue<(int Item, ActivityTraceId Trace, ActivitySpanId Parent)>();
        await using var queue = new BoundedQueue<int>(10, _store.Durability(), DurableStore.UniqueName("batch-trace"), system: Sys);
        await Within(queue.StartAsync());
        await queue.StartWorkersAsync(item =>
        {
            seen.Enqueue((item, Activity.Current?.TraceId ?? default, Activity.Current?.ParentSpanId ?? default));
            return Task.CompletedTask;
        }, numWorkers: 1);

        ActivityContext parent;
        using (var put = producer.StartActivity("put batch", ActivityKind.Producer))
        {
            parent = put!.Context;
            await Within(queue.PutBatchAsync([1, 2, 3]));
        }

        await Within(queue.JoinAsync());
        Assert.Equal([(1, parent.TraceId, parent.SpanId), (2, parent.TraceId, parent.SpanId), (3, parent.TraceId, parent.SpanId)],
            seen.OrderBy(run => run.Item));
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }
}
