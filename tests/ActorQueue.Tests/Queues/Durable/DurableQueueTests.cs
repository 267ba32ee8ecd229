using System.Collections.Concurrent;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>A durable queue through its facade and its actor protocol: what survives a restart, and what never runs twice.</summary>
public sealed class DurableQueueTests : ActorQueueTestKit, IDisposable
{
    private readonly DurableStore _store;

    public DurableQueueTests()
    {
        _store = new DurableStore(Sys);
    }

    private BoundedQueue<int> Open(string name, QueueDurability? durability = null, int maxSize = 100) =>
        new(maxSize, durability ?? _store.Durability(), name, system: Sys);

    [Fact]
    public async Task Items_accepted_before_the_queue_went_away_run_when_a_queue_of_the_same_name_opens()
    {
        var name = DurableStore.UniqueName("reopen");
        await using (var first = Open(name))
        {
            await Within(first.StartAsync());
            for (var i = 1; i <= 3; i++)
            {
                Assert.True(await Within(first.PutAsync(i)));
            }

            Assert.Equal(3, first.Size);
        }

        await using var second = Open(name);
        await Within(second.StartAsync());
        Assert.Equal(3, second.Size);
        var processed = new ConcurrentQueue<int>();
        await second.StartWorkersAsync(item =>
        {
            processed.Enqueue(item);
            return Task.CompletedTask;
        }, numWorkers: 1);
        await Within(second.JoinAsync());

        Assert.Equal([1, 2, 3], processed);
        Assert.Equal(new QueueMetrics(3, 3, 0, 0), second.Metrics);
    }

    [Fact]
    public async Task Finished_items_never_run_again_and_the_counts_survive_snapshots()
    {
        var name = DurableStore.UniqueName("finished");
        var durability = _store.Durability(snapshotEvery: 7);
        var runs = new ConcurrentDictionary<int, int>();
        Func<int, Task> work = item =>
        {
            runs.AddOrUpdate(item, 1, (_, n) => n + 1);
            return Task.CompletedTask;
        };
        await using (var first = Open(name, durability))
        {
            await Within(first.StartAsync());
            await first.StartWorkersAsync(work, numWorkers: 2);
            for (var i = 0; i < 40; i++)
            {
                Assert.True(await Within(first.PutAsync(i)));
            }

            await Within(first.JoinAsync());
        }

        await using var second = Open(name, durability);
        await Within(second.StartAsync());
        await second.StartWorkersAsync(work, numWorkers: 2);
        await Within(second.JoinAsync());

        Assert.Equal(40, runs.Count);
        Assert.All(runs.Values, count => Assert.Equal(1, count));
        Assert.Equal(new QueueMetrics(40, 40, 0, 0), second.Metrics);
    }

    [Fact]
    public async Task Items_run_by_priority_and_in_order_of_acceptance_within_one()
    {
        await using var queue = Open(DurableStore.UniqueName("priority"));
        await Within(queue.StartAsync());
        var puts = new (int Item, int Priority)[] { (1, 0), (2, 5), (3, 0), (4, 9), (5, 5) };
        foreach (var (item, priority) in puts)
        {
            Assert.True(await Within(queue.PutAsync(item, priority)));
        }

        var order = new ConcurrentQueue<int>();
        await queue.StartWorkersAsync(item =>
        {
            order.Enqueue(item);
            return Task.CompletedTask;
        }, numWorkers: 1);
        await Within(queue.JoinAsync());

        Assert.Equal([4, 2, 5, 1, 3], order);
    }

