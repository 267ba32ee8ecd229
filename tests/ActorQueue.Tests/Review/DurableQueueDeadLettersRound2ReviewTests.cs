using ActorQueue.Actors;
using ActorQueue.Tests.Queues.Durable;
using Akka.Actor;
using static ActorQueue.Tests.Review.DurableQueueRound2Review;

namespace ActorQueue.Tests.Review;

/// <summary>Second review of the durable work queue: dead letters purged or requeued twice, during a write or in one call, are changed once and the journal still recovers.</summary>
[Collection(WriteGatedJournal.Collection)]
public sealed class DurableQueueDeadLettersRound2ReviewTests : ActorQueueTestKit
{
    /// <summary>
    /// Two purges of the same dead letter, the second sent while the first's write is under way (two callers, or one
    /// caller retrying): both took the dead letter's id (it is still dead until the first removal is written) and both
    /// journaled its removal. Failed before: applying
    /// the second removal threw (KeyNotFoundException) inside the write's callback, the router restarted, and its
    /// recovery replayed the record and threw again, so the queue could never be opened on that journal again
    /// ("could not recover from its journal"). Now the second purge finds nothing to purge (0), and the journal recovers.
    /// </summary>
    [Fact]
    public async Task Two_purges_of_one_dead_letter_during_a_write_purge_it_once_and_the_journal_still_recovers()
    {
        var system = WriteGatedJournal.System("double-purge");
        try
        {
            var durability = WriteGatedJournal.Durability with { Retry = new RetryPolicy { MaxAttempts = 1 } };
            await using (var queue = await StoppedWithADeadLetterAsync(system, durability, "double-purge"))
            {
                var answers = await TwoChangesAsync(() => queue.PurgeDeadLettersAsync());
                Assert.Equal(new[] { 1, 0 }, answers);
                Assert.Empty(await queue.DeadLettersAsync().WaitAsync(Bound));
                Assert.Equal(QueueStatus.Stopped, queue.Status);
            }

            await using var reopened = new BoundedQueue<int>(10, durability, "double-purge", system: system);
            await reopened.StartAsync().WaitAsync(Bound);
            Assert.Empty(await reopened.DeadLettersAsync().WaitAsync(Bound));
        }
        finally
        {
            WriteGatedJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>
    /// Two requeues of the same dead letter, the second sent while the first's write is under way: both were told 1 and the item was requeued twice — counted
    /// twice in Enqueued (the book's invariant Enqueued == Processed + Drained + Size + InFlight broken, live and after a
    /// recovery). Now it is requeued once: Enqueued goes from 1 to 2.
    /// </summary>
    [Fact]
    public async Task Two_requeues_of_one_dead_letter_during_a_write_requeue_it_once()
    {
        var system = WriteGatedJournal.System("double-requeue");
        try
        {
            var durability = WriteGatedJournal.Durability with { Retry = new RetryPolicy { MaxAttempts = 1 } };
            await using var queue = await StoppedWithADeadLetterAsync(system, durability, "double-requeue");

            var answers = await TwoChangesAsync(() => queue.RequeueDeadLettersAsync());
            Assert.Equal(new[] { 1, 0 }, answers);
            var status = await StatusOfAsync(queue);
            Assert.Equal((2L, 1, 1L), (status.Metrics.Enqueued, status.Size, status.Metrics.Processed));
        }
        finally
        {
            WriteGatedJournal.Open.TrySetResult();
            await system.Terminate();
        }
    }

    /// <summary>
    /// One id named twice in a purge (a list built from two sources) journaled two removals of the item. Failed before
    /// (with the double-purge fix alone, it still answered 2 for one dead letter; on the reviewed code, the second removal
    /// threw in the write callback and in every recovery after it). Now each dead letter is purged once, and answered 1.
    /// </summary>
    [Fact]
    public async Task A_purge_naming_one_id_twice_purges_it_once_and_the_journal_still_recovers()
    {
        var system = WriteGatedJournal.System("purge-same-id");
        try
        {
            var durability = WriteGatedJournal.Durability with { Retry = new RetryPolicy { MaxAttempts = 1 } };
            await using (var queue = await StoppedWithADeadLetterAsync(system, durability, "purge-same-id"))
            {
                var id = Assert.Single(await queue.DeadLettersAsync().WaitAsync(Bound)).Id;
                Assert.Equal(1, await queue.PurgeDeadLettersAsync([id, id]).WaitAsync(Bound));
            }

            await using var reopened = new BoundedQueue<int>(10, durability, "purge-same-id", system: system);
            await reopened.StartAsync().WaitAsync(Bound);
            Assert.Empty(await reopened.DeadLettersAsync().WaitAsync(Bound));
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>
    /// A journal that already holds a dead letter purged twice and one requeued twice (written by the reviewed code)
    /// replays: the second change finds no dead letter and changes nothing. Failed before: KeyNotFoundException (the
    /// queue could never be opened on that journal again), and the second requeue counted the item twice.
    /// </summary>
    [Fact]
    public void A_journal_with_a_dead_letter_purged_twice_and_one_requeued_twice_replays()
    {
        var book = new DurableBook<int>();
        IDurableQueueMessage[] events =
        [
            new ItemAccepted(1, 0, 0, "1"u8.ToArray()), new ItemDeadLettered(1, "boom"),
            new ItemRemoved(1, RemovalReason.Purged), new ItemRemoved(1, RemovalReason.Purged),
            new ItemAccepted(2, 0, 0, "2"u8.ToArray()), new ItemDeadLettered(2, "boom"), new ItemRequeued(2), new ItemRequeued(2),
        ];

        DurableCodec.Replay(DurableCodec.Encode(new DurableBatch(events)), book);
        book.EndLoading();

        Assert.Null(book.BrokenInvariant());
        Assert.Equal((0, 1, 3L), (book.DeadCount, book.Size, book.Metrics.Enqueued));
    }

    /// <summary>A stopped queue whose item 1 is a dead letter.</summary>
    private static async Task<BoundedQueue<int>> StoppedWithADeadLetterAsync(ActorSystem system, QueueDurability durability, string name)
    {
        var queue = new BoundedQueue<int>(10, durability, name, system: system);
        await queue.StartAsync().WaitAsync(Bound);
        await queue.StartWorkersAsync((_, _) => throw new InvalidOperationException("dead"), numWorkers: 1).WaitAsync(Bound);
        Assert.True(await queue.PutAsync(1).WaitAsync(Bound));
        await Poll.UntilAsync(() => queue.Metrics.Errors == 1, Bound, "item 1 is a dead letter");
        await queue.StopAsync().WaitAsync(Bound);
        return queue;
    }

    /// <summary>Sends two dead-letter changes, the second while the first's write is held at the journal; their answers.</summary>
    private static async Task<int[]> TwoChangesAsync(Func<Task<int>> change)
    {
        WriteGatedJournal.Close();
        var first = change();
        await WriteGatedJournal.WriteArrived.Task.WaitAsync(Bound);
        var second = change();
        WriteGatedJournal.Open.SetResult();
        return [await first.WaitAsync(Bound), await second.WaitAsync(Bound)];
    }
}
