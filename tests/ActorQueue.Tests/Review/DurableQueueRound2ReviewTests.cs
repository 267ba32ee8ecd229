using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using Akka.Persistence;
using static ActorQueue.Tests.Review.DurableQueueRound2Review;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Second review of the durable work queue (<c>src/Actors/Queues/Durable</c>): nothing accepted is lost or counted
/// twice, the journal a queue writes can always be recovered, and the queue keeps serving. Several tests hold a write at
/// <see cref="WriteGatedJournal"/> so that what arrives meanwhile shares the next record.
/// </summary>
[Collection(WriteGatedJournal.Collection)]
public sealed class DurableQueueRound2ReviewTests : ActorQueueTestKit
{
    /// <summary>
    /// A retry policy whose backoff reaches past the calendar (a MaxDelay of TimeSpan.MaxValue for "no cap", or a
    /// first delay of 10,000 years for "keep failed items until someone looks") is accepted by <see cref="RetryPolicy"/>.
    /// Failed before: the first failure's due time (now + delay) threw ArgumentOutOfRangeException on the router's
    /// thread; the router restarted, idle and without workers, so the next put was refused ("queue is idle") and
    /// nothing ran again. Now the due time is the latest the clock can tell, and the queue goes on.
    /// </summary>
    [Fact]
    public async Task A_backoff_past_the_calendar_keeps_the_item_and_the_queue_serving()
    {
        var retry = new RetryPolicy { MaxAttempts = 3, InitialDelay = TimeSpan.FromDays(3_650_000), MaxDelay = TimeSpan.MaxValue, Jitter = 0 };
        await using var queue = new BoundedQueue<int>(10, QueueDurability.InMemory with { Retry = retry }, DurableStore.UniqueName("far-retry"), system: Sys);
        await Within(queue.StartAsync());
        var ran = new ConcurrentQueue<int>();
        await Within(queue.StartWorkersAsync(item =>
        {
            ran.Enqueue(item);
            return item == 1 ? throw new InvalidOperationException("fails") : Task.CompletedTask;
        }, numWorkers: 1));

        Assert.True(await Within(queue.PutAsync(1)));
        await Poll.UntilAsync(() => ran.Contains(1), Bound, "item 1 was tried");
        await Poll.UntilAsync(() => queue.Metrics.InFlight == 0, Bound, "item 1's try ended");
        Assert.True(await Within(queue.PutAsync(2)));
        await Poll.UntilAsync(() => ran.Contains(2), Bound, "item 2 ran");
        Assert.Equal(QueueStatus.Processing, queue.Status);
        Assert.Equal(1, queue.Size); // item 1 waits for its retry
    }

