using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review of the local queues by helper 68, durable queues: items that cannot be read back after a restart, a put
/// cancelled while its write is at the journal, and drains and requeues whose writes the journal rejects.
/// </summary>
[Collection(WriteGatedJournal.Collection)]
public class LocalQueueDurableReviewTests : ActorQueueTestKit
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>An item System.Text.Json writes but cannot read back: its one constructor's parameter matches no property.</summary>
    public sealed class WriteOnlyItem(int value)
    {
        public int Number { get; } = value;
    }

    /// <summary>
    /// A durable queue accepts an item whose JSON cannot be read back (it serialises; its constructor's parameter binds
    /// to no property — or its type changed since it was written). After a restart the item is replayed as bytes and
    /// decoded when it is handed out. Failed before: the decode threw on the router's thread, the router restarted idle,
    /// and the item was never run, reported or dead-lettered, nor anything after it. Now it becomes a dead letter at
    /// once, with the reason (no try can run it; the router logs it, and since round 45 the error handler hears of it,
    /// with the default item), counted as an error, and the queue goes on: a later item runs. A drain hands back only what it can read.
    /// </summary>
    [Fact]
    public async Task A_durable_item_that_cannot_be_read_back_after_a_restart_is_reported_not_lost()
    {
        using var store = new ActorQueue.Tests.Queues.Durable.DurableStore(Sys);
        var name = ActorQueue.Tests.Queues.Durable.DurableStore.UniqueName("r68-unreadable");
        var durability = store.Durability(retry: new RetryPolicy { MaxAttempts = 1 });
        await PutUnreadableAsync(durability, name);

        var ran = new ConcurrentQueue<int>();
        var reported = new ConcurrentQueue<Exception>();
        await using var second = new BoundedQueue<WriteOnlyItem>(10, durability, name, system: Sys);
        await second.StartAsync().WaitAsync(Bound);
        Assert.Equal(1, second.Size);
        await second.StartWorkersAsync((item, _) =>
        {
            ran.Enqueue(item.Number);
            return Task.CompletedTask;
        }, numWorkers: 1, errorHandler: (error, _) =>
        {
            reported.Enqueue(error);
            return Task.CompletedTask;
        }).WaitAsync(Bound);

        var dead = await Poll.ValueAsync(() => second.DeadLettersAsync(), letters => letters.Count == 1, Bound);
        Assert.Equal(1, dead[0].Attempts); // counted as its one try, though no worker ran it
        Assert.Contains("cannot be read back", dead[0].LastError);
        Assert.Null(dead[0].Item);
        Assert.Equal(QueueStatus.Processing, second.Status);
        Assert.Equal(1, second.Metrics.Errors);

        // The queue goes on: a new item (written and held in memory) runs.
        Assert.True(await second.PutAsync(new WriteOnlyItem(8)));
        await Poll.UntilAsync(() => ran.Contains(8), Bound, "a later item ran");
        Assert.IsType<QueueStorageException>(Assert.Single(reported)); // told before it is a dead letter (round 45: UnreadableItemsRound45Tests)
    }

    /// <summary>
    /// Two drains in a row over an unreadable item (re-read of b35aeaa): the first dead-letters it and answers at once
    /// (nothing to hand back), while its dead letter is still being written. Failed before: the item stayed ready until
    /// that write ended, so the second drain dead-lettered it again — counted twice, an invariant broken, and both
    /// records in the journal. Now it leaves the ready items at once.
    /// </summary>
    [Fact]
    public async Task An_unreadable_item_drained_twice_is_dead_lettered_once()
    {
        using var store = new ActorQueue.Tests.Queues.Durable.DurableStore(Sys);
        var name = ActorQueue.Tests.Queues.Durable.DurableStore.UniqueName("r68-unreadable-drain");
        var durability = store.Durability(retry: new RetryPolicy { MaxAttempts = 1 });
        await PutUnreadableAsync(durability, name);

        await using var second = new BoundedQueue<WriteOnlyItem>(10, durability, name, system: Sys);
        await second.StartAsync().WaitAsync(Bound);
        await second.StopAsync().WaitAsync(Bound);
        var drains = new[] { second.DrainAsync(), second.DrainAsync() };
        Assert.All(await Task.WhenAll(drains).WaitAsync(Bound), Assert.Empty);

        Assert.Single(await second.DeadLettersAsync().WaitAsync(Bound));
        Assert.Equal((1L, 1L, 0), (second.Metrics.Errors, second.Metrics.Processed, second.Size));
    }

    /// <summary>Writes one <see cref="WriteOnlyItem"/> to the durable queue <paramref name="name"/> and closes it: opened again, it holds an item it cannot read.</summary>
    private async Task PutUnreadableAsync(QueueDurability durability, string name)
    {
        await using var first = new BoundedQueue<WriteOnlyItem>(10, durability, name, system: Sys);
        await first.StartAsync();
        Assert.True(await first.PutAsync(new WriteOnlyItem(7)));
        await first.StopAsync();
    }

    /// <summary>
    /// A durable put is cancelled while its item's write is at the journal: its task ends cancelled ("a cancelled put
    /// adds nothing"). Failed before: when the write ended, the item went into the book, the answer found the put
    /// withdrawn and only queued its removal for the next write, and the hand-out after the write ran it. Now the
    /// withdrawn item leaves the book at once and its removal is written next.
    /// </summary>
    [Fact]
    public async Task A_durable_put_cancelled_while_its_write_is_at_the_journal_never_runs_its_item()
    {
        var system = WriteGatedJournal.System("r68-withdrawn");
        try
        {
            await using var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, "withdrawn", system: system);
            var ran = new ConcurrentQueue<int>();
            await queue.StartAsync().WaitAsync(Bound);
            await queue.StartWorkersAsync((item, _) =>
            {
                ran.Enqueue(item);
                return Task.CompletedTask;
            }, numWorkers: 1).WaitAsync(Bound);

            WriteGatedJournal.Close();
            using var cancel = new CancellationTokenSource();
            var put = queue.PutAsync(1, timeout: null, cancellationToken: cancel.Token);
            await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound); // the item's ItemAccepted is at the journal
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => put.WaitAsync(Bound));
            WriteGatedJournal.Open.SetResult();

            Assert.True(await queue.PutAsync(2).WaitAsync(Bound));
            await Poll.UntilAsync(() => ran.Contains(2), Bound, "item 2 ran");
            Assert.Equal([2], ran);
        }
        finally
        {
            WriteGatedJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>
    /// The journal rejects the write of a drain's removals (OnPersistRejected). Failed before: Rejected refused only the
    /// ItemAccepted events of the record and applied and answered every other as if written, so DrainAsync handed the
    /// items back while the journal kept them, and the queue opened again ran them. Now an event whose caller must know
    /// it was stored (a drain's, a dead-letter change's) is not applied, and the caller gets the QueueStorageException.
    /// </summary>
    [Fact]
    public async Task A_durable_drain_whose_write_is_rejected_does_not_hand_back_items_that_stay_journaled()
    {
        var system = WriteGatedJournal.System("r68-rejected-drain");
        try
        {
            IReadOnlyList<int>? drained = null;
            await using (var queue = new BoundedQueue<int>(10, WriteGatedJournal.Durability, "rejected-drain", system: system))
            {
                await queue.StartAsync().WaitAsync(Bound);
                for (var item = 1; item <= 3; item++)
                {
                    Assert.True(await queue.PutAsync(item).WaitAsync(Bound));
                }

                await queue.StopAsync().WaitAsync(Bound);
                WriteGatedJournal.RejectWrites = true;
                try
                {
                    drained = await queue.DrainAsync().WaitAsync(Bound);
                }
                catch (QueueStorageException)
                {
                    // refused: the items stay queued, as they stay in the journal
                }
                finally
                {
                    WriteGatedJournal.RejectWrites = false;
                }

                Assert.Null(drained);
                Assert.Equal(3, queue.Size);
            }

            await using var again = new BoundedQueue<int>(10, WriteGatedJournal.Durability, "rejected-drain", system: system);
            var left = await again.DrainAsync().WaitAsync(Bound);
            Assert.Equal([1, 2, 3], left);
        }
        finally
        {
            WriteGatedJournal.RejectWrites = false;
            await system.Terminate();
        }
    }

    /// <summary>A requeue of dead letters the journal rejects changes nothing: the caller gets the error, the dead letter stays, and a later requeue works.</summary>
    [Fact]
    public async Task A_durable_requeue_whose_write_is_rejected_leaves_the_dead_letter()
    {
        var system = WriteGatedJournal.System("r68-rejected-requeue");
        try
        {
            var durability = new QueueDurability
            {
                JournalPluginId = WriteGatedJournal.Durability.JournalPluginId, SnapshotPluginId = WriteGatedJournal.Durability.SnapshotPluginId, Retry = new RetryPolicy { MaxAttempts = 1 },
            };
            await using var queue = new BoundedQueue<int>(10, durability, "rejected-requeue", system: system);
            await queue.StartAsync().WaitAsync(Bound);
            Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
            await queue.StartWorkersAsync((_, _) => throw new InvalidOperationException("boom"), numWorkers: 1).WaitAsync(Bound);
            await Poll.ValueAsync(() => queue.DeadLettersAsync(), letters => letters.Count == 1, Bound);
            await queue.StopAsync().WaitAsync(Bound);

            WriteGatedJournal.RejectWrites = true;
            try
            {
                await Assert.ThrowsAsync<QueueStorageException>(() => queue.RequeueDeadLettersAsync().WaitAsync(Bound));
            }
            finally
            {
                WriteGatedJournal.RejectWrites = false;
            }

            Assert.Single(await queue.DeadLettersAsync()); // before: requeued in memory only
            Assert.Equal(0, queue.Size);
            Assert.Equal(1, await queue.RequeueDeadLettersAsync().WaitAsync(Bound));
            Assert.Equal(1, queue.Size);
        }
        finally
        {
            WriteGatedJournal.RejectWrites = false;
            await system.Terminate();
        }
    }
}