    [Fact]
    public async Task An_actor_puts_with_a_priority_and_is_answered_once_the_item_is_journaled()
    {
        await using var queue = Open(DurableStore.UniqueName("actor"));
        await Within(queue.StartAsync());
        var probe = CreateTestProbe();

        queue.Router.Tell(new QueueProtocol.Put(7, CorrelationId: 1) { Priority = 3 }, probe.Ref);
        await probe.ExpectMsgAsync(new QueueProtocol.Accepted(1));
        queue.Router.Tell(new QueueProtocol.Put("not an int", CorrelationId: 2), probe.Ref);
        Assert.Equal(2, (await probe.ExpectMsgAsync<QueueProtocol.RejectedInvalid>()).CorrelationId);
        queue.Router.Tell(QueueProtocol.GetStatus.Instance, probe.Ref);
        var status = await probe.ExpectMsgAsync<QueueProtocol.Status>();

        Assert.Equal((1, 1L), (status.Size, status.Metrics.Enqueued));
    }

    [Fact]
    public async Task A_full_durable_queue_applies_backpressure_and_journals_nothing_for_the_refused_put()
    {
        var name = DurableStore.UniqueName("full");
        await using (var queue = Open(name, maxSize: 1))
        {
            await Within(queue.StartAsync());
            Assert.True(await Within(queue.PutAsync(1)));
            Assert.False(await Within(queue.PutAsync(2, TimeSpan.Zero)));
            Assert.Equal(1, queue.Metrics.BackpressureEvents);
        }

        await using var again = Open(name, maxSize: 1);
        await Within(again.StartAsync());
        await again.StopAsync();
        Assert.Equal([1], await Within(again.DrainAsync()));
    }

    [Fact]
    public async Task Puts_that_arrive_together_are_written_as_one_journal_record()
    {
        if (DurableStore.Postgres is not null)
        {
            return; // counts rows in the SQLite file
        }

        var name = DurableStore.UniqueName("batched");
        await using var queue = Open(name, maxSize: 200);
        await Within(queue.StartAsync());
        await Within(queue.PutBatchAsync([.. Enumerable.Range(0, 100)]));

        Assert.Equal(100, queue.Size);
        Assert.Equal(1L, JournalRows("actorqueue-queue-" + name));
    }

    [Fact]
    public async Task A_stop_is_answered_once_the_ends_before_it_are_journaled()
    {
        var name = DurableStore.UniqueName("stop-writes");
        await using (var queue = Open(name))
        {
            await Within(queue.StartAsync());
            Assert.True(await Within(queue.PutAsync(1)));
            Assert.Equal(1, await Within(queue.GetAsync()));
            queue.TaskDone(); // its completion is still to be written when the dispose's stop arrives
        }

        await using var again = Open(name);
        await Within(again.StartAsync());
        Assert.Equal((0, 1L), (again.Size, again.Metrics.Processed));
    }

    private long JournalRows(string persistenceId)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection(DurableStorage.ConnectionString(_store.DatabasePath));
        connection.Open();
        using var count = connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id = $id";
        count.Parameters.AddWithValue("$id", persistenceId);
        return (long)count.ExecuteScalar()!;
    }

    [Fact]
    public async Task A_drained_item_is_gone_after_a_restart()
    {
        var name = DurableStore.UniqueName("drain");
        await using (var queue = Open(name))
        {
            await Within(queue.StartAsync());
            await Within(queue.PutAsync(1));
            await Within(queue.PutAsync(2));
            await queue.StopAsync();
            Assert.Equal([1, 2], await Within(queue.DrainAsync()));
        }

        await using var again = Open(name);
        await Within(again.StartAsync());
        Assert.Equal(0, again.Size);
        Assert.Equal(2, again.Metrics.Drained);
    }

    [Fact]
    public async Task Two_open_queues_may_not_share_a_name()
    {
        var name = DurableStore.UniqueName("twice");
        await using var queue = Open(name);

        var error = Assert.Throws<InvalidOperationException>(() => Open(name));
        Assert.Contains(name, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_durable_queue_needs_a_name()
    {
        var error = Assert.Throws<ArgumentException>(() => new BoundedQueue<int>(10, _store.Durability(), " ", system: Sys));
        Assert.Equal("name", error.ParamName);
    }

    public new void Dispose()
    {
        base.Dispose();
        _store.Dispose();
    }
}