    /// <summary>
    /// A snapshot taken when a write ends must not contain a change still waiting in the outbox: an unreadable item
    /// dead-lettered while a write was under way is changed in the book at once (so nothing hands it out again) and
    /// journaled with the next write. Failed before: the write in flight ended, the snapshot was due and held the dead
    /// letter, and its event was journaled after the snapshot; a recovery applied it twice (dead letter tried 2 times,
    /// Processed and Errors 2, the book's invariant broken). Now the snapshot waits until the outbox holds no such change.
    /// </summary>
    [Fact]
    public async Task A_snapshot_and_the_events_after_it_recover_an_unreadable_item_dead_lettered_once()
    {
        const string name = "snapshot-dead";
        var system = WriteGatedJournal.System(name);
        try
        {
            var durability = WriteGatedJournal.Durability with { SnapshotEvery = 2 };
            await using (var strings = new BoundedQueue<string>(10, durability, name, system: system))
            {
                await strings.StartAsync().WaitAsync(Bound);
                Assert.True(await strings.PutAsync("not a number").WaitAsync(Bound));
            }

            await using (var queue = new BoundedQueue<int>(10, durability, name, system: system))
            {
                await queue.StartAsync().WaitAsync(Bound);
                Assert.True(await queue.PutAsync(1).WaitAsync(Bound)); // one event written: the snapshot is due after the next
                WriteGatedJournal.Close();
                var put = queue.PutAsync(2);
                await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
                var get = queue.GetAsync(); // dead-letters the unreadable item while item 2's write is held, and takes item 1
                Assert.Equal(1, await get.WaitAsync(Bound));
                WriteGatedJournal.Open.SetResult();
                Assert.True(await put.WaitAsync(Bound));
                await Poll.ValueAsync(() => SnapshotAsync(system, name), snapshot => snapshot is not null, Bound);
            }

            await using var reopened = new BoundedQueue<int>(10, durability, name, system: system);
            await reopened.StartAsync().WaitAsync(Bound);
            var dead = Assert.Single(await reopened.DeadLettersAsync().WaitAsync(Bound));
            Assert.Equal(1, dead.Attempts);
            var metrics = reopened.Metrics;
            Assert.Equal((3L, 1L, 1L, 2), (metrics.Enqueued, metrics.Processed, metrics.Errors, reopened.Size));
        }
        finally
        {
            WriteGatedJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>
    /// A batch put (what <c>WorkQueue.BatchProcessAsync</c> sends, a chunk of at most the capacity at a time) waits for
    /// space item by item, as in the in-memory queue, so a lazy sequence is read only as space frees. Failed before: the
    /// durable router journaled every item of a batch at once, past the capacity (5 items in a queue of 2), and answered
    /// the batch, so BatchProcessAsync read and journaled its whole sequence ahead of the workers.
    /// </summary>
    [Fact]
    public async Task A_batch_put_waits_for_space_instead_of_filling_the_queue_past_its_capacity()
    {
        await using var queue = new BoundedQueue<int>(2, QueueDurability.InMemory, DurableStore.UniqueName("batch"), system: Sys);
        await Within(queue.StartAsync());

        var batch = queue.PutBatchAsync([1, 2, 3, 4, 5]);
        await Poll.UntilAsync(() => queue.Size == 2 || batch.IsCompleted, Bound, "the batch filled the queue");
        var status = await StatusOfAsync(queue);
        Assert.True(status.Size <= 2, $"the queue holds {status.Size} items, its capacity is 2");
        Assert.False(batch.IsCompleted, "the batch was answered before its items found space");

        var ran = new ConcurrentQueue<int>();
        await Within(queue.StartWorkersAsync(item =>
        {
            ran.Enqueue(item);
            return Task.CompletedTask;
        }, numWorkers: 1));
        await Within(batch);
        await Within(queue.JoinAsync());
        Assert.Equal([1, 2, 3, 4, 5], ran);
        Assert.Equal(5, queue.Metrics.Enqueued);
    }

    /// <summary>
    /// A blank JournalPluginId (an unset setting read as "") is bad input, as a blank StoragePath is. Failed before: it
    /// was taken, and Akka read "" as "the default journal", Akka's in-memory one, so the "durable" queue kept nothing
    /// across a restart, silently. Now the setter throws, naming the key and the value.
    /// </summary>
    [Theory]
    [InlineData("JournalPluginId", "")]
    [InlineData("JournalPluginId", "  ")]
    [InlineData("SnapshotPluginId", "")]
    public void A_blank_plugin_id_is_refused_naming_the_key_and_the_value(string key, string value)
    {
        var error = Assert.Throws<ArgumentException>(() => key == "JournalPluginId"
            ? new QueueDurability { JournalPluginId = value }
            : new QueueDurability { JournalPluginId = "akka.persistence.journal.inmem", SnapshotPluginId = value });
        Assert.Equal(key, error.ParamName);
        Assert.Contains($"'{value}'", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A plugin id that names no configuration (a typo, or a HOCON file not loaded) must say so. Failed before: the
    /// queue was created, its router failed to start, and StartAsync threw "Durable queue 'x' stopped before the item
    /// was stored", naming neither the setting nor its value. Now creating the queue throws a
    /// <see cref="QueueStorageException"/> naming both.
    /// </summary>
    [Theory]
    [InlineData("no.such.journal", "akka.persistence.snapshot-store.inmem", "JournalPluginId", "no.such.journal")]
    [InlineData("akka.persistence.journal.inmem", "no.such.snapshots", "SnapshotPluginId", "no.such.snapshots")]
    public async Task A_plugin_id_naming_no_configuration_is_a_clear_error(string journal, string snapshot, string key, string value)
    {
        var durability = new QueueDurability { JournalPluginId = journal, SnapshotPluginId = snapshot };
        var error = await Record.ExceptionAsync(async () =>
        {
            await using var queue = new BoundedQueue<int>(10, durability, DurableStore.UniqueName("missing-plugin"), system: Sys);
            await Within(queue.StartAsync());
        });

        Assert.IsType<QueueStorageException>(error);
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{value}'", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A put waiting on a full queue gets the space a getter frees. Failed before: the router admitted waiting puts
    /// before handing items out, so after GetAsync took the only item the put went on waiting, on an empty queue, until
    /// some other message came (with a timeout it met backpressure: "full"); here, for ever.
    /// </summary>
    [Fact]
    public async Task A_put_waiting_on_a_full_queue_is_admitted_when_a_getter_takes_the_item()
    {
        await using var queue = new BoundedQueue<int>(1, QueueDurability.InMemory, DurableStore.UniqueName("wait-then-get"), system: Sys);
        await Within(queue.StartAsync());
        Assert.True(await Within(queue.PutAsync(1)));
        var waiting = queue.PutAsync(2, Timeout.InfiniteTimeSpan);
        await StatusOfAsync(queue);
        Assert.False(waiting.IsCompleted, "the put should wait: the queue is full");

        Assert.Equal(1, await Within(queue.GetAsync()));

        Assert.True(await Within(waiting));
        Assert.Equal(2, await Within(queue.GetAsync()));
    }

    /// <summary>
    /// An item whose serialisation throws something other than the three exceptions the router caught (a property getter
    /// throwing FormatException, a converter throwing ArgumentException) is an item that cannot be stored. Failed before:
    /// the exception escaped on the router's thread: the router restarted idle and without its workers, the put never
    /// completed, and every put after it was refused ("queue is idle"). Now the put fails with ArgumentException (item),
    /// and the queue goes on.
    /// </summary>
    [Fact]
    public async Task An_item_whose_serialisation_throws_fails_its_put_and_the_queue_goes_on()
    {
        await using var queue = new BoundedQueue<Flaky>(10, QueueDurability.InMemory, DurableStore.UniqueName("flaky-json"), system: Sys);
        await Within(queue.StartAsync());

        var error = await Assert.ThrowsAsync<ArgumentException>(() => Within(queue.PutAsync(new Flaky(Fail: true))));
        Assert.Equal("item", error.ParamName);
        Assert.IsType<FormatException>(error.InnerException);

        Assert.True(await Within(queue.PutAsync(new Flaky(Fail: false))));
        Assert.Equal(QueueStatus.Processing, queue.Status);
    }

    /// <summary>An item whose one property throws when read (so System.Text.Json throws it) when <see cref="Fail"/>.</summary>
    public sealed record Flaky(bool Fail)
    {
        /// <summary>The value, or a FormatException.</summary>
        public int Value => Fail ? throw new FormatException("no value") : 1;
    }

    /// <summary>
    /// A journal write that fails (the database gone: not a rejection) stops the router, as Akka.Persistence does; the
    /// put learns its item may have been stored. Failed before: the queue's Status still said Processing for ever (the
    /// last counters the router published), so a health check saw a running queue that would run nothing more. Now it
    /// says Stopped.
    /// </summary>
    [Fact]
    public async Task A_queue_whose_journal_write_failed_no_longer_reports_processing()
    {
        var system = ActorSystem.Create("failing-journal", Akka.Configuration.ConfigurationFactory.ParseString($$"""
            failing.journal {
              class = "{{typeof(FailingJournal).AssemblyQualifiedName}}"
              plugin-dispatcher = "akka.actor.default-dispatcher"
            }
            """).WithFallback(ActorQueue.Runtime.ActorQueueRuntime.DefaultConfig));
        try
        {
            var durability = new QueueDurability { JournalPluginId = "failing.journal", SnapshotPluginId = "akka.persistence.snapshot-store.inmem" };
            await using var queue = new BoundedQueue<int>(10, durability, "failing-journal", system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));

            FailingJournal.Fail = true;
            await Assert.ThrowsAsync<QueueStorageException>(() => queue.PutAsync(2).WaitAsync(Bound));

            await Poll.UntilAsync(() => queue.Status != QueueStatus.Processing, Bound, () => $"the status after the journal failed is {queue.Status}");
            Assert.Equal(QueueStatus.Stopped, queue.Status);
        }
        finally
        {
            FailingJournal.Fail = false;
            await system.Terminate();
        }
    }

    /// <summary>
    /// StartWorkersAsync while a stop is under way throws QueueStateException (README, "Replacing workers"; the in-memory
    /// queue does). Failed before: the durable router took the new workers silently while stopping.
    /// </summary>
    [Fact]
    public async Task StartWorkersAsync_while_the_queue_is_stopping_throws()
    {
        await using var queue = new BoundedQueue<int>(10, QueueDurability.InMemory, DurableStore.UniqueName("workers-stopping"), system: Sys);
        await Within(queue.StartAsync());
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await Within(queue.StartWorkersAsync(async (_, token) =>
        {
            running.TrySetResult();
            await release.Task.WaitAsync(token);
        }, numWorkers: 1));
        Assert.True(await Within(queue.PutAsync(1)));
        await Within(running.Task);
        var stop = queue.StopAsync(Timeout.InfiniteTimeSpan);
        try
        {
            await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopping, Bound, "the stop is under way");

            var error = await Assert.ThrowsAsync<QueueStateException>(() => Within(queue.StartWorkersAsync(_ => Task.CompletedTask, numWorkers: 1)));
            Assert.Equal(QueueStatus.Stopping, error.Status);
        }
        finally
        {
            release.TrySetResult();
        }

        await Within(stop);
    }

    /// <summary>
    /// An exception on the router's thread (here its clock throws) restarts the persistent router, which recovers from
    /// its journal under the same persistence id. Failed before: the restart ran PostStop, which freed the queue's name,
    /// so a second queue of that name opened in the same actor system while the first router lived on: two routers
    /// journaling under one identity. Now the name stays taken until the router stops.
    /// </summary>
    [Fact]
    public async Task A_restarted_router_keeps_its_queue_name()
    {
        var clock = new FailingClock();
        var name = DurableStore.UniqueName("restarted");
        var durability = QueueDurability.InMemory with { Clock = clock };
        await using var queue = new BoundedQueue<int>(10, durability, name, system: Sys);
        await Within(queue.StartAsync());

        clock.FailNext(int.MaxValue);
        // Its write ends in a hand-out that reads the clock, which throws: the router restarts, fails again while it
        // resumes (the clock still throws), restarts again and stops (DurableRestartTests).
        _ = queue.PutAsync(1);
        await Poll.UntilAsync(() => queue.Status == QueueStatus.Stopped, Bound, () => $"the router restarted (status {queue.Status})");
        clock.FailNext(0);

        BoundedQueue<int>? second = null;
        var error = Record.Exception(() => second = new BoundedQueue<int>(10, durability, name, system: Sys));
        if (second is not null)
        {
            await second.DisposeAsync();
        }

        Assert.IsType<InvalidOperationException>(error);
    }

    /// <summary>The latest snapshot of queue <paramref name="name"/> in the in-memory snapshot store, or <c>null</c>.</summary>
    private static async Task<object?> SnapshotAsync(ActorSystem system, string name)
    {
        var store = Persistence.Instance.Apply(system).SnapshotStoreFor("akka.persistence.snapshot-store.inmem");
        var result = await store.Ask<LoadSnapshotResult>(
            new LoadSnapshot("actorqueue-queue-" + name, SnapshotSelectionCriteria.Latest, long.MaxValue), Bound);
        return result.Snapshot?.Snapshot;
    }
}

/// <summary>Akka's in-memory journal whose writes fail (throw, as a lost database does) while <see cref="Fail"/> is set.</summary>
public sealed class FailingJournal : Akka.Persistence.Journal.MemoryJournal
{
    /// <summary>While set, every write fails.</summary>
    public static volatile bool Fail;

    /// <inheritdoc />
    protected override Task<System.Collections.Immutable.IImmutableList<Exception?>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken) =>
        Fail ? Task.FromException<System.Collections.Immutable.IImmutableList<Exception?>>(new IOException("the database is gone")) : base.WriteMessagesAsync(messages, cancellationToken);
}
